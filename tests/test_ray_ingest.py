"""`ra ingest --engine ray` against a real Ray cluster started here (127.0.0.1, two worker CPUs).

The cluster runs in its own process group and temp dir and is stopped by signalling that group only (never
`ray stop`, which would stop every Ray on the machine).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_index_store import FACTS, make_corpus

from assistant.index_access import index_config, open_index
from assistant.settings import load_settings
from index import ray_engine
from index.ingest import ingest_paths

pytestmark = [pytest.mark.slow, pytest.mark.integration]

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cluster_pids(temp: Path) -> list[int]:
    """Processes of the cluster whose temp dir is `temp` (their command lines name it)."""
    pids = []
    for proc in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            if proc.name.isdigit() and str(temp).encode() in (proc / "cmdline").read_bytes():
                pids.append(int(proc.name))
    return pids


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[str]:
    # Token auth off for this private cluster: ~/.ray/auth_token may be another user's Ray's
    os.environ["RAY_AUTH_MODE"] = "disabled"
    ray_bin = Path(sys.executable).with_name("ray")
    temp = Path(tempfile.mkdtemp(prefix="ra-ray-", dir="/tmp"))  # Ray's socket paths must stay short
    port = free_port()
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "PYTHONPATH": str(REPO)}
    head = subprocess.Popen(
        [
            str(ray_bin),
            "start",
            "--head",
            "--block",
            "--node-ip-address",
            "127.0.0.1",
            "--port",
            str(port),
            "--num-cpus",
            "2",
            "--include-dashboard",
            "false",
            "--disable-usage-stats",
            "--temp-dir",
            str(temp),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    address = f"127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            assert head.poll() is None, "ray start --head exited"
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.5)
        time.sleep(2)  # the GCS port opens before the raylet has registered
        yield address
    finally:
        os.environ.pop("RAY_AUTH_MODE", None)
        os.killpg(head.pid, signal.SIGTERM)
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait()
        for pid in cluster_pids(temp):  # workers run in sessions of their own: end ours by pid
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_ray_engine_matches_the_local_engine(
    tmp_path: Path, ray_cluster: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    corpus = make_corpus(tmp_path / "docs")
    for i in range(8):  # enough files for several blocks and batches
        (corpus / f"extra{i}.txt").write_text(f"Extra {i}\n\n" + f"Sentence {i} about retrieval. " * 60)
    # The int8 ONNX embedder quantises activations per batch (the same chunk in another batch moves by up to
    # ~0.02); one chunk per batch makes vectors independent of how Ray groups them, so they must be equal.
    one = {"batch_size": 1}
    by_ray = load_settings({"index": {"dir": tmp_path / "ray", "embedding": one}})
    by_local = load_settings({"index": {"dir": tmp_path / "local", "embedding": one}})
    ray_report = ingest_paths(
        [corpus], by_ray.index.dir, index_config(by_ray), engine="ray", ray_address=ray_cluster
    )
    local_report = ingest_paths([corpus], by_local.index.dir, index_config(by_local))

    assert ray_report.committed and sorted(ray_report.added) == sorted(local_report.added)
    assert sorted(ray_report.skipped) == sorted(local_report.skipped)
    a, b = open_index(by_ray), open_index(by_local)
    ray_chunks = {c.chunk_id: (c, i) for i, c in enumerate(a.all_chunks())}
    local_chunks = b.all_chunks()
    assert len(ray_chunks) == len(local_chunks) == local_report.chunks_total
    va, vb = np.load(a.generation_dir / "vectors.npy"), np.load(b.generation_dir / "vectors.npy")
    for j, chunk in enumerate(local_chunks):
        same, i = ray_chunks[chunk.chunk_id]
        assert same == chunk
        np.testing.assert_allclose(va[i], vb[j], atol=1e-6)
    assert (
        Path(a.search("Which guidance did human evaluators prefer?", k=1)[0].chunk.source).name == "glide.md"
    )

    (corpus / "alpaca.txt").write_text("Alpaca\n\nAlpaca was trained on 52K demonstrations by Stanford.\n")
    (corpus / "glide.md").unlink()
    # Ray's work happens before the writer lock is taken (other writers do not wait for it), once
    lock_free: list[bool] = []
    real_prepare = ray_engine.prepare

    def watched(*args: Any, **kwargs: Any) -> Any:
        with open(by_ray.index.dir / ".lock", "a") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.flock(fh, fcntl.LOCK_UN)
                lock_free.append(True)
            except BlockingIOError:
                lock_free.append(False)
        return real_prepare(*args, **kwargs)

    monkeypatch.setattr(ray_engine, "prepare", watched)
    again = ingest_paths(
        [corpus], by_ray.index.dir, index_config(by_ray), prune=True, engine="ray", ray_address=ray_cluster
    )
    assert lock_free == [True]
    assert [Path(p).name for p in again.updated] == ["alpaca.txt"] and again.chunks_embedded == 1
    assert [Path(p).name for p in again.removed] == ["glide.md"]
    assert again.unchanged == len(FACTS) - 2 + 8


def test_unreachable_ray_address_fails_in_one_line(tmp_path: Path) -> None:
    corpus = make_corpus(tmp_path / "docs")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "assistant",
            "ingest",
            str(corpus),
            "--index",
            str(tmp_path / "i"),
            "--engine",
            "ray",
            "--ray-address",
            f"127.0.0.1:{free_port()}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert result.returncode == 1 and "ray start --head" in result.stderr, result.stderr[-500:]
    assert "Traceback" not in result.stderr and not (tmp_path / "i" / "manifest.json").exists()
