"""Reliability batteries: concurrent index writers, sandbox bypass probes, damaged indexes.

    python -m eval.bench.reliability [--writers 4] [--rounds 3]

Prints one JSON object; the goals are zero in every count but `cases`/`files`: files lost silently,
escapes and bypasses, tracebacks, documents lost after the advised recovery. The same cases run as tests
(tests/test_reliability.py, tests/test_sandbox.py), so a regression fails CI before it shows here.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from eval.bench.containment_probes import PROBES
from eval.bench.corruption_cases import CASES, SPECIAL_CASES, build_healthy, run_case
from eval.bench.writer_stress import run_stress


def containment() -> dict[str, Any]:
    started = time.perf_counter()
    bypassed = [probe.name for probe in PROBES if not probe.holds()]
    return {
        "cases": len(PROBES),
        "escapes_or_bypasses": len(bypassed),
        "failed": bypassed,
        "seconds": round(time.perf_counter() - started, 1),
    }


def corruption(root: Path) -> dict[str, Any]:
    started = time.perf_counter()
    healthy, docs = build_healthy(root)
    results = [run_case(case, healthy, docs) for case in CASES + SPECIAL_CASES]
    return {
        "cases": len(results),
        "commands": sum(len(r.runs) for r in results),
        "tracebacks": sum(r.tracebacks for r in results),
        "documents_lost": sum(r.documents_lost for r in results),
        "cases_with_problems": {r.name: r.problems for r in results if r.problems},
        "seconds": round(time.perf_counter() - started, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ra-reliability-") as tmp:
        root = Path(tmp)
        report = {
            "writer_stress": run_stress(root / "stress", args.writers, args.rounds),
            "containment": containment(),
            "corruption": corruption(root / "corruption"),
        }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
