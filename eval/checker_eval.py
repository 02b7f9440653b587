"""Scoring labelled pairs with a grounding checker and summarising how well its threshold separates them.

Shared by `ra eval checker`, the training script (held-out split, WiCE dev calibration) and the benchmark,
so all three report the same numbers the same way.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from assistant.grounding.base import GroundingChecker
from assistant.grounding.calibration import auroc, balanced_accuracy, best_threshold, confusion, cross_fitted
from eval.checker_data import Pair

BATCH = 16  # pairs per call: enough for the local checker to batch, small enough for a smooth progress bar


@dataclass(frozen=True)
class Scored:
    scores: list[float]
    seconds: float

    @property
    def pairs_per_s(self) -> float:
        return len(self.scores) / self.seconds if self.seconds > 0 else float("inf")


def score_pairs(
    checker: GroundingChecker, pairs: Sequence[Pair], on_batch: Callable[[int], None] | None = None
) -> Scored:
    """Scores of `pairs` in order, timed (wall clock, model loading excluded)."""
    scores: list[float] = []
    started = time.perf_counter()
    for i in range(0, len(pairs), BATCH):
        batch = pairs[i : i + BATCH]
        scores.extend(checker.scores([(p.evidence, p.claim) for p in batch]))
        if on_batch:
            on_batch(len(batch))
    return Scored(scores, time.perf_counter() - started)


def label_metrics(labels: Sequence[bool], scores: Sequence[float], threshold: float) -> dict[str, Any]:
    """Balanced accuracy, AUROC and the confusion counts at `threshold`; the best threshold on these pairs and what it scores (optimistic:
    fitted here); and, with two pairs of each class or more, the 2-fold cross-fitted balanced accuracy
    (threshold fitted on the other half)."""
    fitted = best_threshold(labels, scores)
    supported = sum(map(bool, labels))
    metrics: dict[str, Any] = {
        "balanced_accuracy": round(balanced_accuracy(labels, scores, threshold), 4),
        "supported": supported,
        "unsupported": len(labels) - supported,
        "best_threshold": round(fitted, 4),
        "balanced_accuracy_at_best": round(balanced_accuracy(labels, scores, fitted), 4),
    }
    if 0 < supported < len(labels):
        metrics["auroc"] = round(auroc(labels, scores), 4)
    metrics["confusion"] = asdict(confusion(labels, scores, threshold))
    if min(supported, len(labels) - supported) >= 2:  # each half needs both classes
        folds = cross_fitted(labels, scores)
        metrics["balanced_accuracy_2fold"] = round(folds.balanced_accuracy, 4)
        metrics["thresholds_2fold"] = [round(t, 4) for t in folds.thresholds]
    return metrics


def summarize(checker: GroundingChecker, pairs: Sequence[Pair], scored: Scored) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "checker": checker.name,
        "n": len(pairs),
        "threshold": round(checker.threshold, 4),
        "pairs_per_s": round(scored.pairs_per_s, 2),
        "seconds": round(scored.seconds, 1),
    }
    labelled = [(p.label, s) for p, s in zip(pairs, scored.scores, strict=True) if p.label is not None]
    if labelled and len({label for label, _ in labelled}) == 2:
        labels, scores = zip(*labelled, strict=True)
        summary |= label_metrics(list(labels), list(scores), checker.threshold)
        sources = sorted({p.source for p in pairs if p.label is not None})
        if len(sources) > 1:
            summary["per_source"] = {
                name: {"n": len(y), **label_metrics(y, s, checker.threshold)}
                for name in sources
                for y, s in [_labelled(pairs, scored.scores, name)]
                if len(set(y)) == 2
            }
    return summary


def _labelled(pairs: Sequence[Pair], scores: Sequence[float], source: str) -> tuple[list[bool], list[float]]:
    """Labels and scores of one source's labelled pairs."""
    rows = [
        (bool(p.label), s)
        for p, s in zip(pairs, scores, strict=True)
        if p.label is not None and p.source == source
    ]
    return [y for y, _ in rows], [s for _, s in rows]


def write_predictions(path: Path, scores: Sequence[float], threshold: float) -> None:
    """One line per input pair: {"index", "score", "label"} with WiCE's label names."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for i, score in enumerate(scores):
            label = "supported" if score >= threshold else "not_supported"
            f.write(json.dumps({"index": i, "score": round(score, 6), "label": label}) + "\n")
