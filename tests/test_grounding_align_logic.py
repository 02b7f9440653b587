"""The align checker's logic without the encoder: aggregation over claim sentences, its lexical checks, the
numpy scorer against the batched torch forward it is trained with, and the cross-source threshold."""

from __future__ import annotations

import numpy as np
import pytest

from assistant.grounding import align
from assistant.grounding.align import AlignModel, Unit, aggregate, claim_sentences, lexical_features
from eval import checker_train_align as training


def test_min_aggregation_lets_no_unsupported_sentence_hide() -> None:
    assert aggregate([0.9, 0.1]) == pytest.approx(0.1)
    assert aggregate([0.9, 0.1], "mean") == pytest.approx(0.5)
    assert aggregate([0.9, 0.1], "max") == pytest.approx(0.9)
    with pytest.raises(ValueError):
        aggregate([])


def test_a_claim_is_scored_sentence_by_sentence() -> None:
    assert claim_sentences("It opened in 1937. It is red.") == ["It opened in 1937.", "It is red."]
    assert claim_sentences("One statement, no split.") == ["One statement, no split."]


def _lexical(claim: str, window: str) -> dict[str, float]:
    return dict(zip(align.LEXICAL, lexical_features(claim, [window], window), strict=True))


def test_lexical_checks_catch_a_changed_number_a_swapped_name_and_a_negation() -> None:
    evidence = "The bridge in San Francisco opened in 1937."
    same = _lexical("The bridge in San Francisco opened in 1937.", evidence)
    assert same["number_recall"] == same["name_recall"] == 1.0
    assert same["negation_mismatch"] == same["qualifier_mismatch"] == 0.0
    assert _lexical("The bridge in San Francisco opened in 1941.", evidence)["number_recall"] == 0.0
    assert _lexical("The bridge in Oakland opened in 1937.", evidence)["name_recall"] == 0.0
    assert _lexical("The bridge in San Francisco did not open in 1937.", evidence)["negation_mismatch"] == 1.0
    assert _lexical("The bridge only opened in 1937.", evidence)["qualifier_mismatch"] == 1.0


def _random_unit(rng: np.random.Generator, dim: int = 8) -> Unit:
    words = int(rng.integers(1, 7))
    sentences = int(rng.integers(1, 7))
    return Unit(
        rng.uniform(-0.2, 1.0, size=(words, sentences)).astype(np.float32),
        rng.normal(size=(words, dim)).astype(np.float32),
        rng.integers(0, 2, size=(words, 3)).astype(np.float32),
        rng.random(len(align.LEXICAL)).astype(np.float32),
    )


def test_numpy_scorer_matches_the_batched_torch_forward_it_was_trained_with() -> None:
    import torch

    rng = np.random.default_rng(0)
    dim = 8
    model = AlignModel(
        rng.normal(size=dim).astype(np.float32),
        rng.normal(size=3).astype(np.float32),
        rng.normal(size=len(align.FEATURES)),
        0.1,
    )
    units = [_random_unit(rng, dim) for _ in range(12)]
    units.append(
        Unit(
            np.zeros((1, 0), np.float32),
            np.zeros((1, dim), np.float32),
            np.zeros((1, 3), np.float32),
            units[0].lexical,
        )
    )
    params = {
        "importance": torch.from_numpy(model.importance),
        "flag_weights": torch.from_numpy(model.flag_weights),
    }
    batched = training._forward(params, training._pad(units)).numpy()
    one_by_one = np.stack([model.features(u) for u in units])
    np.testing.assert_allclose(batched, one_by_one, atol=1e-5)


def test_fitting_learns_a_separable_feature() -> None:
    rng = np.random.default_rng(1)
    units = [_random_unit(rng) for _ in range(80)]
    labels = [bool(u.lexical[0] > 0.5) for u in units]  # number_recall decides
    model = training.fit(units, labels)
    scores = [model.probability(u) for u in units]
    assert np.mean([(s >= 0.5) == y for s, y in zip(scores, labels, strict=True)]) >= 0.95


def test_source_threshold_weighs_each_source_equally() -> None:
    # source a (many pairs) separates at 0.5, source b (few) at 0.2; the mean over sources is maximised
    # only by a cut that works for both, i.e. between b's positives and a's negatives
    by_source = {
        "a": ([True] * 50 + [False] * 50, [0.8] * 50 + [0.1] * 50),
        "b": ([True, False], [0.3, 0.05]),
    }
    t = training.source_threshold(by_source)
    assert 0.1 < t <= 0.3
    # a's own threshold (the middle of its gap) is too high for b: that is what leave-one-out shows
    assert training.leave_one_source_out(by_source) == {"a": 1.0, "b": 0.5}


def test_leave_one_source_out_reports_a_source_that_does_not_transfer() -> None:
    by_source = {
        "a": ([True, False], [0.9, 0.7]),
        "b": ([True, False], [0.9, 0.7]),
        "odd": ([True, False], [0.3, 0.1]),
    }
    assert training.leave_one_source_out(by_source)["odd"] == 0.5
