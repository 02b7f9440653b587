"""Folder walks and text decoding under hostile inputs: loops, unreadable entries, huge files, bad bytes."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant.index_access import index_config
from assistant.settings import load_settings
from eval.bench.corruption_cases import remove_tree, unprivileged
from index.loaders import iter_files, load_document


def walk(*paths: Path, max_bytes: int | None = None) -> dict[str, str | None]:
    return {p.name: reason for p, reason in iter_files(list(paths), max_bytes)}


def test_symlink_loops_and_dangling_links_are_skipped_with_a_reason(tmp_path: Path) -> None:
    (tmp_path / "good.txt").write_text("Readable text.\n")
    (tmp_path / "self").symlink_to("self")
    (tmp_path / "ping").symlink_to("pong")
    (tmp_path / "pong").symlink_to("ping")
    (tmp_path / "gone.txt").symlink_to(tmp_path / "missing.txt")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "up").symlink_to(tmp_path)  # a folder cycle: walked once
    found = walk(tmp_path)
    assert found["good.txt"] is None
    for name in ("self", "ping", "pong"):
        assert "symbolic link loop" in (found[name] or ""), name
    assert "broken symbolic link" in (found["gone.txt"] or "")
    assert list(found).count("good.txt") == 1


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A folder the unprivileged uid can traverse (pytest's tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="ra-walk-"))
    path.chmod(0o755)
    yield path
    remove_tree(path)


def test_unreadable_file_and_folder_are_skipped_and_the_walk_goes_on(shared_tmp: Path) -> None:
    (shared_tmp / "a_good.txt").write_text("Readable text.\n")
    (shared_tmp / "b_secret.txt").write_text("Nobody may read this.\n")
    (shared_tmp / "b_secret.txt").chmod(0o000)
    (shared_tmp / "c_locked").mkdir()
    (shared_tmp / "c_locked" / "inside.txt").write_text("hidden\n")
    (shared_tmp / "c_locked").chmod(0o000)
    (shared_tmp / "d_last.txt").write_text("Still reached.\n")
    for path in shared_tmp.rglob("*") if os.geteuid() == 0 else ():
        os.chown(path, 0, 0)  # root-owned: unreadable to nobody
    with unprivileged():
        found = walk(shared_tmp)
    assert found["a_good.txt"] is None and found["d_last.txt"] is None
    assert "unreadable" in (found["b_secret.txt"] or "") and "Permission denied" in found["b_secret.txt"]
    assert "unreadable folder" in (found["c_locked"] or "")


def test_file_over_the_size_limit_is_skipped_naming_the_setting(tmp_path: Path) -> None:
    (tmp_path / "small.txt").write_text("fine\n")
    (tmp_path / "huge.txt").write_bytes(b"word " * (2**20 // 5 * 3))  # 3 MB
    config = index_config(load_settings({"index": {"max_file_mb": 2}}))
    assert config.max_file_bytes == 2 * 2**20
    found = walk(tmp_path, max_bytes=config.max_file_bytes)
    assert found["small.txt"] is None
    assert found["huge.txt"] == "3.0 MB, larger than the 2 MB limit per file (setting index.max_file_mb)"
    assert load_settings().index.max_file_mb == 50


def test_one_bad_byte_costs_one_character_not_the_whole_encoding(tmp_path: Path) -> None:
    path = tmp_path / "mixed.txt"
    path.write_bytes("Café naïve “quoted” ".encode() + b"\xff" + " déjà vu\n".encode())
    doc = load_document(path)
    assert doc.text == "Café naïve “quoted” \ufffd déjà vu\n"
    assert doc.warnings == ["not valid UTF-8: 1 undecodable byte sequence(s) replaced with U+FFFD"]


def test_a_wholly_legacy_file_still_decodes_as_cp1252(tmp_path: Path) -> None:
    path = tmp_path / "legacy.txt"
    path.write_bytes("naïve café".encode("cp1252"))
    doc = load_document(path)
    assert doc.text == "naïve café" and "cp1252" in doc.warnings[0]


def test_a_file_name_that_is_not_utf8_is_skipped_and_the_rest_of_the_folder_indexed(tmp_path: Path) -> None:
    """A name in another system's encoding (Latin-1 bytes) used to abort the whole batch in `doc_id`."""
    import json
    import subprocess
    import sys

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "good.md").write_text("# Good\n\nZebras are striped.\n")
    os.close(os.open(os.fsencode(docs) + b"/caf\xe9.md", os.O_CREAT | os.O_WRONLY))
    Path(os.fsdecode(os.fsencode(docs) + b"/caf\xe9.md")).write_text("# Cafe\n\nEspresso.\n")
    skipped = [(p.name, r) for p, r in iter_files([docs]) if r]
    assert skipped == [("caf\udce9.md", "file name is not valid UTF-8: rename the file")]

    env = {**os.environ, "RA_CONFIG": str(tmp_path / "none.toml")}
    cmd = [sys.executable, "-m", "assistant", "ingest", str(docs), "--index", str(tmp_path / "idx"), "--json"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    report = json.loads(proc.stdout)
    assert report["files_added"] == 1
    [skip] = report["skipped"]
    assert (
        skip["path"].endswith("caf\\xe9.md")
        and skip["reason"] == "file name is not valid UTF-8: rename the file"
    )
