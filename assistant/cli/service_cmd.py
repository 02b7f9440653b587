"""`ra service start|stop|status`: the resident assistant that keeps the model warm between commands."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from assistant.cli.common import console, fail, out, print_json
from assistant.cli.index_cmds import IndexOpt, JsonOpt
from assistant.settings import load_settings

service_app = typer.Typer(
    help="The resident assistant: model, checker and index kept warm.", no_args_is_help=True
)

IdleOpt = Annotated[
    float | None, typer.Option("--idle-timeout", min=1, help="seconds without a request before it exits")
]


def register(app: typer.Typer) -> None:
    app.add_typer(service_app, name="service")


@service_app.command("start")
def start(
    index: IndexOpt = None,
    llm: Annotated[str | None, typer.Option("--llm", help="model for the embedded server")] = None,
    llm_url: Annotated[str | None, typer.Option("--llm-url", help="OpenAI-compatible server URL")] = None,
    checker: Annotated[str | None, typer.Option("--checker", help="grounding checker")] = None,
    idle_timeout: IdleOpt = None,
) -> None:
    """Start the service in the background (or say that it runs); later commands use it."""
    from assistant.service.client import running_service, start_service

    if llm and llm_url:
        fail("--llm and --llm-url exclude each other: pick the embedded model or a server URL", code=2)
    settings = load_settings(
        {
            "index": {"dir": index},
            "llm": {"model": llm, "url": llm_url},
            "grounding": {"checker": checker},
            "service": {"idle_timeout_s": idle_timeout},
        }
    )
    if (client := running_service(settings)) is not None:
        console.print(f"the service is already running (pid {client.status()['pid']}, {client.path})")
        return
    began = time.monotonic()
    client = start_service(settings, lambda m: console.print(f"[dim]{m}[/]", highlight=False))
    status = client.status()
    client.warm(settings)  # open the index now (when there is one), so the first question does not wait
    console.print(
        f"the service runs (pid {status['pid']}, {status['model']}, ready in {time.monotonic() - began:.1f} s); "
        f"it stops after {status['idle_timeout_s']:.0f} s idle or with `ra service stop`",
        highlight=False,
    )


@service_app.command("stop")
def stop() -> None:
    """Stop the running service (its model and checker are freed)."""
    from assistant.service.client import log_path, running_service

    client = running_service(load_settings())
    if client is None:
        console.print("no service is running")
        return
    client.stop()
    deadline = time.monotonic() + 30  # it removes its socket as it stops
    while client.path.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    if client.path.exists():
        fail(f"the service was asked to stop but still runs: see {log_path(client.path)}")
    console.print("the service stopped")


@service_app.command("status")
def status(as_json: JsonOpt = False) -> None:
    """Whether the service runs, what it serves, and its counters; exit code 1 when none runs."""
    from assistant.service.client import running_service, socket_path

    settings = load_settings()
    client = running_service(settings)
    if client is None:
        if as_json:
            print_json({"running": False, "socket": str(socket_path(settings))})
        else:
            console.print(f"no service is running ({socket_path(settings)})", highlight=False)
        raise typer.Exit(1)
    report = client.status()
    if as_json:
        print_json({"running": True} | report)
        return
    counters = ", ".join(f"{k} {v}" for k, v in sorted(report["counters"].items()))
    out.print(
        f"running: pid {report['pid']} on {report['socket']}\n"
        f"model: {report['model']}  checker: {report['checker'] or 'none'}\n"
        f"up {report['uptime_s']:.0f} s, idle {report['idle_s']:.0f} s of {report['idle_timeout_s']:.0f} s, "
        f"{report['active']} request(s) now\n"
        f"indexes: {', '.join(f'{d} ({g})' for d, g in report['indexes'].items()) or 'none open yet'}\n"
        f"counters: {counters}",
        highlight=False,
        markup=False,
    )
