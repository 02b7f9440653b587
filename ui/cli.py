"""`ra ui`: the Streamlit app on 127.0.0.1, registered on `ra` through the `research_assistant.cli` entry point."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from assistant.cli.common import console
from assistant.cli.index_cmds import IndexOpt, settings_from_flags
from ui.uploads import transfer_limit_mb

APP = Path(__file__).with_name("app.py")


def register(app: typer.Typer) -> None:
    app.command("ui")(ui)


def streamlit_argv(host: str, port: int, max_upload_mb: int) -> list[str]:
    """`streamlit run` for the app: headless, bound to `host`, no usage statistics (it must work offline),
    no file watcher (a served app does not reload itself), and Streamlit's upload cap above ours (see
    `transfer_limit_mb`)."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP),
        "--server.address",
        host,
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--server.fileWatcherType",
        "none",
        "--server.maxUploadSize",
        str(transfer_limit_mb(max_upload_mb)),
        "--browser.gatherUsageStats",
        "false",
        "--global.developmentMode",
        "false",
        "--client.toolbarMode",
        "minimal",
    ]


def ui(
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port to serve on.")] = 8501,
    host: Annotated[
        str, typer.Option("--host", help="Address to bind; keep 127.0.0.1 unless you mean to share it.")
    ] = "127.0.0.1",
    index: IndexOpt = None,
) -> None:
    """Open the research assistant in the browser: chat with cited sources, upload documents, evaluate."""
    settings = settings_from_flags(index)  # a bad ra.toml or flag fails here, not in the browser
    env = dict(os.environ)
    if index is not None:  # the app reads its settings like every command: flags travel as RA_* variables
        env["RA_INDEX__DIR"] = str(index.resolve())
    console.print(
        f"research assistant UI on http://{host}:{port} (index: {settings.index.dir}); Ctrl-C stops it"
    )
    argv = streamlit_argv(host, port, settings.ui.max_upload_mb)
    # exec, not a child: signals (Ctrl-C, a test's terminate) reach Streamlit itself and nothing is orphaned.
    os.execve(sys.executable, argv, env)
