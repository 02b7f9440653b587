"""Integration over the real seed corpus and PDFs in ../shared: known facts come back with exact provenance,
on both backends (local files, and a real milvus-lite engine)."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.index_access import open_index
from assistant.settings import Settings, load_settings

pytestmark = [pytest.mark.slow, pytest.mark.integration]


@pytest.fixture(scope="module")
def milvus_seed(shared: Path, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The seed corpus and the PDFs ingested once into a milvus-lite file."""
    from assistant.index_access import index_config
    from index.ingest import ingest_paths

    root = tmp_path_factory.mktemp("seed-milvus")
    settings = load_settings(
        {"index": {"dir": root / "index", "backend": "milvus", "milvus": {"uri": str(root / "m.db")}}}
    )
    ingest_paths([shared / "corpus", shared / "pdfs"], settings.index.dir, index_config(settings))
    return settings


@pytest.fixture(params=["local", "milvus"])
def seed(request: pytest.FixtureRequest) -> Settings:
    if request.param == "local":
        return load_settings({"index": {"dir": request.getfixturevalue("seed_index")}})
    return request.getfixturevalue("milvus_seed")


def norm(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("mode", ["hybrid", "bm25"])
def test_known_fact_returns_its_passage(seed: Settings, mode: str) -> None:
    index = open_index(seed)
    quote = "They find that the latter is preferred by human evaluators for both photorealism and caption similarity"
    hits = index.search(
        "GLIDE classifier-free guidance preferred by human evaluators photorealism", k=5, mode=mode
    )
    match = [h for h in hits if norm(quote) in norm(h.chunk.text)]
    assert match, [h.chunk.text[:80] for h in hits]
    chunk = match[0].chunk
    assert Path(chunk.source).name == "001_3c21371b35a751cd.txt" and chunk.page is None
    source_text = Path(chunk.source).read_text(encoding="utf-8")
    assert source_text[chunk.start : chunk.end] == chunk.text
    assert source_text.count("\n", 0, chunk.start) + 1 == chunk.line_start


@pytest.mark.parametrize(
    ("query", "phrase", "page"),
    [
        (
            "Ablation study results on AutoScholarQuery test set and RealScholarQuery",
            "Table 8: Ablation study",
            10,
        ),
        ("We sequentially trained the Selector and Crawler", "We sequentially trained the Selector", 7),
    ],
)
def test_pdf_hits_carry_the_right_page(seed: Settings, query: str, phrase: str, page: int) -> None:
    index = open_index(seed)
    hits = index.search(query, k=3, mode="bm25")
    top = next(h.chunk for h in hits if phrase in norm(h.chunk.text))
    assert Path(top.source).name == "paperqa_pasa.pdf"
    assert top.page == page
    assert index.document_text(top.source)[top.start : top.end] == top.text


def test_stats_cover_corpus_and_pdfs(seed: Settings) -> None:
    stats = open_index(seed).stats()
    assert stats["files"] == 7 and stats["files_by_kind"] == {"txt": 5, "pdf": 2}
    assert stats["pages"] >= 5 + 15 + 41 - 5  # blank PDF pages are dropped
    assert stats["dense_index"] == ("flat" if seed.index.backend == "local" else "milvus")


def test_backends_hold_the_same_chunks(seed_index: Path, milvus_seed: Settings) -> None:
    local = open_index(load_settings({"index": {"dir": seed_index}}))
    milvus = open_index(milvus_seed)
    assert len(local) == len(milvus) > 1000
    by_id = {c.chunk_id: c for c in milvus.all_chunks()}
    assert all(by_id[c.chunk_id] == c for c in local.all_chunks())
