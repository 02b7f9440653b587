"""`ra eval qa` (run and score the agent over a QA set) and `ra eval compare` (two runs side by side)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from assistant.cli.ask_cmd import LLMOpt, URLOpt
from assistant.cli.common import console, fail, out, print_json, progress_bar
from assistant.cli.index_cmds import IndexOpt, JsonOpt, ModeOpt, RichIngestProgress, check_mode
from assistant.settings import load_settings
from eval.report import COUNTS, LABELS, fmt

SHOWN_PER_KIND = (
    "keyword_hit",
    "abstention_correct",
    "faithfulness",
    "citation_recall",
    "citation_precision",
)
DEFAULT_BATCH = 8  # questions in flight with --llm-backend vllm-batch


def register(eval_app: typer.Typer) -> None:
    eval_app.command("qa")(qa)
    eval_app.command("compare")(compare)


def qa(
    data: Annotated[
        Path, typer.Option("--data", help="QA jsonl: id, question, answer, kind, evidence, answer_keywords")
    ],
    index: IndexOpt = None,
    llm: LLMOpt = None,
    llm_url: URLOpt = None,
    llm_backend: Annotated[
        str,
        typer.Option(
            "--llm-backend", help="server (the --llm-url, else embedded llama.cpp) | vllm-batch (in-process)"
        ),
    ] = "server",
    concurrency: Annotated[
        int | None,
        typer.Option(
            "--concurrency", min=1, help=f"questions at once (default 1; vllm-batch {DEFAULT_BATCH})"
        ),
    ] = None,
    mode: ModeOpt = None,
    checker: Annotated[
        str | None, typer.Option("--checker", help="grounding checker (default: settings grounding.checker)")
    ] = None,
    judge: Annotated[
        bool, typer.Option("--judge", help="also ask the LLM whether each answer is correct")
    ] = False,
    judge_url: Annotated[
        str | None, typer.Option("--judge-url", help="judge with the model at this URL (implies --judge)")
    ] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="first N questions only")] = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="output folder (default .ra/eval/<data>-<config hash>)")
    ] = None,
    fresh: Annotated[
        bool, typer.Option("--fresh", help="discard earlier results in the output folder")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Run the agent over a QA set and score it; resumable, writes results, summary and an HTML report.

    Metrics: keyword accuracy, abstention, faithfulness, ALCE citation recall/precision, evidence recall,
    latency (definitions in eval/metrics.py).
    """
    from eval.qa_run import LLM_BACKENDS, QAOptions, evaluate

    if llm and llm_url:
        fail("--llm and --llm-url exclude each other: pick the embedded model or a server URL", code=2)
    if llm_backend not in LLM_BACKENDS:
        fail(f"unknown --llm-backend '{llm_backend}': use {' or '.join(LLM_BACKENDS)}", code=2)
    check_mode(mode)
    settings = load_settings(
        {
            "index": {"dir": index},
            "llm": {"model": llm, "url": llm_url},
            "retrieval": {"mode": mode},
            "grounding": {"checker": checker},
        }
    )
    options = QAOptions(
        data=data,
        out=out_dir,
        llm_backend=llm_backend,
        concurrency=concurrency or (DEFAULT_BATCH if llm_backend == "vllm-batch" else 1),
        judge=judge or judge_url is not None,
        judge_url=judge_url,
        limit=limit,
        fresh=fresh,
    )
    try:
        with progress_bar(as_json) as bar:
            run = evaluate(settings, options, progress=RichIngestProgress(bar))
    except KeyboardInterrupt:
        console.print("[bold red]interrupted[/]: finished answers are kept; run the same command to resume")
        raise typer.Exit(130) from None
    if as_json:
        print_json(run.summary)
        return
    console.print(
        f"{run.answered} answered now, {run.reused} from an earlier run; results in {escape(str(run.out))}",
        highlight=False,
    )
    _print_summary(run.summary)
    out.print(f"report: {run.out / 'report.html'}", highlight=False)


def compare(
    run_a: Annotated[Path, typer.Argument(help="output folder of the first `ra eval qa` run")],
    run_b: Annotated[Path, typer.Argument(help="output folder of the second run")],
    as_json: JsonOpt = False,
) -> None:
    """Two QA runs side by side: configuration changes, metrics with deltas, per kind, differing questions."""
    from eval.compare import compare_runs, load_run

    result = compare_runs(load_run(run_a), load_run(run_b))
    if as_json:
        print_json(result)
        return
    for key, (a, b) in result["config_changes"].items():
        out.print(f"{key}: {a} -> {b}", highlight=False)
    out.print(_delta_table("metric", result["metrics"]))
    per_kind = {
        f"{kind} / {name}": values[name]
        for kind, values in result["by_kind"].items()
        for name in SHOWN_PER_KIND
        if name in values
    }
    out.print(_delta_table("kind / metric", per_kind))
    out.print(_delta_table("latency (s)", result["latency"], percent=False))
    if result["differing"]:
        table = Table("id", "kind", "A", "B", "question", title="questions whose outcome differs")
        for d in result["differing"]:
            table.add_row(d["id"], d["kind"], _outcome(d["a"]), _outcome(d["b"]), escape(d["question"][:80]))
        out.print(table)
    for side in ("a", "b"):
        if result[f"only_in_{side}"]:
            out.print(f"only in {side.upper()}: {', '.join(result[f'only_in_{side}'])}", highlight=False)


def _fmt(value: Any, percent: bool) -> str:
    if value is None:
        return "–"
    if percent:
        return f"{100 * value:.1f}%"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _delta_table(title: str, rows: Mapping[str, Mapping[str, Any]], percent: bool = True) -> Table:
    table = Table(title, "A", "B", "B - A")
    for name, v in rows.items():
        if v["a"] is None and v["b"] is None:
            continue
        p = percent and name.split(" / ")[-1] not in COUNTS
        delta = v["delta"]
        shown = "–" if delta is None else (f"{100 * delta:+.1f} pts" if p else f"{delta:+g}")
        table.add_row(escape(name), _fmt(v["a"], p), _fmt(v["b"], p), shown)
    return table


def _outcome(o: Mapping[str, Any]) -> str:
    if o["abstained"]:
        return "abstained"
    hit = o.get("keyword_hit")
    return "keywords ✓" if hit else ("keywords ✗" if hit is False else "answered")


def _print_summary(summary: Mapping[str, Any]) -> None:
    metrics = summary["metrics"]
    table = Table("metric", "all", *summary["by_kind"])
    for name, value in metrics.items():
        if value is None and all(k.get(name) is None for k in summary["by_kind"].values()):
            continue
        cells = [fmt(name, k.get(name)) for k in summary["by_kind"].values()]
        table.add_row(LABELS.get(name, name), fmt(name, value), *cells)
    out.print(table)
    lat = summary["latency"]
    out.print(
        "latency s: first token p50 {} p95 {}, total p50 {} p95 {}".format(
            *(_fmt(lat[k], False) for k in ("first_token_p50", "first_token_p95", "total_p50", "total_p95"))
        ),
        highlight=False,
    )
