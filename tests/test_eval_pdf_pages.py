"""The PDF page check of `eval.bench.pdf_pages`: a quote is on the page its citation names, or it is not."""

from __future__ import annotations

from pathlib import Path

from eval.bench.pdf_pages import check
from index.loaders import load_document


def test_a_quote_counts_on_its_own_page_only(shared: Path) -> None:
    pdf = sorted((shared / "pdfs").glob("*.pdf"))[0]
    page = next(p for p in load_document(pdf).pages if p.number == 2)
    quote = " ".join(page.text.split()[10:25])
    cite = {"kind": "passage", "source": str(pdf), "quote": quote}
    rows = [{"id": "q", "citations": [cite | {"page": 2}, cite | {"page": 1}]}]
    gold = {"q": [{"doc": pdf.name, "quote": quote, "page": 2}]}
    result = check(rows, gold)
    assert (result["pdf_citations"], result["quote_on_named_page"]) == (2, 1)
    assert (result["gold_quotes_cited"], result["gold_quotes_on_gold_page"]) == (2, 1)
    assert result["wrong"][0]["page"] == 1
