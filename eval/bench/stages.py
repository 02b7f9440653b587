"""Per-stage figures of an `ra eval qa` run, read from its traces: for each kind of step (plan, answer,
check, think, relation, search, read, python) how often it ran, its model time p50/p95 and tokens; per part, how often it
was answered. Used to compare models stage by stage (docs/benchmarks.md, "Agent v2").

    python -m eval.bench.stages RUN_DIR [RUN_DIR ...]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from eval.metrics import percentile


def stage_table(run: Path) -> dict[str, Any]:
    steps: dict[str, list[dict[str, Any]]] = {}
    parts = answered = 0
    for trace in sorted((run / "traces").glob("*.jsonl")):
        for line in trace.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            if record["type"] == "step":
                steps.setdefault(record["action"], []).append(record)
            elif record["type"] == "part":
                parts += 1
                answered += record["status"] == "answered"
    table = {}
    for action, rows in sorted(steps.items()):
        model = [r["model_s"] for r in rows if r["model_s"]]
        table[action] = {
            "count": len(rows),
            "model_p50_s": percentile(model, 50),
            "model_p95_s": percentile(model, 95),
            "tool_p50_s": percentile([r["tool_s"] for r in rows], 50),
            "prompt_tokens_p50": percentile([r["prompt_tokens"] for r in rows if r["prompt_tokens"]], 50),
            "completion_tokens_p50": percentile(
                [r["completion_tokens"] for r in rows if r["completion_tokens"]], 50
            ),
            "invalid_replies": sum(1 for r in rows if r["error"]),
            "cached_tokens_p50": percentile([r["cached_tokens"] for r in rows if r.get("cached_tokens")], 50),
        }
    summary = json.loads((run / "summary.json").read_text()) if (run / "summary.json").is_file() else {}
    return {
        "run": run.name,
        "model": summary.get("config", {}).get("llm"),
        "keyword_hit": summary.get("metrics", {}).get("keyword_hit"),
        "parts": parts,
        "parts_answered": answered,
        "stages": table,
    }


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", type=Path, nargs="+")
    args = ap.parse_args(argv)
    tables = [stage_table(run) for run in args.runs]
    print(json.dumps(tables, indent=2))
    return tables


if __name__ == "__main__":
    main()
