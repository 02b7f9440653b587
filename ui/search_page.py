"""The search page: the index's passages for a query, as the same source cards an answer cites, each
opening to its PDF page with the passage boxed or to its place in the document (what `ra search` gives
on the command line, with the page view of the chat)."""

from __future__ import annotations

import streamlit as st

from assistant.agent.citations import whole_passage
from assistant.agent.tools import Ledger
from index.errors import UserFacingError
from ui import page_view, resources, session_settings
from ui.citations_html import sources_html

_QUERY = "search.query"


def render() -> None:
    settings = session_settings.current()
    st.title("Search")
    st.caption(
        "Passages of your documents for a query (retrieval mode and number of passages: sidebar). "
        "Click a result to open it on its page."
    )
    try:
        index = resources.index_for(settings)
    except UserFacingError as exc:
        st.warning(f"**No index to search yet.** {exc}", icon=":material/inbox:")
        return
    query = st.text_input("Search the documents", key=_QUERY, placeholder="e.g. attention heads").strip()
    if not query:
        return
    hits = index.search(query, k=settings.agent.search_k, mode=settings.retrieval.mode)
    if not hits:
        st.info("No matching passages. Try other words, or the hybrid mode in the sidebar.")
        return
    ledger = Ledger()
    citations = [
        whole_passage(ledger.add_chunk(h.chunk, part=None, query=query, tool="search")) for h in hits
    ]
    st.caption(f"{len(hits)} passages, best first ({settings.retrieval.mode}).")
    st.html(sources_html(citations, "search", page_view.source_views(citations, index)))
    page_view.page_viewer(citations, index, "search")
