"""`ra ingest`, `ra search` and `ra index stats`."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.markup import escape
from rich.progress import Progress

from assistant.cli.common import console, fail, note, out, print_json, print_report, progress_bar, warn
from assistant.cli.sources import chunk_label
from assistant.cli.terminal import terminal_safe
from assistant.index_access import index_config, open_index
from assistant.settings import Settings, load_settings
from index.config import RETRIEVAL_MODES
from index.documents import DocumentMeta, display_path
from index.zotero import DEFAULT_DIR, NO_DOCUMENT, Library, read_library

IndexOpt = Annotated[
    Path | None, typer.Option("--index", help="index directory (default: settings index.dir)")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON for scripts")]
CollectionOpt = Annotated[
    str | None,
    typer.Option(
        "--collection",
        help="only documents in this Zotero collection (default: settings retrieval.collection, all)",
    ),
]
ModeOpt = Annotated[
    str | None,
    typer.Option("--mode", help=f"{' | '.join(RETRIEVAL_MODES)} (default: settings retrieval.mode)"),
]


def check_mode(mode: str | None) -> None:
    """A usage error (exit 2) for a --mode that is not a retrieval mode."""
    if mode is not None and mode not in RETRIEVAL_MODES:
        fail(
            f"unknown --mode '{mode}': use {', '.join(RETRIEVAL_MODES[:-1])} or {RETRIEVAL_MODES[-1]}", code=2
        )


def settings_from_flags(index: Path | None = None, **retrieval: Any) -> Settings:
    """CLI flags are the top layer of the settings; None means "not given"."""
    check_mode(retrieval.get("mode"))
    return load_settings({"index": {"dir": index}, "retrieval": retrieval})


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
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="files or folders (recursive); with --zotero, the Zotero data directory"),
    ] = None,
    index: IndexOpt = None,
    prune: Annotated[bool, typer.Option("--prune", help="drop indexed files that no longer exist")] = False,
    rebuild: Annotated[bool, typer.Option("--rebuild", help="start a fresh index from PATHS")] = False,
    meta: Annotated[
        Path | None,
        typer.Option(
            "--meta", help="title/authors/year/DOI/arXiv of the one file ingested, from a .bib or .json"
        ),
    ] = None,
    zotero: Annotated[
        bool,
        typer.Option(
            "--zotero",
            help="ingest a Zotero library (PATH: its data directory, default ~/Zotero): each item's PDF or "
            "HTML with the item's metadata and collections; a re-run follows the library",
        ),
    ] = False,
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
    from index.ingest import Origin, ingest_paths

    if ray_address and engine != "ray":
        fail("--ray-address needs --engine ray", code=2)
    paths = paths or []
    library: Library | None = None
    overrides: dict[str, DocumentMeta] | None = None
    origin: Origin | None = None
    if zotero:
        library = _zotero_library(paths, meta)
        paths = [a.path for a in library.attachments]
        overrides = {str(a.path.resolve()): a.meta for a in library.attachments}
        origin = Origin(library.origin, frozenset(str(a.path.resolve()) for a in library.missing))
    elif not paths:
        fail("give the files or folders to ingest (or --zotero for a Zotero library)", code=2)
    elif meta is not None:
        overrides = _meta_override(paths, meta)
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
            on_wait=lambda message: console.print(f"[dim]{escape(message)}…[/]", highlight=False),
            meta=overrides,
            origin=origin,
        )
    if library is not None:
        report.skipped[:0] = library.skipped
        report.missing = []  # said per item above, with why
    if as_json:
        print_json(report.to_json())
        return
    _print_skipped(report.skipped)
    for path, warning in report.warnings:
        console.print(
            f"[yellow]warning[/] {escape(terminal_safe(display_path(path)))}: {escape(terminal_safe(warning))}",
            highlight=False,
        )
    if report.missing:
        console.print(
            f"[yellow]{len(report.missing)} indexed file(s) no longer exist[/]: run with --prune to drop them",
            highlight=False,
        )
    status = "updated" if report.committed else "unchanged"
    relabelled = f" metadata ~{len(report.metadata_updated)}" if report.metadata_updated else ""
    out.print(
        f"index {status}: {report.index_dir}  files +{len(report.added)} ~{len(report.updated)}{relabelled} "
        f"={report.unchanged} -{len(report.removed)}  pages {report.pages}  chunks {report.chunks_total} "
        f"(embedded {report.chunks_embedded})  skipped {len(report.skipped)}  {report.seconds:.2f}s",
        highlight=False,
    )


def _zotero_library(paths: list[Path], meta: Path | None) -> Library:
    if meta is not None:
        fail("--meta and --zotero exclude each other: the Zotero items' own records are the metadata", code=2)
    if len(paths) > 1:
        fail("--zotero reads one library: give its data directory (default ~/Zotero)", code=2)
    library = read_library(paths[0] if paths else DEFAULT_DIR)
    if not library.attachments and not library.missing:
        fail(f"the Zotero library in {library.data_dir} has no PDF or HTML attachments to ingest")
    return library


def _print_skipped(skipped: list[tuple[str, str]]) -> None:
    """One line per skipped file or item; Zotero items without any document are counted, not listed
    (a library holds many), and `--json` lists them all."""
    bare = [what for what, reason in skipped if reason == NO_DOCUMENT]
    for what, reason in skipped:
        if reason != NO_DOCUMENT:
            console.print(
                f"[yellow]skipped[/] {escape(terminal_safe(display_path(what)))}: {escape(terminal_safe(reason))}",
                highlight=False,
            )
    if bare:
        console.print(
            f"[yellow]{len(bare)} Zotero item(s) have no PDF or HTML attachment[/]", highlight=False
        )


def _meta_override(paths: list[Path], meta_file: Path) -> dict[str, DocumentMeta]:
    """`--meta FILE` names one document: exactly one file path must be given with it."""
    from index.documents import read_meta_file

    if len(paths) != 1 or not paths[0].is_file():
        fail("--meta describes one document: give exactly one file (not a folder) with it", code=2)
    if not meta_file.is_file():
        fail(f"--meta file not found: {meta_file}", code=2)
    return {str(paths[0].resolve()): read_meta_file(meta_file)}


def search(
    query: Annotated[str, typer.Argument(help="what to look for")],
    index: IndexOpt = None,
    k: Annotated[int | None, typer.Option("-k", help="number of passages")] = None,
    mode: ModeOpt = None,
    collection: CollectionOpt = None,
    as_json: JsonOpt = False,
    no_service: Annotated[
        bool, typer.Option("--no-service", help="search in this process even when the service runs")
    ] = False,
) -> None:
    """Search the index and print the best passages with their provenance."""
    if not query.strip():
        fail("empty query: pass the text to search for, e.g. ra search 'classifier-free guidance'", code=2)
    if k is not None and k < 1:
        fail("-k must be at least 1", code=2)
    settings = settings_from_flags(index, k=k, mode=mode, collection=collection)
    from assistant.service.client import service_for

    service = service_for(settings, not no_service, warn, note)
    if service is not None:
        hits = service.search(settings, query)
    else:
        hits = open_index(settings).search(query, k=settings.retrieval.k, mode=settings.retrieval.mode)
    if as_json:
        print_json([h.to_json() for h in hits])
        return
    if not hits:
        out.print("no matching passages")
    for h in hits:
        c = h.chunk
        where = chunk_label(c) + (f" · {c.section}" if c.section else "")
        # soft_wrap: one line per hit and per snippet whatever the terminal width, so the output greps
        out.print(
            f"[bold]{h.rank}.[/] {escape(where)}  [dim]{h.score:.4f}  {c.chunk_id}[/]",
            highlight=False,
            soft_wrap=True,
        )
        snippet = " ".join(c.text.split())
        out.print(
            "   " + escape(snippet[:300] + ("…" if len(snippet) > 300 else "")),
            highlight=False,
            soft_wrap=True,
        )


index_app = typer.Typer(help="Inspect the index.", no_args_is_help=True)


@index_app.command("stats")
def stats(index: IndexOpt = None, as_json: JsonOpt = False) -> None:
    """Files, pages, chunks, embedding model and size of the index."""
    report = open_index(settings_from_flags(index)).stats()
    if not as_json:
        report["updated"] = datetime.fromtimestamp(report["updated"], UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    print_report(report, as_json)


@index_app.command("verify")
def verify(index: IndexOpt = None, as_json: JsonOpt = False) -> None:
    """Check every file of the committed generation against the sizes and checksums in its manifest (and,
    for a milvus index, that the collection holds exactly the committed versions of its files)."""
    from index.errors import IndexDamaged
    from index.store import check_generation, require_manifest

    settings = settings_from_flags(index)
    index_dir = settings.index.dir
    manifest = require_manifest(index_dir)
    check_generation(index_dir, manifest, checksums=True)  # raises one line naming the damage and the fix
    report: dict[str, Any] = {"index": str(index_dir), "generation": manifest.generation, "status": "ok"}
    if manifest.build.get("index.backend") == "milvus":
        from index.backends.milvus import collection_problems

        problems = collection_problems(settings.index.milvus, manifest.files, manifest.dim)
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise IndexDamaged(
                f"Milvus collection '{settings.index.milvus.collection}' does not match the manifest at "
                f"{index_dir}: {problems[0]}{more}: run the last `ra ingest` again, or "
                f"`ra ingest PATH --rebuild --index {index_dir}`"
            )
        report["milvus_chunks_checked"] = sum(e.chunks for e in manifest.files.values())
    report["files_checked"] = len(manifest.artifacts)
    report["size_bytes"] = sum(a.size for a in manifest.artifacts.values())
    print_report(report, as_json)


def register(app: typer.Typer) -> None:
    app.command()(ingest)
    app.command()(search)
    app.add_typer(index_app, name="index")
