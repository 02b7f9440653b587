"""Everything a question needs, made ready at once: the model server starts (a child process) while this
process opens the index, loads the query embedder and BM25, and loads the grounding checker.

Why: on two cores a fresh `ra ask` spent seconds in each of these one after the other; the model load runs
in another process and the checker and embedder loads release the GIL in native code, so overlapping them
takes most of the start-up off the answer's latency. The index is opened first and alone, so a missing
index fails before any model starts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TYPE_CHECKING

from assistant.agent.backends import open_backend
from assistant.agent.build import agent_with_checker, build_checker
from assistant.index_access import open_index

if TYPE_CHECKING:
    from assistant.agent.loop import ResearchAgent
    from assistant.settings import Settings
    from index.search import HybridIndex


def warm(index: HybridIndex) -> HybridIndex:
    """Load what the first search needs ahead of it: one throw-away query in the configured mode loads
    whatever the backend uses (BM25 matrix, dense index and embedding model, or a Milvus collection)."""
    index.rank("warm-up", 1)
    return index


@contextmanager
def ready_agent(settings: Settings, warn: Callable[[str], None] | None = None) -> Iterator[ResearchAgent]:
    """The configured agent with its server running; stopped when the block ends."""
    index = open_index(settings)  # fails fast, before a model is started, when there is no index
    local_checker = settings.grounding.checker != "llm"  # the llm judge needs the backend's client
    with ThreadPoolExecutor(2, thread_name_prefix="ra-start") as pool:
        warmed = pool.submit(warm, index)
        checker = pool.submit(build_checker, settings, None, warn) if local_checker else None
        with open_backend(settings) as backend:
            warmed.result()
            judge = checker.result() if checker is not None else build_checker(settings, backend, warn)
            yield agent_with_checker(settings, backend, index, judge)
