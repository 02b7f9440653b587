"""The MCP wiring: tools, resources, errors and the two transports of `ra mcp`.

Each tool returns a `CallToolResult` annotated with its result model, so the SDK publishes the model as
the tool's `outputSchema`, checks the structured content against it, and the client also gets readable
text (what a chat client shows its model). A `UserFacingError` becomes an MCP tool error (`isError`, the
CLI's one-line message) or, for a resource, a JSON-RPC error; anything else is the SDK's generic "Error
executing tool" with the traceback on stderr. The blocking work (index, model) runs on worker threads.
"""

# No `from __future__ import annotations`: the SDK reads the tools' signatures, whose descriptions use
# the settings (local names a string annotation could not resolve).
import errno
import json
import logging
import socket
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from importlib.metadata import PackageNotFoundError, version
from typing import Annotated, Any

import anyio
import anyio.from_thread
import anyio.to_thread
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError, ToolError
from mcp_types import CallToolResult, InputRequiredResult, Resource, TextContent, ToolAnnotations
from pydantic import BaseModel, Field, ValidationError

from assistant.agent.records import Answer
from assistant.cli.sources import chunk_label, citation_label
from assistant.mcp_server.asking import Asker, ask_result
from assistant.mcp_server.library import MAX_CONTEXT, DocumentEntry, Library, NotFound, document_uri
from assistant.mcp_server.models import (
    AskResult,
    DocumentList,
    IngestResult,
    ReadResult,
    SearchResult,
)
from assistant.settings import Settings
from index.documents import DocumentMeta, display_path, format_source
from index.errors import UserFacingError
from index.types import Chunk

log = logging.getLogger(__name__)
HOST = "127.0.0.1"  # --http never listens beyond this machine: the index is the user's private library
NAME = "research-assistant"
INSTRUCTIONS = (
    "The researcher's own documents (papers, notes), indexed for search. Use `search` to find passages "
    "(each with its source, page and character offsets), `read` for the text around a passage or a span of "
    "a document, `list_documents` for what is indexed, and `ask` for an answer written from the documents "
    "with a verbatim quote for every citation (slow on a CPU: it reports progress). Cite sources as given."
)
READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)


class ResearchServer(MCPServer[None]):
    """MCPServer whose resource list is the index's documents as they are now (it changes with ingest)."""

    def __init__(self, library: Library, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.library = library

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[None, Any] | None = None
    ) -> CallToolResult | InputRequiredResult:
        """The SDK's call, with arguments of the wrong type refused in one line like every other refusal
        (the SDK would send pydantic's multi-line report)."""
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as exc:
            if isinstance(exc.__cause__, ValidationError):
                return tool_error(UserFacingError(wrong_arguments(name, exc.__cause__)))
            raise

    async def list_resources(self) -> list[Resource]:
        listed = await super().list_resources()
        try:
            documents = await anyio.to_thread.run_sync(self.library.documents)
        except UserFacingError:  # no index yet: nothing to list, and the tools say how to build one
            return listed
        for d in documents.documents:
            name = _document_name(d)
            listed.append(
                Resource(
                    uri=d.uri,
                    name=name,
                    description=f"metadata of {name} ({d.kind}, {d.pages} pages, {d.chunks} passages)",
                    mime_type="application/json",
                )
            )
            listed.append(
                Resource(
                    uri=d.uri + "/text",
                    name=f"{name} (text)",
                    description=f"the extracted text of {name}; PDF pages are separated by form feeds",
                    mime_type="text/plain",
                )
            )
        return listed


