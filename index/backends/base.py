"""The contract between `HybridIndex` and the engine under it.

Everything above (manifest, incremental ingest, prune, the embedding-model guard, citations, the agent, the
UI, evaluation) talks to `HybridIndex`, which talks to one `SearchBackend`; the write side of a backend is
`DocumentWriter`. A backend names its chunks by an opaque `ChunkRef` (a row for `local`, the chunk id for
`milvus`) that only it interprets.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from index.config import BackendName, FusionConfig
from index.errors import IndexIncompatible
from index.types import Chunk

ChunkRef = int | str
Ranked = list[tuple[ChunkRef, float]]
"""(chunk ref, score) pairs, best first."""

BACKEND_FILE = "backend.json"
"""In a generation directory of a non-local index: which backend and where (absent means `local`)."""


def recorded_backend(generation_dir: Path) -> dict[str, Any]:
    """What a generation says about where its chunks live ({"name": "local"} when it says nothing)."""
    path = generation_dir / BACKEND_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {"name": "local"}


def check_backend(index_dir: Path, generation: str, backend: BackendName) -> dict[str, Any]:
    """Refuse to read or extend an index with another backend than the one it was built with."""
    recorded = recorded_backend(index_dir / generation)
    if recorded["name"] != backend:
        raise IndexIncompatible(
            f"index at {index_dir} is stored in the '{recorded['name']}' backend, the settings say '{backend}': "
            f"set index.backend={recorded['name']} (RA_INDEX__BACKEND), use another --index, or --rebuild"
        )
    return recorded


@dataclass
class DocumentChunks:
    """One file's new version: what a writer stores in place of whatever it held for `key`."""

    key: str
    sha256: str
    text: str
    chunks: list[Chunk]
    indexed_texts: list[str]
    vectors: np.ndarray


class SearchBackend(Protocol):
    """Read side: ranking and chunk access. Implementations are safe to share between threads."""

    name: str

    def count(self) -> int: ...

    def dense_search(self, vector: np.ndarray, n: int) -> Ranked: ...

    def sparse_search(self, query: str, n: int) -> Ranked: ...

    def hybrid_search(self, query: str, vector: np.ndarray, n: int, fusion: FusionConfig) -> Ranked: ...

    def fetch(self, refs: Sequence[ChunkRef]) -> dict[ChunkRef, Chunk]: ...

    def get_chunk(self, chunk_id: str) -> Chunk | None: ...

    def neighbours(self, chunk_id: str, before: int, after: int) -> list[Chunk]: ...

    def document_text(self, source: str) -> str | None: ...

    def all_chunks(self) -> list[Chunk]: ...

    def stats(self) -> dict[str, Any]: ...


class DocumentWriter(Protocol):
    """Write side, by document: replace a file's chunks (adding it if new) or delete a file's chunks.

    Both are idempotent, so an ingest that crashed before its manifest commit is simply redone.
    """

    def replace_documents(self, docs: Sequence[DocumentChunks]) -> None: ...

    def delete_documents(self, keys: Sequence[str]) -> None: ...
