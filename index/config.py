"""Configuration of the index layer as plain pydantic models.

`assistant.settings.Settings` nests these, so one settings object drives everything while `index`
stays independent of `assistant`.
"""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import BaseModel, Field

PACKAGED_MINILM = "all-MiniLM-L6-v2"
# arXiv's own cap on a submission: a paper larger than this is almost certainly not one.
DEFAULT_MAX_FILE_MB = 50
# A second ingest waits this long for the writer lock (a PDF batch takes minutes), then is refused.
DEFAULT_LOCK_WAIT_S = 600.0
# Budget to parse one PDF or HTML file (in a worker process): a book takes well under a minute here, a file
# built to be slow is skipped with its reason instead of holding the batch for hours.
DEFAULT_PARSE_TIMEOUT_S = 120.0
DEFAULT_PARSE_MEMORY_MB = 2048

RetrievalMode = Literal["hybrid", "dense", "bm25"]
RETRIEVAL_MODES: tuple[str, ...] = get_args(RetrievalMode)


class ChunkingConfig(BaseModel):
    """Chunk sizes in characters; defaults chosen by the sweep in docs/benchmarks.md."""

    size: int = Field(800, ge=100, description="target chunk length in characters")
    overlap: int = Field(120, ge=0, description="characters of trailing context repeated in the next chunk")
    min_size: int = Field(80, ge=1, description="shorter trailing pieces merge into the previous chunk")


class EmbeddingConfig(BaseModel):
    model: str = Field(
        PACKAGED_MINILM,
        description="sentence-transformers name or path; 'all-MiniLM-L6-v2' resolves to the offline package",
    )
    backend: Literal["auto", "onnx-int8", "torch"] = Field(
        "auto", description="auto: int8 ONNX when it matches torch (cosine >= 0.99), else torch"
    )
    batch_size: int = Field(32, ge=1)
    allow_download: bool = Field(False, description="let sentence-transformers fetch a model from the hub")


class DenseConfig(BaseModel):
    exact_max: int = Field(50_000, description="above this many vectors an approximate index is built")
    approximate: Literal["hnsw", "ivf"] = Field(
        "ivf",
        description="ivf builds in about a minute at 1M vectors; hnsw queries faster but builds far slower",
    )
    hnsw_m: int = 32
    hnsw_ef_search: int = 128
    hnsw_ef_construction: int = 80


class BM25Config(BaseModel):
    k1: float = 0.9
    b: float = 0.4
    stem: bool = True


class FusionConfig(BaseModel):
    """Defaults from the SciFact-train sweep in docs/benchmarks.md (tuned on one half, checked on the other):
    RRF with k=20 beat the customary k=60; dense_weight 0.5 is best for both methods."""

    method: Literal["rrf", "weighted"] = "rrf"
    rrf_k: int = Field(20, ge=1)
    dense_weight: float = Field(0.5, ge=0.0, le=1.0)
    candidates: int = Field(100, description="hits taken from each retriever before fusion")


class RetrievalConfig(BaseModel):
    mode: RetrievalMode = "hybrid"
    k: int = Field(8, ge=1)
    include_references: bool = Field(
        False,
        description="also search reference lists/bibliographies (kept out by default: they match everything)",
    )
    collection: str = Field(
        "", description="search only the documents of this Zotero collection (empty: all documents)"
    )
    dense: DenseConfig = DenseConfig()
    bm25: BM25Config = BM25Config()
    fusion: FusionConfig = FusionConfig()


class MilvusConfig(BaseModel):
    """Where the `milvus` backend keeps an index: a milvus-lite file or a Milvus server, one collection."""

    uri: str = Field(
        ".ra/milvus.db", description="milvus-lite file path, or a server URL such as http://host:19530"
    )
    collection: str = Field("ra_chunks", description="collection of chunks; '<name>_docs' holds full texts")
    token: str | None = Field(None, description="server token ('user:password' or an API key)")
    timeout_s: float = Field(10.0, gt=0, description="how long to wait for the server to answer")


BackendName = Literal["local", "milvus"]
"""Which engine stores and searches the chunks; the manifest always stays in the index directory."""
