"""`ra eval qa` results for the evaluation page: run one as a process, follow it, load a result folder.

The UI may not import `eval` (layering), so a run is the CLI in a subprocess with this session's settings
passed the way every command reads them (RA_* variables). Its output folder holds `results.jsonl` (one
line per question, written as it goes: the line count is the progress), `summary.json` and `report.html`.
"""

from __future__ import annotations

import atexit
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from assistant.settings import Settings
from index.errors import UserFacingError

RESULTS, SUMMARY, REPORT, LOG = "results.jsonl", "summary.json", "report.html", "ui-run.log"
METRICS = (
    "keyword_hit",
    "abstention_correct",
    "faithfulness",
    "citation_recall",
    "citation_precision",
    "evidence_recall",
    "invalid_citations",
)
RATE_METRICS = METRICS[:-1]  # in [0, 1]; invalid_citations is a count


@dataclass(frozen=True)
class MetricInfo:
    """How the summary table names a metric, its unit and what it measures (eval/metrics.py defines them)."""

    label: str
    unit: Literal["rate", "count", "seconds"]
    meaning: str


# The summary's keys in the order the table shows them; a key not listed here is shown under its own name.
METRIC_INFO = {
    "n": MetricInfo("Questions", "count", "questions scored"),
    "keyword_hit": MetricInfo("Keyword accuracy", "rate", "answers that contain every gold keyword"),
    "abstention_correct": MetricInfo(
        "Correct abstention", "rate", "abstained exactly when the question is unanswerable"
    ),
    "abstention_accuracy": MetricInfo("Abstention accuracy", "rate", "unanswerable questions abstained on"),
    "false_abstention_rate": MetricInfo(
        "False abstention rate", "rate", "answerable questions abstained on (lower is better)"
    ),
    "judge_correct": MetricInfo("Judge correctness", "rate", "answers an LLM judge calls correct"),
    "faithfulness": MetricInfo("Faithfulness", "rate", "answer sentences their citations support"),
    "citation_recall": MetricInfo("Citation recall", "rate", "sentences entailed by their citations"),
    "citation_precision": MetricInfo("Citation precision", "rate", "citations that are relevant"),
    "invalid_citations": MetricInfo(
        "Invalid citations", "count", "per answer: numbers of passages the agent never saw"
    ),
    "citations_resolve": MetricInfo(
        "Citations resolve", "rate", "answers whose quotes are verbatim in their documents"
    ),
    "evidence_recall": MetricInfo("Evidence recall", "rate", "gold quotes inside a passage the agent saw"),
    "retrieval_recall": MetricInfo("Retrieval recall", "rate", "gold quotes in the top k of a plain search"),
    "first_token_p50": MetricInfo("First words, median", "seconds", "time to the answer's first words"),
    "first_token_p95": MetricInfo("First words, 95th percentile", "seconds", "time to the first words"),
    "total_p50": MetricInfo("Answer time, median", "seconds", "time to the whole answer"),
    "total_p95": MetricInfo("Answer time, 95th percentile", "seconds", "time to the whole answer"),
}
_RUNNING: list[subprocess.Popen[bytes]] = []  # stopped when the app exits, so no run outlives it


class ResultError(UserFacingError):
    pass


def count_lines(path: Path) -> int:
    try:
        with path.open("rb") as fh:
            return sum(1 for line in fh if line.strip())
    except FileNotFoundError:
        return 0


def check_qa_file(path: Path) -> int:
    """The number of questions in a QA file; raises ResultError saying what is wrong with it."""
    if not path.is_file():
        raise ResultError(f"no QA file at {path}: give the path of a .jsonl file with one question per line")
    try:
        first = json.loads(path.open(encoding="utf-8").readline() or "null")
    except (ValueError, UnicodeDecodeError):
        raise ResultError(f"{path} is not JSON Lines: each line must be a JSON object") from None
    if not isinstance(first, dict) or "question" not in first:
        raise ResultError(f'{path}: the first line has no "question" field; is this a QA file?')
    return count_lines(path)


def eval_env(settings: Settings) -> dict[str, str]:
    """The environment that gives `ra eval qa` this session's index, model and retrieval settings."""
    env = dict(os.environ)
    env["RA_INDEX__DIR"] = str(Path(settings.index.dir).resolve())
    env["RA_RETRIEVAL__MODE"] = settings.retrieval.mode
    env["RA_AGENT__SEARCH_K"] = str(settings.agent.search_k)
    env["RA_AGENT__SANDBOX"] = "true" if settings.agent.sandbox else "false"
    env["RA_LLM__MODEL"] = settings.llm.model
    if settings.llm.url:
        env["RA_LLM__URL"] = settings.llm.url
    else:
        env.pop("RA_LLM__URL", None)
    return env


def eval_command(data: Path, out: Path, limit: int | None = None) -> list[str]:
    argv = [sys.executable, "-m", "assistant", "eval", "qa", "--data", str(data), "--out", str(out)]
    return argv + (["--limit", str(limit)] if limit else [])


@dataclass
class EvalJob:
    """A running `ra eval qa`; its log is kept next to its results."""

    data: Path
    out: Path
    total: int
    proc: subprocess.Popen[bytes]
    started: float = field(default_factory=time.time)

    @property
    def done(self) -> int:
        return count_lines(self.out / RESULTS)

    @property
    def returncode(self) -> int | None:
        return self.proc.poll()

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = (self.out / LOG).read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()


