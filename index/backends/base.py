"""The contract between `HybridIndex` and the engine under it.

Everything above (manifest, incremental ingest, prune, the embedding-model guard, citations, the agent, the
UI, evaluation) talks to `HybridIndex`, which talks to one `SearchBackend`; the write side of a backend is
`DocumentWriter`. A backend names its chunks by an opaque `ChunkRef` (a row for `local`, the chunk id for
`milvus`) that only it interprets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from index.config import FusionConfig
from index.types import Chunk

ChunkRef = int | str
Ranked = list[tuple[ChunkRef, float]]
"""(chunk ref, score) pairs, best first."""
Files = frozenset[str] | None
"""The manifest keys a search is limited to (a collection's documents); None searches everything."""

SKIPPED_ROLES = frozenset({"references"})
"""Section roles kept out of search unless `retrieval.include_references` (reference lists match anything)."""


def chunk_role(chunk: Chunk) -> str:
    """The role of the section a chunk belongs to ("body" unless the chunker said otherwise)."""
    return str(chunk.meta.get("role", "body"))


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
    """Read side: ranking and chunk access. Implementations are safe to share between threads.

    The three searches never return chunks whose role is in `skip_roles` (set when opened), nor, given
    `files`, chunks of other files; either way they return `n` hits when that many remain."""

    name: str
    skip_roles: frozenset[str]

    def count(self) -> int: ...

    def dense_search(self, vector: np.ndarray, n: int, files: Files = None) -> Ranked: ...

    def sparse_search(self, query: str, n: int, files: Files = None) -> Ranked: ...

    def hybrid_search(
        self, query: str, vector: np.ndarray, n: int, fusion: FusionConfig, files: Files = None
    ) -> Ranked: ...

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
