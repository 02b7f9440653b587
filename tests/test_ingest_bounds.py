"""Files built to be slow cost little, a file past the parse budget is skipped with its reason, a slow
parse never holds the writer lock, and a full disk is one line that leaves the last index as it was
(issue 25). Real PDFs (reportlab), real worker processes, real `ra ingest` processes, a real tmpfs."""

from __future__ import annotations

import errno
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from assistant.index_access import index_config
from assistant.settings import load_settings
from eval.bench.pathological import aligned_lines_pdf, nested_html
from index import ingest as ingest_module
from index.errors import UserFacingError
from index.ingest import ingest_paths
from index.loaders import load_document
from index.store import read_manifest

REPO = Path(__file__).resolve().parents[1]


def _config(index_dir: Path, **index: object) -> object:
    return index_config(load_settings({"index": {"dir": index_dir, **index}}))


def test_aligned_lines_under_a_table_caption_parse_in_linear_time(tmp_path: Path) -> None:
    """400 aligned lines that form no table took 113 s (each start line re-judged every line below it)."""
    pdf = aligned_lines_pdf(tmp_path / "rows.pdf", 400)
    t = time.perf_counter()
    doc = load_document(pdf)
    assert time.perf_counter() - t < 10
    assert "beta gamma" in doc.text and doc.pages[0].tables == ()


def test_nested_html_is_read_in_one_linear_pass(tmp_path: Path) -> None:
    """2 MB of nested divs: a tree walk took 34 s and gave up as 'nested too deeply'; now its text."""
    page = tmp_path / "nested.html"
    page.write_text(nested_html(2), encoding="utf-8")
    t = time.perf_counter()
    doc = load_document(page)
    assert time.perf_counter() - t < 15
    assert doc.text == "Intro.\n\ndeep text"


def test_a_file_over_the_parse_budget_is_skipped_with_its_reason(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "slow.html").write_text(nested_html(10), encoding="utf-8")  # about 10 s to parse here
    (docs / "note.txt").write_text("The zephyr budget note is indexed.\n", encoding="utf-8")
    t = time.perf_counter()
    report = ingest_paths([docs], tmp_path / "idx", _config(tmp_path / "idx", parse_timeout_s=1))
    assert time.perf_counter() - t < 30
    assert [Path(p).name for p in report.added] == ["note.txt"]
    [(path, reason)] = report.skipped
    assert Path(path).name == "slow.html"
    assert reason.startswith("parsing took longer than 1 s (setting index.parse_timeout_s)")


@pytest.mark.slow
def test_a_second_ingest_finishes_while_the_first_is_still_parsing(tmp_path: Path) -> None:
    """The first `ra ingest` parses a large HTML file (20 s or more); a second one of another folder
    into the same index must not wait for that parse (it used to wait for the writer lock)."""
    slow, quick = tmp_path / "slow", tmp_path / "quick"
    slow.mkdir()
    quick.mkdir()
    (slow / "big.html").write_text(nested_html(20), encoding="utf-8")  # 20 s or more to parse here
    (quick / "note.txt").write_text("The zephyrquick note arrives second.\n", encoding="utf-8")
    index = tmp_path / "idx"
    # a loaded machine parses slower: the budget must not be what ends the first ingest
    env = {**os.environ, "PYTHONPATH": str(REPO), "RA_INDEX__PARSE_TIMEOUT_S": "600"}

    def ra_ingest(folder: Path) -> subprocess.Popen[str]:
        cmd = [sys.executable, "-m", "assistant", "ingest", str(folder), "--index", str(index), "--json"]
        return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    first = ra_ingest(slow)
    time.sleep(8)  # past start-up: the first is parsing (the old code held the lock by now)
    second = ra_ingest(quick)
    out, err = second.communicate(timeout=600)
    assert second.returncode == 0, err
    assert first.poll() is None, "the first ingest ended before the second: nothing was overlapped"
    assert json.loads(out)["files_added"] == 1, out
    out, err = first.communicate(timeout=600)
    assert first.returncode == 0, err
    assert json.loads(out)["files_added"] == 1, out
    files = sorted(Path(k).name for k in read_manifest(index).files)  # type: ignore[union-attr]
    assert files == ["big.html", "note.txt"]


