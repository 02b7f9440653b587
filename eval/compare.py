"""`ra eval compare RUN_A RUN_B`: two `ra eval qa` runs side by side (two models, two retrieval modes...).

Reads each run's summary.json and results.jsonl and reports what changed in the configuration, every
summary metric with B - A, the same per question kind, the latency percentiles, and the questions whose
outcome differs (keyword hit, abstention or judge verdict) with both answers.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eval.qa_run import RESULTS, SUMMARY, config_changes
from index.errors import UserFacingError

OUTCOME = (
    "keyword_hit",
    "abstention_correct",
    "judge_correct",
)  # a question "differs" when one of these does


class RunNotFound(UserFacingError):
    pass


@dataclass(frozen=True)
class Run:
    path: Path
    summary: dict[str, Any]
    rows: dict[str, dict[str, Any]]


def load_run(path: Path) -> Run:
    """A run folder (or its summary.json)."""
    folder = path.parent if path.name == SUMMARY else path
    try:
        summary = json.loads((folder / SUMMARY).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunNotFound(
            f"no finished `ra eval qa` run at {path} (no {SUMMARY}): pass its --out folder"
        ) from None
    except ValueError as exc:
        raise RunNotFound(f"{folder / SUMMARY} is not valid JSON ({exc}): rerun `ra eval qa` there") from None
    rows: dict[str, dict[str, Any]] = {}
    if (folder / RESULTS).is_file():
        for line in (folder / RESULTS).read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except ValueError:
                continue  # a line cut short by a crash: `ra eval qa` drops it on its next run
            rows[str(row["id"])] = row
    return Run(folder, summary, rows)


def _delta(a: Any, b: Any) -> dict[str, Any]:
    both = isinstance(a, int | float) and isinstance(b, int | float)
    return {"a": a, "b": b, "delta": round(b - a, 4) if both else None}


def _side_by_side(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {k: _delta(a.get(k), b.get(k)) for k in dict.fromkeys([*a, *b])}


def compare_runs(a: Run, b: Run) -> dict[str, Any]:
    """The comparison as one JSON-ready object (what `--json` prints)."""
    sa, sb = a.summary, b.summary
    kinds = list(dict.fromkeys([*sa.get("by_kind", {}), *sb.get("by_kind", {})]))
    common = [i for i in a.rows if i in b.rows]
    differing = []
    for qid in common:
        ra, rb = a.rows[qid], b.rows[qid]
        if any(ra["metrics"].get(m) != rb["metrics"].get(m) for m in OUTCOME):
            differing.append(
                {
                    "id": qid,
                    "kind": ra["kind"],
                    "question": ra["question"],
                    "a": _outcome(ra),
                    "b": _outcome(rb),
                }
            )
    return {
        "a": str(a.path),
        "b": str(b.path),
        "config_changes": {k: list(v) for k, v in config_changes(sa["config"], sb["config"]).items()},
        "metrics": _side_by_side(sa["metrics"], sb["metrics"]),
        "by_kind": {
            k: _side_by_side(sa.get("by_kind", {}).get(k, {}), sb.get("by_kind", {}).get(k, {}))
            for k in kinds
        },
        "latency": _side_by_side(sa["latency"], sb["latency"]),
        "differing": differing,
        "only_in_a": [i for i in a.rows if i not in b.rows],
        "only_in_b": [i for i in b.rows if i not in a.rows],
    }


def _outcome(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "answer": row["answer"],
        "abstained": row["abstained"],
        **{m: row["metrics"].get(m) for m in (*OUTCOME, "faithfulness")},
    }
