"""Plain records shared by every index module (loaders, chunker, store, search)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from index.documents import DocumentMeta
from index.pdf_boxes import quote_boxes


@dataclass(frozen=True, slots=True)
class Page:
    """One page of extracted text. `number` is 1-based for PDFs and None for page-less formats."""

    number: int | None
    text: str
    # whitespace-free texts of lines the layout set as headings (larger font); PDFs only
    headings: frozenset[str] = frozenset()
    # tables found on the page: {"caption": "Table 5: ...", "rows": [[cell, ...], ...]}; PDFs only
    tables: tuple[dict[str, Any], ...] = ()


@dataclass(slots=True)
class LoadedDocument:
    """A source file turned into readable text, page by page.

    `text` is the pages joined with PAGE_SEPARATOR; `page_starts[i]` is where page i begins in `text`,
    so every chunk span can be mapped back to a page.
    """

    source: str
    title: str
    kind: str  # "pdf" | "txt" | "md" | "html"
    pages: list[Page]
    warnings: list[str] = field(default_factory=list)
    meta: DocumentMeta = field(default_factory=DocumentMeta)

    PAGE_SEPARATOR = "\n\f\n"

    @property
    def text(self) -> str:
        return self.PAGE_SEPARATOR.join(p.text for p in self.pages)

    @property
    def page_starts(self) -> list[int]:
        starts, pos = [], 0
        for p in self.pages:
            starts.append(pos)
            pos += len(p.text) + len(self.PAGE_SEPARATOR)
        return starts


@dataclass(slots=True)
class Chunk:
    """A retrievable passage with exact provenance.

    `start`/`end` are character offsets into the document's extracted text (LoadedDocument.text), so
    `doc.text[start:end] == text` always holds; `line_start`/`line_end` are 1-based, inclusive.
    """

    chunk_id: str
    source: str
    title: str
    page: int | None
    start: int
    end: int
    line_start: int
    line_end: int
    text: str
    section: str = ""
    meta: dict[str, Any] = field(default_factory=dict)  # code blocks, tables, section role
    document: DocumentMeta | None = None  # the document's record, attached when read from an index


@dataclass(slots=True)
class SearchHit:
    """A chunk returned by a search, with the score of the mode that ranked it."""

    chunk: Chunk
    score: float
    rank: int

    def to_json(self) -> dict[str, Any]:
        c = self.chunk
        return {
            "chunk_id": c.chunk_id,
            "score": round(float(self.score), 6),
            "text": c.text,
            "source": c.source,
            "page": c.page,
            "start": c.start,
            "end": c.end,
            "line_start": c.line_start,
            "line_end": c.line_end,
            "section": c.section,
            # where the passage is on its PDF page(s): [page, x0, y0, x1, y1] in points, origin bottom left
            "boxes": [list(b) for b in quote_boxes(c.source, c.page, c.text)] if c.page else [],
            "document": (c.document or DocumentMeta(title=c.title)).to_json(),
        }