def _healthy_index(tmp_path: Path, index: Path) -> tuple[object, list[str]]:
    docs = tmp_path / "docs"
    docs.mkdir(exist_ok=True)
    (docs / "first.txt").write_text("The zephyr first note.\n", encoding="utf-8")
    config = _config(index)
    ingest_paths([docs / "first.txt"], index, config)
    (docs / "second.txt").write_text("The second note. " * 4000, encoding="utf-8")
    return config, sorted(os.listdir(index))


def _assert_intact(index: Path, before: list[str], message: str) -> None:
    assert message == (
        f"disk full while writing the index at {index}: free space and run again; the previous index is intact"
    )
    assert sorted(p for p in os.listdir(index) if not p.startswith(".tmp-")) == before
    manifest = read_manifest(index)
    assert manifest is not None and [Path(k).name for k in manifest.files] == ["first.txt"]


def test_a_full_disk_is_one_line_and_keeps_the_previous_index(tmp_path: Path) -> None:
    """A real full file system, as any user: bubblewrap mounts a 400 KB tmpfs (just large enough for the
    first index) where `ra ingest` runs twice, then `ra index verify` and `ra search` check what is left."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        pytest.skip("bubblewrap is not installed: make sandbox-deps")
    docs, small = tmp_path / "docs", tmp_path / "small"
    docs.mkdir()
    small.mkdir()
    (docs / "first.txt").write_text("The zephyr first note.\n", encoding="utf-8")
    (docs / "second.txt").write_text("The second note. " * 4000, encoding="utf-8")
    index = small / "idx"
    ra = f"{sys.executable} -m assistant"
    script = (
        f"{ra} ingest {docs / 'first.txt'} --index {index} >/dev/null || exit 9\n"
        f"{ra} ingest {docs / 'second.txt'} --index {index} 2>{tmp_path / 'err'}; echo ingest=$?\n"
        f"{ra} index verify --index {index} >/dev/null 2>&1; echo verify=$?\n"
        f"{ra} search zephyr --index {index} --mode bm25 -k 1 --json\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    argv = [
        bwrap,
        "--dev-bind",
        "/",
        "/",
        "--size",
        str(400 * 1024),
        "--tmpfs",
        str(small),
        "sh",
        "-c",
        script,
    ]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
    lines = done.stdout.splitlines()
    assert done.returncode == 0 and lines[:2] == ["ingest=1", "verify=0"], (done.stdout, done.stderr)
    err = (tmp_path / "err").read_text().strip()
    assert (
        err
        == f"error: disk full while writing the index at {index}: free space and run again; the previous index is intact"
    )
    [hit] = json.loads("\n".join(lines[2:]))
    assert hit["source"].endswith("first.txt")


@pytest.mark.parametrize(
    ("target", "error"),
    [
        ("_insert_new", sqlite3.OperationalError("database or disk is full")),
        ("build_structures", RuntimeError("Error in faiss::write_index: fwrite(...) == n failed")),
        ("_gather_vectors", OSError(errno.ENOSPC, "No space left on device")),
    ],
    ids=["sqlite", "faiss", "errno"],
)
def test_each_library_s_disk_full_error_reads_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: str, error: Exception
) -> None:
    """How SQLite, FAISS and the OS word a full disk, on any file system."""
    index = tmp_path / "idx"
    config, before = _healthy_index(tmp_path, index)

    def full(*_: object, **__: object) -> np.ndarray:
        raise error

    monkeypatch.setattr(ingest_module, target, full)
    with pytest.raises(UserFacingError) as info:
        ingest_paths([tmp_path / "docs" / "second.txt"], index, config)
    _assert_intact(index, before, str(info.value))
