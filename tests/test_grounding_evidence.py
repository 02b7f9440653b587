"""Cutting evidence down to what a checker reads, and how word alignments become features (no model)."""

from __future__ import annotations

import numpy as np
import pytest

from assistant.grounding.evidence import fit_evidence, select_sentences, split_sentences
from assistant.grounding.minilm import FEATURES, SENTENCES, Encoded, alignment_features, pair_features

VOCAB = ["paris", "capital", "france", "berlin", "germany", "river", "1998", "founded", "the", "is"]


def one_hot(text: str) -> Encoded:
    """A fake encoding: each known word is its own unit vector, so cosine 1 means the same word."""
    words = [w.strip(".,").lower() for w in text.split()]
    vectors = np.zeros((len(words), len(VOCAB) + 1), dtype=np.float32)
    for i, w in enumerate(words):
        vectors[i, VOCAB.index(w) if w in VOCAB else len(VOCAB)] = 1.0
    return Encoded(vectors, [(w, [i]) for i, w in enumerate(words)])


def features(claim: str, sentences: list[str], evidence: str | None = None) -> dict[str, float]:
    values = alignment_features(
        claim, one_hot(claim), [one_hot(s) for s in sentences], evidence or " ".join(sentences)
    )
    return dict(zip(FEATURES, values, strict=True))


def test_long_sentences_are_cut_and_lines_end_sentences() -> None:
    text = "Title line\nFirst sentence here. " + " ".join(["Word"] + ["word"] * 99) + "."
    pieces = split_sentences(text, max_words=48)
    assert pieces[0] == "Title line"
    assert pieces[1] == "First sentence here."
    assert [len(p.split()) for p in pieces[2:]] == [48, 48, 4]


def test_selection_keeps_the_sentences_sharing_claim_words_in_document_order() -> None:
    sentences = [
        "Navigation menu and cookies.",
        "The river Seine crosses the city.",
        "Paris is the capital of France.",
        "Subscribe to our newsletter.",
        "France borders Germany.",
    ]
    chosen = select_sentences(sentences, "Paris is the capital of France", 2)
    assert chosen == [2, 4]  # the best match first in rank, but returned in document order
    assert select_sentences(sentences, "Paris is the capital of France", 10) == [0, 1, 2, 3, 4]


def test_short_evidence_is_kept_whole_and_long_evidence_keeps_its_best_sentences() -> None:
    short = "Paris is the capital of France. It lies on the Seine."
    assert fit_evidence(short, "Paris is the capital", 1000) == short
    filler = " ".join(f"Unrelated sentence number {i} about cooking." for i in range(200))
    long = filler + " Paris is the capital of France. " + filler
    cut = fit_evidence(long, "Paris is the capital of France", 120)
    assert "Paris is the capital of France." in cut
    assert len(cut) <= 120


def test_a_claim_whose_words_all_appear_scores_full_recall() -> None:
    f = features("Paris is the capital of France", ["Paris is the capital of France."])
    assert f["soft_recall"] == pytest.approx(1.0)
    assert f["local_recall"] == pytest.approx(1.0)
    assert f["word_recall"] == pytest.approx(1.0)


def test_a_missing_word_lowers_recall_and_the_worst_words_dominate_low3() -> None:
    f = features("Berlin is the capital of France", ["Paris is the capital of France."])
    # content words: berlin, capital, france -> berlin unmatched
    assert f["soft_recall"] == pytest.approx(2 / 3)
    assert f["soft_recall_low3"] == pytest.approx(2 / 3)
    assert f["word_recall"] == pytest.approx(2 / 3)


def test_support_spread_over_distant_sentences_is_global_not_local() -> None:
    sentences = ["Paris is nice.", "the the the.", "the the.", "the is.", "capital France."]
    f = features("Paris capital France", sentences)
    assert f["soft_recall"] == pytest.approx(1.0)  # every word is found somewhere
    assert f["local_recall"] < 1.0  # but no window of three sentences holds them all


def test_a_word_counts_as_matched_only_when_all_its_pieces_are() -> None:
    claim = Encoded(np.eye(3, dtype=np.float32), [("Parisian", [0, 1]), ("France", [2])])
    evidence = Encoded(np.eye(3, dtype=np.float32)[[0, 2]], [("Paris", [0]), ("France", [1])])
    values = alignment_features("Parisian France", claim, [evidence], "Paris France")
    soft_recall = values[FEATURES.index("soft_recall")]
    assert soft_recall == pytest.approx(0.5)  # "Parisian" half-matched counts as unmatched


def test_numbers_must_appear_verbatim() -> None:
    assert features("founded 1998", ["founded 1998."])["number_recall"] == 1.0
    assert features("founded 1999", ["founded 1998."])["number_recall"] == 0.0
    assert features("founded Paris", ["founded 1998."])["number_recall"] == 1.0  # no number to check


class FakeEncoder:
    """Counts what it is asked to encode, to check selection and de-duplication."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def encode(self, texts: list[str]) -> dict[str, Encoded]:
        self.seen.extend(set(texts))
        return {t: one_hot(t) for t in texts}


def test_pair_features_encode_each_text_once_and_only_the_selected_sentences() -> None:
    evidence = " ".join(f"Noise sentence {i}." for i in range(30)) + " Paris is the capital of France."
    pairs = [(evidence, "Paris is the capital of France"), (evidence, "Paris is the capital of France")]
    encoder = FakeEncoder()
    x = pair_features(encoder, pairs)  # type: ignore[arg-type]
    assert x.shape == (2, len(FEATURES))
    assert np.array_equal(x[0], x[1])
    assert len(encoder.seen) == len(set(encoder.seen)) == 1 + SENTENCES
    assert "Paris is the capital of France." in encoder.seen
