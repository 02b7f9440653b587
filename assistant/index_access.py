"""Bridge from the settings object to the index layer (which knows nothing of `Settings`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from assistant.settings import Settings

if TYPE_CHECKING:  # imported on use: `ra --help` and no-op commands stay fast
    from index.ingest import IndexConfig
    from index.search import HybridIndex


def index_config(settings: Settings) -> IndexConfig:
    from index.ingest import IndexConfig

    return IndexConfig(
        chunking=settings.index.chunking,
        embedding=settings.index.embedding,
        retrieval=settings.retrieval,
        cache_dir=settings.cache_dir,
        max_file_bytes=int(settings.index.max_file_mb * 2**20),
        lock_wait_s=settings.index.lock_wait_s,
        parse_timeout_s=settings.index.parse_timeout_s,
        parse_memory_mb=settings.index.parse_memory_mb,
        backend=settings.index.backend,
        milvus=settings.index.milvus,
    )


def open_index(settings: Settings) -> HybridIndex:
    """Open the committed index named by the settings; raises IndexNotFound with how to build one."""
    from index.search import HybridIndex

    return HybridIndex(
        settings.index.dir,
        settings.retrieval,
        settings.index.embedding,
        settings.cache_dir,
        backend=settings.index.backend,
        milvus=settings.index.milvus,
    )
