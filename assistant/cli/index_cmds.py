"""`ra ingest`, `ra search` and `ra index stats`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.markup import escape
from rich.progress import Progress

from assistant.cli.common import console, fail, out, print_json, print_report, progress_bar
from assistant.index_access import index_config, open_index
from assistant.settings import Settings, load_settings

IndexOpt = Annotated[
    Path | None, typer.Option("--index", help="index directory (default: settings index.dir)")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON for scripts")]
ModeOpt = Annotated[
    str | None, typer.Option("--mode", help="hybrid | dense | bm25 (default: settings retrieval.mode)")
]


def settings_from_flags(index: Path | None = None, **retrieval: Any) -> Settings:
    """CLI flags are the top layer of the settings; None means "not given"."""
    mode = retrieval.get("mode")
    if mode is not None and mode not in ("hybrid", "dense", "bm25"):
        fail(f"unknown --mode '{mode}': use hybrid, dense or bm25", code=2)
    return load_settings({"index": {"dir": index}, "retrieval": retrieval})


def display_path(path: str) -> str:
    """Paths relative to the working directory when under it: shorter and still exact."""
    if not os.path.isabs(path):
        return path
    rel = os.path.relpath(path)
    return path if rel.startswith("..") else rel


class RichIngestProgress:
    """Renders ingest stages as one Rich progress bar per stage (on stderr, so --json stays clean)."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._task: Any = None

    def start(self, stage: str, total: int | None) -> None:
        if self._task is not None:
            self._progress.update(self._task, visible=False)
        self._task = self._progress.add_task(stage, total=total)

    def advance(self, n: int = 1) -> None:
        self._progress.advance(self._task, n)


def ingest(
    paths: Annotated[list[Path], typer.Argument(help="files or folders (recursive)")],
    index: IndexOpt = None,
    prune: Annotated[bool, typer.Option("--prune", help="drop indexed files that no longer exist")] = False,
    rebuild: Annotated[bool, typer.Option("--rebuild", help="start a fresh index from PATHS")] = False,
    as_json: JsonOpt = False,
    engine: Annotated[
        Literal["local", "ray"],
        typer.Option("--engine", help="ray: parse, chunk and embed changed files on Ray Data"),
    ] = "local",
    ray_address: Annotated[
        str | None,
        typer.Option("--ray-address", help="Ray cluster to join (host:6379); default: start a local Ray"),
    ] = None,
) -> None:
    """Ingest PDF, txt, md and html files into the hybrid index (incremental by content hash)."""
    from index.ingest import ingest_paths

    if ray_address and engine != "ray":
        fail("--ray-address needs --engine ray", code=2)
    settings = settings_from_flags(index)
    with progress_bar(as_json) as bar:
        report = ingest_paths(
            paths,
            settings.index.dir,
            index_config(settings),
            prune=prune,
            rebuild=rebuild,
            progress=RichIngestProgress(bar),
            engine=engine,
            ray_address=ray_address,
        )
    if as_json:
        print_json(report.to_json())
        return
    for path, reason in report.skipped:
        console.print(f"[yellow]skipped[/] {escape(display_path(path))}: {escape(reason)}", highlight=False)
    for path, warning in report.warnings:
        console.print(f"[yellow]warning[/] {escape(display_path(path))}: {escape(warning)}", highlight=False)
    if report.missing:
        console.print(
            f"[yellow]{len(report.missing)} indexed file(s) no longer exist[/]: run with --prune to drop them",
            highlight=False,
        )
    status = "updated" if report.committed else "unchanged"
    out.print(
        f"index {status}: {report.index_dir}  files +{len(report.added)} ~{len(report.updated)} "
        f"={report.unchanged} -{len(report.removed)}  pages {report.pages}  chunks {report.chunks_total} "
        f"(embedded {report.chunks_embedded})  skipped {len(report.skipped)}  {report.seconds:.2f}s",
        highlight=False,
    )


def search(
    query: Annotated[str, typer.Argument(help="what to look for")],
    index: IndexOpt = None,
    k: Annotated[int | None, typer.Option("-k", help="number of passages")] = None,
    mode: ModeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Search the index and print the best passages with their provenance."""
    if not query.strip():
        fail("empty query: pass the text to search for, e.g. ra search 'classifier-free guidance'", code=2)
    if k is not None and k < 1:
        fail("-k must be at least 1", code=2)
    settings = settings_from_flags(index, k=k, mode=mode)
    hits = open_index(settings).search(query, k=settings.retrieval.k, mode=settings.retrieval.mode)
    if as_json:
        print_json([h.to_json() for h in hits])
        return
    if not hits:
        out.print("no matching passages")
    for h in hits:
        c = h.chunk
        where = display_path(c.source) + (f" p.{c.page}" if c.page else "") + f" L{c.line_start}-{c.line_end}"
        out.print(f"[bold]{h.rank}.[/] {escape(where)}  [dim]{h.score:.4f}  {c.chunk_id}[/]", highlight=False)
        snippet = " ".join(c.text.split())
        out.print("   " + escape(snippet[:300] + ("…" if len(snippet) > 300 else "")), highlight=False)


index_app = typer.Typer(help="Inspect the index.", no_args_is_help=True)


@index_app.command("stats")
def stats(index: IndexOpt = None, as_json: JsonOpt = False) -> None:
    """Files, pages, chunks, embedding model and size of the index."""
    print_report(open_index(settings_from_flags(index)).stats(), as_json)


def register(app: typer.Typer) -> None:
    app.command()(ingest)
    app.command()(search)
    app.add_typer(index_app, name="index")
