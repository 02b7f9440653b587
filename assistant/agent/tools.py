"""The agent's tools as LangChain tools over our objects, and the numbered evidence they produce.

Every passage a tool shows the model gets a stable number [n] (the same passage keeps its number), and
only numbered evidence can be cited, so a citation always points at text the agent actually saw.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from langchain_core.tools import BaseTool, StructuredTool

from assistant.agent.prompts import prompt_text
from assistant.agent.records import Evidence
from assistant.sandbox import SandboxLimits, SandboxUnavailable, run_python
from index.types import Chunk

if TYPE_CHECKING:
    from index.search import HybridIndex

_SPAN_REF = re.compile(r"^(?P<source>.+)#(?P<start>\d+)-(?P<end>\d+)$")
_NUMBER_REF = re.compile(r"^\[?(\d+)\]?$")
_READ_MARGIN = 400  # characters of context around a "source#start-end" span
ALREADY_SEARCHED = "You already ran the search"


def normalise_query(query: str) -> str:
    """Searches that differ only in case, punctuation, spacing or word order count as the same search."""
    return " ".join(sorted(set(re.findall(r"\w+", query.lower()))))


def near_duplicate(a: str, b: str, threshold: float = 0.75) -> bool:
    """Normalised queries sharing most of their words: a small model's paraphrase of an earlier search."""
    wa, wb = set(a.split()), set(b.split())
    return bool(wa and wb) and len(wa & wb) / len(wa | wb) >= threshold


@dataclass
class Evidences:
    """Numbered evidence of one run, in the order first seen."""

    items: dict[int, Evidence] = field(default_factory=dict)
    _by_key: dict[str, int] = field(default_factory=dict)

    def add_passage(
        self,
        key: str,
        source: str,
        page: int | None,
        start: int,
        end: int,
        text: str,
        chunk_id: str | None,
        **where: Any,
    ) -> Evidence:
        """`where`: the passage's `document` and `line_start`, when known."""
        if key in self._by_key:
            return self.items[self._by_key[key]]
        ev = Evidence(len(self.items) + 1, "passage", text, source, page, start, end, chunk_id, **where)
        return self._store(key, ev)

    def add_chunk(self, chunk: Chunk) -> Evidence:
        c = chunk
        return self.add_passage(
            c.chunk_id,
            c.source,
            c.page,
            c.start,
            c.end,
            c.text,
            c.chunk_id,
            document=c.document,
            line_start=c.line_start,
        )

    def add_computed(self, code: str, output: str) -> Evidence:
        ev = Evidence(len(self.items) + 1, "computed", output, code=code)
        return self._store(f"python:{ev.id}", ev)

    def _store(self, key: str, ev: Evidence) -> Evidence:
        self.items[ev.id] = ev
        self._by_key[key] = ev.id
        return ev

    def __len__(self) -> int:
        return len(self.items)


def format_evidence(ev: Evidence) -> str:
    """`[n] file p.X (chunk id)` and the text on one line, whitespace collapsed."""
    text = " ".join(ev.text.split())
    ref = f" (chunk {ev.chunk_id})" if ev.chunk_id else ""
    return f"[{ev.id}] {ev.label()}{ref}: {text}"


def format_passage(ev: Evidence, chunk: Chunk) -> str:
    """A passage line, plus its code blocks verbatim (collapsing whitespace would break the code), so the
    agent can hand a snippet from the documents to the python tool as it stands."""
    blocks = [
        f"code block ({b.get('lang') or 'text'}, section '{chunk.section}'):\n```\n{b['code']}\n```"
        for b in chunk.meta.get("code", [])
    ]
    return "\n".join([format_evidence(ev), *blocks])


