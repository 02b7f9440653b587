"""Uploads whose safe names collide are all kept, and every file's outcome is reported (real ingest)."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.index_access import index_config
from assistant.settings import load_settings
from index.ingest import ingest_paths
from ui.uploads import file_outcomes, save_uploads


def test_colliding_names_in_one_batch_get_numbered_suffixes(tmp_path: Path) -> None:
    saved = save_uploads(
        [("report.txt", b"first"), ("sub/report.txt", b"second"), ("REPORT.txt", b"third"), ("x.txt", b"")],
        tmp_path / "index",
        limit_mb=1,
    )
    names = [(name, path.name) for name, path in saved.stored]
    assert names == [
        ("report.txt", "report.txt"),
        ("sub/report.txt", "report-2.txt"),
        ("REPORT.txt", "REPORT-3.txt"),
    ]
    assert [p.read_bytes() for p in saved.paths] == [b"first", b"second", b"third"]
    assert saved.rejected == [("x.txt", "the file is empty")]


@pytest.mark.slow
def test_every_uploaded_file_gets_its_outcome(tmp_path: Path) -> None:
    index_dir = tmp_path / "index"
    settings = load_settings({"index": {"dir": index_dir}})
    batch = [
        ("report.txt", b"Alpaca was fine-tuned on demonstrations.\n"),
        ("sub/report.txt", b"GLIDE compared two guidance strategies.\n"),
        ("a/b/report.txt", b"Matryoshka embeddings nest.\n"),
        ("notes.md", b"# Notes\n\nDiffusion models denoise step by step.\n"),
        ("blob.txt", bytes(range(256)) * 8),
        ("empty.md", b""),
    ]
    saved = save_uploads(batch, index_dir, limit_mb=1)
    report = ingest_paths(saved.paths, index_dir, index_config(settings))
    assert len(report.added) == 4  # was 3 when report.txt files overwrote each other
    outcomes = dict(file_outcomes(saved, report))
    assert list(outcomes) == [name for name, _ in batch]
    assert outcomes["report.txt"] == "added as uploads/report.txt"
    assert outcomes["sub/report.txt"] == "added as uploads/report-2.txt"
    assert outcomes["a/b/report.txt"] == "added as uploads/report-3.txt"
    assert outcomes["blob.txt"] == "skipped: binary file, not text"
    assert outcomes["empty.md"] == "skipped: the file is empty"

    again = save_uploads(batch[:1], index_dir, limit_mb=1)
    repeat = ingest_paths(again.paths, index_dir, index_config(settings))
    assert file_outcomes(again, repeat) == [
        ("report.txt", "unchanged (uploads/report.txt is already indexed)")
    ]
