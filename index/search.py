"""Query side of the index: open a committed generation and search it (hybrid, dense or BM25).

Opening is cheap and lazy: the BM25 matrix loads on first use, the FAISS index is memory-mapped, and the
embedding model (seconds to import) is only loaded for dense or hybrid queries.
"""

from __future__ import annotations

import threading
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from index.build_spec import CHUNKING, check_search_spec, search_spec
from index.config import EmbeddingConfig, RetrievalConfig, RetrievalMode
from index.documents import DocumentMeta
from index.fusion import reciprocal_rank_fusion, weighted_score_fusion
from index.ingest import row_to_chunk
from index.store import (
    BM25_DIR,
    CHUNKS_DB,
    DENSE,
    check_generation,
    open_chunk_db,
    require_manifest,
)
from index.types import Chunk, SearchHit


class HybridIndex:
    """A read-only view of one generation of an index directory; safe to share between threads."""

    def __init__(
        self, index_dir: Path, retrieval: RetrievalConfig, embedding: EmbeddingConfig, cache_dir: Path
    ) -> None:
        self.index_dir = index_dir
        self.retrieval = retrieval
        self.embedding_config = embedding
        self.cache_dir = cache_dir
        self.manifest = require_manifest(index_dir)
        check_search_spec(self.manifest.build, search_spec(embedding, retrieval), index_dir)
        check_generation(index_dir, self.manifest)  # sizes only: a stat per file
        self.generation_dir = index_dir / self.manifest.generation
        self._db = open_chunk_db(self.generation_dir / CHUNKS_DB)
        self._lock = threading.Lock()

    # -- lazily loaded structures -------------------------------------------------------------------
    @cached_property
    def bm25(self) -> Any:
        from index.sparse import BM25Index

        return BM25Index.load(self.generation_dir / BM25_DIR)

    @cached_property
    def dense(self) -> Any:
        from index.dense import DenseIndex

        return DenseIndex.load(self.generation_dir / DENSE)

    @cached_property
    def embedder(self) -> Any:
        from index.embeddings import load_embedder

        return load_embedder(self.embedding_config, self.cache_dir)

    def __len__(self) -> int:
        return int(self._query_one("SELECT COUNT(*) FROM chunks")[0])

    # -- ranking ------------------------------------------------------------------------------------
    def rank_bm25(self, query: str, n: int) -> tuple[np.ndarray, np.ndarray]:
        return self.bm25.search_text(query, n)

    def rank_dense(self, query: str, n: int) -> tuple[np.ndarray, np.ndarray]:
        if len(self.dense) == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        return self.dense.search(self.embedder.embed_query(query), n)

    @cached_property
    def excluded_rows(self) -> frozenset[int]:
        """Rows kept out of search: reference lists, unless retrieval.include_references."""
        if self.retrieval.include_references:
            return frozenset()
        with self._lock:
            found = self._db.execute(
                "SELECT row FROM chunks WHERE meta LIKE '%\"role\"%' AND json_extract(meta, '$.role') = 'references'"
            ).fetchall()
        return frozenset(r[0] for r in found)

    def _kept(self, ranker: Any, query: str, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The best `n` of a ranker with excluded rows removed (asking for more while they crowd it)."""
        excluded = self.excluded_rows
        if not excluded:
            return ranker(query, n)
        want, total = n + min(len(excluded), 4 * n), len(self)
        while True:
            ids, scores = ranker(query, want)
            keep = np.fromiter((i not in excluded for i in ids.tolist()), dtype=bool, count=len(ids))
            if keep.sum() >= n or len(ids) < want or want >= total:
                return ids[keep][:n], scores[keep][:n]
            want *= 4

    def rank(self, query: str, k: int, mode: RetrievalMode | None = None) -> list[tuple[int, float]]:
        """(row, score) pairs, best first; hybrid fuses the two rankings as configured."""
        mode = mode or self.retrieval.mode
        if mode == "bm25":
            ids, scores = self._kept(self.rank_bm25, query, k)
            return list(zip(ids.tolist(), scores.tolist(), strict=True))
        if mode == "dense":
            ids, scores = self._kept(self.rank_dense, query, k)
            return list(zip(ids.tolist(), scores.tolist(), strict=True))
        fusion = self.retrieval.fusion
        n = max(fusion.candidates, k)
        d_ids, d_scores = self._kept(self.rank_dense, query, n)
        b_ids, b_scores = self._kept(self.rank_bm25, query, n)
        if fusion.method == "weighted":
            fused = weighted_score_fusion(
                [(d_ids.tolist(), d_scores.tolist()), (b_ids.tolist(), b_scores.tolist())],
                [fusion.dense_weight, 1.0 - fusion.dense_weight],
            )
        else:
            fused = reciprocal_rank_fusion(
                [d_ids.tolist(), b_ids.tolist()],
                k=fusion.rrf_k,
                weights=[fusion.dense_weight, 1.0 - fusion.dense_weight],
            )
        return fused[:k]

    def search(self, query: str, k: int | None = None, mode: RetrievalMode | None = None) -> list[SearchHit]:
        k = k or self.retrieval.k
        ranked = self.rank(query, k, mode)
        chunks = self.chunks_by_row([row for row, _ in ranked])
        return [
            SearchHit(chunk=chunks[row], score=score, rank=i + 1) for i, (row, score) in enumerate(ranked)
        ]

    # -- chunk access -------------------------------------------------------------------------------
    @cached_property
    def documents(self) -> dict[str, DocumentMeta]:
        """Each indexed file's metadata (by manifest key), as the manifest stores it."""
        return {key: DocumentMeta.from_json(e.document) for key, e in self.manifest.files.items()}

    def document(self, source: str) -> DocumentMeta | None:
        """The metadata of a file by manifest key or chunk source (they are the same for ingested files)."""
        return self.documents.get(source)

    def _chunk(self, row: Any) -> Chunk:
        chunk = row_to_chunk(row)
        chunk.document = self.documents.get(row["file"])
        return chunk

    def chunks_by_row(self, rows: list[int]) -> dict[int, Chunk]:
        if not rows:
            return {}
        marks = ",".join("?" * len(rows))
        with self._lock:
            found = self._db.execute(f"SELECT * FROM chunks WHERE row IN ({marks})", rows).fetchall()
        return {r["row"]: self._chunk(r) for r in found}

    def all_chunks(self) -> list[Chunk]:
        """Every chunk in row order (the order of the dense and BM25 rows); for benchmarks and exports."""
        with self._lock:
            rows = self._db.execute("SELECT * FROM chunks ORDER BY row").fetchall()
        return [self._chunk(r) for r in rows]

    def get_chunk(self, chunk_id: str) -> Chunk | None:
        row = self._query_one("SELECT * FROM chunks WHERE chunk_id = ?", (chunk_id,))
        return self._chunk(row) if row else None

    def neighbours(self, chunk_id: str, before: int = 1, after: int = 1) -> list[Chunk]:
        """The chunk with up to `before`/`after` adjacent chunks of the same file, in document order."""
        row = self._query_one("SELECT row, file FROM chunks WHERE chunk_id = ?", (chunk_id,))
        if row is None:
            return []
        with self._lock:
            found = self._db.execute(
                "SELECT * FROM chunks WHERE file = ? AND row BETWEEN ? AND ? ORDER BY row",
                (row["file"], row["row"] - before, row["row"] + after),
            ).fetchall()
        return [self._chunk(r) for r in found]

    def document_text(self, source: str) -> str | None:
        """The full extracted text of an indexed file (by manifest key or the source path stored in chunks)."""
        row = self._query_one(
            "SELECT d.text FROM documents d WHERE d.file = ? OR d.file IN "
            "(SELECT file FROM chunks WHERE source = ? LIMIT 1)",
            (source, source),
        )
        return row[0] if row else None

    def stats(self) -> dict[str, Any]:
        m = self.manifest
        by_kind: dict[str, int] = {}
        for entry in m.files.values():
            by_kind[entry.kind] = by_kind.get(entry.kind, 0) + 1
        size = sum(p.stat().st_size for p in self.generation_dir.rglob("*") if p.is_file())
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
            "size_bytes": size,
            "updated": m.updated,
        }

    def _query_one(self, sql: str, params: tuple = ()) -> Any:
        with self._lock:
            return self._db.execute(sql, params).fetchone()
