"""Stand-ins for unit tests of logic: a scripted model that enforces the JSON schema it is given, a tiny
in-memory index, and a word-overlap checker. Integration tests use the real parts instead."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from typing import Any

import jsonschema

from assistant.agent.backends import Completion
from index.types import Chunk, SearchHit

Reply = str | Callable[[list[dict[str, Any]], dict[str, Any] | None], str]


class SchemaViolation(AssertionError):
    """The script holds a reply that a server enforcing the schema could never send."""


class RuleBackend:
    """Replies made by `rule(messages, schema)` for every call. With `enforce` (the default, like llama.cpp
    and vLLM) every reply is validated against the request's JSON schema and a non-conforming one raises
    `SchemaViolation`; `enforce=False` stands for a server that ignores schemas."""

    def __init__(self, rule: Reply, *, enforce: bool = True, context_tokens: int = 8192) -> None:
        self.rule = rule
        self.enforce = enforce
        self.context_tokens = context_tokens
        self.calls: list[tuple[list[dict[str, Any]], dict[str, Any] | None]] = []

    def next_reply(self, messages: list[dict[str, Any]], json_schema: dict[str, Any] | None) -> str:
        rule = self.rule
        return rule(messages, json_schema) if callable(rule) else rule

    def complete(
        self,
        messages: Sequence[dict[str, Any]],
        json_schema: dict[str, Any] | None = None,
        *,
        max_tokens: int,
    ) -> Completion:
        self.calls.append((list(messages), json_schema))
        text = self.next_reply(list(messages), json_schema)
        if self.enforce and json_schema is not None:
            try:
                jsonschema.validate(json.loads(text), json_schema)
            except (ValueError, jsonschema.ValidationError) as exc:
                raise SchemaViolation(f"reply {text!r} does not conform to the schema: {exc}") from None
        prompt = sum(len(m["content"]) for m in messages) // 4
        return Completion(text, prompt, max(1, len(text) // 4))


class ScriptedBackend(RuleBackend):
    """Replies from a script, in order (a reply may be a function of the request)."""

    def __init__(self, replies: Sequence[Reply], *, enforce: bool = True, context_tokens: int = 8192) -> None:
        super().__init__("", enforce=enforce, context_tokens=context_tokens)
        self.replies = list(replies)

    def next_reply(self, messages: list[dict[str, Any]], json_schema: dict[str, Any] | None) -> str:
        if not self.replies:
            raise AssertionError(
                f"the script ran out of replies at call {len(self.calls)}: {messages[-1]['content'][:300]}"
            )
        reply = self.replies.pop(0)
        return reply(messages, json_schema) if callable(reply) else reply


def by_schema(text: str, query: str) -> Reply:
    """A rule answering each kind of agent request from its schema: the rewrite gets `query`, a part
    answer `text` citing the first passage offered, a research step gives up, operands pick the first two."""

    def rule(messages: list[dict[str, Any]], schema: dict[str, Any] | None) -> str:
        props = (schema or {}).get("properties", {})
        if "query" in props:
            return json.dumps({"query": query})
        if "citations" in props:
            return part_reply(text, [props["citations"]["items"]["enum"][0]])
        if "items" in props:
            return json.dumps({"items": re.findall(r"\b[A-Z][\w-]+", messages[-1]["content"])[:2]})
        if "a" in props:
            numbers = props["a"]["properties"]["number"]["enum"]
            return json.dumps(
                {"a": {"name": "a", "number": numbers[0]}, "b": {"name": "b", "number": numbers[1]}}
            )
        return step_reply("give_up", "")

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


def part_reply(text: str, citations: list[int]) -> str:
    return json.dumps({"text": text, "citations": citations})


def step_reply(action: str, arg: str, thought: str = "ok") -> str:
    return json.dumps({"thought": thought, "action": action, "input": arg})
