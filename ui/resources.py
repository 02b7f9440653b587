"""Heavy objects shared by every browser session of the process: the index, the model backend, the checker.

Each is built once per process with `st.cache_resource`, keyed by the settings that shape it, so two sessions
with the same settings share one object and a session that changes a setting gets its own. All three are
safe to share between threads: `HybridIndex` locks its SQLite connection, the backend is an HTTP client
(llama.cpp's server queues concurrent requests on its slot), and checker calls are serialised here.
"""

from __future__ import annotations

import atexit
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import streamlit as st

from assistant.agent.backends import ChatBackend
from assistant.agent.factory import SerialChecker, build_checker, open_backend
from assistant.grounding.base import GroundingChecker
from assistant.index_access import open_index
from assistant.settings import Settings
from index.errors import UserFacingError
from index.store import read_manifest

if TYPE_CHECKING:
    from index.search import HybridIndex


def index_for(settings: Settings) -> HybridIndex:
    """The committed index the settings name; raises IndexNotFound (with how to build one) when there is
    none. Keyed by the manifest's generation, so the next call after an ingest opens the new one."""
    manifest = read_manifest(settings.index.dir)
    if manifest is None:
        return open_index(settings)  # raises IndexNotFound with the how-to message
    return _index(
        str(settings.index.dir.resolve()),
        manifest.generation,
        settings.retrieval.model_dump_json(),
        settings.index.embedding.model_dump_json(),
        _settings=settings,
    )


@st.cache_resource(show_spinner=False, max_entries=4)
def _index(
    index_dir: str, generation: str, retrieval: str, embedding: str, _settings: Settings
) -> HybridIndex:
    return open_index(_settings)


_started: set[tuple[str, str]] = set()  # the keys of the backends cached (so running) in this process


@dataclass
class BackendHandle:
    """A started backend and what stops it (the embedded llama.cpp server, or the HTTP client)."""

    backend: ChatBackend
    stack: ExitStack = field(repr=False)
    key: tuple[str, str] = ("", "")

    def close(self) -> None:
        _started.discard(self.key)
        self.stack.close()


def _backend_key(settings: Settings) -> tuple[str, str]:
    return settings.llm.model_dump_json(), str(settings.cache_dir)


def backend_for(settings: Settings) -> ChatBackend:
    """The model backend the settings name, started on first use (the embedded server takes seconds)."""
    return _backend(*_backend_key(settings), _settings=settings).backend


def backend_started(settings: Settings) -> bool:
    """Whether this process already runs the backend the settings name: the page says a question will
    start the model only when it will."""
    return _backend_key(settings) in _started


@st.cache_resource(show_spinner=False, max_entries=3, on_release=BackendHandle.close)
def _backend(llm: str, cache_dir: str, _settings: Settings) -> BackendHandle:
    stack = ExitStack()
    backend = stack.enter_context(open_backend(_settings))
    atexit.register(stack.close)  # the embedded server also exits with its parent; this stops it cleanly
    _started.add((llm, cache_dir))
    return BackendHandle(backend, stack, (llm, cache_dir))


@dataclass
class CheckerHandle:
    """The grounding checker for support badges, or None with the reason shown instead of badges."""

    checker: GroundingChecker | None
    note: str = ""


def checker_for(settings: Settings, backend: ChatBackend) -> CheckerHandle:
    """The configured checker (`grounding.checker`), loaded once. The LLM judge talks through the model
    backend, so its key includes the model settings."""
    llm = settings.llm.model_dump_json() if settings.grounding.checker == "llm" else ""
    return _checker(settings.grounding.model_dump_json(), llm, _settings=settings, _backend=backend)


def _usable(handle: CheckerHandle) -> bool:
    """A checker that was not built yet is looked for again (cheap), so building one needs no restart."""
    return handle.checker is not None or not handle.note


@st.cache_resource(show_spinner=False, max_entries=2, validate=_usable)
def _checker(grounding: str, llm: str, _settings: Settings, _backend: ChatBackend) -> CheckerHandle:
    notes: list[str] = []
    try:
        checker = build_checker(_settings, _backend, warn=notes.append)
    except UserFacingError as exc:  # answers stay useful (and cited) without badges: say why, go on
        return CheckerHandle(None, f"Answers are not support-checked: {exc}")
    return CheckerHandle(SerialChecker(checker) if checker else None, " ".join(notes))
