"""One question answered in a background thread, so that a slow model never blocks the page.

The thread drains the agent's event stream into a `Turn`; the page waits on the run (it wakes at each event)
and renders whatever the turn holds. The run is kept in the session state, so a rerun in the middle (a click
in the sidebar) picks it up where it is instead of starting over.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Literal

from streamlit.runtime.scriptrunner import add_script_run_ctx

from assistant.agent.records import (
    Answer,
    AnswerToken,
    DraftChecked,
    DraftToken,
    Event,
    Evidence,
    EvidenceFound,
    FinalAnswer,
    Plan,
    PlanMade,
    QuestionRewritten,
    Step,
    StepFinished,
    StepStarted,
)
from assistant.llm.client import LLMError, LLMUnavailable
from assistant.llm.llamacpp import LLMStartError
from index.errors import IndexNotFound, UserFacingError

log = logging.getLogger(__name__)

_HINTS: list[tuple[type[Exception], str]] = [
    (
        LLMUnavailable,
        "Check the server URL in the sidebar settings, start a server with `ra serve`, "
        "or switch the backend to the embedded model.",
    ),
    (
        LLMStartError,
        "Check the model name in the sidebar settings (a packaged name such as "
        "qwen2.5-coder-0.5b, or a .gguf path), or use a server instead.",
    ),
    (LLMError, "The model server answered with an error: check its log, or try a smaller question."),
    (IndexNotFound, "Upload documents in the sidebar, or run `ra ingest PATH` and reload."),
]


def hint_for(exc: Exception) -> str:
    """What to do about an error, for the page (the message itself says what went wrong)."""
    return next((hint for kind, hint in _HINTS if isinstance(exc, kind)), "")


@dataclass
class Turn:
    """One question and everything shown for it. The run thread writes it; the page only reads it."""

    question: str
    standalone: str | None = None  # the follow-up rewritten into the query the agent ran
    steps: list[Step] = field(default_factory=list)
    current_step: int | None = None
    current_action: str = ""
    plan: Plan | None = None
    found: list[Evidence] = field(default_factory=list)  # sources found, shown before the answer is written
    text: str = ""  # answer text streamed so far, [n] markers included
    draft: str = ""  # the words of a draft being written or checked, before any checked text
    draft_state: Literal["", "checking", "replaced"] = ""
    draft_number: int | None = None
    answer: Answer | None = None
    notice: str = ""  # said once under the answer, e.g. why there are no support badges
    error: str | None = None
    hint: str = ""
    starts_model: bool = False  # this question starts the embedded model (the first since the server started)
    started: float = field(default_factory=time.time)
    first_words_s: float | None = None  # seconds from `started` to the answer's first words
    finished: float | None = None

    @property
    def done(self) -> bool:
        return self.finished is not None

    @property
    def seconds(self) -> float:
        """How long the answer took, question to last word (so far, while it runs): the one clock shown."""
        return (self.finished or time.time()) - self.started

    def fail(self, exc: Exception) -> None:
        self.error, self.hint = str(exc), hint_for(exc)
        self.finished = time.time()


class AgentRun:
    """Runs `events()` in a daemon thread into `turn`."""

    def __init__(self, turn: Turn, events: Callable[[], Iterator[Event]]) -> None:
        self.turn = turn
        self._events = events
        self._changed = threading.Condition()
        self._version = 0
        self._thread = threading.Thread(target=self._work, name="ra-agent-run", daemon=True)

    def start(self) -> AgentRun:
        """Start the thread with the calling session's script context: the process-wide resource caches
        (`st.cache_resource`) it uses need one. The thread never draws on the page."""
        add_script_run_ctx(self._thread)
        self._thread.start()
        return self

    def wait(self, seen: int, timeout: float) -> int:
        """Block until the turn changed after version `seen` (or `timeout` passed); the current version."""
        with self._changed:
            self._changed.wait_for(lambda: self._version != seen, timeout)
            return self._version

    def _bump(self) -> None:
        with self._changed:
            self._version += 1
            self._changed.notify_all()

    def _work(self) -> None:
        turn = self.turn
        try:
            for event in self._events():
                self._apply(event)
                self._bump()
            if turn.answer is None:
                raise RuntimeError("the agent ended without an answer")
            turn.finished = time.time()
        except UserFacingError as exc:
            turn.fail(exc)
        except Exception as exc:
            log.exception("agent run failed")
            turn.fail(RuntimeError(f"unexpected error ({type(exc).__name__}: {exc}); see the server log"))
        finally:
            self._bump()

    def _apply(self, event: Event) -> None:
        turn = self.turn
        if isinstance(event, QuestionRewritten):
            turn.standalone = event.standalone
        elif isinstance(event, PlanMade):
            turn.plan = event.plan
        elif isinstance(event, EvidenceFound):
            turn.found += event.evidence
        elif isinstance(event, StepStarted):
            turn.current_step, turn.current_action = event.index, event.action
        elif isinstance(event, StepFinished):
            turn.steps.append(event.step)
            turn.current_step = None
        elif isinstance(event, DraftToken):
            if event.draft != turn.draft_number:
                turn.draft, turn.draft_number = "", event.draft
            turn.draft += event.text
            turn.draft_state = "checking"
        elif isinstance(event, DraftChecked) and event.draft == turn.draft_number:
            turn.draft_state = "checking" if event.accepted else "replaced"
        elif isinstance(event, AnswerToken):
            if turn.first_words_s is None:
                turn.first_words_s = time.time() - turn.started
            turn.text += event.text
            turn.draft, turn.draft_state = "", ""
        elif isinstance(event, FinalAnswer):
            turn.answer = event.answer
