"""A scripted system for the peers harness test: replies read from the setup's options, in the real
worker protocol (eval/bench/peer_workers/protocol.py), so the harness, its scorer and its timeouts are
exercised without a model."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "eval" / "bench" / "peer_workers"))
from protocol import Reply, Setup, serve


class Scripted:
    def __init__(self, setup: Setup) -> None:
        if setup["options"].get("fail_setup"):
            raise RuntimeError(setup["options"]["fail_setup"])
        self.replies: dict[str, Any] = setup["options"]["replies"]
        (Path(setup["state_dir"]) / "index.bin").write_bytes(b"x" * 1000)
        starts = Path(setup["state_dir"]) / "starts"
        starts.write_text(str(int(starts.read_text()) + 1 if starts.exists() else 1))

    def ask(self, question: str) -> Reply:
        reply = self.replies[question]
        if reply == "sleep":
            time.sleep(3600)
        if reply == "raise":
            raise RuntimeError("the scripted system failed")
        return reply


def build(setup: Setup) -> tuple[Scripted, dict[str, Any]]:
    return Scripted(setup), {"scripted": True}


if __name__ == "__main__":
    serve(build)
