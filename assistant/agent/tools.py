"""The agent's tools over our objects, the evidence ledger they fill, and their typed results.

Every passage a tool shows the model gets a stable number [n] in the run's ledger (the same passage keeps
its number), and only ledger entries can be cited, so a citation always points at text the agent saw. A
tool returns a `ToolResult`: the text the model reads, the evidence it added and flags the loop acts on,
never a string the caller has to parse.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from assistant.agent.citations import passage_sentences
from assistant.agent.prompts import render
from assistant.agent.records import Evidence, Operand
from assistant.sandbox import SandboxLimits, SandboxUnavailable, run_python
from index.types import Chunk

if TYPE_CHECKING:
    from langchain_core.tools import BaseTool

    from index.search import HybridIndex

_READ_MARGIN = 400  # characters of context around a "source#start-end" span


def normalise_query(query: str) -> str:
    """Searches that differ only in case, punctuation, spacing or word order count as the same search."""
    return " ".join(sorted(set(re.findall(r"\w+", query.lower()))))


def near_duplicate(a: str, b: str, threshold: float = 0.75) -> bool:
    """Normalised queries sharing most of their words: a small model's paraphrase of an earlier search."""
    wa, wb = set(a.split()), set(b.split())
    return bool(wa and wb) and len(wa & wb) / len(wa | wb) >= threshold


@dataclass(frozen=True, slots=True)
class ToolResult:
    """What a tool did: `text` for the model, the ledger entries it showed (new or already numbered)
    and PNG figures of a code run."""

    text: str
    evidence: tuple[Evidence, ...] = ()
    figures: tuple[bytes, ...] = ()


@dataclass(frozen=True, slots=True)
class SpanRef:
    """Characters `start`..`end` of a document (what a citation of an earlier answer points at)."""

    source: str
    start: int
    end: int


# What `read` takes: a ledger number, an index chunk id, or a document span. Callers build the typed
# reference; nothing parses a reference out of a model's free text.
ReadRef = int | str | SpanRef


@dataclass
class Ledger:
    """Numbered evidence of one run, in the order first seen."""

    items: dict[int, Evidence] = field(default_factory=dict)
    _by_key: dict[str, int] = field(default_factory=dict)

    def add_chunk(self, chunk: Chunk, *, part: int | None, query: str | None, tool: str) -> Evidence:
        c = chunk
        said, addressed = passage_sentences(c.text)
        return self._add(
            c.chunk_id,
            Evidence(
                len(self.items) + 1,
                "passage",
                c.text,
                c.source,
                c.page,
                c.start,
                c.end,
                c.chunk_id,
                part=part,
                query=query,
                tool=tool,
                document=c.document,
                line_start=c.line_start,
                sentences=said,
                directives=addressed,
            ),
        )

    def add_span(
        self, source: str, page: int | None, start: int, end: int, text: str, part: int | None, **where: Any
    ) -> Evidence:
        """`where`: the span's `document` and `line_start`, when known."""
        said, addressed = passage_sentences(text)
        ev = Evidence(
            len(self.items) + 1,
            "passage",
            text,
            source,
            page,
            start,
            end,
            part=part,
            tool="read",
            sentences=said,
            directives=addressed,
            **where,
        )
        return self._add(f"{source}#{start}-{end}", ev)

    def add_computed(
        self, code: str, output: str, *, part: int | None, operands: tuple[Operand, ...], sandboxed: bool
    ) -> Evidence:
        ev = Evidence(
            len(self.items) + 1,
            "computed",
            output,
            code=code,
            part=part,
            tool="python",
            operands=operands,
            sandboxed=sandboxed,
        )
        return self._add(f"python:{ev.id}", ev)

    def _add(self, key: str, ev: Evidence) -> Evidence:
        if key in self._by_key:
            return self.items[self._by_key[key]]
        self.items[ev.id] = ev
        self._by_key[key] = ev.id
        return ev

    def __len__(self) -> int:
        return len(self.items)


def format_evidence(ev: Evidence) -> str:
    """`[n] file p.X: text` on one line, whitespace collapsed, without text addressed to the reader."""
    return f"[{ev.id}] {ev.label()}: {' '.join(ev.citable_text().split())}"


def format_passage(ev: Evidence, chunk: Chunk) -> str:
    """A passage line, plus its code blocks verbatim (collapsing whitespace would break the code)."""
    blocks = [
        f"code block ({b.get('lang') or 'text'}, section '{chunk.section}'):\n```\n{b['code']}\n```"
        for b in chunk.meta.get("code", [])
    ]
    return "\n".join([format_evidence(ev), *blocks])


