"""`ra mcp`: serve the index to MCP clients (Claude Desktop, IDEs), on stdio or streamable HTTP.

Why a command and not a separate program: a client config names one executable (`"command": "ra"`), and
the server must read the same settings (`ra.toml`, `RA_*`, flags) as every other command. On stdio nothing
but the protocol goes to stdout; messages for people go to stderr (the client's log).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from assistant.cli.ask_cmd import CheckerOpt, LLMOpt, URLOpt
from assistant.cli.common import fail
from assistant.cli.index_cmds import IndexOpt
from assistant.settings import load_settings


def register(app: typer.Typer) -> None:
    app.command("mcp")(mcp)


def mcp(
    index: IndexOpt = None,
    http: Annotated[
        bool, typer.Option("--http", help="streamable HTTP on 127.0.0.1 instead of stdio")
    ] = False,
    port: Annotated[
        int | None, typer.Option("--port", min=1, max=65535, help="port of --http (default: mcp.port, 8765)")
    ] = None,
    allow_ingest: Annotated[
        list[Path] | None,
        typer.Option(
            "--allow-ingest",
            help="offer the ingest tool, reading only under this folder (repeat for more folders)",
        ),
    ] = None,
    llm: LLMOpt = None,
    llm_url: URLOpt = None,
    checker: CheckerOpt = None,
) -> None:
    """Serve the index over MCP: tools search, read, list_documents, ask (and ingest when allowed), and
    each document as a resource ra://documents/{id}."""
    from assistant.mcp_server.server import run_http, run_stdio

    if llm and llm_url:
        fail("--llm and --llm-url exclude each other: pick the embedded model or a server URL", code=2)
    if port is not None and not http:
        fail("--port goes with --http (stdio has no port)", code=2)
    roots = [p.expanduser().absolute() for p in allow_ingest] if allow_ingest else None
    settings = load_settings(
        {
            "index": {"dir": index.absolute() if index else None},
            "llm": {"model": llm, "url": llm_url},
            "grounding": {"checker": checker},
            "mcp": {"port": port, "allow_ingest": True if roots else None, "ingest_roots": roots},
        }
    )
    if http:
        run_http(settings, settings.mcp.port)
    else:
        run_stdio(settings)
