"""Balanced accuracy and threshold choice on hand-made scores."""

from __future__ import annotations

import random

import pytest

from assistant.grounding.calibration import balanced_accuracy, best_threshold, cross_fitted
from assistant.grounding.support import verdict


def test_balanced_accuracy_averages_the_recall_of_each_class() -> None:
    labels = [True, True, True, True, False, False]
    scores = [0.9, 0.8, 0.7, 0.1, 0.2, 0.95]
    # supported recall 3/4, unsupported recall 1/2
    assert balanced_accuracy(labels, scores, 0.5) == pytest.approx((0.75 + 0.5) / 2)


def test_calling_everything_supported_scores_one_half_however_skewed() -> None:
    labels = [True] * 9 + [False]
    assert balanced_accuracy(labels, [1.0] * 10, 0.5) == pytest.approx(0.5)
    assert balanced_accuracy(labels, [0.0] * 10, 0.5) == pytest.approx(0.5)


def test_a_score_equal_to_the_threshold_counts_as_supported() -> None:
    assert balanced_accuracy([True, False], [0.5, 0.4], 0.5) == 1.0
    assert verdict(0.5, 0.5, 0.1) == "supported"


def test_best_threshold_separates_separable_scores_between_the_classes() -> None:
    labels = [False, False, True, True]
    scores = [0.1, 0.3, 0.6, 0.9]
    t = best_threshold(labels, scores)
    assert 0.3 < t <= 0.6
    assert balanced_accuracy(labels, scores, t) == 1.0


def test_best_threshold_takes_the_middle_of_equally_good_choices() -> None:
    # cuts at 0.15, 0.35 and 0.55 all reach 2/3; the middle one is the least fitted to these points
    labels = [False, True, False, True, False, True]
    scores = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    assert best_threshold(labels, scores) == pytest.approx(0.35)
    assert balanced_accuracy(labels, scores, 0.35) == pytest.approx(2 / 3)


def test_best_threshold_handles_inverted_scores_by_calling_one_class() -> None:
    # a checker that is anti-correlated cannot beat 0.5 with a threshold
    labels = [True, True, False, False]
    scores = [0.1, 0.2, 0.8, 0.9]
    assert balanced_accuracy(labels, scores, best_threshold(labels, scores)) == pytest.approx(0.5)


def test_best_threshold_rejects_mismatched_input() -> None:
    with pytest.raises(ValueError):
        best_threshold([True], [0.1, 0.2])
    with pytest.raises(ValueError):
        best_threshold([], [])


def test_cross_fitting_scores_each_half_with_the_other_halfs_threshold() -> None:
    labels = [True] * 10 + [False] * 10
    separable = [0.6 + 0.01 * i for i in range(10)] + [0.1 + 0.01 * i for i in range(10)]
    fit = cross_fitted(labels, separable, seed=1)
    assert fit.balanced_accuracy == 1.0
    assert all(0.19 <= t <= 0.6 for t in fit.thresholds)


def test_cross_fitting_does_not_reward_a_threshold_fitted_to_noise() -> None:
    rng = random.Random(0)
    labels = [rng.random() < 0.4 for _ in range(300)]
    noise = [rng.random() for _ in range(300)]
    in_sample = balanced_accuracy(labels, noise, best_threshold(labels, noise))
    honest = cross_fitted(labels, noise, seed=0).balanced_accuracy
    assert in_sample > 0.52  # a threshold fitted on the same points finds some pattern in noise
    assert honest < in_sample


def test_auroc_is_the_chance_a_supported_pair_outscores_an_unsupported_one() -> None:
    from assistant.grounding.calibration import auroc

    assert auroc([True, True, False, False], [0.9, 0.8, 0.2, 0.1]) == 1.0
    assert auroc([True, True, False, False], [0.1, 0.2, 0.8, 0.9]) == 0.0
    # one of four (pos, neg) orderings is wrong, one is a tie: (2 + 0.5) / 4
    assert auroc([True, True, False, False], [0.9, 0.5, 0.5, 0.7]) == pytest.approx(0.375 + 0.25)
    with pytest.raises(ValueError):
        auroc([True], [0.5])


def test_confusion_counts_at_the_threshold() -> None:
    from assistant.grounding.calibration import confusion

    c = confusion([True, True, False, False, False], [0.9, 0.2, 0.6, 0.1, 0.5], 0.5)
    assert (c.true_supported, c.false_unsupported, c.false_supported, c.true_unsupported) == (1, 1, 2, 1)
