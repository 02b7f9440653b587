"""Ingest -> store -> search end to end on small corpora made here (real embeddings, FAISS and BM25)."""

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
from index.errors import IndexIncompatible, IndexNotFound
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


def settings_for(index_dir: Path, **retrieval: object):
    return load_settings({"index": {"dir": index_dir}, "retrieval": retrieval})


def test_ingest_reports_skips_and_search_finds_facts(tmp_path: Path) -> None:
    corpus = make_corpus(tmp_path / "docs")
    settings = settings_for(tmp_path / "idx")
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
    html_hit = index.search("text-embedding-3-large Matryoshka", k=1, mode="bm25")[0].chunk
    assert "<" not in html_hit.text and "var x" not in html_hit.text


def test_reingest_is_incremental_and_prune_removes(tmp_path: Path) -> None:
    corpus = make_corpus(tmp_path / "docs")
    settings = settings_for(tmp_path / "idx")
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

    (corpus / "glide.md").unlink()
    kept = ingest_paths([corpus], settings.index.dir, cfg)
    assert [Path(p).name for p in kept.missing] == ["glide.md"] and not kept.committed
    pruned = ingest_paths([corpus], settings.index.dir, cfg, prune=True)
    assert [Path(p).name for p in pruned.removed] == ["glide.md"]
    hits = open_index(settings).search("classifier-free guidance photorealism", k=5, mode="bm25")
    assert all(Path(h.chunk.source).name != "glide.md" for h in hits)


def test_other_embedding_model_is_refused(tmp_path: Path) -> None:
    corpus = make_corpus(tmp_path / "docs")
    settings = settings_for(tmp_path / "idx")
    ingest_paths([corpus], settings.index.dir, index_config(settings))
    other = load_settings({"index": {"dir": settings.index.dir, "embedding": {"model": str(tmp_path)}}})
    with pytest.raises(IndexIncompatible, match=r"index\.embedding\.model"):
        open_index(other)
    with pytest.raises(IndexIncompatible):
        ingest_paths([corpus], other.index.dir, index_config(other))


def test_missing_index_says_how_to_build(tmp_path: Path) -> None:
    with pytest.raises(IndexNotFound, match="ra ingest"):
        open_index(settings_for(tmp_path / "nothing"))


def test_langchain_retriever_returns_documents_with_provenance(tmp_path: Path) -> None:
    from langchain_core.documents import Document

    from index.langchain_retriever import HybridRetriever

    corpus = make_corpus(tmp_path / "docs")
    settings = settings_for(tmp_path / "idx")
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


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "assistant", *args], cwd=cwd, capture_output=True, text=True, timeout=600
    )


def test_cli_ingest_search_stats_json(tmp_path: Path) -> None:
    corpus = make_corpus(tmp_path / "docs")
    idx = tmp_path / "idx"
    ingested = run_cli("ingest", str(corpus), "--index", str(idx), "--json", cwd=tmp_path)
    assert ingested.returncode == 0, ingested.stderr
    summary = json.loads(ingested.stdout)
    assert summary["files_added"] == 3 and len(summary["skipped"]) == 4

    found = run_cli(
        "search", "Alpaca 52K demonstrations", "--index", str(idx), "-k", "2", "--json", cwd=tmp_path
    )
    assert found.returncode == 0, found.stderr
    hits = json.loads(found.stdout)
    assert len(hits) == 2
    assert set(hits[0]) == {
        "chunk_id", "score", "text", "source", "page", "start", "end", "line_start", "line_end", "section", "document"
    }  # fmt: skip
    assert hits[0]["document"]["title"] == "Stanford Alpaca"
    assert hits[0]["source"].endswith("alpaca.txt")

    stats = json.loads(run_cli("index", "stats", "--index", str(idx), "--json", cwd=tmp_path).stdout)
    assert stats["files"] == 3 and stats["embedding_model"] == "all-MiniLM-L6-v2"


def test_cli_errors_are_one_line_and_nonzero(tmp_path: Path) -> None:
    missing = run_cli("search", "anything", "--index", str(tmp_path / "none"), cwd=tmp_path)
    assert missing.returncode == 1
    assert "ra ingest" in missing.stderr and "Traceback" not in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1
    bad_mode = run_cli("search", "x", "--mode", "fuzzy", "--index", str(tmp_path), cwd=tmp_path)
    assert bad_mode.returncode == 2 and "hybrid" in bad_mode.stderr
    nothing = run_cli("ingest", str(tmp_path / "no-such-dir"), "--index", str(tmp_path / "i"), cwd=tmp_path)
    assert nothing.returncode == 1 and "Traceback" not in nothing.stderr
