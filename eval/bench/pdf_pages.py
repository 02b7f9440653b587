"""Do PDF citations name the right page? For every citation of a PDF in `ra eval qa` runs, the quote must be
on the page the citation names (the page's text as the loader reads it), and, for questions whose gold
evidence names a page, a citation quoting the gold sentence must name that page.

    python -m eval.bench.pdf_pages RUN [RUN ...] --data QA.jsonl [--out docs/bench/pdf_pages.json]
"""

from __future__ import annotations

import argparse
import json
from functools import cache
from pathlib import Path
from typing import Any

from eval.bench import write_result
from index.loaders import load_document


def _plain(text: str) -> str:
    return " ".join(text.lower().split())


@cache
def _pages(source: str) -> dict[int, str]:
    return {p.number: _plain(p.text) for p in load_document(Path(source)).pages if p.number is not None}


def check(rows: list[dict[str, Any]], gold: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    on_page = total = gold_right = gold_total = 0
    wrong: list[dict[str, Any]] = []
    for row in rows:
        for c in row.get("citations") or []:
            if c.get("kind") != "passage" or not str(c.get("source", "")).lower().endswith(".pdf"):
                continue
            total += 1
            quote = _plain(c["quote"])
            if quote in _pages(c["source"]).get(c["page"], ""):
                on_page += 1
            else:
                wrong.append({"id": row["id"], "page": c["page"], "quote": c["quote"][:80]})
            for ev in gold.get(row["id"], []):
                if (
                    ev.get("page")
                    and Path(c["source"]).name == ev["doc"]
                    and _plain(ev["quote"])[:60] in quote
                ):
                    gold_total += 1
                    gold_right += c["page"] == ev["page"]
    return {
        "pdf_citations": total,
        "quote_on_named_page": on_page,
        "gold_quotes_cited": gold_total,
        "gold_quotes_on_gold_page": gold_right,
        "wrong": wrong,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", type=Path, nargs="+")
    ap.add_argument("--data", type=Path, nargs="+", required=True)
    ap.add_argument("--out", type=Path, default=Path("docs/bench/pdf_pages.json"))
    args = ap.parse_args()
    gold = {
        r["id"]: r.get("evidence") or []
        for path in args.data
        for r in map(json.loads, path.read_text().splitlines())
    }
    rows = [
        json.loads(line) for run in args.runs for line in (run / "results.jsonl").read_text().splitlines()
    ]
    write_result(check(rows, gold), args.out, detail="wrong")


if __name__ == "__main__":
    main()
