"""The `local` backend: one generation directory of FAISS + BM25 + SQLite files (see index/store.py).

Opening is cheap and lazy: the BM25 matrix loads on first use and the FAISS index is memory-mapped. Its
writes are the generation commit in index/ingest.py, which rebuilds BM25 and FAISS as a whole anyway.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from index.backends.base import ChunkRef, Files, Ranked
from index.config import FusionConfig
from index.documents import DocumentMeta
from index.errors import IndexDamaged
from index.fusion import fuse
from index.store import BM25_DIR, CHUNKS_DB, DENSE, open_chunk_db, rebuild_hint
from index.types import Chunk


class LocalBackend:
    """Read-only view of one generation; refs are rows (positions in the dense and BM25 structures)."""

    name = "local"

    def __init__(
        self,
        generation_dir: Path,
        skip_roles: frozenset[str] = frozenset(),
        documents: Mapping[str, DocumentMeta] | None = None,
    ) -> None:
        self.generation_dir = generation_dir
        self.skip_roles = skip_roles
        self.documents = documents or {}
        self._db = open_chunk_db(generation_dir / CHUNKS_DB)
        self._lock = threading.Lock()

    @contextmanager
    def _reading(self) -> Iterator[None]:
        """One query at a time on the shared connection; a page of the chunk store that turns out damaged
        is the one-line "damaged, rebuild" error, not SQLite's traceback."""
        with self._lock:
            try:
                yield
            except sqlite3.DatabaseError as exc:
                raise IndexDamaged(
                    f"index data {self.generation_dir / CHUNKS_DB} is damaged ({exc}): run `ra index verify`, "
                    f"or {rebuild_hint(self.generation_dir.parent)}"
                ) from None

    @cached_property
    def bm25(self) -> Any:
        from index.sparse import BM25Index

        return BM25Index.load(self.generation_dir / BM25_DIR)

    @cached_property
    def dense(self) -> Any:
        from index.dense import DenseIndex

        return DenseIndex.load(self.generation_dir / DENSE)

    @cached_property
    def skipped_rows(self) -> frozenset[int]:
        """Rows of chunks whose section role is skipped (reference lists, by default)."""
        if not self.skip_roles:
            return frozenset()
        marks = ",".join("?" * len(self.skip_roles))
        with self._reading():
            found = self._db.execute(
                f"SELECT row FROM chunks WHERE meta LIKE '%\"role\"%' AND json_extract(meta, '$.role') IN ({marks})",
                sorted(self.skip_roles),
            ).fetchall()
        return frozenset(r[0] for r in found)

    def count(self) -> int:
        return self._count

    @cached_property
    def _count(self) -> int:
        return int(self._query_one("SELECT COUNT(*) FROM chunks")[0])  # a generation never changes

    def dense_search(self, vector: np.ndarray, n: int, files: Files = None) -> Ranked:
        if len(self.dense) == 0:
            return []
        return self._kept(lambda want: self.dense.search(vector, want), n, files)

    def sparse_search(self, query: str, n: int, files: Files = None) -> Ranked:
        return self._kept(lambda want: self.bm25.search_text(query, want), n, files)

    def _kept(self, ranker: Callable[[int], tuple[np.ndarray, np.ndarray]], n: int, files: Files) -> Ranked:
        """The best `n` of a ranker with skipped rows and rows of other files removed (asking for more
        while they crowd it, so a small collection still gets `n` passages when it has them)."""
        skipped = self.skipped_rows
        allowed = self._rows_of(files) if files is not None else None
        if not skipped and allowed is None:
            ids, scores = ranker(n)
            return list(zip(ids.tolist(), scores.tolist(), strict=True))
        total = self.count()
        # the first ask expects the kept rows to be spread evenly among the ranked ones
        want = n + min(len(skipped), 4 * n) if allowed is None else n * total // max(len(allowed), 1) + n
        while True:
            ids, scores = ranker(min(want, total))
            keep = np.fromiter(
                (i not in skipped and (allowed is None or i in allowed) for i in ids.tolist()),
                dtype=bool,
                count=len(ids),
            )
            if keep.sum() >= n or len(ids) < min(want, total) or want >= total:
                return list(zip(ids[keep][:n].tolist(), scores[keep][:n].tolist(), strict=True))
            want *= 4

    def _rows_of(self, files: frozenset[str]) -> frozenset[int]:
        marks = ",".join("?" * len(files))
        with self._lock:
            found = self._db.execute(
                f"SELECT row FROM chunks WHERE file IN ({marks})", sorted(files)
            ).fetchall()
        return frozenset(r[0] for r in found)

    def hybrid_search(
        self, query: str, vector: np.ndarray, n: int, fusion: FusionConfig, files: Files = None
    ) -> Ranked:
        depth = max(fusion.candidates, n)
        dense, sparse = self.dense_search(vector, depth, files), self.sparse_search(query, depth, files)
        return fuse(dense, sparse, fusion)[:n]  # type: ignore[arg-type]

    def fetch(self, refs: Sequence[ChunkRef]) -> dict[ChunkRef, Chunk]:
        if not refs:
            return {}
        marks = ",".join("?" * len(refs))
        with self._reading():
            found = self._db.execute(f"SELECT * FROM chunks WHERE row IN ({marks})", list(refs)).fetchall()
        return {r["row"]: self._chunk(r) for r in found}

    def all_chunks(self) -> list[Chunk]:
        with self._reading():
            rows = self._db.execute("SELECT * FROM chunks ORDER BY row").fetchall()
        return [self._chunk(r) for r in rows]

    def get_chunk(self, chunk_id: str) -> Chunk | None:
        row = self._query_one("SELECT * FROM chunks WHERE chunk_id = ?", (chunk_id,))
        return self._chunk(row) if row else None

    def neighbours(self, chunk_id: str, before: int, after: int) -> list[Chunk]:
        row = self._query_one("SELECT row, file FROM chunks WHERE chunk_id = ?", (chunk_id,))
        if row is None:
            return []
        with self._reading():
            found = self._db.execute(
                "SELECT * FROM chunks WHERE file = ? AND row BETWEEN ? AND ? ORDER BY row",
                (row["file"], row["row"] - before, row["row"] + after),
            ).fetchall()
        return [self._chunk(r) for r in found]

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

    def _chunk(self, row: Any) -> Chunk:
        from index.ingest import row_to_chunk

        chunk = row_to_chunk(row)
        chunk.document = self.documents.get(row["file"])
        return chunk

    def _query_one(self, sql: str, params: tuple = ()) -> Any:
        with self._reading():
            return self._db.execute(sql, params).fetchone()
