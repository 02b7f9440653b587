"""Third-party progress bars and warnings stay off `ra`'s output unless `--verbose` (assistant/cli/quiet.py).

Real commands in subprocesses: a first ingest into an empty model cache loads the sentence-transformers
reference (transformers' "Loading weights" bars) and quantises the ONNX export (onnxruntime's root-logger
warning); the torch back-end loads the same bars on every run, which is the cheaper way to see `--verbose`
bring them back.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from index.embeddings import ONNX_FILE

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow

NOISE = ("Loading weights", "it/s]", "WARNING:root:", "Please consider to run pre-processing")


def _ingest(tmp_path: Path, *flags: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    docs = tmp_path / "docs"
    docs.mkdir(parents=True)
    (docs / "alpaca.txt").write_text(
        "Alpaca 7B was fine-tuned on 52K instruction-following demonstrations.\n"
    )
    return subprocess.run(
        [sys.executable, "-m", "assistant", *flags, "ingest", str(docs), "--index", str(tmp_path / "index")],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=os.environ | env,
        timeout=600,
        check=True,
    )


def test_first_ingest_prints_only_our_own_output(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    done = _ingest(tmp_path, env={"RA_CACHE_DIR": str(cache)})
    assert len(list(cache.glob(f"onnx/*/{ONNX_FILE}"))) == 1  # it did export and quantise
    assert [n for n in NOISE if n in done.stderr + done.stdout] == []
    assert "index updated" in done.stdout and "chunks 1" in done.stdout


def test_verbose_shows_the_model_loading_bars(tmp_path: Path) -> None:
    verbose = _ingest(tmp_path, "--verbose", env={"RA_INDEX__EMBEDDING__BACKEND": "torch"})
    assert "Loading weights" in verbose.stderr
    assert "Loading weights" not in verbose.stdout  # third-party noise never reaches the results
