"""Routing accuracy of the plan: does each question get the parts and the kind of answer it needs?

    python -m eval.bench.routing [--data QA.jsonl ...] [--paraphrases eval/data/paraphrases.jsonl]
                                 [--routes eval/data/routes.jsonl] [--llm SPEC | --llm-url URL]
                                 [--out docs/bench/routing.json]
    python -m eval.bench.routing --replay RUN [RUN ...]     # the plans of `ra eval qa` runs, no model call

Runs only the planning call (no search, no answer) on every question of the QA files and of the paraphrase
file (whose questions are rewordings of dev questions, `"of"` naming the original), and compares the plan
with the hand-labelled route of the original (`eval/data/routes.jsonl`: parts, whether a number must be
computed, whether it compares named things). A plan is routed right when it has the labelled number of
parts, a computed question has a part that asks for a number, and a comparison question has a comparison
part (and a non-comparison has none). The cue-word rules alone (`plan.rule_asks` per clause) are scored the
same way.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from assistant.agent.plan import PlanRequest, plan_request, rule_asks, rules_plan, split_clauses
from assistant.agent.records import Plan
from eval.bench import write_result

HERE = Path(__file__).resolve().parents[1]
SHARED_QA = Path(__file__).resolve().parents[3] / "shared" / "qa"


def load_questions(data: list[Path], paraphrases: Path | None) -> list[dict[str, Any]]:
    rows = [json.loads(line) for path in data for line in path.read_text().splitlines() if line.strip()]
    by_id = {r["id"]: r for r in rows}
    out = [{"id": r["id"], "of": r["id"], "question": r["question"], "kind": r["kind"]} for r in rows]
    if paraphrases is not None:
        for line in paraphrases.read_text().splitlines():
            p = json.loads(line)
            if p["of"] in by_id:
                out.append(
                    {"id": p["id"], "of": p["of"], "question": p["question"], "kind": by_id[p["of"]]["kind"]}
                )
    return out


def routed_right(asks: list[str], route: dict[str, Any]) -> dict[str, bool]:
    return {
        "parts": len(asks) == route["parts"],
        "number": (not route["computed"]) or ("number" in asks),
        "comparison": route["compare"] == ("comparison" in asks),
    }


def cue_asks(question: str) -> list[str]:
    """What the cue-word rules alone would route each clause to (the baseline the model is measured
    against; `rules_plan` itself never compares, having no items)."""
    return [rule_asks(c) or "fact" for c in split_clauses(" ".join(question.split()))]


def model_plans(questions: list[dict[str, Any]], settings: Any) -> Iterator[tuple[Plan, float]]:
    from assistant.agent.factory import open_backend
    from assistant.agent.loop import ask_model

    with open_backend(settings) as backend:
        for q in questions:
            request = plan_request(q["question"])
            t = time.perf_counter()
            if isinstance(request, PlanRequest):
                plan = ask_model(
                    backend,
                    request.messages,
                    request.schema,
                    settings.agent.plan_max_tokens,
                    request.parse,
                    settings.agent.retries,
                )
            else:
                plan = request
            yield (plan or rules_plan(q["question"])), time.perf_counter() - t


def replayed(runs: list[Path], routes: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows from `ra eval qa` runs without a model call: each question's planning reply, as its trace
    recorded it, parsed again with today's checks (a run's plan, re-judged by the code as it is now)."""
    from assistant.agent.plan import parse_plan

    rows = []
    for run in runs:
        for line in (run / "results.jsonl").read_text().splitlines():
            r = json.loads(line)
            if r["id"] not in routes:
                continue
            trace = [json.loads(t) for t in (run / "traces" / f"{r['id']}.jsonl").read_text().splitlines()]
            step = next((t for t in trace if t["type"] == "step" and t["action"] == "plan"), None)
            q = " ".join(r["question"].split())
            try:
                plan = parse_plan(step["raw"], q, split_clauses(q)) if step else rules_plan(q)
            except ValueError:
                plan = rules_plan(q)
            route = routes[r["id"]]
            rows.append(
                {"id": r["id"], "of": r["id"], "kind": r["kind"]}
                | {"model": routed_right([p.asks for p in plan.parts], route)}
                | {"rules": routed_right(cue_asks(q), route)}
            )
    return rows


def score(rows: list[dict[str, Any]], key: str) -> dict[str, Any]:
    by_kind: dict[str, Counter[str]] = defaultdict(Counter)
    for r in rows:
        c = by_kind[r["kind"]]
        c["n"] += 1
        for check, ok in r[key].items():
            c[check] += ok
        c["all"] += all(r[key].values())
    total: Counter[str] = sum(by_kind.values(), Counter())

    def share(c: Counter[str]) -> dict[str, float]:
        return {k: round(c[k] / max(c["n"], 1), 3) for k in ("all", "parts", "number", "comparison")} | {
            "n": c["n"]
        }

    return {"overall": share(total), "by_kind": {k: share(c) for k, c in sorted(by_kind.items())}}


def main() -> None:
    from assistant.settings import load_settings

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--data", type=Path, nargs="*", default=[SHARED_QA / "seeds_dev.jsonl", SHARED_QA / "dev_v2.jsonl"]
    )
    ap.add_argument("--paraphrases", type=Path, default=HERE / "data" / "paraphrases.jsonl")
    ap.add_argument("--routes", type=Path, default=HERE / "data" / "routes.jsonl")
    ap.add_argument("--llm", default=None)
    ap.add_argument("--llm-url", default=None)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--out", type=Path, default=Path("docs/bench/routing.json"))
    ap.add_argument(
        "--replay", type=Path, nargs="*", help="score the plan replies of these `ra eval qa` runs"
    )
    args = ap.parse_args()
    routes = {r["id"]: r for r in map(json.loads, args.routes.read_text().splitlines())}
    if args.replay:
        rows = replayed(args.replay, routes)
        out = {"replayed": [str(r.name) for r in args.replay], "model": score(rows, "model")}
        write_result(out | {"rules": score(rows, "rules")}, args.out)
        return
    questions = [q for q in load_questions(args.data, args.paraphrases) if q["of"] in routes][: args.limit]
    settings = load_settings({"llm": {"model": args.llm, "url": args.llm_url}})
    rows = []
    for q, (plan, seconds) in zip(questions, model_plans(questions, settings), strict=False):
        route = routes[q["of"]]
        rows.append(
            q
            | {
                "seconds": round(seconds, 2),
                "model": routed_right([p.asks for p in plan.parts], route),
                "rules": routed_right(cue_asks(q["question"]), route),
                "plan": [
                    {"asks": p.asks, "items": list(p.items), "rule_asks": p.rule_asks} for p in plan.parts
                ],
                "source": plan.source,
            }
        )
    originals = [r for r in rows if r["id"] == r["of"]]
    rewordings = [r for r in rows if r["id"] != r["of"]]
    seconds = sorted(r["seconds"] for r in rows)
    result = {
        "date": time.strftime("%Y-%m-%d"),
        "model": settings.llm.url or settings.llm.model,
        "plan_seconds_p50": seconds[len(seconds) // 2] if seconds else None,
        "model_fallbacks": sum(r["source"] == "rules" for r in rows),
        "dev": {"model": score(originals, "model"), "rules": score(originals, "rules")},
        "paraphrases": {"model": score(rewordings, "model"), "rules": score(rewordings, "rules")},
        "rows": rows,
    }
    write_result(result, args.out, detail="rows")


if __name__ == "__main__":
    main()
