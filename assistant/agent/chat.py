"""Multi-turn chat: keeps the conversation and rewrites follow-ups into standalone questions.

The agent itself is stateless per question, so a follow-up such as "and how big was it?" is first turned
into a question that retrieval can work with; the rewrite is a small constrained generation.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field

from assistant.agent.backends import ChatBackend
from assistant.agent.loop import ResearchAgent
from assistant.agent.prompts import render
from assistant.agent.records import Event, FinalAnswer, QuestionRewritten

REWRITE_SCHEMA = {
    "type": "object",
    "properties": {"query": {"type": "string"}},
    "required": ["query"],
    "additionalProperties": False,
}
_HISTORY_TURNS = 3  # earlier exchanges shown to the rewriter


@dataclass
class ChatSession:
    """A conversation with the agent: `history` holds the earlier turns (the caller owns and clears it)."""

    agent: ResearchAgent
    history: list[tuple[str, str]] = field(default_factory=list)

    @property
    def backend(self) -> ChatBackend:
        return self.agent.backend

    def ask(self, message: str) -> Iterator[Event]:
        question = message.strip()
        if self.history:
            standalone = self.rewrite(question)
            if standalone != question:
                yield QuestionRewritten(question, standalone)
            question = standalone
        for event in self.agent.run(question):
            if isinstance(event, FinalAnswer):
                self.history.append((question, event.answer.text))
            yield event

    def rewrite(self, message: str) -> str:
        """The follow-up as a standalone question; the message itself when the model's reply is unusable."""
        lines = [f"User: {q}\nAssistant: {a}" for q, a in self.history[-_HISTORY_TURNS:]]
        prompt = render("rewrite.md", history="\n".join(lines), question=message)
        raw = self.backend.complete(
            [{"role": "user", "content": prompt}],
            REWRITE_SCHEMA,
            max_tokens=self.agent.settings.rewrite_max_tokens,
        ).text
        try:
            query = json.loads(raw).get("query")
        except (ValueError, AttributeError):
            return message
        return query.strip() if isinstance(query, str) and query.strip() else message
