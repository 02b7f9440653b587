"""What a person waits for: `ra ask` in a fresh process per question, timed from the command's start to the
first answer words on stdout and to its exit (model start, index and checker loading included).

    python -m eval.bench.ask_latency --index DIR [--data ../shared/qa/seeds_dev.jsonl] [--limit N]
                                     [--llm SPEC] [--out docs/bench/ask_latency.json]

Stdout of `ra ask` carries only the answer and its sources (progress goes to stderr), so the first byte on
stdout is the first answer word the user sees.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from eval.bench import write_result
from eval.metrics import percentile

DEFAULT_DATA = Path(__file__).resolve().parents[3] / "shared" / "qa" / "seeds_dev.jsonl"


def time_ask(question: str, index: Path, llm: str | None) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "assistant", "ask", question, "--index", str(index)]
    cmd += ["--llm", llm] if llm else []
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=os.environ.copy())
    assert proc.stdout is not None
    first = proc.stdout.read(1)
    first_s = time.perf_counter() - t0 if first else None
    rest = proc.stdout.read()
    proc.wait()
    return {
        "first_words_s": None if first_s is None else round(first_s, 2),
        "total_s": round(time.perf_counter() - t0, 2),
        "exit_code": proc.returncode,
        "answer": (first + rest).decode(errors="replace").split("\n\nSources:")[0].strip()[:300],
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--index", type=Path, required=True)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--llm", default=None)
    ap.add_argument("--out", type=Path, default=Path("docs/bench/ask_latency.json"))
    args = ap.parse_args(argv)
    items = [json.loads(line) for line in args.data.read_text().splitlines() if line.strip()][: args.limit]
    runs = []
    for item in items:
        run = {"id": item["id"], "kind": item["kind"], **time_ask(item["question"], args.index, args.llm)}
        runs.append(run)
        print(json.dumps(run), file=sys.stderr, flush=True)
    totals = [r["total_s"] for r in runs]
    firsts = [r["first_words_s"] for r in runs if r["first_words_s"] is not None]
    result = {
        "n": len(runs),
        "total_p50": percentile(totals, 50),
        "total_p95": percentile(totals, 95),
        "first_words_p50": percentile(firsts, 50),
        "first_words_p95": percentile(firsts, 95),
        "failed": sum(r["exit_code"] != 0 for r in runs),
        "runs": runs,
    }
    return write_result(result, args.out, "runs")


if __name__ == "__main__":
    main()