def start_eval(data: Path, out: Path, settings: Settings, limit: int | None = None) -> EvalJob:
    """Start `ra eval qa` on `data` (its first `limit` questions) writing to `out`."""
    total = check_qa_file(data)
    total = min(total, limit) if limit else total
    if (out / RESULTS).exists():
        raise ResultError(f"{out} already holds a result: choose a new output folder or load that one")
    out.mkdir(parents=True, exist_ok=True)
    with (out / LOG).open("wb") as log:
        proc = subprocess.Popen(
            eval_command(data, out, limit),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=eval_env(settings),
        )
    _RUNNING.append(proc)
    return EvalJob(data, out, total, proc)


@atexit.register
def _stop_running() -> None:
    for proc in _RUNNING:
        if proc.poll() is None:
            proc.terminate()


@dataclass
class EvalResult:
    """A result folder as the page shows it; `summary` is None while a run is still writing."""

    dir: Path
    rows: list[dict[str, Any]]
    summary: dict[str, Any] | None

    @property
    def report(self) -> Path | None:
        path = self.dir / REPORT
        return path if path.is_file() else None


def load_result(directory: Path) -> EvalResult:
    results = directory / RESULTS
    if not results.is_file():
        raise ResultError(f"no {RESULTS} in {directory}: pick the --out folder of an `ra eval qa` run")
    rows = []
    for n, line in enumerate(results.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except ValueError:
            raise ResultError(f"{results} line {n} is not JSON: the file is damaged") from None
    summary_path = directory / SUMMARY
    summary = json.loads(summary_path.read_text(encoding="utf-8")) if summary_path.is_file() else None
    return EvalResult(directory, rows, summary)


def find_results(root: Path) -> list[Path]:
    """Result folders under `root` (one level), newest first."""
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if (p / RESULTS).is_file()]
    return sorted(found, key=lambda p: (p / RESULTS).stat().st_mtime, reverse=True)


def question_table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per question: what was asked and answered, its metrics and its time."""
    records = []
    for r in rows:
        metrics = r.get("metrics") or {}
        timings = r.get("timings") or {}
        records.append(
            {
                "id": str(r.get("id", "")),
                "kind": r.get("kind", ""),
                "question": r.get("question", ""),
                "answer": r.get("answer", ""),
                "abstained": bool(r.get("abstained")),
                **{m: _number(metrics.get(m)) for m in METRICS},
                "total_s": _number(timings.get("total_s")),
                "first_token_s": _number(timings.get("first_token_s")),
            }
        )
    return pd.DataFrame.from_records(records)


def headline(result: EvalResult, table: pd.DataFrame) -> dict[str, float | None]:
    """Overall metrics: the summary's when the run finished, else the mean over the questions so far."""
    if result.summary and result.summary.get("metrics"):
        return {k: _number(v) for k, v in result.summary["metrics"].items()}
    return {m: _mean(table, m) for m in METRICS if m in table}


def metric_info(name: str) -> MetricInfo:
    return METRIC_INFO.get(name) or MetricInfo(name.replace("_", " ").capitalize(), "rate", "")


def format_metric(name: str, value: float | None) -> str:
    """The value with its unit: a rate as a percentage, a time in seconds, a count as a number."""
    if value is None:
        return "–"
    unit = metric_info(name).unit
    if unit == "rate":
        return f"{value:.0%}"
    if unit == "seconds":
        return f"{value:.1f} s"
    return f"{value:g}" if value == int(value) else f"{value:.2f}"


def summary_table(result: EvalResult, table: pd.DataFrame) -> pd.DataFrame:
    """The overall metrics and latency one per row (metric, value, what it measures): a row of 17
    side-by-side numbers has no room for their names."""
    values: dict[str, float | None] = {"n": float(len(table)), **headline(result, table)}
    values |= {k: _number(v) for k, v in ((result.summary or {}).get("latency") or {}).items()}
    order = {name: n for n, name in enumerate(METRIC_INFO)}
    names = sorted(values, key=lambda name: order.get(name, len(order)))
    return pd.DataFrame(
        {
            "Metric": [metric_info(name).label for name in names],
            "Value": [format_metric(name, values[name]) for name in names],
            "What it measures": [metric_info(name).meaning for name in names],
        }
    )


def by_kind(result: EvalResult, table: pd.DataFrame) -> pd.DataFrame:
    """Metrics per question kind (the summary's, else computed from the rows)."""
    kinds = (result.summary or {}).get("by_kind")
    if kinds:
        return pd.DataFrame.from_dict(kinds, orient="index").rename_axis("kind")
    if table.empty:
        return pd.DataFrame()
    columns = [m for m in METRICS if m in table]
    grouped = table.groupby("kind")[columns].mean()
    return grouped.assign(n=table.groupby("kind").size())


def _number(value: Any) -> float | None:
    """Metrics are numbers or booleans (a hit is 1.0); anything else (None: not applicable) is missing."""
    return float(value) if isinstance(value, bool | int | float) else None


def _mean(table: pd.DataFrame, column: str) -> float | None:
    values = table[column].dropna()
    return float(values.mean()) if len(values) else None
