"""How the CLI and UI name a source: the line a researcher pastes, and BibTeX for what was cited.

The formatting itself lives with the document record (`index.documents`); this module adapts search hits
and citations to it, so `ra search`, `ra ask`, `ra chat`, the UI cards and the Markdown export agree.
"""

from __future__ import annotations

from collections.abc import Iterable

from assistant.agent.records import Citation
from index.documents import DocumentMeta, bibtex_entries, format_source
from index.types import Chunk

COMPUTED_LABEL = "python (computed)"


def chunk_label(chunk: Chunk) -> str:
    """'Title — Authors (year), p. N' for a PDF chunk, 'Title, lines a–b' for a text file's."""
    lines = (chunk.line_start, chunk.line_end) if chunk.page is None else None
    return format_source(_meta(chunk.document, chunk.title), chunk.source, page=chunk.page, lines=lines)


def citation_label(citation: Citation) -> str:
    """The same for a citation (a computed result is named as such)."""
    if citation.kind == "computed":
        return COMPUTED_LABEL
    lines = citation.lines if citation.page is None else None
    return format_source(citation.document, citation.source, page=citation.page, lines=lines)


def source_line(c: Citation) -> str:
    """A citation as a line of a Sources list: `[n] Title — Authors (year), p. N: “quote”`, or the code
    and output of a computation."""
    if c.kind == "computed":
        code = "\n".join("      " + line for line in (c.code or "").splitlines())
        where = "sandbox" if c.evidence.sandboxed else "in process (no sandbox here)"
        return f"[{c.id}] python ({where}), output {c.output!r}:\n{code}"
    flag = set_aside(c)
    return f"[{c.id}] {citation_label(c)}: \u201c{c.quote}\u201d" + (f"\n      {flag}" if flag else "")


def set_aside(c: Citation) -> str:
    """The warning for a cited passage that also holds text addressed to the assistant (never evidence,
    see grounding/directives.py): a reader should know the document tried."""
    spans = c.evidence.directives
    if not spans:
        return ""
    lo, hi = spans[0]
    first = " ".join(c.evidence.text[lo:hi].split())
    first = first if len(first) <= 80 else first[:79] + "\u2026"
    more = f" and {len(spans) - 1} more" if len(spans) > 1 else ""
    return f"set aside, addressed to the assistant and not used as evidence: \u201c{first}\u201d{more}"


def citations_bibtex(citations: Iterable[Citation]) -> str:
    """BibTeX entries of the documents cited (each document once, in order of first citation)."""
    seen: dict[str, DocumentMeta] = {}
    for c in citations:
        if c.kind == "passage" and c.source not in seen:
            seen[c.source] = c.document or DocumentMeta()
    return bibtex_entries([(meta, source) for source, meta in seen.items()])


def _meta(document: DocumentMeta | None, title: str) -> DocumentMeta:
    return document if document is not None else DocumentMeta(title=title)
