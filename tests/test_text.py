"""index/text.py: the one stop-word list and word-overlap ranking, on hand-made texts."""

from __future__ import annotations

from index.text import STOPWORDS, content_terms, rank_by_overlap


def test_stop_words_and_punctuation_carry_no_terms_but_negations_do() -> None:
    assert content_terms("The model was trained, and it is not small.") == {"model", "train", "not", "small"}
    assert {"not", "no"}.isdisjoint(STOPWORDS)


def test_ranking_counts_shared_content_terms_and_breaks_ties_by_position() -> None:
    texts = [
        "The weather was fine.",  # 0 shared
        "Alpaca was fine-tuned on demonstrations.",  # alpac, fine, tuned, demon: 4
        "Demonstrations of the alpaca.",  # demon, alpac: 2
        "Of the alpaca, demonstrations.",  # the same 2: ties go to the earlier text
    ]
    assert rank_by_overlap(texts, "How many demonstrations was Alpaca fine-tuned on?") == [1, 2, 3, 0]
