"""The align checker's logic without the encoder: aggregation over claim sentences, the mismatch checks,
the two-stage fit and the cross-source threshold."""

from __future__ import annotations

import numpy as np
import pytest

from assistant.grounding import align
from assistant.grounding.align import AlignModel, Plan, aggregate, claim_sentences, mismatches, plan_pair
from assistant.grounding.minilm import LogisticHead
from eval import checker_train_align as training
from eval.checker_data import Pair


def test_min_aggregation_lets_no_unsupported_sentence_hide() -> None:
    assert aggregate([0.9, 0.1]) == pytest.approx(0.1)
    assert aggregate([0.9, 0.1], "mean") == pytest.approx(0.5)
    assert aggregate([0.9, 0.1], "max") == pytest.approx(0.9)
    with pytest.raises(ValueError):
        aggregate([])


def test_a_claim_is_scored_sentence_by_sentence_each_against_its_own_sentences() -> None:
    assert claim_sentences("It opened in 1937. It is red.") == ["It opened in 1937.", "It is red."]
    assert claim_sentences("One statement, no split.") == ["One statement, no split."]
    evidence = "The bridge opened in 1937. Its paint is called international orange. Fog is common."
    plans = plan_pair(evidence, "The bridge opened in 1937. Its paint is international orange.")
    assert [p.best for p in plans] == [
        "The bridge opened in 1937.",
        "Its paint is called international orange.",
    ]
    assert all(len(p.chosen) == 3 for p in plans)  # short evidence: every sentence, in document order
    assert plans[0].chosen[0].startswith("The bridge")


def _mismatch(claim: str, evidence: str) -> dict[str, float]:
    plan = Plan(claim, [evidence], evidence)
    return dict(zip(align.MISMATCH, mismatches(plan, evidence), strict=True))


def test_mismatch_checks_are_zero_on_a_clean_claim_and_fire_on_each_weak_spot() -> None:
    evidence = "The bridge in San Francisco opened in 1937."
    assert set(_mismatch(evidence, evidence).values()) == {0.0}
    assert _mismatch("The bridge in San Francisco opened in 1941.", evidence)["number_missing"] == 1.0
    assert _mismatch("The bridge in Oakland opened in 1937.", evidence)["name_missing"] == 1.0
    mrl = "Using MRL, the model keeps its accuracy at 256 dimensions."
    assert _mismatch("Matryoshka Representation Learning keeps accuracy.", mrl)["name_missing"] == 0.0
    assert _mismatch("Matryoshka Vector Learning keeps accuracy.", mrl)["name_missing"] == 1.0
    assert _mismatch("The bridge in San Francisco did not open in 1937.", evidence)["negation_flip"] == 1.0
    assert _mismatch("The bridge only opened in 1937.", evidence)["qualifier_added"] == 1.0


def test_a_negation_flips_only_against_the_sentences_the_claim_is_checked_against() -> None:
    evidence = "No records survive from the first year. The bridge in San Francisco opened in 1937."
    first, copied = evidence.split(". ")
    claim = "The bridge in San Francisco opened in 1937."
    assert mismatches(Plan(claim, [first, copied], copied), evidence)[2] == 0.0  # "No" is elsewhere
    assert mismatches(Plan(claim, [first, copied], first), evidence)[2] == 0.0  # not a near copy
    negated = "The tower was not painted red at first."
    assert mismatches(Plan("The tower was not painted red.", [negated], negated), negated)[2] == 0.0
    assert mismatches(Plan("The tower was painted red.", [negated], negated), negated)[2] == 1.0


