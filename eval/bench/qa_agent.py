"""The research agent on the dev questions: accuracy, citation validity, abstention and latency.

    python -m eval.bench.qa_agent [--data ../shared/qa/seeds_dev.jsonl] [--index DIR] [--limit N]
                                  [--llm SPEC | --llm-url URL] [--out docs/bench/qa_agent.json]

Keyword accuracy: every `answer_keywords` entry occurs in the answer (case-insensitive); answerable items
only. A citation is valid when its passage's document text at [start, end) is exactly its quote (computed
citations: the quote is in the recorded output). Abstention rate is measured on the unanswerable items,
false abstention on the answerable ones.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

from assistant.agent.backends import open_backend
from assistant.agent.loop import ResearchAgent, final_answer
from assistant.agent.records import Answer
from assistant.index_access import open_index
from assistant.settings import load_settings
from index.search import HybridIndex

DEFAULT_DATA = Path(__file__).resolve().parents[3] / "shared" / "qa" / "seeds_dev.jsonl"


def keywords_hit(answer: str, keywords: list[str]) -> bool:
    text = answer.lower()
    return all(k.lower() in text for k in keywords)


def citations_valid(answer: Answer, index: HybridIndex) -> bool:
    """Every citation resolves: the document text at its span is its quote, inside the cited passage."""
    for c in answer.citations:
        if c.kind == "computed":
            if c.quote not in (c.output or ""):
                return False
            continue
        doc = index.document_text(c.source)
        chunk = index.get_chunk(c.chunk_id) if c.chunk_id else None
        if doc is None or c.start is None or c.end is None or doc[c.start : c.end] != c.quote or not c.quote:
            return False
        if chunk is not None and not (chunk.start <= c.start and c.end <= chunk.end):
            return False
    return True


def _pct(values: list[bool]) -> float | None:
    return round(100 * sum(values) / len(values), 1) if values else None


def _latency(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    p95 = statistics.quantiles(values, n=20, method="inclusive")[18] if len(values) > 1 else values[0]
    return {"p50": round(statistics.median(values), 2), "p95": round(p95, 2)}


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    answerable = [r for r in rows if r["kind"] != "unanswerable"]
    unanswerable = [r for r in rows if r["kind"] == "unanswerable"]
    by_kind: dict[str, list[bool]] = {}
    for r in answerable:
        by_kind.setdefault(r["kind"], []).append(r["keywords_hit"])
    return {
        "questions": len(rows),
        "keyword_accuracy_pct": _pct([r["keywords_hit"] for r in answerable]),
        "keyword_accuracy_by_kind_pct": {k: _pct(v) for k, v in sorted(by_kind.items())},
        "citations_valid_pct": _pct([r["citations_valid"] for r in rows]),
        "answers_with_citations": sum(1 for r in rows if r["citations"]),
        "invalid_citations_dropped": sum(r["invalid_citations"] for r in rows),
        "abstention_on_unanswerable_pct": _pct([r["abstained"] for r in unanswerable]),
        "false_abstention_on_answerable_pct": _pct([r["abstained"] for r in answerable]),
        "errors": sum(1 for r in rows if r["error"]),
        "first_token_s": _latency([r["first_token_s"] for r in rows if r["first_token_s"] is not None]),
        "total_s": _latency([r["total_s"] for r in rows]),
        "steps_mean": round(statistics.mean(r["steps"] for r in rows), 2) if rows else None,
    }


def run(
    items: list[dict[str, Any]], agent: ResearchAgent, index: HybridIndex, save: Callable[[list], None]
) -> list[dict[str, Any]]:
    """Answer every item; `save` gets the rows after each one, so an interrupted run keeps its results."""
    rows: list[dict[str, Any]] = []
    for item in items:
        answer = final_answer(agent.run(item["question"]))
        row = {
            "id": item["id"],
            "kind": item["kind"],
            "answer": answer.text,
            "abstained": answer.abstained,
            "keywords_hit": keywords_hit(answer.text, item.get("answer_keywords", []))
            and not answer.abstained,
            "citations": len(answer.citations),
            "citations_valid": citations_valid(answer, index),
            "invalid_citations": answer.invalid_citations,
            "steps": len(answer.steps),
            "actions": [s.action for s in answer.steps],
            "first_token_s": answer.timings.get("first_token_s"),
            "total_s": answer.timings["total_s"],
            "error": answer.error,
        }
        print(json.dumps(row, ensure_ascii=False), flush=True)
        rows.append(row)
        save(rows)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--index", type=Path, default=None, help="index directory (default: settings)")
    parser.add_argument("--limit", type=int, default=None, help="first N questions only")
    parser.add_argument("--llm", default=None, help="model for the embedded server (default: settings)")
    parser.add_argument("--llm-url", default=None, help="use a running OpenAI-compatible server instead")
    parser.add_argument("--out", type=Path, default=Path("docs/bench/qa_agent.json"))
    args = parser.parse_args()
    if not args.data.is_file():
        raise SystemExit(f"no question file at {args.data}: pass --data")
    items = [json.loads(line) for line in args.data.read_text().splitlines() if line.strip()][: args.limit]
    settings = load_settings({"index": {"dir": args.index}, "llm": {"model": args.llm, "url": args.llm_url}})
    index = open_index(settings)
    llm = settings.llm.url or settings.llm.model

    def save(rows: list[dict[str, Any]]) -> None:
        report = {"data": str(args.data), "llm": llm, "summary": summarise(rows), "rows": rows}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")

    with open_backend(settings) as backend:
        rows = run(items, ResearchAgent(backend, index, settings.agent), index, save)
    print(json.dumps(summarise(rows), indent=2))


if __name__ == "__main__":
    main()
