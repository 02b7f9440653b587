"""`ra eval ...` commands; registered on the `ra` app through the `research_assistant.cli` entry point."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated

import typer

from assistant.cli.common import print_report, progress_bar
from assistant.cli.index_cmds import IndexOpt, JsonOpt, ModeOpt, RichIngestProgress, settings_from_flags
from assistant.index_access import index_config, open_index
from eval import checker_cmds, qa_cmds

eval_app = typer.Typer(help="Evaluate retrieval and answers.", no_args_is_help=True)


@eval_app.command("retrieval")
def retrieval(
    corpus: Annotated[Path, typer.Option("--corpus", help="BEIR corpus.jsonl")],
    queries: Annotated[Path, typer.Option("--queries", help="BEIR queries.jsonl")],
    qrels: Annotated[Path, typer.Option("--qrels", help="BEIR qrels TSV (e.g. qrels/test.tsv)")],
    index: IndexOpt = None,
    mode: ModeOpt = None,
    run_out: Annotated[Path | None, typer.Option("--run-out", help="write a TREC run file here")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Index a BEIR corpus (incrementally) and report nDCG@10, Recall@100 and MRR@10."""
    from eval.beir import corpus_documents, evaluate_run, load_beir, run_queries, write_trec_run
    from index.ingest import ingest_documents

    data = load_beir(corpus, queries, qrels)
    settings = settings_from_flags(index, mode=mode)
    if index is None:
        key = hashlib.sha256(str(corpus.resolve()).encode()).hexdigest()[:12]
        settings = settings_from_flags(settings.cache_dir / "beir" / key, mode=mode)
    with progress_bar(as_json) as bar:
        report = ingest_documents(
            corpus_documents(data.corpus),
            settings.index.dir,
            index_config(settings),
            progress=RichIngestProgress(bar),
        )
        hybrid = open_index(settings)
        task = bar.add_task("querying", total=len(data.queries))
        chosen = settings.retrieval.mode

        def search(text: str, n: int) -> list[tuple[str, float]]:
            return [(h.chunk.source, h.score) for h in hybrid.search(text, k=n, mode=chosen)]

        run = run_queries(search, data.queries, on_query=lambda: bar.advance(task))
    metrics = evaluate_run(run, data.qrels)
    summary = {"mode": chosen, "index": str(settings.index.dir), "documents": len(data.corpus), **metrics}
    summary["index_seconds"] = round(report.seconds, 2)
    if run_out:
        write_trec_run(run, run_out, tag=f"ra-{chosen}")
        summary["run_file"] = str(run_out)
    print_report(summary, as_json)


qa_cmds.register(eval_app)
checker_cmds.register(eval_app)


def register(app: typer.Typer) -> None:
    app.add_typer(eval_app, name="eval")
