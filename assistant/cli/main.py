"""Entry point of `ra`: builds the Typer app and maps user errors to one-line messages and exit codes.

Command groups of packages above `assistant` (eval, ui) register through the `research_assistant.cli`
entry-point group, so `assistant` never imports them and dependencies keep pointing one way.
"""

from __future__ import annotations

from importlib.metadata import entry_points

import typer
from pydantic import ValidationError

from assistant.cli import ask_cmd, index_cmds, mcp_cmd, sandbox_cmd, serve_cmd, service_cmd
from assistant.cli.common import console
from assistant.cli.quiet import configure_output
from index.errors import UserFacingError

app = typer.Typer(
    name="ra",
    help="Research assistant: ingest documents, search them, ask cited questions, evaluate.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _global_options(
    verbose: bool = typer.Option(
        False, "--verbose", help="also show third-party progress bars and warnings (model loading, ONNX)"
    ),
) -> None:
    configure_output(verbose)


index_cmds.register(app)
ask_cmd.register(app)
sandbox_cmd.register(app)
serve_cmd.register(app)
service_cmd.register(app)
mcp_cmd.register(app)
for plugin in entry_points(group="research_assistant.cli"):
    plugin.load()(app)


def main() -> None:
    try:
        app()
    except UserFacingError as exc:
        console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise SystemExit(1) from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        console.print(
            f"[bold red]error:[/] invalid setting {where}: {first['msg']} (check ra.toml, RA_* variables and flags)",
            highlight=False,
            soft_wrap=True,
        )
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        console.print("[bold red]interrupted[/]")
        raise SystemExit(130) from None
