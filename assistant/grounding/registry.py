"""The checker the settings name, built once for the agent, the UI and `ra eval`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from assistant.grounding.base import GroundingChecker
from index.errors import UserFacingError

if TYPE_CHECKING:
    from assistant.llm.client import ChatClient
    from assistant.settings import Settings

CHECKERS = ("align", "minilm", "llm", "none")


class UnknownChecker(UserFacingError):
    pass


class CheckerNeedsLLM(UserFacingError):
    pass


def open_checker(settings: Settings, client: ChatClient | None = None) -> GroundingChecker | None:
    """The checker named by `settings.grounding.checker` ("none": no checking, None).

    The LLM judge talks through `client` (the agent passes its own), else through `llm.url`. A threshold
    in the settings overrides the checker's calibrated one."""
    name = settings.grounding.checker
    override = settings.grounding.threshold
    if name == "none":
        return None
    if name == "align":
        from assistant.grounding.align import AlignChecker

        return AlignChecker.load(settings.cache_dir, threshold=override)
    if name == "minilm":
        from assistant.grounding.minilm import MiniLMChecker

        return MiniLMChecker.load(settings.cache_dir, threshold=override)
    if name == "llm":
        from assistant.grounding.llm_judge import DEFAULT_THRESHOLD, LLMJudge, read_calibrated_threshold
        from assistant.llm.client import ChatClient

        if client is None:
            if not settings.llm.url:
                raise CheckerNeedsLLM(
                    "grounding checker 'llm' needs a running LLM: set llm.url (e.g. RA_LLM__URL="
                    "http://127.0.0.1:8000/v1 after `ra serve`) or use grounding.checker = 'align'"
                )
            client = ChatClient.for_settings(settings.llm)
        if override is None:
            override = read_calibrated_threshold(settings.cache_dir, client.model)
        return LLMJudge(client, threshold=DEFAULT_THRESHOLD if override is None else override)
    raise UnknownChecker(
        f"unknown grounding checker {name!r}: choose one of {', '.join(CHECKERS)} "
        "(grounding.checker in ra.toml or RA_GROUNDING__CHECKER)"
    )
