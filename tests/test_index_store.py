"""Ingest -> store -> search end to end on small corpora made here (real embeddings), on both backends:
`local` (FAISS + BM25 + SQLite) and `milvus` (a real milvus-lite engine in a temp file)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from assistant.index_access import index_config, open_index
from assistant.settings import load_settings
from index.errors import IndexDamaged, IndexIncompatible, IndexNotFound
from index.ingest import ingest_paths
from index.store import read_manifest

pytestmark = pytest.mark.slow

FACTS = {
    "glide.md": "# GLIDE\n\nGLIDE compares CLIP guidance with classifier-free guidance. Human evaluators "
    "preferred classifier-free guidance for photorealism and caption similarity.\n",
    "alpaca.txt": "Stanford Alpaca\n\nAlpaca 7B was fine-tuned from LLaMA 7B on 52K instruction-following "
    "demonstrations generated with the Self-Instruct method.\n",
    "page.html": "<html><head><title>Matryoshka</title><script>var x=1;</script></head><body><h1>MRL</h1>"
    "<p>OpenAI's text-embedding-3-large adopted Matryoshka Representation Learning.</p></body></html>",
}


def make_corpus(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, text in FACTS.items():
        (root / name).write_text(text, encoding="utf-8")
    (root / "broken.pdf").write_bytes(b"%PDF-1.4\n1 0 obj <<>> garbage without xref")
    (root / "blob.txt").write_bytes(bytes(range(256)) * 8)
    (root / "empty.md").write_text("   \n", encoding="utf-8")
    (root / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 32)
    return root


@pytest.fixture(params=["local", "milvus"])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


def backend_env(backend: str, tmp_path: Path) -> dict[str, str]:
    """The RA_* variables that select `backend` (a milvus-lite file next to the index)."""
    if backend == "local":
        return {}
    return {"RA_INDEX__BACKEND": "milvus", "RA_INDEX__MILVUS__URI": str(tmp_path / "milvus.db")}


def settings_for(index_dir: Path, backend: str = "local", **retrieval: object):
    milvus = {"uri": str(index_dir.parent / "milvus.db")}
    return load_settings(
        {"index": {"dir": index_dir, "backend": backend, "milvus": milvus}, "retrieval": retrieval}
    )


def test_ingest_reports_skips_and_search_finds_facts(tmp_path: Path, backend: str) -> None:
    corpus = make_corpus(tmp_path / "docs")
    settings = settings_for(tmp_path / "idx", backend)
    report = ingest_paths([corpus], settings.index.dir, index_config(settings))

    assert sorted(Path(p).name for p in report.added) == sorted(FACTS)
    skipped = {Path(p).name: reason for p, reason in report.skipped}
    assert set(skipped) == {"broken.pdf", "blob.txt", "empty.md", "image.png"}
    assert "binary" in skipped["blob.txt"] and "empty" in skipped["empty.md"]
    assert all("\n" not in reason for reason in skipped.values())

    index = open_index(settings)
    for mode in ("hybrid", "dense", "bm25"):
        top = index.search("Which guidance did human evaluators prefer?", k=1, mode=mode)[0].chunk
        assert Path(top.source).name == "glide.md", mode
        doc = index.document_text(top.source)
        assert doc is not None and doc[top.start : top.end] == top.text
        assert index.get_chunk(top.chunk_id) == top
        assert [c.chunk_id for c in index.neighbours(top.chunk_id)] == [top.chunk_id]
    html_hit = index.search("text-embedding-3-large Matryoshka", k=1, mode="bm25")[0].chunk
    assert "<" not in html_hit.text and "var x" not in html_hit.text


def test_reingest_is_incremental_and_prune_removes(tmp_path: Path, backend: str) -> None:
    corpus = make_corpus(tmp_path / "docs")
    settings = settings_for(tmp_path / "idx", backend)
    cfg = index_config(settings)
    first = ingest_paths([corpus], settings.index.dir, cfg)
    generation = read_manifest(settings.index.dir).generation

    again = ingest_paths([corpus], settings.index.dir, cfg)
    assert not again.committed and again.chunks_embedded == 0 and again.unchanged == len(FACTS)
    assert read_manifest(settings.index.dir).generation == generation

    (corpus / "alpaca.txt").write_text("Alpaca\n\nAlpaca was trained on 52K demonstrations by Stanford.\n")
    changed = ingest_paths([corpus], settings.index.dir, cfg)
    assert [Path(p).name for p in changed.updated] == ["alpaca.txt"]
    assert changed.chunks_embedded == 1 and changed.chunks_total == first.chunks_total
    index = open_index(settings)
    assert len(index) == first.chunks_total  # the old version of alpaca.txt is gone, not duplicated
    top = index.search("Alpaca demonstrations Stanford", k=1, mode="bm25")[0].chunk
    assert "trained on 52K demonstrations by Stanford" in top.text

    (corpus / "glide.md").unlink()
    kept = ingest_paths([corpus], settings.index.dir, cfg)
    assert [Path(p).name for p in kept.missing] == ["glide.md"] and not kept.committed
    pruned = ingest_paths([corpus], settings.index.dir, cfg, prune=True)
    assert [Path(p).name for p in pruned.removed] == ["glide.md"]
    index = open_index(settings)
    hits = index.search("classifier-free guidance photorealism", k=5, mode="bm25")
    assert all(Path(h.chunk.source).name != "glide.md" for h in hits)
    assert len(index) == first.chunks_total - 1 and index.document_text(str(corpus / "glide.md")) is None


def test_other_embedding_model_is_refused(tmp_path: Path, backend: str) -> None:
    corpus = make_corpus(tmp_path / "docs")
    settings = settings_for(tmp_path / "idx", backend)
    ingest_paths([corpus], settings.index.dir, index_config(settings))
    other = settings.model_copy(deep=True)
    other.index.embedding.model = str(tmp_path)
    with pytest.raises(IndexIncompatible, match=r"index\.embedding\.model"):
        open_index(other)
    with pytest.raises(IndexIncompatible):
        ingest_paths([corpus], other.index.dir, index_config(other))


def test_missing_index_says_how_to_build(tmp_path: Path) -> None:
    with pytest.raises(IndexNotFound, match="ra ingest"):
        open_index(settings_for(tmp_path / "nothing"))


def test_langchain_retriever_returns_documents_with_provenance(tmp_path: Path, backend: str) -> None:
    from langchain_core.documents import Document

    from index.langchain_retriever import HybridRetriever

    corpus = make_corpus(tmp_path / "docs")
    settings = settings_for(tmp_path / "idx", backend)
    ingest_paths([corpus], settings.index.dir, index_config(settings))
    retriever = HybridRetriever(index=open_index(settings), k=2)
    docs = retriever.invoke("52K instruction-following demonstrations")
    assert docs and isinstance(docs[0], Document)
    meta = docs[0].metadata
    assert Path(meta["source"]).name == "alpaca.txt"
    assert {"chunk_id", "page", "start", "end", "line_start", "line_end"} <= set(meta)


CRASH_SCRIPT = """
import sys
from pathlib import Path
from assistant.index_access import index_config
from assistant.settings import load_settings
from index.ingest import ingest_paths
s = load_settings({"index": {"dir": sys.argv[1]}})
ingest_paths([Path(sys.argv[2])], s.index.dir, index_config(s))
"""


def test_kill_9_during_ingest_leaves_previous_index_loadable(tmp_path: Path) -> None:
    corpus = make_corpus(tmp_path / "docs")
    settings = settings_for(tmp_path / "idx")
    ingest_paths([corpus], settings.index.dir, index_config(settings))
    before = read_manifest(settings.index.dir).generation

    big = tmp_path / "more"
    big.mkdir()
    for i in range(60):
        (big / f"doc{i}.txt").write_text(f"Document {i}\n\n" + (f"Words about topic {i}. ") * 400)
    proc = subprocess.Popen(
        [sys.executable, "-c", CRASH_SCRIPT, str(settings.index.dir), str(big)],
        env={**os.environ, "RA_CONFIG": str(tmp_path / "none.toml")},
    )
    deadline = time.time() + 120
    while time.time() < deadline and not list(settings.index.dir.glob(".tmp-*")):
        assert proc.poll() is None, "ingest finished before it could be interrupted"
        time.sleep(0.02)
    time.sleep(0.3)  # well inside the write of the new generation
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    manifest = read_manifest(settings.index.dir)
    assert manifest.generation == before
    hits = open_index(settings).search("classifier-free guidance", k=1)
    assert Path(hits[0].chunk.source).name == "glide.md"
    report = ingest_paths([big], settings.index.dir, index_config(settings))
    assert report.committed and len(report.added) == 60
    assert not list(settings.index.dir.glob(".tmp-*"))


def run_cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "assistant", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **(env or {})},
    )


def test_cli_ingest_search_stats_json(tmp_path: Path, backend: str) -> None:
    corpus = make_corpus(tmp_path / "docs")
    idx = tmp_path / "idx"
    env = backend_env(backend, tmp_path)
    ingested = run_cli("ingest", str(corpus), "--index", str(idx), "--json", cwd=tmp_path, env=env)
    assert ingested.returncode == 0, ingested.stderr
    summary = json.loads(ingested.stdout)
    assert summary["files_added"] == 3 and len(summary["skipped"]) == 4

    found = run_cli(
        "search", "Alpaca 52K demonstrations", "--index", str(idx), "-k", "2", "--json", cwd=tmp_path, env=env
    )
    assert found.returncode == 0, found.stderr
    hits = json.loads(found.stdout)
    assert len(hits) == 2
    assert set(hits[0]) == {
        "chunk_id", "score", "text", "source", "page", "start", "end", "line_start", "line_end", "section",
        "boxes", "document"
    }  # fmt: skip
    assert hits[0]["document"]["title"] == "Stanford Alpaca"
    assert hits[0]["boxes"] == []  # a text file has no page geometry
    assert hits[0]["source"].endswith("alpaca.txt")

    stats = json.loads(run_cli("index", "stats", "--index", str(idx), "--json", cwd=tmp_path, env=env).stdout)
    assert stats["files"] == 3 and stats["embedding_model"] == "all-MiniLM-L6-v2"
    assert stats["backend"] == backend and stats["chunks"] == summary["chunks"]


def test_cli_errors_are_one_line_and_nonzero(tmp_path: Path) -> None:
    missing = run_cli("search", "anything", "--index", str(tmp_path / "none"), cwd=tmp_path)
    assert missing.returncode == 1
    assert "ra ingest" in missing.stderr and "Traceback" not in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1
    bad_mode = run_cli("search", "x", "--mode", "fuzzy", "--index", str(tmp_path), cwd=tmp_path)
    assert bad_mode.returncode == 2 and "hybrid" in bad_mode.stderr
    nothing = run_cli("ingest", str(tmp_path / "no-such-dir"), "--index", str(tmp_path / "i"), cwd=tmp_path)
    assert nothing.returncode == 1 and "Traceback" not in nothing.stderr


def test_index_refuses_the_other_backend(tmp_path: Path, backend: str) -> None:
    corpus = make_corpus(tmp_path / "docs")
    settings = settings_for(tmp_path / "idx", backend)
    ingest_paths([corpus], settings.index.dir, index_config(settings))
    other = settings_for(tmp_path / "idx", "milvus" if backend == "local" else "local")
    with pytest.raises(IndexIncompatible, match=f"stored in the '{backend}' backend"):
        open_index(other)
    with pytest.raises(IndexIncompatible, match="RA_INDEX__BACKEND"):
        ingest_paths([corpus], other.index.dir, index_config(other))


def test_unreachable_milvus_names_the_uri_and_loses_nothing(tmp_path: Path) -> None:
    corpus = make_corpus(tmp_path / "docs")
    idx = tmp_path / "idx"
    env = backend_env("milvus", tmp_path)
    assert run_cli("ingest", str(corpus), "--index", str(idx), cwd=tmp_path, env=env).returncode == 0
    manifest = (idx / "manifest.json").read_text()
    (corpus / "new.md").write_text("# New\n\nA file that must not be half-written anywhere.\n")
    down = {**env, "RA_INDEX__MILVUS__URI": "http://127.0.0.1:9", "RA_INDEX__MILVUS__TIMEOUT_S": "2"}
    for args in (("ingest", str(corpus)), ("search", "Alpaca")):
        result = run_cli(*args, "--index", str(idx), cwd=tmp_path, env=down)
        assert result.returncode == 1 and "Traceback" not in result.stderr
        assert "http://127.0.0.1:9" in result.stderr and "start" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert (idx / "manifest.json").read_text() == manifest and not list(idx.glob(".tmp-*"))
    found = run_cli("search", "Alpaca 52K", "--index", str(idx), "--json", cwd=tmp_path, env=env)
    assert json.loads(found.stdout)[0]["source"].endswith("alpaca.txt")
    bad = run_cli(
        "search", "x", "--index", str(idx), cwd=tmp_path, env={**env, "RA_INDEX__MILVUS__URI": "x.txt"}
    )
    assert bad.returncode == 1 and "RA_INDEX__MILVUS__URI" in bad.stderr


def test_milvus_ingest_that_fails_midway_is_redone_by_the_next_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Milvus writes are not one transaction: a crash between files leaves the manifest on the last commit
    and the next ingest finishes the job (replace and delete are idempotent)."""
    from assistant.cli.index_cmds import verify
    from index.backends.milvus import MilvusBackend

    corpus = make_corpus(tmp_path / "docs")
    settings = settings_for(tmp_path / "idx", "milvus")
    first = ingest_paths([corpus], settings.index.dir, index_config(settings))
    before = read_manifest(settings.index.dir)
    for name in ("alpaca.txt", "glide.md"):
        (corpus / name).write_text(f"{name}\n\nRewritten {name} about quokkas and their habits.\n")
    real = MilvusBackend.replace_documents

    def crash_after_first_file(self: MilvusBackend, docs: list) -> None:
        assert len(docs) == 2  # both changed files go in one batch
        real(self, docs[:1])
        raise KeyboardInterrupt  # what a kill looks like from here: nothing after this line runs

    monkeypatch.setattr(MilvusBackend, "replace_documents", crash_after_first_file)
    with pytest.raises(KeyboardInterrupt):
        ingest_paths([corpus], settings.index.dir, index_config(settings))
    monkeypatch.setattr(MilvusBackend, "replace_documents", real)
    assert read_manifest(settings.index.dir).generation == before.generation
    assert not list(settings.index.dir.glob(".tmp-*"))
    assert open_index(settings).search("Matryoshka", k=1, mode="bm25")[0].chunk.title == "Matryoshka"
    for name, value in backend_env("milvus", tmp_path).items():  # in-process: milvus-lite is one process's
        monkeypatch.setenv(name, value)
    # the file written before the crash: its committed version is gone, its new one is not committed yet
    with pytest.raises(
        IndexDamaged,
        match=r"does not match the manifest.*has 0 chunks in Milvus, the manifest says 1 \(and 1 more\)",
    ):
        verify(index=settings.index.dir, as_json=True)

    redo = ingest_paths([corpus], settings.index.dir, index_config(settings))
    assert sorted(Path(p).name for p in redo.updated) == ["alpaca.txt", "glide.md"]
    index = open_index(settings)
    assert len(index) == first.chunks_total
    hits = index.search("quokkas habits", k=3, mode="bm25")
    assert sorted(Path(h.chunk.source).name for h in hits) == ["alpaca.txt", "glide.md"]
    capsys.readouterr()
    verify(index=settings.index.dir, as_json=True)
    assert json.loads(capsys.readouterr().out)["milvus_chunks_checked"] == first.chunks_total


