"""The `local` backend: one generation directory of FAISS + BM25 + SQLite files (see index/store.py).

Opening is cheap and lazy: the BM25 matrix loads on first use and the FAISS index is memory-mapped. Its
writes are the generation commit in index/ingest.py, which rebuilds BM25 and FAISS as a whole anyway.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from index.backends.base import ChunkRef, Ranked
from index.config import FusionConfig
from index.fusion import fuse
from index.store import BM25_DIR, CHUNKS_DB, DENSE, open_chunk_db
from index.types import Chunk


class LocalBackend:
    """Read-only view of one generation; refs are rows (positions in the dense and BM25 structures)."""

    name = "local"

    def __init__(self, generation_dir: Path) -> None:
        self.generation_dir = generation_dir
        self._db = open_chunk_db(generation_dir / CHUNKS_DB)
        self._lock = threading.Lock()

    @cached_property
    def bm25(self) -> Any:
        from index.sparse import BM25Index

        return BM25Index.load(self.generation_dir / BM25_DIR)

    @cached_property
    def dense(self) -> Any:
        from index.dense import DenseIndex

        return DenseIndex.load(self.generation_dir / DENSE)

    def count(self) -> int:
        return int(self._query_one("SELECT COUNT(*) FROM chunks")[0])

    def dense_search(self, vector: np.ndarray, n: int) -> Ranked:
        if len(self.dense) == 0:
            return []
        ids, scores = self.dense.search(vector, n)
        return list(zip(ids.tolist(), scores.tolist(), strict=True))

    def sparse_search(self, query: str, n: int) -> Ranked:
        ids, scores = self.bm25.search_text(query, n)
        return list(zip(ids.tolist(), scores.tolist(), strict=True))

    def hybrid_search(self, query: str, vector: np.ndarray, n: int, fusion: FusionConfig) -> Ranked:
        depth = max(fusion.candidates, n)
        return fuse(self.dense_search(vector, depth), self.sparse_search(query, depth), fusion)[:n]  # type: ignore[arg-type]

    def fetch(self, refs: Sequence[ChunkRef]) -> dict[ChunkRef, Chunk]:
        from index.ingest import row_to_chunk

        if not refs:
            return {}
        marks = ",".join("?" * len(refs))
        with self._lock:
            found = self._db.execute(f"SELECT * FROM chunks WHERE row IN ({marks})", list(refs)).fetchall()
        return {r["row"]: row_to_chunk(r) for r in found}

    def all_chunks(self) -> list[Chunk]:
        from index.ingest import row_to_chunk

        with self._lock:
            rows = self._db.execute("SELECT * FROM chunks ORDER BY row").fetchall()
        return [row_to_chunk(r) for r in rows]

    def get_chunk(self, chunk_id: str) -> Chunk | None:
        from index.ingest import row_to_chunk

        row = self._query_one("SELECT * FROM chunks WHERE chunk_id = ?", (chunk_id,))
        return row_to_chunk(row) if row else None

    def neighbours(self, chunk_id: str, before: int, after: int) -> list[Chunk]:
        from index.ingest import row_to_chunk

        row = self._query_one("SELECT row, file FROM chunks WHERE chunk_id = ?", (chunk_id,))
        if row is None:
            return []
        with self._lock:
            found = self._db.execute(
                "SELECT * FROM chunks WHERE file = ? AND row BETWEEN ? AND ? ORDER BY row",
                (row["file"], row["row"] - before, row["row"] + after),
            ).fetchall()
        return [row_to_chunk(r) for r in found]

    def document_text(self, source: str) -> str | None:
        row = self._query_one(
            "SELECT d.text FROM documents d WHERE d.file = ? OR d.file IN "
            "(SELECT file FROM chunks WHERE source = ? LIMIT 1)",
            (source, source),
        )
        return row[0] if row else None

    def stats(self) -> dict[str, Any]:
        size = sum(p.stat().st_size for p in self.generation_dir.rglob("*") if p.is_file())
        return {"backend": self.name, "size_bytes": size}

    def _query_one(self, sql: str, params: tuple = ()) -> Any:
        with self._lock:
            return self._db.execute(sql, params).fetchone()
