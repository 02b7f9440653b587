"""Merge the dense and sparse result lists into one ranking.

Dense (cosine) and BM25 scores live on unrelated scales, so they cannot be added directly. Reciprocal
rank fusion ignores the scores and uses only ranks (robust, the default); weighted score fusion
min-max normalises each list first (keeps score gaps, sensitive to outliers). Both return every id seen,
best first, ties broken by the lower id so results are reproducible.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from index.config import FusionConfig


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[int]], k: int, weights: Sequence[float] | None = None
) -> list[tuple[int, float]]:
    """Score each id by sum_i w_i / (k + rank_i), rank 1-based (k: `FusionConfig.rrf_k`).

    An id repeated within one list counts once, at its best rank.
    """
    if k < 0:
        raise ValueError(f"rrf k must be non-negative, got {k}")
    weights = _check_weights(weights, len(rankings))
    parts: dict[int, list[float]] = {}
    for ranking, w in zip(rankings, weights, strict=True):
        seen: set[int] = set()
        for rank, doc in enumerate(ranking, start=1):
            if doc not in seen:
                seen.add(doc)
                parts.setdefault(doc, []).append(w / (k + rank))
    return _ranked({doc: math.fsum(p) for doc, p in parts.items()})


def weighted_score_fusion(
    results: Sequence[tuple[Sequence[int], Sequence[float]]], weights: Sequence[float]
) -> list[tuple[int, float]]:
    """Weighted sum of min-max normalised scores; an id missing from a list scores 0 there.

    A list whose scores are all equal normalises to 1.0 (every hit is as good as its best); an id
    repeated in one list keeps its highest score.
    """
    weights = _check_weights(weights, len(results))
    parts: dict[int, list[float]] = {}
    for (ids, scores), w in zip(results, weights, strict=True):
        if len(ids) != len(scores):
            raise ValueError(
                f"a result list has {len(ids)} ids but {len(scores)} scores; pass one score per id"
            )
        if not ids:
            continue
        lo, hi = min(scores), max(scores)
        best: dict[int, float] = {}
        for doc, s in zip(ids, scores, strict=True):
            norm = (s - lo) / (hi - lo) if hi > lo else 1.0
            best[doc] = max(norm, best.get(doc, norm))
        for doc, norm in best.items():
            parts.setdefault(doc, []).append(w * norm)
    return _ranked({doc: math.fsum(p) for doc, p in parts.items()})


def _check_weights(weights: Sequence[float] | None, n_lists: int) -> Sequence[float]:
    if weights is None:
        return [1.0] * n_lists
    if len(weights) != n_lists:
        raise ValueError(f"got {len(weights)} weights for {n_lists} result lists; pass one weight per list")
    return weights


def _ranked(scores: dict[int, float]) -> list[tuple[int, float]]:
    """Best first; fsum above makes symmetric contributions tie exactly, so the id tie-break applies."""
    return sorted(scores.items(), key=lambda item: (-item[1], item[0]))


def fuse(
    dense: Sequence[tuple[int, float]], sparse: Sequence[tuple[int, float]], fusion: FusionConfig
) -> list[tuple[int, float]]:
    """Fuse a dense and a BM25 ranking ((id, score) pairs) the way `FusionConfig` says."""
    weights = [fusion.dense_weight, 1.0 - fusion.dense_weight]
    if fusion.method == "weighted":
        return weighted_score_fusion(
            [
                ([i for i, _ in dense], [s for _, s in dense]),
                ([i for i, _ in sparse], [s for _, s in sparse]),
            ],
            weights,
        )
    return reciprocal_rank_fusion(
        [[i for i, _ in dense], [i for i, _ in sparse]], k=fusion.rrf_k, weights=weights
    )