@pytest.mark.parametrize("n_docs", [1, 2, 3])
def test_an_exact_term_is_found_first_in_a_small_library(tmp_path: Path, backend: str, n_docs: int) -> None:
    """With rank-bm25's idf, log((N-n+.5)/(n+.5)) is 0 or negative for a term in half the documents or
    more: `ra search zebra --mode bm25` said "no matching passages" in a 1- or 2-document library."""
    docs = tmp_path / "docs"
    docs.mkdir()
    texts = {
        "zoo.txt": "The zebra grazes beside the river every morning.\n",
        "farm.txt": "The horse grazes beside the barn every evening.\n",
        "field.txt": "The cattle graze beside the fence every afternoon.\n",
    }
    for name in list(texts)[:n_docs]:
        (docs / name).write_text(texts[name], encoding="utf-8")
    idx, env = tmp_path / "idx", backend_env(backend, tmp_path)
    assert run_cli("ingest", str(docs), "--index", str(idx), cwd=tmp_path, env=env).returncode == 0
    for mode in ("bm25", "hybrid"):
        found = run_cli(
            "search", "zebra", "--mode", mode, "--index", str(idx), "--json", cwd=tmp_path, env=env
        )
        assert found.returncode == 0, found.stderr
        hits = [Path(h["source"]).name for h in json.loads(found.stdout)]
        assert hits[0] == "zoo.txt", (mode, hits)
        if mode == "bm25":
            assert hits == ["zoo.txt"]  # the only passage holding the term


