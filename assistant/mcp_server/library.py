"""What the MCP tools and resources do, without MCP: search, read, list, ingest over one index.

Why a class of its own: the server is long-lived, so the index is opened once per committed generation
(what `ra ingest` commits is served by the next call, as in the resident service) rather than per call, and
every argument a client sends is checked here before it reaches the index. A client is a model that may
have read a hostile document, so each check assumes the worst: ids are looked up, never turned into paths;
sizes are bounded; ingest reads only under the folders the user named. Errors are `UserFacingError`s with
the CLI's kind of one-line message; the server turns them into MCP errors.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from assistant.index_access import index_config, open_index
from assistant.mcp_server.models import (
    DocumentEntry,
    DocumentList,
    DocumentMetaOut,
    IngestResult,
    Passage,
    ReadResult,
    SearchResult,
    SkippedFile,
)
from assistant.settings import Settings
from index.config import RETRIEVAL_MODES
from index.documents import DocumentMeta
from index.errors import UserFacingError
from index.store import read_manifest

if TYPE_CHECKING:
    from index.ingest import Progress
    from index.search import HybridIndex

DOCUMENT_URI = "ra://documents/{id}"
MAX_ID_CHARS = 100  # chunk ids are 18 characters, document ids 16: anything longer is not one
MAX_PATH_CHARS = 4096
MAX_CONTEXT = 3  # passages read on each side of a chunk


class BadRequest(UserFacingError):
    """An argument out of range or of the wrong form; the message says what is accepted."""


class NotFound(UserFacingError):
    """An id or a path that names nothing in the index (or on disk, for ingest)."""


class IngestDisabled(UserFacingError):
    """The ingest tool is off (the default); the message says how to turn it on."""


def document_id(source: str) -> str:
    """A document's id: stable while its path is (a new version of the file keeps it), and no path."""
    return hashlib.sha256(source.encode("utf-8", "surrogateescape")).hexdigest()[:16]


def document_uri(doc_id: str) -> str:
    return DOCUMENT_URI.format(id=doc_id)


def shown(value: str, limit: int = 60) -> str:
    """A client's value quoted in a message: one line, and never the whole of a huge one."""
    clipped = value if len(value) <= limit else value[:limit] + "…"
    return repr(clipped)


def _meta_out(meta: DocumentMeta | None) -> DocumentMetaOut:
    return DocumentMetaOut.model_validate((meta or DocumentMeta()).to_json())


