"""The agent as the settings describe it, shared by `ra ask`/`chat`, the UI and `ra eval qa`."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from assistant.agent.loop import ResearchAgent
from assistant.grounding.base import CheckerNotBuilt
from assistant.grounding.registry import open_checker

if TYPE_CHECKING:
    from assistant.agent.backends import ChatBackend
    from assistant.grounding.base import GroundingChecker
    from assistant.settings import Settings
    from index.search import HybridIndex


def build_checker(
    settings: Settings, backend: ChatBackend | None = None, warn: Callable[[str], None] | None = None
) -> GroundingChecker | None:
    """The configured grounding checker; a local one that is not built yet only costs a warning, since
    answers stay useful (and cited) without support badges."""
    try:
        return open_checker(settings, client=getattr(backend, "client", None))
    except CheckerNotBuilt as exc:
        if warn is not None:
            warn(f"answers are not support-checked: {exc}")
        return None


def build_agent(
    settings: Settings,
    backend: ChatBackend,
    index: HybridIndex,
    warn: Callable[[str], None] | None = None,
) -> ResearchAgent:
    return agent_with_checker(settings, backend, index, build_checker(settings, backend, warn))


def agent_with_checker(
    settings: Settings, backend: ChatBackend, index: HybridIndex, checker: GroundingChecker | None
) -> ResearchAgent:
    """The configured agent around a checker the caller already holds (the UI and eval keep one per
    process, since loading MiniLM costs seconds)."""
    return ResearchAgent(
        backend,
        index,
        settings.agent,
        sandbox_limits=settings.sandbox,
        checker=checker,
        threshold=settings.grounding.threshold,
        weak_margin=settings.grounding.weak_margin,
    )
