"""Nothing lost, nothing bypassed: concurrent writers, damaged indexes, settings that shape the index.

The corruption cases and the writer stress are the ones `eval.bench.reliability` measures; here each is
a test (real embeddings, real processes, real files).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from assistant.index_access import index_config, open_index
from assistant.settings import load_settings
from eval.bench.corruption_cases import CASES, SPECIAL_CASES, Case, build_healthy, run_case, run_cli
from eval.bench.writer_stress import run_stress
from index.documents import display_path
from index.errors import IndexIncompatible
from index.ingest import ingest_paths

pytestmark = pytest.mark.slow
ALL_CASES = CASES + SPECIAL_CASES


@pytest.fixture(scope="module")
def healthy(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return build_healthy(tmp_path_factory.mktemp("healthy"))


@pytest.mark.parametrize("case", ALL_CASES, ids=[c.name for c in ALL_CASES])
def test_damaged_index_gives_one_line_errors_and_rebuild_recovers(
    case: Case, healthy: tuple[Path, Path]
) -> None:
    result = run_case(case, *healthy)
    assert result.problems == []
    assert result.tracebacks == 0 and result.documents_lost == 0


def test_concurrent_writers_of_different_files_lose_nothing(tmp_path: Path) -> None:
    result = run_stress(tmp_path, writers=3, rounds=2)
    assert result["tracebacks"] == 0 and result["errors"] == []
    assert result["files_present"] == 6 and result["files_lost_silently"] == 0


def test_changed_bm25_setting_is_refused_on_open_then_applied_by_the_next_ingest(
    healthy: tuple[Path, Path], tmp_path: Path
) -> None:
    _, docs = healthy
    before = load_settings({"index": {"dir": tmp_path / "idx"}})
    ingest_paths([docs], before.index.dir, index_config(before))
    after = load_settings({"index": {"dir": tmp_path / "idx"}, "retrieval": {"bm25": {"k1": 1.5}}})
    with pytest.raises(IndexIncompatible, match=r"retrieval\.bm25\.k1 \(index: 0\.9, settings: 1\.5\)"):
        open_index(after)
    report = ingest_paths([docs], after.index.dir, index_config(after))
    assert report.committed and report.chunks_embedded == 0 and report.unchanged == 3
    assert open_index(after).backend.bm25.k1 == 1.5  # type: ignore[attr-defined]
    with pytest.raises(IndexIncompatible, match=r"retrieval\.bm25\.k1"):
        open_index(before)


def test_changed_embedding_backend_is_refused_naming_the_setting(healthy: tuple[Path, Path]) -> None:
    index_dir, docs = healthy
    other = load_settings({"index": {"dir": index_dir, "embedding": {"backend": "torch"}}})
    with pytest.raises(IndexIncompatible, match=r"index\.embedding\.backend"):
        open_index(other)
    with pytest.raises(IndexIncompatible, match="--rebuild"):
        ingest_paths([docs], index_dir, index_config(other))


def test_newline_in_a_file_name_keeps_search_results_one_line_each(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "two\nlines.txt").write_text("A note about the capybaraword.\n")
    for i in range(3):  # BM25's idf is positive only for a word in under half of the documents
        (docs / f"other{i}.txt").write_text(f"Something else entirely, number {i}.\n")
    assert run_cli("ingest", str(docs), "--index", str(tmp_path / "idx")).exit_code == 0
    found = run_cli("search", "capybaraword", "--index", str(tmp_path / "idx"), "--mode", "bm25")
    assert found.exit_code == 0
    first, snippet = found.stdout.splitlines()[:2]
    # a first line that is a sentence is quoted beside the file name, whose newline is shown escaped
    assert first.startswith("1. two\\nlines.txt (\u201cA note about the capybaraword\u2026\u201d), line 1")
    assert snippet.strip() == "A note about the capybaraword."
    assert display_path(str(docs / "two\nlines.txt")).endswith("two\\nlines.txt")


def test_stats_date_is_readable_and_verify_passes_on_a_healthy_index(healthy: tuple[Path, Path]) -> None:
    index_dir, _ = healthy
    stats = run_cli("index", "stats", "--index", str(index_dir))
    assert re.search(r"updated: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$", stats.stdout, re.MULTILINE)
    verified = run_cli("index", "verify", "--index", str(index_dir))
    assert verified.exit_code == 0 and "status: ok" in verified.stdout


def test_real_cli_on_a_list_manifest_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "idx").mkdir()
    (tmp_path / "idx" / "manifest.json").write_text("[]")
    proc = subprocess.run(
        [sys.executable, "-m", "assistant", "search", "x", "--index", str(tmp_path / "idx")],
        capture_output=True,
        text=True,
        timeout=600,  # a cold `ra` start on a loaded CI machine
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"error: index manifest {tmp_path / 'idx' / 'manifest.json'} is not a JSON object: rebuild it from "
        f"your documents with `ra ingest PATH --rebuild --index {tmp_path / 'idx'}`"
    ]


def test_a_failed_first_ingest_leaves_no_index_folder_behind(tmp_path: Path) -> None:
    run = run_cli("ingest", str(tmp_path / "no-such-dir"), "--index", str(tmp_path / "idx"))
    assert run.one_line_error and "nothing to index" in run.stderr
    assert "no-such-dir: no such file or folder" in run.stderr  # the skipped list is in the error itself
    assert not (tmp_path / "idx").exists()


def test_nothing_to_index_names_what_was_skipped_and_why_also_with_json(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(5):
        (docs / f"tool{i}.exe").write_bytes(b"MZ\x90\x00binary")
    for flags in ((), ("--json",)):
        run = run_cli("ingest", str(docs), "--index", str(tmp_path / "idx"), *flags)
        assert run.one_line_error, run.stderr
        line = run.stderr.strip()
        assert "tool0.exe: " in line and "tool2.exe: " in line and "and 2 more" in line


def test_a_file_replaced_while_it_is_read_is_never_kept_as_unchanged_beside_old_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hostile case: the file is hashed, then replaced before it is parsed (or the other way round).
    The manifest must record the hash of the bytes whose text the index holds, so the next ingest sees
    the difference and re-reads; recording the first hash beside the other text stays wrong for good."""
    import index.ingest as ingest

    docs = tmp_path / "docs"
    docs.mkdir()
    note = docs / "note.md"
    note.write_text("# Note\n\nThe launch date is March 3.\n")
    settings = load_settings({"index": {"dir": tmp_path / "idx"}})
    ingest_paths([docs], settings.index.dir, index_config(settings))

    old_bytes = note.read_bytes()
    note.write_text("# Note\n\nThe launch date is June 9.\n")  # the new version is what gets hashed first
    real_read = ingest.read_file_bytes
    monkeypatch.setattr(ingest, "read_file_bytes", lambda path: old_bytes)  # ...the parse sees the old one
    ingest_paths([docs], settings.index.dir, index_config(settings))
    monkeypatch.setattr(ingest, "read_file_bytes", real_read)

    report = ingest_paths([docs], settings.index.dir, index_config(settings))
    assert report.unchanged == 0 and report.chunks_embedded > 0  # seen as changed, re-read
    [hit] = open_index(settings).search("launch date", k=1)
    assert "June 9" in hit.chunk.text
    again = ingest_paths([docs], settings.index.dir, index_config(settings))
    assert again.unchanged == 1 and again.chunks_embedded == 0
