"""Bridge from the settings object to the index layer (which knows nothing of `Settings`)."""

from __future__ import annotations

from assistant.settings import Settings
from index.ingest import IndexConfig
from index.search import HybridIndex


def index_config(settings: Settings) -> IndexConfig:
    return IndexConfig(
        chunking=settings.index.chunking,
        embedding=settings.index.embedding,
        retrieval=settings.retrieval,
        cache_dir=settings.cache_dir,
    )


def open_index(settings: Settings) -> HybridIndex:
    """Open the committed index named by the settings; raises IndexNotFound with how to build one."""
    return HybridIndex(settings.index.dir, settings.retrieval, settings.index.embedding, settings.cache_dir)
