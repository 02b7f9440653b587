"""Files built to be slow to parse: a PDF page of aligned lines under a "Table 1:" caption that form no
table, and HTML of deeply nested divs. Prints the parse time of each size (and the peak memory of the
process that parsed it), then the seed corpus ingest time, which the parse worker must not slow down.

    python -m eval.bench.pathological [--rows 100 200 400] [--html-mb 2 10] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

_PARSE = """
import resource, sys, time
from pathlib import Path
from index.errors import LoadError
from index.loaders import load_document
t = time.perf_counter()
try:
    outcome = f"{len(load_document(Path(sys.argv[1])).text)} characters"
except LoadError as exc:
    outcome = f"skipped: {exc}"
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
print(f"{time.perf_counter() - t:.2f} {peak} {outcome}")
"""


def aligned_lines_pdf(path: Path, rows: int) -> Path:
    """One page: a table caption, then `rows` lines of four cells in the same columns, mostly words and
    a number, which is no table (too few cells with digits) at any start line."""
    from reportlab.pdfgen import canvas

    height = max(842, 40 + rows * 10)
    c = canvas.Canvas(str(path), pagesize=(595, height))
    c.setFont("Helvetica", 8)
    y = height - 30
    c.drawString(50, y, "Table 1: Results of the experiment")
    for i in range(rows):
        y -= 10
        for k, text in enumerate(("alpha", "beta gamma", "delta", str(i))):
            c.drawString(50 + k * 100, y, text)
    c.save()
    return path


def nested_html(mb: float) -> str:
    """About `mb` megabytes of divs nested inside each other, one word of text at the bottom."""
    depth = int(mb * 2**20) // 11
    return f"<html><body><p>Intro.</p>{'<div>' * depth}deep text{'</div>' * depth}</body></html>"


def parse_in_subprocess(path: Path, timeout_s: float) -> dict[str, Any]:
    """Seconds and peak MB to load one file in a fresh process, and what came of it."""
    try:
        out = subprocess.run(
            [sys.executable, "-c", _PARSE, str(path)],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=True,
        ).stdout
    except subprocess.TimeoutExpired:
        return {"seconds": None, "outcome": f"still parsing after {timeout_s:g} s"}
    seconds, peak, outcome = out.strip().split(" ", 2)
    return {"seconds": float(seconds), "peak_mb": int(peak), "outcome": outcome}


def corpus_ingest_seconds(corpus: Path) -> float:
    """Wall time of `ingest_paths` over the seed corpus into a fresh index (embedding included)."""
    from assistant.index_access import index_config
    from assistant.settings import load_settings
    from index.ingest import ingest_paths

    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings({"index": {"dir": Path(tmp) / "index"}})
        t = time.perf_counter()
        ingest_paths([corpus], settings.index.dir, index_config(settings))
        return round(time.perf_counter() - t, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="*", default=[100, 200, 400])
    parser.add_argument("--html-mb", type=float, nargs="*", default=[2.0, 10.0])
    parser.add_argument("--timeout", type=float, default=300.0, help="give up on one file after this")
    parser.add_argument("--corpus", type=Path, default=None, help="also time the ingest of this folder")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for rows in args.rows:
            pdf = aligned_lines_pdf(Path(tmp) / f"rows{rows}.pdf", rows)
            results[f"pdf_{rows}_rows"] = {
                "bytes": pdf.stat().st_size,
                **parse_in_subprocess(pdf, args.timeout),
            }
            print(f"PDF {rows} aligned rows: {results[f'pdf_{rows}_rows']}", flush=True)
        for mb in args.html_mb:
            html = Path(tmp) / f"nested{mb:g}.html"
            html.write_text(nested_html(mb), encoding="utf-8")
            results[f"html_{mb:g}_mb"] = parse_in_subprocess(html, args.timeout)
            print(f"HTML {mb:g} MB nested divs: {results[f'html_{mb:g}_mb']}", flush=True)
    if args.corpus is not None:
        results["corpus_ingest_seconds"] = corpus_ingest_seconds(args.corpus)
        print(f"ingest of {args.corpus}: {results['corpus_ingest_seconds']} s", flush=True)
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
