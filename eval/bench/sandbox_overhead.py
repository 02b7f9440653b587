"""What isolation costs per snippet: `pass` in the sandbox vs the same in a plain `python -I` subprocess.

    python -m eval.bench.sandbox_overhead [--runs 20]

Both sides start the same interpreter, so the difference is the sandbox's own price (bwrap namespaces and
mounts, setpriv, the in-sandbox supervisor and its second interpreter start). Prints JSON in milliseconds;
`overhead` is the difference of the two sides' percentiles.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

from assistant.sandbox import check_sandbox, run_python


def _timed(action: Callable[[], object], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        times.append((time.perf_counter() - start) * 1000)
    return times


def _summary(times: list[float]) -> dict[str, float]:
    cuts = statistics.quantiles(times, n=20, method="inclusive")
    return {"p50_ms": round(statistics.median(times), 1), "p95_ms": round(cuts[18], 1)}


def _sandboxed() -> None:
    result = run_python("pass")
    if not result.ok:
        raise SystemExit(f"sandboxed `pass` failed: {result.to_json()}")


def _plain() -> None:
    subprocess.run([sys.executable, "-I", "-c", "pass"], check=True)


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    check_sandbox()
    _timed(_sandboxed, 2)  # warm the page cache for both
    _timed(_plain, 2)
    sandbox, plain = _summary(_timed(_sandboxed, args.runs)), _summary(_timed(_plain, args.runs))
    overhead = {key: round(sandbox[key] - plain[key], 1) for key in sandbox}
    report = {"runs": args.runs, "sandbox": sandbox, "plain_subprocess": plain, "overhead": overhead}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
