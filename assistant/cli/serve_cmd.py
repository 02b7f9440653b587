"""`ra serve`: run an OpenAI-compatible LLM server in the foreground, shared by `ra ask`, the UI and eval.

Default backend vLLM (the production one; its own venv, see scripts/install-vllm.sh); `--backend llamacpp`
serves the embedded llama.cpp model instead on machines without vLLM. Either way clients only need the URL.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from assistant.cli.common import console, fail, out, warn
from assistant.cli.index_cmds import IndexOpt
from assistant.settings import Settings, load_settings
from index.errors import UserFacingError

if TYPE_CHECKING:  # the LLM modules import httpx: keep them off `ra`'s start-up path
    from assistant.llm.llamacpp import LlamaCppServer
    from assistant.llm.vllm_env import VLLMServer

Backend = Literal["vllm", "llamacpp"]
# `--agent`: how long a stop waits for the requests being answered before it cancels them (uvicorn waits
# for ever by default, so a stop during an answer waited for the answer).
STOP_GRACE_S = 2


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)


def serve(
    model: Annotated[
        str | None, typer.Option("--model", help="Packaged name, .gguf, HF folder or hub id.")
    ] = None,
    port: Annotated[int | None, typer.Option("--port", min=1, max=65535, help="Port on 127.0.0.1.")] = None,
    backend: Annotated[Backend, typer.Option("--backend", help="vllm (default) or llamacpp.")] = "vllm",
    enforce_eager: Annotated[
        bool,
        typer.Option("--enforce-eager", help="vLLM: skip graph compilation (faster start, slower replies)."),
    ] = False,
    max_model_len: Annotated[
        int | None, typer.Option("--max-model-len", min=512, help="Context length in tokens.")
    ] = None,
    host: Annotated[
        str | None,
        typer.Option("--host", help="Address to bind (default 127.0.0.1; 0.0.0.0 for other hosts)."),
    ] = None,
    tensor_parallel: Annotated[
        int | None, typer.Option("--tensor-parallel", min=1, help="vLLM: GPUs splitting each layer.")
    ] = None,
    pipeline_parallel: Annotated[
        int | None, typer.Option("--pipeline-parallel", min=1, help="vLLM: layer groups (e.g. one per node).")
    ] = None,
    data_parallel: Annotated[
        int | None, typer.Option("--data-parallel", min=1, help="vLLM: model copies behind this server.")
    ] = None,
    executor: Annotated[
        Literal["auto", "mp", "ray"] | None,
        typer.Option(
            "--distributed-executor", help="vLLM: ray to span nodes (needs a Ray cluster), mp for one."
        ),
    ] = None,
    agent: Annotated[
        bool,
        typer.Option(
            "--agent",
            help="Serve the research assistant itself as an OpenAI chat API (/v1/chat/completions, /v1/models).",
        ),
    ] = False,
    index: IndexOpt = None,
    llm_url: Annotated[
        str | None, typer.Option("--llm-url", help="--agent: answer with this OpenAI-compatible server.")
    ] = None,
    no_service: Annotated[
        bool, typer.Option("--no-service", help="--agent: answer in this process, not the resident service.")
    ] = False,
) -> None:
    """Serve a model until Ctrl-C; point other commands at it with --llm-url (several: comma-separated).
    With --agent, serve the cited-answer assistant to OpenAI clients instead."""
    if agent:
        settings = load_settings(
            {
                "index": {"dir": index},
                "llm": {"model": model, "url": llm_url},
                "agent_api": {"port": port, "host": host},
            }
        )
        _serve_agent(settings, use_service=not no_service)
        return
    if index is not None or llm_url is not None or no_service:
        fail("--index, --llm-url and --no-service go with --agent", code=2)
    context_key = "max_model_len" if backend == "vllm" else "context_size"
    parallel = {
        "tensor": tensor_parallel,
        "pipeline": pipeline_parallel,
        "data": data_parallel,
        "executor": executor,
    }
    settings = load_settings(
        {
            "llm": {
                "model": model,
                "serve_port": port,
                "serve_host": host,
                context_key: max_model_len,
                "parallel": parallel,
            }
        }
    )
    if backend == "llamacpp" and settings.llm.parallel.flags():
        fail(
            "--tensor/--pipeline/--data-parallel and --distributed-executor are vLLM options: use --backend vllm",
            code=2,
        )
    try:
        server = _server(settings, backend, enforce_eager)
        console.print(
            f"starting {backend} with {settings.llm.model} (log: {server.log_path or 'temp file'})..."
        )
        url = server.start()
    except UserFacingError as exc:
        fail(str(exc))
    _run_until_stopped(server, backend, url)


def _serve_agent(settings: Settings, *, use_service: bool) -> None:
    """The assistant on /v1/chat/completions until Ctrl-C (uvicorn; the model loads before it listens)."""
    import uvicorn

    from assistant.openai_api import create_app
    from assistant.service.client import answerer

    api = settings.agent_api
    if api.host not in ("127.0.0.1", "localhost", "::1") and not api.api_key:
        fail(
            f"serving the assistant on {api.host} lets other machines read your documents: set "
            "agent_api.api_key (RA_AGENT_API__API_KEY) or keep the default host 127.0.0.1",
            code=2,
        )
    # uvicorn takes the signal, cancels what is still answering after STOP_GRACE_S, then raises the signal
    # again: SIGTERM too must become KeyboardInterrupt, else it ends the process before `answerer` stops
    # the model it started.
    with (
        _sigterm_as_interrupt(),
        answerer(settings, use_service=use_service, warn=warn, progress=console.print) as assistant,
    ):
        url = f"http://{api.host}:{api.port}/v1"
        out.print(url, highlight=False)
        console.print(
            f"the research assistant answers as model {api.model_id!r} at {url}\n"
            f"use it with any OpenAI client: base_url={url}"
            + (", api_key=<agent_api.api_key>" if api.api_key else ", any api_key")
            + "\npress Ctrl-C to stop",
            highlight=False,
        )
        logging.getLogger("uvicorn.error").addFilter(_QuietCancel())
        uvicorn.run(
            create_app(assistant, settings),
            host=api.host,
            port=api.port,
            log_level="warning",
            timeout_graceful_shutdown=STOP_GRACE_S,
        )  # returns once stopped (it swallows the KeyboardInterrupt)
        console.print("stopping...")


def _server(settings: Settings, backend: Backend, enforce_eager: bool) -> VLLMServer | LlamaCppServer:
    from assistant.llm.llamacpp import LlamaCppServer
    from assistant.llm.models import resolve_model
    from assistant.llm.vllm_env import VLLMServer, hf_dir_for, vllm_python

    llm = settings.llm
    python = vllm_python(llm.vllm_python) if backend == "vllm" else None  # fail before any slow work
    if python is None:
        return LlamaCppServer.for_settings(
            llm, settings.cache_dir, host=llm.serve_host, port=llm.serve_port, startup_timeout=600.0
        )
    resolved = resolve_model(llm.model, settings.cache_dir, llm.allow_download)
    if resolved.gguf_path is not None:
        console.print(f"preparing {resolved.name} for vLLM (the first time converts the GGUF: 1-3 min)...")
    source = hf_dir_for(resolved, settings.cache_dir, python)
    log = settings.cache_dir / "logs" / f"vllm-{llm.serve_port}.log"
    return VLLMServer(
        python,
        source,
        resolved.name,
        host=llm.serve_host,
        port=llm.serve_port,
        max_model_len=llm.max_model_len,
        enforce_eager=enforce_eager,
        log_path=log,
        extra_args=llm.parallel.flags(),
    )


class _QuietCancel(logging.Filter):
    """Drops uvicorn's lines about the requests a stop cancels (a traceback each): the stop is asked for,
    and their clients get a closed connection."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return (
            not isinstance(exc, asyncio.CancelledError)
            and "graceful shutdown exceeded" not in record.getMessage()
        )


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt, like Ctrl-C: `finally` and `with` blocks then stop what we
    started (SIGTERM's default would end the process at once and orphan the model server)."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run_until_stopped(server: VLLMServer | LlamaCppServer, backend: Backend, url: str) -> None:
    """Block until Ctrl-C or SIGTERM (both end in KeyboardInterrupt), then stop the server cleanly."""
    out.print(url, highlight=False)
    console.print(
        f"{backend} serves {server.model_name} at {url}\n"
        f'use it with: ra ask --llm-url {url} "your question"  (or RA_LLM__URL={url})\n'
        "press Ctrl-C to stop",
        highlight=False,
    )
    try:
        with _sigterm_as_interrupt():
            while server.running:
                time.sleep(0.5)
    except KeyboardInterrupt:
        console.print("stopping...")
    else:
        fail(f"the {backend} server exited unexpectedly: see its log {server.log_path}")
    finally:
        server.stop()