def build_server(settings: Settings) -> ResearchServer:
    """The server over the index the settings name (opened on first use, so it may not exist yet)."""
    library = Library(settings)
    asker = Asker(settings)

    @asynccontextmanager
    async def lifespan(_: MCPServer[None]) -> AsyncIterator[None]:
        try:
            yield None
        finally:  # stops the embedded model with the server
            await anyio.to_thread.run_sync(asker.close)

    server = ResearchServer(
        library,
        name=NAME,
        version=_version(),
        instructions=INSTRUCTIONS,
        lifespan=lifespan,
        log_level="WARNING",  # uvicorn's access log would otherwise print every request
    )

    @server.tool(annotations=READ_ONLY)
    def search(
        query: Annotated[str, Field(description="what to look for, in words")],
        k: Annotated[
            int | None,
            Field(
                description=f"number of passages, 1 to {settings.mcp.max_k} (default {settings.retrieval.k})"
            ),
        ] = None,
        mode: Annotated[
            str | None, Field(description=f"hybrid, dense or bm25 (default {settings.retrieval.mode})")
        ] = None,
    ) -> Annotated[CallToolResult, SearchResult]:
        """Search the indexed documents; each passage comes with its source, page, character offsets into
        the document's text, line numbers, section, boxes on its PDF page and the document's metadata."""
        try:
            result = library.search(query, k, mode)
        except UserFacingError as exc:
            return tool_error(exc)
        return _result(result, _search_text(result))

    @server.tool(annotations=READ_ONLY)
    def read(
        chunk_id: Annotated[str | None, Field(description="a passage's chunk_id from search results")] = None,
        document_id: Annotated[
            str | None, Field(description="a document's id (search results, list_documents)")
        ] = None,
        start: Annotated[
            int | None, Field(description="with document_id: first character (default 0)")
        ] = None,
        end: Annotated[int | None, Field(description="with document_id: end of the span (exclusive)")] = None,
        context: Annotated[
            int, Field(description=f"with chunk_id: passages on each side, 0 to {MAX_CONTEXT}")
        ] = 1,
    ) -> Annotated[CallToolResult, ReadResult]:
        """Read the text around a passage (chunk_id, with `context` passages on each side) or a span of a
        document (document_id with start/end character offsets). At most `mcp.max_read_chars` characters
        come back; `truncated` says there is more, to read from `end` on."""
        try:
            if (chunk_id is None) == (document_id is None):
                raise UserFacingError(
                    "pass either chunk_id (a passage) or document_id (a span of a document)"
                )
            if chunk_id is not None:
                if start is not None or end is not None:
                    raise UserFacingError("start and end go with document_id, not with chunk_id")
                result = library.read_chunk(chunk_id, context)
            else:
                result = library.read_document(document_id or "", start, end)
        except UserFacingError as exc:
            return tool_error(exc)
        return _result(result, _read_text(result))

    @server.tool(annotations=READ_ONLY)
    def list_documents() -> Annotated[CallToolResult, DocumentList]:
        """The indexed documents: id, source file, kind, pages, passages and bibliographic metadata."""
        try:
            result = library.documents()
        except UserFacingError as exc:
            return tool_error(exc)
        lines = [
            f"{d.id}  {_document_name(d)}  ({d.kind}, {d.pages} pages, {d.chunks} passages)"
            for d in result.documents
        ]
        return _result(result, "\n".join(lines) or "the index holds no documents")

    @server.tool(annotations=READ_ONLY)
    async def ask(
        question: Annotated[str, Field(description="the question, in words")],
        ctx: Context,
    ) -> Annotated[CallToolResult, AskResult]:
        """Answer a question from the documents, each sentence citing verbatim quotes ([n] markers) and
        checked against them; abstains when the documents do not answer. Reports progress while it works
        (a minute or more on a CPU)."""
        report = _Progress(ctx)
        try:
            answer = await anyio.to_thread.run_sync(asker.ask, question, report.from_thread)
        except UserFacingError as exc:
            return tool_error(exc)
        return _result(ask_result(answer), _answer_text(answer))

    @server.tool(
        annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False)
    )
    async def ingest(
        path: Annotated[str, Field(description="a file or folder under the folders the user allowed")],
        ctx: Context,
    ) -> Annotated[CallToolResult, IngestResult]:
        """Add or update documents in the index (PDF, txt, md, html; incremental). Off unless the user
        sets mcp.allow_ingest and names the folders it may read (mcp.ingest_roots)."""
        report = _Progress(ctx)
        try:
            result = await anyio.to_thread.run_sync(library.ingest, path, _IngestProgress(report))
        except UserFacingError as exc:
            return tool_error(exc)
        summary = (
            f"index {'updated' if result.committed else 'unchanged'}: files +{result.files_added} "
            f"~{result.files_updated} ={result.files_unchanged}  pages {result.pages}  chunks {result.chunks}  "
            f"skipped {len(result.skipped)}"
        )
        skipped = "".join(f"\nskipped {display_path(s.path)}: {s.reason}" for s in result.skipped)
        return _result(result, summary + skipped)

    @server.resource(document_uri("{id}"), mime_type="application/json", description="a document's metadata")
    def document_metadata(id: str) -> str:
        with resource_errors():
            return json.dumps(library.document(id).model_dump(mode="json"), ensure_ascii=False)

    @server.resource(document_uri("{id}") + "/text", mime_type="text/plain", description="a document's text")
    def document_text(id: str) -> str:
        with resource_errors():
            return library.document_text(id)

    return server


# -- errors --------------------------------------------------------------------------------------------
def wrong_arguments(tool: str, exc: ValidationError) -> str:
    """ "k must be an integer (got 'abc'): see the search tool's input schema" for the first wrong argument."""
    first = exc.errors()[0]
    name = ".".join(str(x) for x in first["loc"]) or "arguments"
    got = repr(first.get("input"))
    got = got if len(got) <= 40 else got[:39] + "\u2026"
    extra = f" and {len(exc.errors()) - 1} more" if len(exc.errors()) > 1 else ""
    if first["type"] == "missing":
        return f"{name} is required{extra}: see the {tool} tool's input schema"
    what = str(first["msg"]).removeprefix("Input should be ").lower()
    return f"{name} must be {what} (got {got}){extra}: see the {tool} tool's input schema"


