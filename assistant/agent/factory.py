"""One factory: the backend, the grounding checker and the agent, built from the settings.

`ra ask`, `ra chat`, the web app and `ra eval qa` all get their agent here, so a setting means the same
everywhere. `ready_agent` makes everything ready at once: the model server starts (a child process) while
this process opens the index, loads the query embedder and BM25, and loads the grounding checker. On two
cores these loads cost seconds each one after the other; the model load runs in another process and the
checker and embedder loads release the GIL in native code, so overlapping them takes most of the start-up
off the answer's latency. The index is opened first and alone, so a missing index fails before any model
starts.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TYPE_CHECKING

from assistant.agent.backends import ChatBackend, OpenAIBackend
from assistant.agent.loop import ResearchAgent
from assistant.grounding.base import CheckerNotBuilt
from assistant.grounding.registry import open_checker
from assistant.index_access import open_index
from assistant.llm.client import ChatClient

if TYPE_CHECKING:
    from assistant.grounding.base import GroundingChecker
    from assistant.settings import Settings
    from index.search import HybridIndex

Warn = Callable[[str], None]


@contextmanager
def open_backend(settings: Settings) -> Iterator[OpenAIBackend]:
    """The backend the settings name: `llm.url` when set, else the embedded llama.cpp server with
    `llm.model`, started here and stopped when the block ends."""
    llm = settings.llm
    if llm.url:
        with ChatClient.for_settings(llm) as client:
            yield OpenAIBackend(client, llm.temperature, client.context_tokens(default=llm.context_size))
        return
    from assistant.llm.llamacpp import LlamaCppServer

    with (
        LlamaCppServer.for_settings(llm, settings.cache_dir) as server,
        ChatClient.for_settings(llm, server.base_url, server.model_name) as client,
    ):
        yield OpenAIBackend(client, llm.temperature, llm.context_size)


def build_checker(
    settings: Settings, backend: ChatBackend | None = None, warn: Warn | None = None
) -> GroundingChecker | None:
    """The configured grounding checker; a local one that is not built yet only costs a warning, since
    answers stay useful (and cited) without support scores."""
    try:
        return open_checker(settings, client=getattr(backend, "client", None))
    except CheckerNotBuilt as exc:
        if warn is not None:
            warn(f"answers are not support-checked: {exc}")
        return None


class SerialChecker:
    """A checker whose scoring calls take turns: one model serves every session of the web app or every
    client of the service, and it need not be thread-safe."""

    def __init__(self, checker: GroundingChecker) -> None:
        self.name, self.threshold = checker.name, checker.threshold
        self._checker = checker
        self._lock = threading.Lock()

    def scores(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        with self._lock:
            return self._checker.scores(pairs)


def build_agent(
    settings: Settings, backend: ChatBackend, index: HybridIndex, checker: GroundingChecker | None
) -> ResearchAgent:
    """The configured agent around a checker the caller already holds (the UI and eval keep one per
    process, since loading it costs seconds)."""
    return ResearchAgent(
        backend,
        index,
        settings.agent,
        sandbox_limits=settings.sandbox,
        checker=checker,
        threshold=settings.grounding.threshold,
        weak_margin=settings.grounding.weak_margin,
    )


def warm(index: HybridIndex) -> HybridIndex:
    """Load what the first search needs ahead of it: one throw-away query in the configured mode loads
    whatever the backend uses (BM25 matrix, dense index and embedding model, or a Milvus collection)."""
    index.rank("warm-up", 1)
    return index


@contextmanager
def ready_agent(settings: Settings, warn: Warn | None = None) -> Iterator[ResearchAgent]:
    """The configured agent with its server running; stopped when the block ends."""
    index = open_index(settings)  # fails fast, before a model is started, when there is no index
    local_checker = settings.grounding.checker != "llm"  # the llm judge needs the backend's client
    with ThreadPoolExecutor(2, thread_name_prefix="ra-start") as pool:
        warmed = pool.submit(warm, index)
        checker = pool.submit(build_checker, settings, None, warn) if local_checker else None
        with open_backend(settings) as backend:
            warmed.result()
            judge = checker.result() if checker is not None else build_checker(settings, backend, warn)
            yield build_agent(settings, backend, index, judge)
