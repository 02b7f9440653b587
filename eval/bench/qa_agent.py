"""The research agent on the dev questions: `ra eval qa` over the dev set, summary recorded for the docs.

    python -m eval.bench.qa_agent [--data ../shared/qa/seeds_dev.jsonl] [--index DIR] [--limit N]
                                  [--llm SPEC | --llm-url URL] [--llm-backend server|vllm-batch]
                                  [--concurrency N] [--checker NAME] [--out RUN_DIR]
                                  [--summary docs/bench/qa_agent.json]

The run itself is eval/qa_run.py (metric definitions in eval/metrics.py): resumable, with results.jsonl,
summary.json and report.html in RUN_DIR (default .ra/eval/<data>-<config hash>). The summary is printed and
copied to --summary with machine paths reduced to file names, so it can be committed.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from assistant.settings import load_settings
from eval.qa_run import LLM_BACKENDS, QAOptions, evaluate

DEFAULT_DATA = Path(__file__).resolve().parents[3] / "shared" / "qa" / "seeds_dev.jsonl"


def portable(summary: dict[str, Any]) -> dict[str, Any]:
    """The summary without this machine's paths (data file and index folder keep their names)."""
    config = dict(summary["config"])
    for key in ("data", "index"):
        config[key] = Path(config[key]).name
    return {**summary, "config": config}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--index", type=Path, default=None, help="index directory (default: settings)")
    parser.add_argument("--limit", type=int, default=None, help="first N questions only")
    parser.add_argument("--llm", default=None, help="model for the embedded server (default: settings)")
    parser.add_argument("--llm-url", default=None, help="use a running OpenAI-compatible server instead")
    parser.add_argument("--llm-backend", default="server", choices=LLM_BACKENDS)
    parser.add_argument("--concurrency", type=int, default=1, help="questions at once")
    parser.add_argument("--checker", default=None, help="grounding checker (default: settings)")
    parser.add_argument("--out", type=Path, default=None, help="run folder (default: as `ra eval qa`)")
    parser.add_argument("--summary", type=Path, default=Path("docs/bench/qa_agent.json"))
    args = parser.parse_args()
    settings = load_settings(
        {
            "index": {"dir": args.index},
            "llm": {"model": args.llm, "url": args.llm_url},
            "grounding": {"checker": args.checker},
        }
    )
    options = QAOptions(
        data=args.data,
        out=args.out,
        llm_backend=args.llm_backend,
        concurrency=args.concurrency,
        limit=args.limit,
    )
    run = evaluate(settings, options)
    summary = portable(run.summary)
    args.summary.parent.mkdir(parents=True, exist_ok=True)
    args.summary.write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(summary, indent=2, ensure_ascii=False))
    print(f"run folder (results.jsonl, report.html): {run.out}")


if __name__ == "__main__":
    main()
