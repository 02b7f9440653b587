"""The `ask` tool: `ra ask`'s answerer, kept open between questions, and its events as progress messages.

Why kept open: `ra ask` starts the model for one question and stops it; an MCP server lives as long as
its client, so the first question starts the answerer (the resident service when one runs or
`service.autostart` is on, else the agent in this process, exactly as `ra ask` decides) and later questions
reuse it. An in-process agent is reopened when `ra ingest` commits a new generation of the index (the
service reopens its own). Questions are answered one at a time: the embedded model has one slot.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from contextlib import ExitStack

from assistant.agent.loop import check_question
from assistant.agent.records import (
    Answer,
    DraftChecked,
    Event,
    EvidenceFound,
    FinalAnswer,
    PlanMade,
    QuestionRewritten,
    StepStarted,
)
from assistant.mcp_server.library import document_id
from assistant.mcp_server.models import AskResult, CitationOut, SentenceOut
from assistant.service.client import Answerer, LocalAnswerer, ServiceAnswerer, answerer
from assistant.settings import Settings
from index.errors import UserFacingError
from index.store import read_manifest

log = logging.getLogger(__name__)
Report = Callable[[str], None]

STAGES: dict[str, str] = {
    "plan": "planning the answer",
    "search": "searching the documents",
    "read": "reading around a passage",
    "python": "computing in the sandbox",
    "answer": "writing an answer",
    "check": "checking the answer against its sources",
    "think": "looking further",
    "relation": "comparing",
}


def progress_message(event: Event) -> str | None:
    """What a person waiting on the answer is told about an event (None: nothing worth a notification)."""
    if isinstance(event, QuestionRewritten):
        return f"searching for: {event.standalone}"
    if isinstance(event, PlanMade):
        parts = event.plan.parts
        return f"{len(parts)} parts: " + "; ".join(p.question for p in parts) if len(parts) > 1 else None
    if isinstance(event, StepStarted):
        return STAGES.get(event.action)
    if isinstance(event, EvidenceFound):
        return f"found {len(event.evidence)} passage(s)"
    if isinstance(event, DraftChecked):
        return (
            "draft checked: supported" if event.accepted else "draft not supported by what it cites: replaced"
        )
    if isinstance(event, FinalAnswer):
        return "abstained: the documents do not answer this" if event.answer.abstained else "answered"
    return None


def ask_result(answer: Answer) -> AskResult:
    """The answer as the tool's structured content: `ra ask --json`'s fields a client needs to cite."""
    citations = [
        CitationOut.model_validate(
            c.to_json() | {"document_id": document_id(c.source) if c.kind == "passage" else None}
        )
        for c in answer.citations
    ]
    return AskResult(
        question=answer.question,
        answer=answer.text,
        abstained=answer.abstained,
        abstain_reason=answer.abstain_reason,
        sentences=[SentenceOut.model_validate(s.to_json()) for s in answer.sentences],
        citations=citations,
    )


class Asker:
    """Answers questions through one answerer, opened on first use and closed with the server."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._stack = ExitStack()
        self._answerer: Answerer | None = None

    def ask(self, question: str, report: Report) -> Answer:
        """The final answer to `question` (no chat history: each MCP call stands alone)."""
        question = check_question(question, self.settings.agent.max_question_chars)
        with self._lock:
            current = self._open(report)
            answer: Answer | None = None
            try:
                for event in current.ask(question, []):
                    message = progress_message(event)
                    if message:
                        report(message)
                    if isinstance(event, FinalAnswer):
                        answer = event.answer
            except (OSError, UserFacingError):
                if isinstance(current, ServiceAnswerer):  # the service went away: ask it anew next time
                    self._close()
                raise
        if answer is None:
            raise UserFacingError("the agent ended without an answer: see the server's log on stderr")
        return answer

    def close(self) -> None:
        with self._lock:
            self._close()

    def _open(self, report: Report) -> Answerer:
        if isinstance(self._answerer, LocalAnswerer) and self._stale(self._answerer):
            report("the index changed: reopening it")
            self._close()
        if self._answerer is None:
            report("starting the assistant (index, grounding checker, model)")
            self._answerer = self._stack.enter_context(
                answerer(self.settings, use_service=True, warn=_warn, progress=report)
            )
        return self._answerer

    def _stale(self, local: LocalAnswerer) -> bool:
        manifest = read_manifest(self.settings.index.dir)
        return manifest is not None and local.agent.index.manifest.generation != manifest.generation

    def _close(self) -> None:
        self._answerer = None
        self._stack.close()
        self._stack = ExitStack()


def _warn(message: str) -> None:
    log.warning("warning: %s", message)
