"""Re-ingest of the unchanged seed corpus, timed as a user sees it: the whole `ra ingest` command.

    python -m eval.bench.reingest [--shared ../shared] [--index DIR] [--runs 5]

The first ingest (if the index does not exist yet) is not timed; then `ra ingest` runs `--runs` times on the
unchanged corpus + PDFs and the wall time of each process (start-up included) is reported.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--shared", type=Path, default=Path(os.environ.get("RA_SHARED_DIR", "../shared")))
    parser.add_argument("--index", type=Path, default=Path(tempfile.gettempdir()) / "ra-reingest-bench")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    cmd = [
        sys.executable,
        "-m",
        "assistant",
        "ingest",
        str(args.shared / "corpus"),
        str(args.shared / "pdfs"),
    ]
    cmd += ["--index", str(args.index), "--json"]
    subprocess.run(cmd, check=True, capture_output=True)
    walls, inner = [], []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        done = subprocess.run(cmd, check=True, capture_output=True, text=True)
        walls.append(time.perf_counter() - t0)
        report = json.loads(done.stdout)
        assert report["chunks_embedded"] == 0 and not report["committed"], report
        inner.append(report["seconds"])
    print(
        json.dumps(
            {
                "runs": args.runs,
                "command_wall_s_median": round(statistics.median(walls), 3),
                "command_wall_s_max": round(max(walls), 3),
                "ingest_work_s_median": round(statistics.median(inner), 4),
                "files": report["files_unchanged"],
                "chunks": report["chunks"],
            }
        )
    )


if __name__ == "__main__":
    main()