def tool_error(exc: UserFacingError) -> CallToolResult:
    """The CLI's one-line message as an MCP tool error (`isError`: the client's model reads it and can
    correct its call). Returned rather than raised: the SDK would prefix "Error executing tool NAME"."""
    log.info("refused: %s", exc)
    return CallToolResult(content=[TextContent(type="text", text=str(exc))], is_error=True)


@contextmanager
def resource_errors() -> Iterator[None]:
    try:
        yield
    except NotFound as exc:
        raise ResourceNotFoundError(str(exc)) from None
    except UserFacingError as exc:
        raise ResourceError(str(exc)) from None


# -- progress ------------------------------------------------------------------------------------------
class _Progress:
    """Progress notifications of one tool call, sent from the worker thread that does the work."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.count = 0

    def from_thread(self, message: str) -> None:
        self.count += 1
        try:
            anyio.from_thread.run(self.ctx.report_progress, self.count, None, message)
        except Exception:  # a client gone mid-call must not end the work it asked for
            log.debug("progress not delivered: %s", message, exc_info=True)


class _IngestProgress:
    """`index.ingest`'s progress protocol (stages, then items) as progress notifications: each stage, and
    each tenth of it, so a large folder does not flood the client."""

    def __init__(self, report: _Progress) -> None:
        self.report = report
        self.stage = ""
        self.total: int | None = None
        self.done = 0
        self.said = 0

    def start(self, stage: str, total: int | None) -> None:
        self.stage, self.total, self.done, self.said = stage, total, 0, 0
        self.report.from_thread(f"{stage}: {total} to do" if total else stage)

    def advance(self, n: int = 1) -> None:
        self.done += n
        if self.total and (self.done - self.said) * 10 >= self.total:
            self.said = self.done
            self.report.from_thread(f"{self.stage}: {self.done}/{self.total}")


# -- readable text -------------------------------------------------------------------------------------
def _result(model: BaseModel, text: str) -> CallToolResult:
    return CallToolResult(
        content=[TextContent(type="text", text=text)], structured_content=model.model_dump(mode="json")
    )


def _search_text(result: SearchResult) -> str:
    if not result.hits:
        return "no matching passages"
    blocks = []
    for rank, h in enumerate(result.hits, 1):
        chunk = Chunk(
            chunk_id=h.chunk_id,
            source=h.source,
            title=h.document.title,
            page=h.page,
            start=h.start,
            end=h.end,
            line_start=h.line_start,
            line_end=h.line_end,
            text=h.text,
            section=h.section,
            document=DocumentMeta.from_json(h.document.model_dump()),
        )
        where = chunk_label(chunk) + (f" · {h.section}" if h.section else "")
        blocks.append(f"{rank}. {where} (chunk_id {h.chunk_id}, score {h.score:.4f})\n{h.text}")
    return "\n\n".join(blocks)


def _read_text(result: ReadResult) -> str:
    meta = DocumentMeta.from_json(result.document.model_dump())
    where = format_source(meta, result.source, page=result.page)
    more = f"; more from {result.end}" if result.truncated else ""
    return f"{where}, characters {result.start}-{result.end} of {result.length}{more}\n\n{result.text}"


def _answer_text(answer: Answer) -> str:
    if answer.abstained or not answer.citations:
        return answer.text
    sources = "\n".join(
        f"[{c.id}] {citation_label(c)}: \u201c{c.quote}\u201d"
        if c.kind == "passage"
        else f"[{c.id}] {citation_label(c)}: {c.output}"
        for c in answer.citations
    )
    return f"{answer.text}\n\nSources:\n{sources}"


def _document_name(d: DocumentEntry) -> str:
    meta = DocumentMeta.from_json(d.document.model_dump())
    return format_source(meta, d.source)


def _version() -> str:
    try:
        return version("research-assistant")
    except PackageNotFoundError:
        return "0"


# -- transports ----------------------------------------------------------------------------------------
def run_stdio(settings: Settings) -> None:
    """Serve on stdin/stdout. The SDK moves file descriptor 1 to stderr while it serves, so a library that
    prints (a progress bar, a warning) cannot corrupt the protocol; people read stderr."""
    anyio.run(build_server(settings).run_stdio_async)


def run_http(settings: Settings, port: int) -> None:
    """Serve streamable HTTP on 127.0.0.1:port/mcp (DNS-rebinding protection on: Host must be local)."""
    _check_port(port)
    print(f"MCP server on http://{HOST}:{port}/mcp (Ctrl-C stops it)", file=sys.stderr, flush=True)
    build_server(settings).run("streamable-http", host=HOST, port=port)


def _check_port(port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError as exc:
            reason = "in use" if exc.errno == errno.EADDRINUSE else exc.strerror
            raise UserFacingError(f"port {port} on {HOST} is {reason}: pick another with --port") from None
