"""Citation boxes (`index/pdf_boxes.py`, from PDFium) checked against where pypdf, a separate parser, says
the same words are drawn: every box must hold the baseline of a pypdf text fragment of the quote, and
quotes from both shared papers (one of them two-column) must be found. The check (`held`) is the one
`python -m eval.bench.pdf_boxes` measures with."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from pypdf import PdfReader
from test_agent_cli import first_line_cited, in_turn, scripted
from typer.testing import CliRunner

from assistant.agent.citations import whole_passage
from assistant.agent.records import Citation
from assistant.agent.tools import Ledger
from assistant.cli import ask_cmd, index_cmds
from assistant.index_access import open_index
from assistant.service.wire import decode, encode
from assistant.settings import load_settings
from eval.bench.pdf_boxes import MARK_PT, held, key
from index.loaders import load_document
from index.pdf_boxes import quote_boxes
from index.pdf_layout import read_page
from index.text import sentence_spans

PAPERS = ("paperqa_paper.pdf", "paperqa_pasa.pdf")


def _quotes(path: Path, per_page: int = 2) -> list[tuple[int, str]]:
    """Sentences of 60+ characters, the first `per_page` of each page, as the agent would quote them."""
    doc = load_document(path)
    out = []
    for page in doc.pages:
        sentences = [
            page.text[lo:hi] for lo, hi in sentence_spans(page.text, 0, len(page.text)) if hi - lo >= 60
        ]
        out += [(int(page.number or 0), s) for s in sentences[:per_page]]
    return out


@pytest.mark.parametrize("name", PAPERS)
def test_quote_boxes_sit_where_pypdf_draws_the_quoted_words(shared: Path, name: str) -> None:
    path = shared / "pdfs" / name
    reader = PdfReader(path)
    quotes = _quotes(path)
    assert len(quotes) >= 20
    located, checked, unheld = 0, 0, []
    for page, quote in quotes:
        boxes = quote_boxes(path, page, quote)
        located += bool(boxes)
        frags = read_page(reader.pages[page - 1], page).fragments
        quote_key = key(quote)
        for box in boxes:
            assert box[0] == page
            if box[3] - box[1] < MARK_PT:
                continue  # a footnote mark or a lone symbol: too short to attribute by its text
            checked += 1
            if not held(box, frags, quote_key):
                unheld.append(f"p.{page} {box} {quote[:40]!r}")
    assert located / len(quotes) >= 0.95
    # pypdf's visitor gives no page position to text drawn inside form XObjects (the words of PaSa's
    # figures 1 and 2: 19 of 241 boxes), so those have nothing to compare with; misplaced boxes would
    # fail on every page
    assert len(unheld) <= 0.1 * checked, unheld


def test_a_two_column_page_gets_boxes_in_each_column(shared: Path) -> None:
    """Body text of a two-column page: every box lies in one column (the merge never joins words across
    the gutter, also for a sentence that runs on into the next column), and both columns get boxes."""
    path = shared / "pdfs" / "paperqa_pasa.pdf"
    mid = float(PdfReader(path).pages[2].mediabox.width) / 2
    sides = set()
    for page, quote in _quotes(path, per_page=40):
        if page != 3:
            continue
        boxes = [b for b in quote_boxes(path, page, quote) if b[3] - b[1] >= MARK_PT]
        assert boxes, quote[:60]
        for b in boxes:
            assert b[3] <= mid or b[1] >= mid, f"{b} crosses the gutter: {quote[:60]!r}"
            sides.add("left" if b[3] <= mid else "right")
    assert sides == {"left", "right"}


def test_a_quote_on_several_lines_gets_one_box_per_line(shared: Path) -> None:
    path = shared / "pdfs" / "paperqa_paper.pdf"
    page, quote = next((p, q) for p, q in _quotes(path, per_page=4) if q.count("\n") >= 2)
    boxes = quote_boxes(path, page, quote)
    assert len(boxes) >= quote.count("\n") + 1
    tops = sorted({round(b[4]) for b in boxes}, reverse=True)
    assert len(tops) >= 3  # stacked lines, not one merged rectangle


def test_a_quote_is_not_located_on_the_wrong_page_or_in_a_missing_file(shared: Path, tmp_path: Path) -> None:
    path = shared / "pdfs" / "paperqa_paper.pdf"
    page, quote = _quotes(path)[4]
    assert quote_boxes(path, page, quote)
    assert quote_boxes(path, page + 1, quote) == []
    assert quote_boxes(path, 10_000, quote) == []
    assert quote_boxes(tmp_path / "gone.pdf", page, quote) == []
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.7\nnot a pdf")
    assert quote_boxes(broken, 1, quote) == []


def test_a_quote_across_a_page_break_is_boxed_on_both_pages(shared: Path) -> None:
    path = shared / "pdfs" / "paperqa_paper.pdf"
    doc = load_document(path)
    end_of_3 = doc.pages[2].text.rstrip()[-80:]
    start_of_4 = doc.pages[3].text.lstrip()[:80]
    boxes = quote_boxes(path, 3, end_of_3 + doc.PAGE_SEPARATOR + start_of_4)
    assert {b[0] for b in boxes} == {3, 4}


# -- the same boxes in the JSON every client reads ------------------------------------------------------
QUERY = "Google Scholar is often insufficient, leading researchers to spend considerable time on literature review"


def test_ra_search_json_gives_pdf_hits_the_boxes_of_their_passage(seed_index: Path) -> None:
    app = typer.Typer()
    index_cmds.register(app)
    hits = []
    for query in (QUERY, "Alpaca 7B instruction-following demonstrations"):
        result = CliRunner().invoke(app, ["search", query, "--index", str(seed_index), "--json", "-k", "8"])
        assert result.exit_code == 0, result.output
        hits += json.loads(result.stdout)
    assert {h["source"].endswith(".pdf") for h in hits} == {True, False}
    for h in hits:
        if not h["source"].endswith(".pdf"):
            assert h["boxes"] == []
            continue
        assert h["boxes"] and {b[0] for b in h["boxes"]} == {h["page"]}
        frags = read_page(PdfReader(h["source"]).pages[h["page"] - 1], h["page"]).fragments
        wide = [b for b in h["boxes"] if b[3] - b[1] >= MARK_PT]
        assert sum(held(tuple(b), frags, key(h["text"])) for b in wide) >= 0.9 * len(wide)


def test_ra_ask_json_gives_a_pdf_citation_the_boxes_of_its_quote(
    seed_index: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A scripted model answers from the PDF passage; the real index, citation code and PDF give the boxes,
    and they come back the same through the service's wire format."""
    scripted(monkeypatch, in_turn(first_line_cited("Google Scholar is often insufficient for surveys.")))
    index = open_index(load_settings({"index": {"dir": seed_index}, "retrieval": {"mode": "bm25"}}))
    monkeypatch.setattr("assistant.agent.factory.open_index", lambda settings: index)
    app = typer.Typer()
    ask_cmd.register(app)
    question = "Are tools like Google Scholar sufficient for literature review tasks?"
    result = CliRunner().invoke(app, ["ask", question, "--json", "--checker", "none"])
    assert result.exit_code == 0, result.output
    [cite] = json.loads(result.stdout)["citations"]
    assert cite["source"].endswith("paperqa_pasa.pdf")
    expected = quote_boxes(cite["source"], cite["page"], cite["quote"])
    assert expected and cite["boxes"] == [list(b) for b in expected]

    record = whole_passage(
        Ledger().add_chunk(index.get_chunk(cite["chunk_id"]), part=None, query="", tool="search")
    )
    assert record.boxes and decode(Citation, json.loads(json.dumps(encode(record)))) == record
