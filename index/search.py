"""Query side of the index: open a committed generation and search it (hybrid, dense or BM25).

The chunks live in a backend (index/backends/: `local` files or `milvus`); this class adds what every
backend shares: the manifest and its build-spec guard, the documents' records, query embedding (the model,
seconds to import, loads only for dense or hybrid queries) and turning ranked refs into hits.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Any

from index.backends.base import SKIPPED_ROLES, Files, SearchBackend
from index.build_spec import CHUNKING, check_search_spec, search_spec
from index.config import (
    BackendName,
    EmbeddingConfig,
    MilvusConfig,
    RetrievalConfig,
    RetrievalMode,
)
from index.documents import DocumentMeta
from index.errors import UserFacingError
from index.store import Manifest, check_generation, require_manifest
from index.types import Chunk, SearchHit


def open_backend(
    generation_dir: Path,
    manifest: Manifest,
    backend: BackendName,
    milvus: MilvusConfig | None,
    skip_roles: frozenset[str],
    documents: Mapping[str, DocumentMeta],
    retrieval: RetrievalConfig,
) -> SearchBackend:
    """The backend the settings name (the build spec check has made sure the index was built with it)."""
    if backend == "milvus":
        from index.backends.milvus import MilvusBackend

        store = MilvusBackend(
            milvus or MilvusConfig(), skip_roles=skip_roles, documents=documents, retrieval=retrieval
        )
        store.require(manifest.dim)
        return store
    from index.backends.local import LocalBackend

    return LocalBackend(generation_dir, skip_roles, documents)


class HybridIndex:
    """A read-only view of one generation of an index directory; safe to share between threads."""

    def __init__(
        self,
        index_dir: Path,
        retrieval: RetrievalConfig,
        embedding: EmbeddingConfig,
        cache_dir: Path,
        *,
        backend: BackendName = "local",
        milvus: MilvusConfig | None = None,
    ) -> None:
        self.index_dir = index_dir
        self.retrieval = retrieval
        self.embedding_config = embedding
        self.cache_dir = cache_dir
        self.manifest = require_manifest(index_dir)
        check_search_spec(self.manifest.build, search_spec(embedding, retrieval, backend, milvus), index_dir)
        check_generation(index_dir, self.manifest)  # sizes only: a stat per file
        self.generation_dir = index_dir / self.manifest.generation
        skip = frozenset() if retrieval.include_references else SKIPPED_ROLES
        self.backend = open_backend(
            self.generation_dir, self.manifest, backend, milvus, skip, self.documents, retrieval
        )

    @cached_property
    def embedder(self) -> Any:
        from index.embeddings import load_embedder

        return load_embedder(self.embedding_config, self.cache_dir)

    def __len__(self) -> int:
        return self.backend.count()

    # -- ranking ------------------------------------------------------------------------------------
    def rank(
        self, query: str, k: int, mode: RetrievalMode | None = None, files: Files = None
    ) -> list[tuple[Any, float]]:
        """(chunk ref, score) pairs, best first; hybrid fuses the two rankings as configured. With `files`,
        only their chunks are ranked."""
        mode = mode or self.retrieval.mode
        if mode == "bm25":
            return self.backend.sparse_search(query, k, files)
        vector = self.embedder.embed_query(query)
        if mode == "dense":
            return self.backend.dense_search(vector, k, files)
        return self.backend.hybrid_search(query, vector, k, self.retrieval.fusion, files)

    def search(
        self,
        query: str,
        k: int | None = None,
        mode: RetrievalMode | None = None,
        collection: str | None = None,
    ) -> list[SearchHit]:
        """The best `k` passages; with a collection (by default the settings' `retrieval.collection`),
        the best `k` of the documents in it."""
        k = k or self.retrieval.k
        name = self.retrieval.collection if collection is None else collection
        ranked = self.rank(query, k, mode, self.collection_files(name) if name else None)
        chunks = self.backend.fetch([ref for ref, _ in ranked])
        return [
            SearchHit(chunk=chunks[ref], score=score, rank=i + 1)
            for i, (ref, score) in enumerate(ranked)
            if ref in chunks
        ]

    # -- chunk access -------------------------------------------------------------------------------
    @cached_property
    def documents(self) -> dict[str, DocumentMeta]:
        """Each indexed file's metadata (by manifest key), as the manifest stores it."""
        return {key: DocumentMeta.from_json(e.document) for key, e in self.manifest.files.items()}

    def collections(self) -> list[str]:
        """The names of the collections the indexed documents are in (from a Zotero import), sorted."""
        return sorted({c for meta in self.documents.values() for c in meta.collections}, key=str.casefold)

    def collection_files(self, name: str) -> frozenset[str]:
        """The manifest keys of the documents in collection `name` (case does not matter); an unknown
        name is a one-line error listing the known ones."""
        wanted = name.casefold()
        files = frozenset(
            key for key, meta in self.documents.items() if wanted in {c.casefold() for c in meta.collections}
        )
        if not files:
            known = self.collections()
            have = f"it has {', '.join(known)}" if known else "it has none (`ra ingest --zotero` brings them)"
            raise UserFacingError(f"no collection '{name}' in the index at {self.index_dir}: {have}")
        return files

    def document(self, source: str) -> DocumentMeta | None:
        """The metadata of a file by manifest key or chunk source (they are the same for ingested files)."""
        return self.documents.get(source)

    def all_chunks(self) -> list[Chunk]:
        """Every chunk (local: in row order, the order of the dense and BM25 rows); for benchmarks."""
        return self.backend.all_chunks()

    def get_chunk(self, chunk_id: str) -> Chunk | None:
        return self.backend.get_chunk(chunk_id)

    def neighbours(self, chunk_id: str, before: int = 1, after: int = 1) -> list[Chunk]:
        """The chunk with up to `before`/`after` adjacent chunks of the same file, in document order."""
        return self.backend.neighbours(chunk_id, before, after)

    def document_text(self, source: str) -> str | None:
        """The full extracted text of an indexed file (by manifest key or the source path stored in chunks)."""
        return self.backend.document_text(source)

    def stats(self) -> dict[str, Any]:
        m = self.manifest
        by_kind: dict[str, int] = {}
        for entry in m.files.values():
            by_kind[entry.kind] = by_kind.get(entry.kind, 0) + 1
        return {
            "index": str(self.index_dir),
            "generation": m.generation,
            "files": len(m.files),
            "files_by_kind": by_kind,
            "pages": sum(e.pages for e in m.files.values()),
            "chunks": len(self),
            "embedding_model": m.embedding_model,
            "embedding_dim": m.dim,
            "dense_index": m.dense_kind,
            "chunking": {k.rsplit(".", 1)[1]: v for k, v in m.build.items() if k.startswith(CHUNKING)},
            **self.backend.stats(),
            "updated": m.updated,
        }
