"""LangChain adapter: the hybrid index as a `BaseRetriever`, so it plugs into any LangChain chain or agent."""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from index.config import RetrievalMode
from index.search import HybridIndex
from index.types import SearchHit


def hit_to_document(hit: SearchHit) -> Document:
    """A LangChain Document carrying the full provenance of the passage in its metadata."""
    c = hit.chunk
    return Document(
        id=c.chunk_id,
        page_content=c.text,
        metadata={
            "chunk_id": c.chunk_id,
            "source": c.source,
            "title": c.title,
            "page": c.page,
            "start": c.start,
            "end": c.end,
            "line_start": c.line_start,
            "line_end": c.line_end,
            "section": c.section,
            "score": hit.score,
            "rank": hit.rank,
            **c.meta,
        },
    )


class HybridRetriever(BaseRetriever):
    """Retrieves from a `HybridIndex` (hybrid, dense or BM25) and returns provenance-rich Documents."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    index: HybridIndex
    k: int | None = None  # None: the index's retrieval settings decide, as for `ra search`
    mode: RetrievalMode | None = None

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        hits = self.index.search(query, k=kwargs.get("k", self.k), mode=kwargs.get("mode", self.mode))
        return [hit_to_document(h) for h in hits]