def _pairs(rng: np.random.Generator, n: int, synthetic: bool) -> tuple[list[np.ndarray], list[Pair]]:
    """Rows of FEATURES: labelled pairs whose support shows in the first alignment feature, synthetic ones
    whose support shows only in a number mismatch (alignment high on both labels)."""
    features, pairs = [], []
    for i in range(n):
        label = bool(i % 2)
        row = rng.normal(0.0, 0.1, len(align.FEATURES))
        if synthetic:
            row[: len(align.ALIGNMENT)] += 1.0
            row[len(align.ALIGNMENT)] = 0.0 if label else 1.0
        else:
            row[0] += 1.0 if label else 0.0
            row[len(align.ALIGNMENT) + 3] = 1.0 if label else 0.0  # a mismatch that would *raise* support
        features.append(row[None, :])
        pairs.append(Pair("e", "c", label, "synth-number" if synthetic else "real", str(i)))
    return features, pairs


def test_two_stage_fit_learns_alignment_from_labelled_pairs_and_mismatches_that_only_lower_support() -> None:
    rng = np.random.default_rng(1)
    real_f, real_p = _pairs(rng, 200, synthetic=False)
    synth_f, synth_p = _pairs(rng, 200, synthetic=True)
    model = training.fit(real_f + synth_f, real_p + synth_p)
    assert model.alignment.weights[0] > 0  # learnt from labelled pairs
    assert model.mismatch.weights[0] < 0  # number mismatch lowers support
    assert np.all(model.mismatch.weights <= 0)  # the "raising" qualifier mismatch was dropped
    scores = align.pair_scores(model, real_f + synth_f)
    labels = [p.label for p in real_p + synth_p]
    threshold = training.source_threshold({"all": (labels, scores)})
    assert np.mean([(s >= threshold) == y for s, y in zip(scores, labels, strict=True)]) >= 0.95


def test_the_model_round_trips_through_json_and_adds_the_two_logits() -> None:
    rng = np.random.default_rng(2)

    def head(n: int) -> LogisticHead:
        return LogisticHead(rng.normal(size=n), float(rng.normal()), rng.normal(size=n), rng.uniform(1, 2, n))

    model = AlignModel(head(len(align.ALIGNMENT)), head(len(align.MISMATCH)))
    x = rng.normal(size=(3, len(align.FEATURES)))
    expected = model.alignment.logits(x[:, : len(align.ALIGNMENT)]) + model.mismatch.logits(
        x[:, len(align.ALIGNMENT) :]
    )
    np.testing.assert_allclose(AlignModel.from_json(model.to_json()).logits(x), expected)


def test_source_threshold_weighs_each_source_equally() -> None:
    # source a separates at 0.5, source b at 0.2; the mean over sources is maximised only by a cut that
    # works for both, i.e. between b's positives and a's negatives
    by_source = {
        "a": ([True] * 50 + [False] * 50, [0.8] * 50 + [0.1] * 50),
        "b": ([True] * 10 + [False] * 10, [0.3] * 10 + [0.05] * 10),
    }
    t = training.source_threshold(by_source)
    assert 0.1 < t <= 0.3
    # a's own threshold (the middle of its gap) is too high for b: that is what leave-one-out shows
    assert training.leave_one_source_out(by_source) == {"a": 1.0, "b": 0.5}


def test_a_source_with_too_few_pairs_of_a_label_does_not_choose_the_threshold() -> None:
    by_source = {
        "big": ([True] * 40 + [False] * 40, [0.8] * 40 + [0.4] * 40),
        "tiny": ([True] * 30 + [False] * 2, [0.3] * 30 + [0.05] * 2),  # would pull the cut below 0.3
    }
    assert set(training.choosing_sources(by_source)) == {"big"}
    assert 0.4 < training.source_threshold(by_source) <= 0.8


def test_leave_one_source_out_reports_a_source_that_does_not_transfer() -> None:
    ten = [True] * 10 + [False] * 10
    by_source = {
        "a": (ten, [0.9] * 10 + [0.7] * 10),
        "b": (ten, [0.9] * 10 + [0.7] * 10),
        "odd": (ten, [0.3] * 10 + [0.1] * 10),
    }
    assert training.leave_one_source_out(by_source)["odd"] == 0.5