class Library:
    """The index named by the settings, opened on first use and again after each committed ingest."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._index: HybridIndex | None = None
        self._ids: dict[str, str] = {}  # document id -> manifest key, for the open generation

    # -- the index -------------------------------------------------------------------------------------
    def index(self) -> HybridIndex:
        """The committed generation; IndexNotFound (one line: how to build one) when there is none."""
        manifest = read_manifest(self.settings.index.dir)
        with self._lock:
            if (
                self._index is not None
                and manifest is not None
                and self._index.manifest.generation == manifest.generation
            ):
                return self._index
        index = open_index(self.settings)
        with self._lock:
            self._index = index
            self._ids = {document_id(key): key for key in index.manifest.files}
        return index

    def source_of(self, doc_id: str) -> tuple[HybridIndex, str]:
        """The index and the manifest key of a document id; only ids of indexed documents resolve."""
        index = self.index()
        with self._lock:
            source = self._ids.get(doc_id) if len(doc_id) <= MAX_ID_CHARS else None
        if source is None:
            raise NotFound(f"no document with id {shown(doc_id)} in the index: list_documents gives the ids")
        return index, source

    # -- tools -----------------------------------------------------------------------------------------
    def search(self, query: str, k: int | None = None, mode: str | None = None) -> SearchResult:
        q = query.strip()
        limit = self.settings.agent.max_question_chars
        if not q:
            raise BadRequest("empty query: pass the text to search for, e.g. 'classifier-free guidance'")
        if len(q) > limit:
            raise BadRequest(
                f"the query has {len(q):,} characters, more than agent.max_question_chars ({limit:,}): "
                "search for something shorter"
            )
        k = self.settings.retrieval.k if k is None else k
        if not 1 <= k <= self.settings.mcp.max_k:
            raise BadRequest(f"k must be between 1 and {self.settings.mcp.max_k} (setting mcp.max_k)")
        mode = mode or self.settings.retrieval.mode
        if mode not in RETRIEVAL_MODES:
            raise BadRequest(
                f"unknown mode {shown(mode)}: use {', '.join(RETRIEVAL_MODES[:-1])} or {RETRIEVAL_MODES[-1]}"
            )
        hits = self.index().search(q, k=k, mode=mode)  # type: ignore[arg-type]  # checked above
        passages = [
            Passage.model_validate(h.to_json() | {"document_id": document_id(h.chunk.source)}) for h in hits
        ]
        return SearchResult(query=q, mode=mode, k=k, hits=passages)

    def read_chunk(self, chunk_id: str, context: int = 1) -> ReadResult:
        """The passage `chunk_id` with `context` passages on each side, as one exact span of the document."""
        if not 0 <= context <= MAX_CONTEXT:
            raise BadRequest(f"context must be between 0 and {MAX_CONTEXT} passages on each side")
        index = self.index()
        chunks = (
            index.neighbours(chunk_id, before=context, after=context) if len(chunk_id) <= MAX_ID_CHARS else []
        )
        target = next((c for c in chunks if c.chunk_id == chunk_id), None)
        if target is None:
            raise NotFound(f"no passage with chunk id {shown(chunk_id)}: use a chunk_id from search results")
        lo, hi = chunks[0].start, chunks[-1].end
        limit = self.settings.mcp.max_read_chars
        truncated = hi - lo > limit
        if truncated:  # keep the passage asked for, and as much around it as fits
            first, last = lo, hi
            lo = max(first, target.start - max(0, limit - (target.end - target.start)) // 2)
            hi = min(last, lo + limit)
            lo = max(first, hi - limit)
        ids = [c.chunk_id for c in chunks if c.start < hi and c.end > lo]
        text = self._text(index, target.source)
        return self._span(index, target.source, text, lo, hi, truncated=truncated, chunk_ids=ids)

    def read_document(self, doc_id: str, start: int | None = None, end: int | None = None) -> ReadResult:
        """Characters [start, end) of a document's extracted text, at most `mcp.max_read_chars` of them."""
        index, source = self.source_of(doc_id)
        text = self._text(index, source)
        length = len(text)
        limit = self.settings.mcp.max_read_chars
        start = 0 if start is None else start
        end = min(length, start + limit) if end is None else end
        if not 0 <= start < end <= length:
            raise BadRequest(
                f"start and end must satisfy 0 <= start < end <= {length} (the document's length in characters)"
            )
        truncated = end - start > limit
        return self._span(index, source, text, start, min(end, start + limit), truncated=truncated)

    def documents(self) -> DocumentList:
        index = self.index()
        return DocumentList(documents=[self._entry(index, key) for key in index.manifest.files])

    def document(self, doc_id: str) -> DocumentEntry:
        index, source = self.source_of(doc_id)
        return self._entry(index, source)

    def document_text(self, doc_id: str) -> str:
        """The whole extracted text (pages joined by form feeds), cut at `mcp.max_document_chars`."""
        index, source = self.source_of(doc_id)
        text = self._text(index, source)
        limit = self.settings.mcp.max_document_chars
        if len(text) <= limit:
            return text
        return (
            text[:limit] + f"\n[… {len(text) - limit:,} more characters: call read with "
            f"document_id={doc_id!r}, start={limit}]"
        )

    def ingest(self, path: str, progress: Progress | None = None) -> IngestResult:
        """`ra ingest PATH` for a file or folder under `mcp.ingest_roots`, when `mcp.allow_ingest` is on."""
        from index.ingest import ingest_paths
        from index.loaders import iter_files

        roots = self._ingest_roots()
        target = self._inside(path, roots)
        files: list[Path] = []
        outside: list[SkippedFile] = []
        for file, _ in iter_files([target]):  # a link out of the folder must not take ingest with it
            try:
                real = file.resolve()
            except (OSError, RuntimeError):
                real = file
            if any(real.is_relative_to(r) for r in roots):
                files.append(file)
            else:
                outside.append(SkippedFile(path=str(file), reason="a link to outside mcp.ingest_roots"))
        if not files:
            raise BadRequest(f"nothing to ingest under {shown(path)}: no files inside mcp.ingest_roots")
        report = ingest_paths(files, self.settings.index.dir, index_config(self.settings), progress=progress)
        data = report.to_json()
        data["skipped"] = [*data["skipped"], *(s.model_dump() for s in outside)]
        return IngestResult.model_validate(data)

    # -- helpers ---------------------------------------------------------------------------------------
    def _ingest_roots(self) -> list[Path]:
        how = (
            'set mcp.allow_ingest = true and mcp.ingest_roots = ["/path/to/papers"] in ra.toml '
            "(or RA_MCP__ALLOW_INGEST=true and RA_MCP__INGEST_ROOTS='[\"/path/to/papers\"]'), "
            "or start the server with `ra mcp --allow-ingest /path/to/papers`"
        )
        if not self.settings.mcp.allow_ingest:
            raise IngestDisabled(f"ingest is turned off for MCP clients: {how}")
        if not self.settings.mcp.ingest_roots:
            raise IngestDisabled(f"ingest has no folders it may read (mcp.ingest_roots is empty): {how}")
        return [r.expanduser().resolve() for r in self.settings.mcp.ingest_roots]

    @staticmethod
    def _inside(path: str, roots: list[Path]) -> Path:
        """The resolved path, when it lies under one of the roots (relative paths are under the first)."""
        if not path.strip() or len(path) > MAX_PATH_CHARS or "\x00" in path:
            raise BadRequest("path must be a file or folder name, at most 4096 characters")
        candidate = Path(path).expanduser()
        try:
            resolved = (candidate if candidate.is_absolute() else roots[0] / candidate).resolve()
        except (OSError, RuntimeError) as exc:
            raise BadRequest(f"cannot resolve {shown(path)}: {exc}") from None
        if not any(resolved.is_relative_to(r) for r in roots):
            folders = ", ".join(str(r) for r in roots)
            raise BadRequest(
                f"{shown(path)} is outside the folders ingest may read ({folders}: mcp.ingest_roots)"
            )
        if not resolved.exists():
            raise NotFound(f"no such file or folder: {shown(path)}")
        return resolved

    @staticmethod
    def _text(index: HybridIndex, source: str) -> str:
        text = index.document_text(source)
        if text is None:
            raise NotFound("the index holds no text for this document: run `ra ingest` on it again")
        return text

    @staticmethod
    def _span(
        index: HybridIndex,
        source: str,
        text: str,
        lo: int,
        hi: int,
        *,
        truncated: bool,
        chunk_ids: list[str] | None = None,
    ) -> ReadResult:
        # PDF pages are joined with form feeds, so a page is one more than the form feeds before it.
        page = text.count("\f", 0, lo) + 1 if "\f" in text else None
        return ReadResult(
            document_id=document_id(source),
            source=source,
            document=_meta_out(index.document(source)),
            start=lo,
            end=hi,
            length=len(text),
            page=page,
            line_start=text.count("\n", 0, lo) + 1,
            text=text[lo:hi],
            truncated=truncated,
            chunk_ids=chunk_ids or [],
        )

    @staticmethod
    def _entry(index: HybridIndex, key: str) -> DocumentEntry:
        entry = index.manifest.files[key]
        doc_id = document_id(key)
        return DocumentEntry(
            id=doc_id,
            uri=document_uri(doc_id),
            source=key,
            kind=entry.kind,
            pages=entry.pages,
            chunks=entry.chunks,
            document=_meta_out(DocumentMeta.from_json(entry.document)),
        )
