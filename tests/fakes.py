"""Stand-ins for unit tests of logic: a scripted model that enforces the JSON schema it is given, a tiny
in-memory index, and a word-overlap checker. Integration tests use the real parts instead."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jsonschema

from assistant.agent.backends import Completion
from assistant.llm.client import TokenLogprob
from index.types import Chunk, SearchHit

Reply = Any  # a reply text, a `Sure`, or a function of (messages, schema) returning one


class SchemaViolation(AssertionError):
    """The script holds a reply that a server enforcing the schema could never send."""


class RuleBackend:
    """Replies made by `rule(messages, schema)` for every call. With `enforce` (the default, like llama.cpp
    and vLLM) every reply is validated against the request's JSON schema and a non-conforming one raises
    `SchemaViolation`; `enforce=False` stands for a server that ignores schemas. Asked for log
    probabilities, it reports its yes/no answer word with P(yes) = `p_yes` (a reply may set its own by
    being a `Sure` pair)."""

    def __init__(
        self, rule: Reply, *, enforce: bool = True, context_tokens: int = 8192, p_yes: float = 0.9
    ) -> None:
        self.rule = rule
        self.enforce = enforce
        self.context_tokens = context_tokens
        self.p_yes = p_yes
        self.calls: list[tuple[list[dict[str, Any]], dict[str, Any] | None]] = []

    def next_reply(self, messages: list[dict[str, Any]], json_schema: dict[str, Any] | None) -> str | Sure:
        rule = self.rule
        return rule(messages, json_schema) if callable(rule) else rule

    def complete(
        self,
        messages: Sequence[dict[str, Any]],
        json_schema: dict[str, Any] | None = None,
        *,
        max_tokens: int,
        logprobs: bool = False,
        on_text: Any = None,
    ) -> Completion:
        self.calls.append((list(messages), json_schema))
        reply = self.next_reply(list(messages), json_schema)
        text, p_yes = (reply.text, reply.p_yes) if isinstance(reply, Sure) else (reply, self.p_yes)
        if self.enforce and json_schema is not None:
            try:
                jsonschema.validate(json.loads(text), json_schema)
            except (ValueError, jsonschema.ValidationError) as exc:
                raise SchemaViolation(f"reply {text!r} does not conform to the schema: {exc}") from None
        if on_text is not None:
            for at in range(0, len(text), 3):  # a server's pieces: a few characters each, escapes cut
                on_text(text[at : at + 3])
        prompt = sum(len(m["content"]) for m in messages) // 4
        tokens = _yes_no_tokens(text, p_yes) if logprobs else None
        return Completion(text, prompt, max(1, len(text) // 4), logprobs=tokens)


@dataclass(frozen=True)
class Sure:
    """A yes/no reply together with the probability of "yes" the fake reports for it."""

    text: str
    p_yes: float


def _yes_no_tokens(text: str, p_yes: float) -> list[TokenLogprob]:
    said = "yes" if '"yes"' in text else "no" if '"no"' in text else None
    if said is None:
        return [TokenLogprob(text, 0.0)]
    top = {"yes": math.log(max(p_yes, 1e-9)), "no": math.log(max(1 - p_yes, 1e-9))}
    return [TokenLogprob('{"', 0.0), TokenLogprob(said, top[said], top)]


class ScriptedBackend(RuleBackend):
    """Replies from a script, in order (a reply may be a function of the request)."""

    def __init__(
        self,
        replies: Sequence[Reply],
        *,
        enforce: bool = True,
        context_tokens: int = 8192,
        p_yes: float = 0.9,
    ) -> None:
        super().__init__("", enforce=enforce, context_tokens=context_tokens, p_yes=p_yes)
        self.replies = list(replies)

    def next_reply(self, messages: list[dict[str, Any]], json_schema: dict[str, Any] | None) -> str | Sure:
        if not self.replies:
            raise AssertionError(
                f"the script ran out of replies at call {len(self.calls)}: {messages[-1]['content'][:300]}"
            )
        reply = self.replies.pop(0)
        return reply(messages, json_schema) if callable(reply) else reply


class StreamingBackend(ScriptedBackend):
    """A scripted model that streams its replies in pieces when asked to, as OpenAIBackend does."""

    streams = True


def request_kind(schema: dict[str, Any] | None) -> str:
    """Which agent request a schema belongs to: plan, answer, check, relation, step or rewrite."""
    options = (schema or {}).get("anyOf") or [schema or {}]
    props: dict[str, Any] = {}
    for option in options:
        props |= option.get("properties", {})
    if "parts" in props:
        return "plan"
    if "how" in props:
        return "answer"
    if "supported" in props:
        return "check"
    if "action" in props:
        return "step"
    if "answer" in props:
        return "relation"
    if "refers_to" in props:
        return "rewrite"
    return "other"


def by_schema(text: str, query: str, asks: str = "fact") -> Reply:
    """A rule answering each kind of agent request from its schema: the plan says every part asks `asks`,
    a part's answer states `text` citing the first sentence offered, the self-check says yes, a relation
    takes the first choice, a research step gives up, a rewrite gets `query` (and refers to no earlier
    subject where it may, else to the first offered)."""

    def rule(messages: list[dict[str, Any]], schema: dict[str, Any] | None) -> str:
        kind = request_kind(schema)
        if kind == "plan":
            n = schema["properties"]["parts"]["minItems"]  # type: ignore[index]
            return plan_reply(*[asks] * n)
        if kind == "answer":
            options = schema.get("anyOf") or [schema]  # type: ignore[union-attr]
            return part_reply(text, [options[0]["properties"]["citations"]["items"]["enum"][0]])
        if kind == "check":
            return check_reply("yes")
        if kind == "relation":
            return json.dumps({"answer": schema["properties"]["answer"]["enum"][0]})  # type: ignore[index]
        if kind == "rewrite":
            offered = schema["properties"]["refers_to"]["enum"]  # type: ignore[index]
            return rewrite_reply(query, "none" if "none" in offered else offered[0])
        return step_reply("give_up")

    return rule


class TinyIndex:
    """Each document is one chunk whose span is the whole document text; search ranks by word overlap."""

    def __init__(self, docs: dict[str, str], code: dict[str, list[dict[str, str]]] | None = None) -> None:
        self.docs = docs
        self.chunks = [
            Chunk(f"c{i}", src, src, None, 0, len(text), 1, 1, text, meta={"code": (code or {}).get(src, [])})
            for i, (src, text) in enumerate(docs.items())
        ]
        self.queries: list[str] = []

    def search(self, query: str, k: int | None = None, mode: Any = None) -> list[SearchHit]:
        self.queries.append(query)
        words = set(re.findall(r"\w+", query.lower()))
        scored = [(len(words & set(re.findall(r"\w+", c.text.lower()))), c) for c in self.chunks]
        ranked = [c for s, c in sorted(scored, key=lambda sc: -sc[0]) if s > 0][: k or 5]
        return [SearchHit(c, 1.0, i + 1) for i, c in enumerate(ranked)]

    def neighbours(self, chunk_id: str, before: int = 1, after: int = 1) -> list[Chunk]:
        return [c for c in self.chunks if c.chunk_id == chunk_id]

    def get_chunk(self, chunk_id: str) -> Chunk | None:
        return next((c for c in self.chunks if c.chunk_id == chunk_id), None)

    def document_text(self, source: str) -> str | None:
        return self.docs.get(source)

    def document(self, source: str) -> None:
        return None  # no bibliographic metadata: sources are named by their path


class WordChecker:
    """Scores a claim by the share of its words found in the evidence (a stand-in for the NLI model)."""

    name = "words"
    threshold = 0.8

    def __init__(self) -> None:
        self.pairs: list[tuple[str, str]] = []

    def scores(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        self.pairs += pairs
        out = []
        for evidence, claim in pairs:
            words = re.findall(r"\w+", claim.lower())
            out.append(sum(w in evidence.lower() for w in words) / max(len(words), 1))
        return out


def plan_reply(*parts: str | Sequence[str]) -> str:
    """A plan: "fact" or "number" per part, or a list of the compared items for a comparison."""
    return json.dumps(
        {
            "parts": [
                {"asks": p} if isinstance(p, str) else {"asks": "comparison", "items": list(p)} for p in parts
            ]
        }
    )


def part_reply(text: str, citations: list[int]) -> str:
    return json.dumps({"how": "stated", "text": text, "citations": citations})


def computed_reply(expression: str, **operands: str) -> str:
    """A computation: `operands` maps each number id to what the model says it measures."""
    listed = [{"id": k, "of": v} for k, v in operands.items()]
    return json.dumps({"how": "computed", "operands": listed, "expression": expression})


def check_reply(said: str, p_yes: float | None = None) -> str | Sure:
    text = json.dumps({"supported": said})
    return text if p_yes is None else Sure(text, p_yes)


def step_reply(action: str, arg: str | int = "", thought: str = "ok") -> str:
    fields: dict[str, Any] = {"search": {"query": arg}, "read": {"passage": arg}}.get(action, {})
    return json.dumps({"thought": thought, "action": action, **fields})


def rewrite_reply(question: str, refers_to: str = "none") -> str:
    """A follow-up's rewrite: the earlier subject picked ("none" for none) and the standalone question."""
    return json.dumps({"refers_to": refers_to, "question": question})
