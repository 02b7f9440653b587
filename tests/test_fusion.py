"""Rank fusion on hand-made lists with hand-computed answers."""

from __future__ import annotations

import pytest

from index.fusion import reciprocal_rank_fusion, weighted_score_fusion


def _assert_fused(got: list[tuple[int, float]], expected: list[tuple[int, float]]) -> None:
    assert [doc for doc, _ in got] == [doc for doc, _ in expected]
    assert [score for _, score in got] == pytest.approx([score for _, score in expected])


def test_rrf_hand_computed() -> None:
    # k=1: list A ranks 1,2,3 -> 1/2,1/3,1/4; list B ranks 3,1 -> 1/2,1/3.
    got = reciprocal_rank_fusion([[1, 2, 3], [3, 1]], k=1)
    _assert_fused(got, [(1, 1 / 2 + 1 / 3), (3, 1 / 4 + 1 / 2), (2, 1 / 3)])


def test_rrf_weights() -> None:
    got = reciprocal_rank_fusion([[1, 2], [2, 1]], k=0, weights=[3.0, 1.0])
    _assert_fused(got, [(1, 3 / 1 + 1 / 2), (2, 3 / 2 + 1 / 1)])


def test_rrf_ties_break_to_lower_id() -> None:
    # 7 and 4 swap places across lists: exactly equal scores, so the lower id wins.
    got = reciprocal_rank_fusion([[7, 4, 9], [4, 7, 9]], k=20)
    assert [doc for doc, _ in got] == [4, 7, 9]
    assert got[0][1] == got[1][1]


def test_rrf_edge_cases() -> None:
    assert reciprocal_rank_fusion([], k=20) == []
    assert reciprocal_rank_fusion([[], []], k=20) == []
    _assert_fused(reciprocal_rank_fusion([[5, 2]], k=60), [(5, 1 / 61), (2, 1 / 62)])
    # A duplicate counts once, at its best rank; later items keep their own positions.
    _assert_fused(reciprocal_rank_fusion([[5, 5, 2]], k=0), [(5, 1.0), (2, 1 / 3)])
    with pytest.raises(ValueError, match="one weight per list"):
        reciprocal_rank_fusion([[1], [2]], k=20, weights=[1.0])


def test_weighted_hand_computed() -> None:
    dense = ([1, 2, 3], [0.9, 0.5, 0.1])  # -> 1.0, 0.5, 0.0
    sparse = ([3, 4], [12.0, 2.0])  # -> 1.0, 0.0
    got = weighted_score_fusion([dense, sparse], weights=[0.6, 0.4])
    _assert_fused(got, [(1, 0.6), (3, 0.4), (2, 0.3), (4, 0.0)])


def test_weighted_constant_list_is_all_ones() -> None:
    got = weighted_score_fusion([([8, 3], [2.5, 2.5]), ([3], [0.7])], weights=[1.0, 1.0])
    _assert_fused(got, [(3, 2.0), (8, 1.0)])


def test_weighted_edge_cases() -> None:
    assert weighted_score_fusion([], weights=[]) == []
    _assert_fused(weighted_score_fusion([([], []), ([4, 2], [3.0, 1.0])], [1.0, 2.0]), [(4, 2.0), (2, 0.0)])
    # A duplicate id keeps its best normalised score.
    _assert_fused(weighted_score_fusion([([1, 2, 1], [5.0, 3.0, 1.0])], [1.0]), [(1, 1.0), (2, 0.5)])
    with pytest.raises(ValueError, match="one score per id"):
        weighted_score_fusion([([1, 2], [1.0])], [1.0])
    with pytest.raises(ValueError, match="one weight per list"):
        weighted_score_fusion([([1], [1.0])], [1.0, 1.0])
