"""Typed results of the MCP tools.

Why pydantic models: the SDK publishes each tool's model as its `outputSchema` and checks every
`structuredContent` against it, so a client (or a test) can rely on the fields. The fields are those of
the CLI's JSON (`ra search --json`, `ra ask --json`), built from the same `to_json` methods, plus the
`document_id` that names a document to the `read` tool and the `ra://documents/{id}` resources.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

# [page, x0, y0, x1, y1] in PDF points, origin bottom left: where a passage or quote is on its page
Box = list[float]


class DocumentMetaOut(BaseModel):
    """What a document is, bibliographically; empty fields mean "not known"."""

    title: str = ""
    authors: list[str] = Field(default_factory=list)
    year: int | None = None
    doi: str = ""
    arxiv: str = ""


class Passage(BaseModel):
    """One search hit with its full provenance (`text == document_text[start:end]`)."""

    chunk_id: str
    document_id: str = Field(description="id of the document for `read` and ra://documents/{id}")
    score: float
    text: str
    source: str
    page: int | None
    start: int
    end: int
    line_start: int
    line_end: int
    section: str
    boxes: list[Box]
    document: DocumentMetaOut


class SearchResult(BaseModel):
    query: str
    mode: str
    k: int
    hits: list[Passage]


class SentenceOut(BaseModel):
    """An answer sentence, the citation ids it rests on, and the grounding checker's verdict."""

    text: str
    citations: list[int]
    verdict: str | None = Field(None, description="supported | weak | unsupported (None: not checked)")
    support: float | None = None
    kind: str = "answer"
    part: int | None = None


class CitationOut(BaseModel):
    """One [id] of the answer: the verbatim quote, where it is (offsets, lines, boxes) and its document."""

    id: int
    kind: str = Field(description="passage | computed")
    source: str
    document_id: str | None = None
    page: int | None
    start: int | None
    end: int | None
    quote: str
    chunk_id: str | None
    passage: str
    passage_start: int | None
    part: int | None
    document: DocumentMetaOut | None
    lines: list[int] | None
    boxes: list[Box]
    code: str | None = None
    output: str | None = None
    operands: list[dict[str, Any]] | None = None


class AskResult(BaseModel):
    question: str
    answer: str = Field(description="the answer with [n] citation markers")
    abstained: bool
    abstain_reason: str | None
    sentences: list[SentenceOut]
    citations: list[CitationOut]


class ReadResult(BaseModel):
    """A span of one document's extracted text, at most `mcp.max_read_chars` long."""

    document_id: str
    source: str
    document: DocumentMetaOut
    start: int
    end: int
    length: int = Field(description="characters in the whole document")
    page: int | None
    line_start: int
    text: str
    truncated: bool = Field(description="the span asked for was longer than the limit: read on from `end`")
    chunk_ids: list[str] = Field(default_factory=list, description="the passages the span covers")


class DocumentEntry(BaseModel):
    id: str
    uri: str = Field(description="ra://documents/{id}: metadata; add /text for the text")
    source: str
    kind: str
    pages: int
    chunks: int
    document: DocumentMetaOut


class DocumentList(BaseModel):
    documents: list[DocumentEntry]


class SkippedFile(BaseModel):
    path: str
    reason: str


class IngestResult(BaseModel):
    """`ra ingest --json`'s report of one ingest."""

    index: str
    files_added: int
    files_updated: int
    files_unchanged: int
    files_removed: int
    pages: int
    chunks: int
    chunks_embedded: int
    skipped: list[SkippedFile]
    seconds: float
    committed: bool
