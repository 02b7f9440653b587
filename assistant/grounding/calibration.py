"""Balanced accuracy and the choice of a checker's decision threshold from labelled scores.

Balanced accuracy (the mean of the recalls of the two classes) is what the WiCE and LLM-AggreFact papers
report, so a checker that calls everything "supported" scores 0.5 however skewed the labels are. The
threshold is chosen on labelled data; `cross_fitted` reports what a threshold chosen on one half scores on
the other, which is the honest number when the same set also picks the threshold.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def balanced_accuracy(labels: Sequence[bool], scores: Sequence[float], threshold: float) -> float:
    """Mean recall of supported (score >= threshold) and unsupported pairs; 0.5 when one class is empty."""
    y = np.asarray(labels, dtype=bool)
    predicted = np.asarray(scores, dtype=float) >= threshold
    recalls = [float((predicted[y == want] == want).mean()) for want in (True, False) if (y == want).any()]
    return 0.5 if len(recalls) < 2 else (recalls[0] + recalls[1]) / 2


def best_threshold(labels: Sequence[bool], scores: Sequence[float]) -> float:
    """The threshold with the highest balanced accuracy on these pairs.

    Candidates are midpoints between neighbouring distinct scores (plus the ends), so the threshold does not
    sit on a training score; among equally good ones the middle candidate is taken, the least fitted choice."""
    if len(labels) != len(scores):
        raise ValueError(f"{len(labels)} labels but {len(scores)} scores")
    values = np.unique(np.asarray(scores, dtype=float))
    if values.size == 0:
        raise ValueError("no scores to calibrate on")
    candidates = np.concatenate(([values[0] - 1e-6], (values[1:] + values[:-1]) / 2, [values[-1] + 1e-6]))
    accs = np.array([balanced_accuracy(labels, scores, t) for t in candidates])
    best = np.flatnonzero(np.isclose(accs, accs.max()))
    return float(candidates[best[len(best) // 2]])


@dataclass(frozen=True)
class CrossFit:
    """Balanced accuracy of a threshold chosen on one half and scored on the other, each way round."""

    balanced_accuracy: float
    folds: tuple[float, float]
    thresholds: tuple[float, float]


def cross_fitted(labels: Sequence[bool], scores: Sequence[float], seed: int = 0) -> CrossFit:
    """2-fold: split stratified by label (seeded), calibrate on each half, evaluate on the other."""
    by_label: dict[bool, list[int]] = {True: [], False: []}
    for i, label in enumerate(labels):
        by_label[bool(label)].append(i)
    rng = random.Random(seed)
    halves: tuple[list[int], list[int]] = ([], [])
    for indices in by_label.values():
        rng.shuffle(indices)
        halves[0].extend(indices[::2])
        halves[1].extend(indices[1::2])
    accs, thresholds = [], []
    for fit, test in (halves, halves[::-1]):
        t = best_threshold([labels[i] for i in fit], [scores[i] for i in fit])
        thresholds.append(t)
        accs.append(balanced_accuracy([labels[i] for i in test], [scores[i] for i in test], t))
    return CrossFit(float(np.mean(accs)), (accs[0], accs[1]), (thresholds[0], thresholds[1]))


def auroc(labels: Sequence[bool], scores: Sequence[float]) -> float:
    """Area under the ROC curve: P(a supported pair outscores an unsupported one), ties counting half.
    Threshold-free, so it says how well a checker ranks even where its threshold does not transfer."""
    y = np.asarray(labels, dtype=bool)
    s = np.asarray(scores, dtype=float)
    pos, neg = s[y], s[~y]
    if not pos.size or not neg.size:
        raise ValueError("AUROC needs both supported and unsupported pairs")
    greater = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(greater / (pos.size * neg.size))


@dataclass(frozen=True)
class Confusion:
    """Counts at a threshold; "positive" is supported (score >= threshold)."""

    true_supported: int
    false_supported: int
    true_unsupported: int
    false_unsupported: int


def confusion(labels: Sequence[bool], scores: Sequence[float], threshold: float) -> Confusion:
    y = np.asarray(labels, dtype=bool)
    predicted = np.asarray(scores, dtype=float) >= threshold
    return Confusion(
        int((y & predicted).sum()),
        int((~y & predicted).sum()),
        int((~y & ~predicted).sum()),
        int((y & ~predicted).sum()),
    )
