"""How well citation boxes locate their text: every chunk of the given PDFs, and every sentence of them,
boxed by `index/pdf_boxes.py` (PDFium) and checked against where pypdf, a separate parser, draws the same
words (a box must hold the baseline of a pypdf text run of the quote).

    python -m eval.bench.pdf_boxes PDF... [--out docs/bench/pdf_boxes.json]

Reported per PDF and in all: quotes located (at least one box), boxes checked and held, boxes per quote,
and milliseconds per quote. Boxes narrower than a few points (footnote marks) are not checked: three
letters are too few to attribute. pypdf gives no page position to text inside form XObjects (figure
labels), so some right boxes count as not held: the held share is a lower bound.
"""

from __future__ import annotations

import argparse
import time
import unicodedata
from pathlib import Path
from typing import Any

from pypdf import PdfReader

from eval.bench import write_result
from eval.metrics import percentile
from index.chunking import chunk_document
from index.config import ChunkingConfig
from index.loaders import load_document
from index.pdf_boxes import Box, quote_boxes
from index.pdf_layout import Fragment, read_page
from index.text import sentence_spans

MARK_PT = 6.0  # narrower boxes hold a superscript or a symbol
SLACK_PT = 2.0


def key(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKC", text).casefold() if c.isalnum())


def shares_words(run_key: str, quote_key: str) -> bool:
    """The pypdf run (possibly longer than the quote's part of its line) is of the quote."""
    if len(run_key) < 3:
        return False
    if len(run_key) <= 8:
        return run_key in quote_key
    return any(run_key[i : i + 8] in quote_key for i in range(0, len(run_key) - 7, 2))


def held(box: Box, runs: list[Fragment], quote_key: str) -> bool:
    """A run of the quote's words has its baseline in the box and starts before the box ends (pypdf's run
    widths are estimates, so the line is compared, not the run's end)."""
    _, _, y0, x1, y1 = box
    return any(
        shares_words(key(f.text), quote_key) and f.x < x1 + SLACK_PT and y0 - SLACK_PT <= f.y <= y1 + SLACK_PT
        for f in runs
    )


def quotes_of(path: Path) -> list[tuple[str, int, str]]:
    """(kind, page, text): every chunk, and every sentence of 40+ characters of every page."""
    doc = load_document(path)
    out = [("chunk", int(c.page or 0), c.text) for c in chunk_document(doc, ChunkingConfig(), path.name)]
    for page in doc.pages:
        for lo, hi in sentence_spans(page.text, 0, len(page.text)):
            if hi - lo >= 40:
                out.append(("sentence", int(page.number or 0), page.text[lo:hi]))
    return out


def measure(path: Path) -> dict[str, Any]:
    reader = PdfReader(path)
    runs_of: dict[int, list[Fragment]] = {}
    stats: dict[str, dict[str, Any]] = {}
    for kind, page, text in quotes_of(path):
        s = stats.setdefault(kind, {"quotes": 0, "located": 0, "boxes": 0, "checked": 0, "held": 0, "ms": []})
        t0 = time.perf_counter()
        boxes = quote_boxes(path, page, text)
        s["ms"].append((time.perf_counter() - t0) * 1000)
        s["quotes"] += 1
        s["located"] += bool(boxes)
        s["boxes"] += len(boxes)
        runs = runs_of.setdefault(page, read_page(reader.pages[page - 1], page).fragments)
        quote_key = key(text)
        for box in boxes:
            if box[3] - box[1] >= MARK_PT:
                s["checked"] += 1
                s["held"] += held(box, runs, quote_key)
    for s in stats.values():
        ms = s.pop("ms")
        s["located_share"] = round(s["located"] / s["quotes"], 4)
        s["held_share"] = round(s["held"] / max(s["checked"], 1), 4)
        s["ms_p50"], s["ms_p95"] = round(percentile(ms, 50) or 0, 1), round(percentile(ms, 95) or 0, 1)
    return stats


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pdfs", type=Path, nargs="+")
    ap.add_argument("--out", type=Path, default=Path("docs/bench/pdf_boxes.json"))
    args = ap.parse_args(argv)
    result = {p.name: measure(p) for p in args.pdfs}
    write_result(result, args.out)
    return result


if __name__ == "__main__":
    main()