def test_an_index_with_the_old_bm25_weights_is_refused_then_rebuilt_by_ingest(tmp_path: Path) -> None:
    docs = make_corpus(tmp_path / "docs")
    idx = tmp_path / "idx"
    assert run_cli("ingest", str(docs), "--index", str(idx), cwd=tmp_path).returncode == 0
    manifest = json.loads((idx / "manifest.json").read_text())
    del manifest["build"]["retrieval.bm25.scoring"]  # as written before the Lucene idf
    (idx / "manifest.json").write_text(json.dumps(manifest))

    refused = run_cli("search", "Alpaca", "--index", str(idx), cwd=tmp_path)
    assert refused.returncode == 1 and refused.stdout == ""
    assert "retrieval.bm25.scoring" in refused.stderr and f"ra ingest PATH --index {idx}" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    assert run_cli("ingest", str(docs), "--index", str(idx), cwd=tmp_path).returncode == 0
    found = run_cli("search", "Alpaca", "--mode", "bm25", "--index", str(idx), "--json", cwd=tmp_path)
    assert found.returncode == 0, found.stderr
    assert Path(json.loads(found.stdout)[0]["source"]).name == "alpaca.txt"


def test_a_milvus_index_analysed_by_milvus_itself_is_refused_in_one_line_until_rebuilt(
    tmp_path: Path,
) -> None:
    """Before, Milvus tokenised the raw text with its own analyser (no stemming or stopwords on milvus-lite):
    such a collection cannot rank like `local`, and its text cannot be re-analysed in place."""
    docs = make_corpus(tmp_path / "docs")
    idx, env = tmp_path / "idx", backend_env("milvus", tmp_path)
    assert run_cli("ingest", str(docs), "--index", str(idx), cwd=tmp_path, env=env).returncode == 0
    manifest = json.loads((idx / "manifest.json").read_text())
    build = manifest["build"]
    for key in ("analyser", "scoring", "stem"):
        del build[f"retrieval.bm25.{key}"]
    del build["retrieval.dense.hnsw_m"], build["retrieval.dense.hnsw_ef_construction"]
    build["retrieval.bm25.tokeniser"] = "milvus-standard-lowercase-stop_english-stemmer_english/1"
    (idx / "manifest.json").write_text(json.dumps(manifest))

    for command in (("search", "Alpaca"), ("ingest", str(docs))):
        refused = run_cli(*command, "--index", str(idx), cwd=tmp_path, env=env)
        assert refused.returncode == 1 and refused.stdout == "", command
        assert "retrieval.bm25." in refused.stderr and "--rebuild" in refused.stderr, refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    rebuilt = run_cli("ingest", str(docs), "--rebuild", "--index", str(idx), cwd=tmp_path, env=env)
    assert rebuilt.returncode == 0, rebuilt.stderr
    found = run_cli(
        "search", "alpacas", "--mode", "bm25", "--index", str(idx), "--json", cwd=tmp_path, env=env
    )
    assert found.returncode == 0, found.stderr
    assert Path(json.loads(found.stdout)[0]["source"]).name == "alpaca.txt"  # "alpacas" stems to "alpaca"
