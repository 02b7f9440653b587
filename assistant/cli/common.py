"""Helpers every CLI command shares: the console, JSON output and the one-line error exit."""

from __future__ import annotations

import json
import sys
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from assistant.cli.terminal import SafeStdout

console = Console(stderr=True)  # progress and messages; untrusted text goes through terminal_safe
out = Console(file=SafeStdout())  # results: no escape sequence from a document reaches the terminal


def fail(message: str, code: int = 1) -> NoReturn:
    """Print a one-line error that says what to do and exit non-zero."""
    console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def warn(message: str) -> None:
    """A warning on stderr: the command goes on."""
    console.print(f"[yellow]warning:[/] {escape(message)}", highlight=False)


def note(message: str) -> None:
    """Progress on stderr, dim (what is starting, where its log is)."""
    console.print(f"[dim]{escape(message)}[/]", highlight=False)


def print_json(payload: Any) -> None:
    sys.stdout.write(json.dumps(payload, ensure_ascii=False, indent=2) + "\n")
    sys.stdout.flush()


def print_report(payload: dict[str, Any], as_json: bool) -> None:
    """A flat summary: JSON for scripts, aligned `key: value` lines for people."""
    if as_json:
        print_json(payload)
        return
    width = max((len(k) for k in payload), default=0)
    for key, value in payload.items():
        out.print(f"{key:>{width}}: {value}", highlight=False)


def progress_bar(disable: bool) -> Progress:
    """The progress bar of long commands; on stderr so that `--json` output stays clean."""
    return Progress(
        TextColumn("{task.description:>9}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=disable,
    )