class Toolbox:
    """search / read / python / finish over one index; remembers the searches already run."""

    def __init__(
        self,
        index: HybridIndex,
        *,
        k: int = 5,
        sandbox: bool = True,
        sandbox_limits: SandboxLimits | None = None,
        observation_chars: int = 1500,
    ) -> None:
        self.index = index
        self.k = k
        self.sandbox = sandbox
        self.sandbox_limits = sandbox_limits or SandboxLimits()
        self.observation_chars = observation_chars
        self.evidence = Evidences()
        self.searched: set[str] = set()
        self.figures: list[bytes] = []  # PNGs of the last python run; the loop moves them into its Step

    # -- the tools ------------------------------------------------------------------------------------
    def search(self, query: str) -> str:
        """Hybrid search; new passages get numbers, already-seen ones keep theirs."""
        key = normalise_query(query)
        if not key:
            return "The search query is empty: search for keywords from the question."
        if any(near_duplicate(key, done) for done in self.searched):
            return f"{ALREADY_SEARCHED} '{query}'. Search for something different, read a passage, or finish."
        self.searched.add(key)
        hits = self.index.search(query, k=self.k)
        if not hits:
            return "No passages matched."
        return "\n".join(format_passage(self.evidence.add_chunk(h.chunk), h.chunk) for h in hits)

    def read(self, ref: str) -> str:
        """Context around a passage: its number [n], its chunk id, or `source#start-end`."""
        ref = ref.strip()
        if m := _NUMBER_REF.match(ref):
            ev = self.evidence.items.get(int(m.group(1)))
            if ev is None or ev.chunk_id is None:
                return f"There is no passage [{m.group(1)}] to read: use a number shown by a search."
            ref = ev.chunk_id
        if m := _SPAN_REF.match(ref):
            return self._read_span(m.group("source"), int(m.group("start")), int(m.group("end")))
        chunks = self.index.neighbours(ref, before=1, after=1)
        if not chunks:
            return f"No passage has the id '{ref}': use a passage number like 3 or a chunk id from a search."
        return "\n".join(format_passage(self.evidence.add_chunk(c), c) for c in chunks)

    def python(self, code: str) -> str:
        """Run code in the sandbox; a successful printout becomes citable computed evidence."""
        try:
            result = run_python(code, self.sandbox_limits)
        except SandboxUnavailable as exc:
            return f"The python tool is unavailable here ({exc}). Work from the passages instead."
        self.figures = list(result.images)
        out = _clip(result.stdout.strip(), self.observation_chars)
        err = _clip(result.stderr.strip(), self.observation_chars)
        if result.ok and out:
            ev = self.evidence.add_computed(code, out)
            return f"[{ev.id}] python result: {out}" + (f"\nstderr: {err}" if err else "")
        status = result.killed_reason or f"exit code {result.exit_code}"
        return f"The code failed ({status}).\nstdout: {out or '(empty)'}\nstderr: {err or '(empty)'}"

    def finish(self, answer: str) -> str:
        """Marks the end of research; the cited answer is generated separately from the evidence."""
        return answer

    # -- plumbing -------------------------------------------------------------------------------------
    def tools(self) -> dict[str, BaseTool]:
        """The LangChain tools offered to the model, by name (python only when the sandbox is enabled)."""
        funcs = [self.search, self.read] + ([self.python] if self.sandbox else []) + [self.finish]
        return {
            f.__name__: StructuredTool.from_function(
                func=f, name=f.__name__, description=prompt_text(f"tool_{f.__name__}.md")
            )
            for f in funcs
        }

    def _read_span(self, source: str, start: int, end: int) -> str:
        text = self.index.document_text(source)
        if text is None:
            return f"No indexed document is named '{source}': use a source shown by a search."
        if not 0 <= start < end <= len(text):
            return f"The span {start}-{end} is outside '{source}' (length {len(text)})."
        lo, hi = max(0, start - _READ_MARGIN), min(len(text), end + _READ_MARGIN)
        # PDF pages are joined with form feeds, so the page is one more than the form feeds before.
        page = text.count("\f", 0, lo) + 1 if "\f" in text else None
        ev = self.evidence.add_passage(
            f"{source}#{lo}-{hi}",
            source,
            page,
            lo,
            hi,
            text[lo:hi],
            None,
            document=self.index.document(source),
            line_start=text.count("\n", 0, lo) + 1,
        )
        return format_evidence(ev)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + f" … ({len(text) - limit} more characters)"
