"""`ra eval checker` (score a WiCE-format file with a grounding checker) and `ra eval train-checker`."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Annotated

import typer

from assistant.cli.common import fail, print_report, progress_bar
from assistant.cli.index_cmds import JsonOpt
from assistant.settings import load_settings

CheckerOpt = Annotated[
    str | None, typer.Option("--checker", help="align | minilm | llm (default: settings grounding.checker)")
]


def register(eval_app: typer.Typer) -> None:
    eval_app.command("checker")(checker)
    eval_app.command("train-checker")(train_checker)


def checker(
    data: Annotated[Path, typer.Option("--data", help="JSONL in WiCE format: claim, evidence, label?")],
    name: CheckerOpt = None,
    out: Annotated[
        Path | None, typer.Option("--out", help='write {"index", "score", "label"} per pair here')
    ] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="first N pairs only")] = None,
    calibrate: Annotated[
        bool,
        typer.Option(
            "--calibrate", help="llm: keep the threshold with the best balanced accuracy on this data"
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Score (evidence, claim) pairs; with labels, report balanced accuracy at the checker's threshold."""
    from assistant.agent.factory import open_backend
    from assistant.grounding.llm_judge import LLMJudge, write_calibrated_threshold
    from assistant.grounding.registry import open_checker
    from eval.checker_data import read_wice
    from eval.checker_eval import score_pairs, summarize, write_predictions

    pairs = read_wice(data)[:limit]
    settings = load_settings({"grounding": {"checker": name}})
    if calibrate and settings.grounding.checker != "llm":
        fail("--calibrate is for the llm checker: align and minilm are calibrated by `ra eval train-checker`")
    with ExitStack() as stack:
        client = None
        if settings.grounding.checker == "llm":
            client = stack.enter_context(open_backend(settings)).client
        grader = open_checker(settings, client)
        if grader is None:
            fail("grounding.checker is 'none': pass --checker minilm, align or llm")
        with progress_bar(as_json) as bar:
            task = bar.add_task("scoring", total=len(pairs))
            scored = score_pairs(grader, pairs, on_batch=lambda n: bar.advance(task, n))
    summary = summarize(grader, pairs, scored)
    if calibrate:
        if "best_threshold" not in summary:
            fail(f"{data} needs both supported and unsupported labels to calibrate on")
        judge = grader if isinstance(grader, LLMJudge) else None
        if judge is None:
            fail("--calibrate is for the llm checker")
        details = {
            "data": data.name,
            "n": len(pairs),
            "balanced_accuracy": summary["balanced_accuracy_at_best"],
        }
        path = write_calibrated_threshold(
            settings.cache_dir, judge.client.model, summary["best_threshold"], details
        )
        summary["calibration_file"] = str(path)
    if out:
        write_predictions(out, scored.scores, grader.threshold)
        summary["predictions"] = str(out)
    print_report(summary, as_json)


TRAINED = ("align", "minilm")


def train_checker(
    name: Annotated[str, typer.Option("--checker", help="align (v2, the default) | minilm (v1)")] = "align",
    shared: Annotated[
        Path | None, typer.Option("--shared", help="shared data folder (default: RA_SHARED_DIR or ../shared)")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="retrain even when the checker exists")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Train a local grounding checker and calibrate its threshold (a no-op when it is built)."""
    from eval import checker_train, checker_train_align

    if name not in TRAINED:
        fail(f"--checker {name!r} is not trained locally: choose one of {', '.join(TRAINED)}")
    build = checker_train_align.build if name == "align" else checker_train.build
    settings = load_settings()
    with progress_bar(as_json) as bar:
        report = build(
            settings.cache_dir, checker_train.shared_dir(shared), force, checker_train.bar_progress(bar)
        )
    print_report(report, as_json)
