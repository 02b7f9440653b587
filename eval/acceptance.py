"""How well the agent's acceptance keeps right drafts and stops wrong ones, from `ra eval qa` runs.

    python -m eval.acceptance RUN_DIR [RUN_DIR ...] [--json]

Every drafted sentence of every part is in `results.jsonl` (accepted ones in `parts[].sentences`, rejected
ones in `parts[].drafts`), each with its three signals (`acceptance`: anchored, checker support,
self-check P(yes)). A draft of an answerable question is labelled **right** when it contains at least one
of the question's gold keywords (a part answers one of them), **wrong** when it contains none; every draft
of an unanswerable question is wrong. Reported: the share of right drafts kept and of wrong drafts
stopped, for the agent's own decision and for each single signal and combination, so the policy in
`grounding/support.accept` is chosen by measurement.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eval.metrics import normalise_numbers


@dataclass(frozen=True, slots=True)
class Draft:
    id: str
    kind: str
    text: str
    right: bool
    accepted: bool
    anchored: bool
    support: float | None
    checker_yes: bool | None  # the checker's verdict as the run made it (at its calibrated threshold)
    self_check: float | None
    computed: bool


def drafts(rows: Sequence[dict[str, Any]]) -> Iterator[Draft]:
    """Each answer sentence drafted by the model (not the not-stated or relation sentences), labelled."""
    for row in rows:
        keywords = [normalise_numbers(k) for k in row.get("keywords") or _keywords(row)]
        for part in row.get("parts") or []:
            for s in [*part.get("sentences", []), *part.get("drafts", [])]:
                acc = s.get("acceptance")
                if acc is None or s["kind"] not in ("answer", "computed"):
                    continue
                text = normalise_numbers(s["text"])
                right = not row["unanswerable"] and any(k in text for k in keywords)
                yield Draft(
                    row["id"],
                    row["kind"],
                    s["text"],
                    right,
                    acc["accepted"],
                    acc["anchored"],
                    acc["support"],
                    None if s.get("verdict") is None else s["verdict"] == "supported",
                    acc["self_check"],
                    s["kind"] == "computed",
                )


def _keywords(row: dict[str, Any]) -> list[str]:
    return list(row.get("answer_keywords") or [])


Policy = Callable[[Draft], bool]


def policies(self_threshold: float) -> dict[str, Policy]:
    def checker(d: Draft) -> bool:
        return bool(d.checker_yes)

    def model(d: Draft) -> bool:
        return d.self_check is not None and d.self_check >= self_threshold

    return {
        "agent (as run)": lambda d: d.accepted,
        "anchored": lambda d: d.anchored,
        "checker": checker,
        "self-check": model,
        "anchored and checker": lambda d: d.anchored and checker(d),
        "anchored and self-check": lambda d: d.anchored and model(d),
        "anchored and (checker or self-check)": lambda d: d.anchored and (checker(d) or model(d)),
        "anchored and checker and self-check": lambda d: d.anchored and checker(d) and model(d),
    }


def rates(items: Sequence[Draft], policy: Policy) -> dict[str, Any]:
    right = [d for d in items if d.right]
    wrong = [d for d in items if not d.right]
    kept = sum(policy(d) for d in right)
    stopped = sum(not policy(d) for d in wrong)
    return {
        "right_kept": round(kept / len(right), 3) if right else None,
        "wrong_stopped": round(stopped / len(wrong), 3) if wrong else None,
        "right": len(right),
        "wrong": len(wrong),
    }


def load_rows(run: Path, gold: dict[str, list[str]]) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in (run / "results.jsonl").read_text().splitlines() if line.strip()]
    return [r | {"keywords": gold.get(r["id"], [])} for r in rows]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", type=Path, nargs="+")
    ap.add_argument("--data", type=Path, nargs="+", required=True, help="the QA files (gold keywords)")
    ap.add_argument("--self-threshold", type=float, default=None, help="default: the runs' setting")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    gold = {
        r["id"]: r.get("answer_keywords") or []
        for path in args.data
        for r in map(json.loads, path.read_text().splitlines())
    }
    rows = [r for run in args.runs for r in load_rows(run, gold)]
    config = json.loads((args.runs[0] / "config.json").read_text())
    self_threshold = args.self_threshold or float(config.get("agent", {}).get("self_check_threshold", 0.5))
    items = list(drafts(rows))
    result = {
        "drafts": len(items),
        "self_threshold": self_threshold,
        "policies": {name: rates(items, p) for name, p in policies(self_threshold).items()},
        "computed": rates([d for d in items if d.computed], lambda d: d.accepted),
        # the policy of the agent (anchored and (checker or self-check)) at other self-check thresholds
        "self_threshold_sweep": {
            str(t): rates(items, policies(t)["anchored and (checker or self-check)"])
            for t in (0.5, 0.6, 0.65, 0.7, 0.75, 0.8)
        },
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"{len(items)} drafts; self-check threshold {self_threshold}")
    for name, r in result["policies"].items():
        print(
            f"{name:40s} right kept {r['right_kept']}  wrong stopped {r['wrong_stopped']}  ({r['right']}/{r['wrong']})"
        )
    for t, r in result["self_threshold_sweep"].items():
        print(
            f"  as run, self-check at {t}: right kept {r['right_kept']}  wrong stopped {r['wrong_stopped']}"
        )


if __name__ == "__main__":
    main()
