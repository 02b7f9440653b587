"""Multi-turn chat: keeps the conversation and rewrites follow-ups into standalone questions.

The agent itself is stateless per question, so a follow-up such as "and how big was it?" is first turned
into a question that retrieval can work with. A free-text rewrite by the 1.5B model dropped the subject
("How many parameters does that model have?" searched without "BitNet", and the agent abstained), so the
rewrite is a small constrained decision that code checks: code lists what earlier turns talked about (the
names in the user's questions and the answers, and the titles of the documents the answers cited); the
model picks which of them the message refers to (an enum, or "none") and writes the standalone question;
code makes sure the picked name is in that question, and keeps the message itself when the reply is not a
rewrite of it. `ra chat`, the service and the web app all run this class.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from assistant.agent.backends import ChatBackend
from assistant.agent.citations import content_words, names
from assistant.agent.config import AgentSettings
from assistant.agent.loop import ResearchAgent
from assistant.agent.prompts import render
from assistant.agent.records import Answer, Event, FinalAnswer, QuestionRewritten

NO_REFERENT = "none"
_MARKER = re.compile(r"\s*\[\d+\]")  # the answer's citation markers, which name nothing
_EDGE = "\"'“”‘’()[]{}<>,.;:!?*"  # punctuation around a word; a name stops at a word that ends in it


@dataclass(frozen=True, slots=True)
class Exchange:
    """One finished turn of a conversation: the question the agent ran, its answer text, and the titles
    of the documents the answer cited (what a user sees beside the answer and may refer to later)."""

    question: str
    answer: str
    sources: tuple[str, ...] = ()

    @classmethod
    def of(cls, answer: Answer) -> Exchange:
        titles = (c.document.title for c in answer.citations if c.document and c.document.title)
        return cls(answer.question, answer.text, tuple(dict.fromkeys(titles)))

    def to_json(self) -> dict[str, Any]:
        return {"question": self.question, "answer": self.answer, "sources": list(self.sources)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Exchange:
        """The exchange `to_json` wrote (a chat's history travels to the service and back)."""
        return cls(str(data["question"]), str(data["answer"]), tuple(str(s) for s in data.get("sources", [])))


@dataclass(frozen=True, slots=True)
class Rewrite:
    """The standalone question and the earlier subject it was resolved to (None: it needed none)."""

    question: str
    referent: str | None


@dataclass
class ChatSession:
    """A conversation with the agent: `history` holds the earlier turns (the caller owns and clears it)."""

    agent: ResearchAgent
    history: list[Exchange] = field(default_factory=list)

    @property
    def backend(self) -> ChatBackend:
        return self.agent.backend

    @property
    def settings(self) -> AgentSettings:
        return self.agent.settings

    def ask(self, message: str) -> Iterator[Event]:
        question = message.strip()
        if self.history:
            standalone = self.rewrite(question).question
            if standalone != question:
                yield QuestionRewritten(question, standalone)
            question = standalone
        for event in self.agent.run(question):
            if isinstance(event, FinalAnswer):
                self.history.append(Exchange.of(event.answer))
            yield event

    def rewrite(self, message: str) -> Rewrite:
        """The follow-up as a standalone question naming the subject the model picked from the earlier
        turns' candidates."""
        cfg = self.settings
        recent = self.history[-cfg.rewrite_history :]
        options = candidates(recent, message, cfg.rewrite_candidates, cfg.rewrite_candidate_chars)
        prompt = render(
            "rewrite.md",
            history="\n".join(_shown(e) for e in recent),
            candidates="\n".join(f"- {c}" for c in options) or "(none)",
            question=message,
        )
        raw = self.backend.complete(
            [{"role": "user", "content": prompt}],
            rewrite_schema(options, must_pick=bool(options) and not names(message)),
            max_tokens=cfg.rewrite_max_tokens,
        ).text
        return resolve(raw, message, options, cfg.rewrite_keep_share)


def rewrite_schema(options: Sequence[str], *, must_pick: bool) -> dict[str, Any]:
    """What the model fills: the subject first (so the question is written knowing it), then the question.
    A message that names nothing itself ("how are masks fed into it?") can only be about something said
    before, so `must_pick` leaves "none" out (the 1.5B model answered "none" to such messages)."""
    return {
        "type": "object",
        "properties": {
            "refers_to": {"type": "string", "enum": [*options] if must_pick else [*options, NO_REFERENT]},
            "question": {"type": "string"},
        },
        "required": ["refers_to", "question"],
        "additionalProperties": False,
    }


def resolve(raw: str, message: str, options: Sequence[str], keep_share: float) -> Rewrite:
    """The rewrite code vouches for: the model's question when it still asks what the message asks (else
    the message itself), with the picked subject inserted when the question does not name it. A reply
    that is not the schema's JSON leaves the message as it is."""
    try:
        reply = json.loads(raw)
    except ValueError:
        return Rewrite(message, None)
    if not isinstance(reply, dict):
        return Rewrite(message, None)
    picked, written = reply.get("refers_to"), reply.get("question")
    referent = picked if isinstance(picked, str) and picked in options else None
    question = message
    if isinstance(written, str) and keeps_message(written.strip(), message, keep_share):
        question = written.strip()
    if referent is not None and not mentions(question, referent):
        question = with_referent(question, referent)
    return Rewrite(question, referent)


def candidates(history: Sequence[Exchange], message: str, limit: int, max_chars: int) -> list[str]:
    """What `message` may refer to: the names in the user's earlier questions (the most recent first), then
    the titles of the documents the answers cited, then the names in the answers, which mention many
    things in passing (the model picked "Chinchilla" from an answer about BloombergGPT's scaling laws).
    Each once (by case), none the message names itself ("Unlike Adam, …" is not about Adam), none longer
    than `max_chars`."""
    latest = list(reversed(history))
    asked = [n for e in latest for n in name_phrases(e.question, prose=False)]
    titles = [t for e in latest for t in e.sources]
    said = [n for e in latest for n in name_phrases(_MARKER.sub("", e.answer), prose=True)]
    found: dict[str, str] = {}
    for name in [*asked, *titles, *said]:
        if len(name) <= max_chars and not mentions(message, name):
            found.setdefault(name.casefold(), name)
    return list(found.values())[:limit]


def name_phrases(text: str, *, prose: bool) -> list[str]:
    """Runs of adjacent name words ("Stanford's Alpaca 7B", "Open X-Embodiment", "BitNet"), as written:
    a multi-word name is one candidate, and punctuation before or after a word ends the run ("BitNet, a
    1-bit Transformer" gives "BitNet"). In a user's question a lower-case term counts too, on its own
    (users name methods such as "proxy-tuning" that way, and "Alpaca 7B fine-tuned" is no name); in an
    answer's `prose` only capitalised names do."""
    phrases: list[str] = []
    run: list[str] = []
    for token in text.split():
        core = token.strip(_EDGE)
        named = _is_name(core, capitalised=prose)
        alone = named and not any(c.isupper() for c in core)
        if run and (token != token.lstrip(_EDGE) or not named or alone):
            phrases.append(" ".join(run))
            run = []
        if named:
            run.append(core)
        if run and (alone or token != token.rstrip(_EDGE)):
            phrases.append(" ".join(run))
            run = []
    if run:
        phrases.append(" ".join(run))
    return list(dict.fromkeys(_possessive_dropped(p) for p in phrases))


def _is_name(word: str, *, capitalised: bool) -> bool:
    """A word that names a thing (`citations.names`: capitalised, mixed-case, with digits, hyphenated)
    and, when `capitalised`, has a capital letter: in an answer's prose lower-case terms ("1-bit",
    "fine-tuned") describe things rather than name them, and offered as subjects they drew the model's
    pick away from the thing itself ("that model" resolved to "1-bit" instead of "BitNet")."""
    if capitalised and not any(c.isupper() for c in word):
        return False
    return bool(word) and bool(names(word))


def _possessive_dropped(phrase: str) -> str:
    """ "Hippocampus's" -> "Hippocampus": the owner is the name, the 's is grammar."""
    return phrase.removesuffix("'s").removesuffix("’s")


def mentions(question: str, name: str) -> bool:
    """`name` is in the question, ignoring case and spacing."""
    return " ".join(name.casefold().split()) in " ".join(question.casefold().split())


def keeps_message(question: str, message: str, share: float) -> bool:
    """The rewrite still asks the message's question: at least `share` of the message's content words
    are in it (a reply that answers, or asks about something else, loses them). Pronouns and "that
    model" may go; the message's own asks ("parameters", "largest") stay."""
    if not question:
        return False
    words = [w.casefold() for w in content_words(message)]
    if not words:
        return True
    low = question.casefold()
    return sum(w in low for w in words) >= share * len(words)


def with_referent(question: str, referent: str) -> str:
    """The question with the subject appended: retrieval and the planner only need the name present,
    and appending cannot break the user's wording the way a substitution guessed by code could."""
    return f"{question.rstrip(' ?.')} ({referent})?"


def _shown(exchange: Exchange) -> str:
    """One earlier turn as the rewriter reads it: markers dropped, the cited documents named."""
    lines = [f"User: {exchange.question}", f"Assistant: {_MARKER.sub('', exchange.answer)}"]
    if exchange.sources:
        lines.append(f"Sources: {'; '.join(exchange.sources)}")
    return "\n".join(lines)
