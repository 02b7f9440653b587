"""The settings a person changes in the sidebar, kept per browser session on top of the process settings.

The process settings come from `load_settings()` like every command (ra.toml, RA_* variables; `ra ui --index`
arrives as RA_INDEX__DIR). The sidebar's choices live in `st.session_state` under widget keys, so they
persist across reruns and page switches of one session and never leak into another session.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Literal

import streamlit as st

from assistant.settings import Settings, load_settings
from index.config import RETRIEVAL_MODES

Backend = Literal["embedded", "server"]
BACKEND_LABELS: dict[Backend, str] = {
    "embedded": "Embedded model (llama.cpp)",
    "server": "OpenAI-compatible server (vLLM, …)",
}
MAX_TOP_K = 20
_KEY = "settings."  # prefix of the widget keys


@dataclass(frozen=True, slots=True)
class Choices:
    """What the sidebar offers: backend and its URL or model, retrieval mode, passages per search, sandbox,
    and the collection searches keep to ("" for all documents)."""

    backend: Backend
    url: str
    model: str
    mode: str
    top_k: int
    sandbox: bool
    collection: str


def defaults(base: Settings) -> Choices:
    return Choices(
        backend="server" if base.llm.url else "embedded",
        url=base.llm.url or "http://127.0.0.1:8000/v1",
        model=base.llm.model,
        mode=base.retrieval.mode,
        top_k=min(base.agent.search_k, MAX_TOP_K),
        sandbox=base.agent.sandbox,
        collection=base.retrieval.collection,
    )


def apply(base: Settings, choices: Choices) -> Settings:
    """`base` with the choices on top (a copy; `base` is untouched)."""
    server = choices.backend == "server"
    llm = base.llm.model_copy(
        update={
            "url": choices.url.strip() if server else None,
            "model": choices.model.strip() or base.llm.model,
        }
    )
    retrieval = base.retrieval.model_copy(update={"mode": choices.mode, "collection": choices.collection})
    agent = base.agent.model_copy(update={"search_k": choices.top_k, "sandbox": choices.sandbox})
    return base.model_copy(update={"llm": llm, "retrieval": retrieval, "agent": agent})


def url_problem(choices: Choices) -> str | None:
    """Why the server URL cannot work, or None."""
    if choices.backend == "server" and not choices.url.strip().startswith(("http://", "https://")):
        return "The server URL must start with http:// or https://, e.g. http://127.0.0.1:8000/v1"
    return None


def base_settings() -> Settings:
    """The process settings, read afresh (cheap), so a changed ra.toml applies on the next rerun."""
    return load_settings()


def render(base: Settings, collections: list[str]) -> None:
    """The settings widgets; their values stay in the session under `settings.*` keys. `collections` are
    the index's (from a Zotero import): the selector shows only when there are some."""
    for name, value in _fields(defaults(base)):
        st.session_state.setdefault(_KEY + name, value)
    if st.session_state[_KEY + "collection"] not in collections:
        st.session_state[_KEY + "collection"] = ""  # gone from the index (or none there): search everything
    if collections:
        st.selectbox(
            "Collection",
            ["", *collections],
            format_func=lambda name: name or "All documents",
            key=_KEY + "collection",
            help="Search (and answer from) only the documents of this Zotero collection.",
        )
    st.radio(
        "Model backend",
        list(BACKEND_LABELS),
        format_func=BACKEND_LABELS.__getitem__,
        key=_KEY + "backend",
        help="The embedded model starts inside this app (offline, CPU); a server is e.g. `ra serve` or vLLM.",
    )
    if st.session_state[_KEY + "backend"] == "server":
        st.text_input(
            "Server URL", key=_KEY + "url", help="OpenAI-compatible base URL; its first model is used."
        )
    else:
        st.text_input(
            "Model", key=_KEY + "model", help="Packaged name (e.g. qwen2.5-coder-0.5b) or a .gguf path."
        )
    st.selectbox(
        "Retrieval mode",
        RETRIEVAL_MODES,
        key=_KEY + "mode",
        help="hybrid fuses dense (FAISS) and BM25 rankings.",
    )
    st.number_input(
        "Passages per search (top-k)", min_value=1, max_value=MAX_TOP_K, step=1, key=_KEY + "top_k"
    )
    limits = base.sandbox
    st.toggle(
        "Python sandbox",
        key=_KEY + "sandbox",
        help=f"Let the agent run code (isolated with bubblewrap; per run {limits.timeout_s:g} s, "
        f"{limits.memory_mb} MB memory, {limits.tmp_mb} MB /tmp; settings `[sandbox]`).",
    )
    if problem := url_problem(current_choices(base)):
        st.error(problem)


def current_choices(base: Settings) -> Choices:
    """The session's choices; defaults where a widget has not been shown yet."""
    fallback = defaults(base)
    return Choices(**{name: st.session_state.get(_KEY + name, value) for name, value in _fields(fallback)})


def current(base: Settings | None = None) -> Settings:
    """The settings this session runs with."""
    base = base or base_settings()
    return apply(base, current_choices(base))


def _fields(choices: Choices) -> list[tuple[str, object]]:
    return [(f.name, getattr(choices, f.name)) for f in fields(choices)]