class Toolbox:
    """search / read / python over one index, filling one ledger; remembers the searches already run."""

    def __init__(
        self,
        index: HybridIndex,
        *,
        k: int,
        sandbox: bool = True,
        sandbox_limits: SandboxLimits | None = None,
        observation_chars: int = 1500,
    ) -> None:
        self.index = index
        self.k = k
        self.sandbox = sandbox
        self.sandbox_limits = sandbox_limits or SandboxLimits()
        self.observation_chars = observation_chars
        self.ledger = Ledger()
        self.searched: set[str] = set()

    def search(self, query: str, part: int | None = None, *, planned: bool = False) -> ToolResult:
        """Hybrid search; new passages get numbers, already-seen ones keep theirs. A model's search that
        repeats an earlier one is not run; a planned one always runs (parts may share words)."""
        key = normalise_query(query)
        if not key:
            return ToolResult(render("obs_empty_query.md"))
        if not planned and any(near_duplicate(key, done) for done in self.searched):
            return ToolResult(render("obs_already_searched.md", query=query))
        self.searched.add(key)
        hits = self.index.search(query, k=self.k)
        if not hits:
            return ToolResult(render("obs_no_passages.md"))
        shown = [
            (self.ledger.add_chunk(h.chunk, part=part, query=query, tool="search"), h.chunk) for h in hits
        ]
        return ToolResult("\n".join(format_passage(ev, c) for ev, c in shown), tuple(ev for ev, _ in shown))

    def read(self, ref: ReadRef, part: int | None = None) -> ToolResult:
        """Context around a passage: its ledger number, its chunk id, or a document span."""
        if isinstance(ref, int):
            ev = self.ledger.items.get(ref)
            if ev is None or ev.chunk_id is None:
                return ToolResult(render("obs_no_such_passage.md", ref=ref))
            ref = ev.chunk_id
        if isinstance(ref, SpanRef):
            return self._read_span(ref.source, ref.start, ref.end, part)
        chunks = self.index.neighbours(ref, before=1, after=1)
        if not chunks:
            return ToolResult(render("obs_no_such_passage.md", ref=ref))
        shown = [(self.ledger.add_chunk(c, part=part, query=None, tool="read"), c) for c in chunks]
        return ToolResult("\n".join(format_passage(ev, c) for ev, c in shown), tuple(ev for ev, _ in shown))

    def python(self, code: str, part: int | None = None, operands: tuple[Operand, ...] = ()) -> ToolResult:
        """Run code in the sandbox; a successful printout becomes citable computed evidence."""
        try:
            result = run_python(code, self.sandbox_limits)
        except SandboxUnavailable as exc:
            return ToolResult(render("obs_sandbox_unavailable.md", reason=exc))
        out = _clip(result.stdout.strip(), self.observation_chars)
        err = _clip(result.stderr.strip(), self.observation_chars)
        if result.ok and out:
            ev = self.ledger.add_computed(code, out, part=part, operands=operands, sandboxed=True)
            text = render(
                "obs_code_output.md", id=ev.id, stdout=out, stderr=f"\nstderr: {err}" if err else ""
            )
            return ToolResult(text, (ev,), tuple(result.images))
        status = result.killed_reason or f"exit code {result.exit_code}"
        text = render("obs_code_failed.md", status=status, stdout=out or "(empty)", stderr=err or "(empty)")
        return ToolResult(text, figures=tuple(result.images))

    def langchain_tools(self) -> dict[str, BaseTool]:
        """search / read (and python when the sandbox is enabled) as LangChain tools returning the model
        text, for LangChain agents built on our index."""
        from langchain_core.tools import StructuredTool

        def search(query: str) -> str:
            return self.search(query).text

        def read(passage: int) -> str:
            return self.read(passage).text

        def python(code: str) -> str:
            return self.python(code).text

        funcs = [search, read] + ([python] if self.sandbox else [])
        return {
            f.__name__: StructuredTool.from_function(
                func=f, name=f.__name__, description=render(f"tool_{f.__name__}.md")
            )
            for f in funcs
        }

    def _read_span(self, source: str, start: int, end: int, part: int | None) -> ToolResult:
        text = self.index.document_text(source)
        if text is None:
            return ToolResult(render("obs_no_document.md", source=source))
        if not 0 <= start < end <= len(text):
            span = f"{start}-{end}"
            return ToolResult(render("obs_span_outside.md", span=span, source=source, length=len(text)))
        lo, hi = max(0, start - _READ_MARGIN), min(len(text), end + _READ_MARGIN)
        # PDF pages are joined with form feeds, so the page is one more than the form feeds before.
        page = text.count("\f", 0, lo) + 1 if "\f" in text else None
        ev = self.ledger.add_span(
            source,
            page,
            lo,
            hi,
            text[lo:hi],
            part,
            document=self.index.document(source),
            line_start=text.count("\n", 0, lo) + 1,
        )
        return ToolResult(format_evidence(ev), (ev,))


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + f" … ({len(text) - limit} more characters)"
