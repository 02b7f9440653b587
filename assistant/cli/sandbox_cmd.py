"""`ra sandbox run FILE.py`: run a Python file in the same sandbox the agent's code tool uses."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from assistant.cli.common import console, fail, print_json
from assistant.cli.terminal import for_terminal
from assistant.sandbox import FIGURES_DIR, SandboxUnavailable, run_python
from assistant.settings import load_settings


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="Run untrusted Python in the isolated sandbox.", no_args_is_help=True)
    group.command("run")(run)
    app.add_typer(group, name="sandbox")


def _save_figures(images: list[bytes], directory: Path) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for number, image in enumerate(images, start=1):
            (directory / f"figure_{number}.png").write_bytes(image)
    except OSError as exc:
        fail(f"cannot save figures to {directory} ({exc.strerror}): pass a writable --figures directory")


def run(
    file: Annotated[Path, typer.Argument(help="Python file to run (sees no project, network or env).")],
    timeout: Annotated[
        float | None,
        typer.Option("--timeout", min=0.1, help="Wall-clock limit in seconds (default: sandbox.timeout_s)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    figures: Annotated[
        Path | None,
        typer.Option("--figures", help=f"Save PNGs the code writes to {FIGURES_DIR}/ into this directory."),
    ] = None,
) -> None:
    """Run FILE in the sandbox. Exits 0 when the run happened, whatever the code's own exit code."""
    try:
        code = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"cannot read {file} ({exc.__class__.__name__}): pass a readable UTF-8 Python file")
    limits = load_settings().sandbox
    if timeout is not None:  # CPU follows the wall clock so that --timeout alone decides how long it computes
        limits = limits.model_copy(update={"timeout_s": timeout, "cpu_s": math.ceil(timeout)})
    try:
        result = run_python(code, limits)
    except SandboxUnavailable as exc:
        fail(str(exc))
    if figures is not None:
        _save_figures(result.images, figures)
    if as_json:
        print_json(result.to_json())
        return
    # verbatim (no Rich markup, emoji or wrapping), but no escape sequence reaches a terminal
    sys.stdout.write(for_terminal(result.stdout, sys.stdout))
    sys.stdout.flush()
    sys.stderr.write(for_terminal(result.stderr, sys.stderr))
    status = f"exit code {result.exit_code}"
    if result.killed_reason:
        status += f", killed: {result.killed_reason}"
    if result.truncated:
        status += ", output truncated"
    if result.images:
        saved = f" saved to {figures}" if figures is not None else " (use --figures DIR to save)"
        status += f", {len(result.images)} figure(s){saved}"
    console.print(f"[dim]sandbox: {status} in {result.duration_s:.2f}s[/]", highlight=False)
    for reason in result.images_skipped:  # the snippet names the files: no markup, one line each
        console.print(f"[dim]sandbox: figure skipped: {escape(reason)}[/]", highlight=False, soft_wrap=True)
