"""The answer metrics on hand-made cases whose values are worked out by hand in the comments."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from eval.metrics import (
    ScoredSentence,
    abstention_correct,
    citation_precision,
    citation_recall,
    citations_resolve,
    evidence_recall,
    faithfulness,
    keyword_hit,
    percentile,
    summarise,
)

T = 0.5  # threshold of the hand-made scores


# -- keywords and abstention ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("answer", "keywords", "expected"),
    [
        ("Alpaca was trained on 52K demonstrations.", ["52"], True),
        ("Alpaca was trained on 52,000 demonstrations.", ["52k"], True),  # both sides become 52000
        ("SEAHORSE has 96,000 summaries.", ["96K"], True),
        ("175 seed tasks and 52k demos", ["175", "52"], True),
        ("175 seed tasks", ["175", "52"], False),  # every keyword must occur
        ("CLASSIFIER–FREE guidance", ["classifier-free"], True),  # case and en dash
        ("About 5 tokens per object [12].", ["12"], False),  # citation markers are not answer text
        ("It took 2.8 million images.", ["2800000"], False),  # no unit words are converted
        ("", ["gaussian"], False),  # an abstention answers nothing
        ("anything", [], None),  # no keywords: not defined
    ],
)
def test_keyword_hit(answer: str, keywords: list[str], expected: bool | None) -> None:
    assert keyword_hit(answer, keywords) is expected


def test_abstention_is_correct_exactly_on_unanswerable_items() -> None:
    assert abstention_correct(abstained=True, unanswerable=True)
    assert abstention_correct(abstained=False, unanswerable=False)
    assert not abstention_correct(abstained=True, unanswerable=False)
    assert not abstention_correct(abstained=False, unanswerable=True)


# -- support, faithfulness, ALCE citation recall and precision ---------------------------------------------
def sentence(citations: tuple[int, ...], **scores: float) -> ScoredSentence:
    """Scores by subset name: s1 = (1,), s12 = (1, 2)..."""
    return ScoredSentence(citations, {tuple(int(d) for d in k[1:]): v for k, v in scores.items()})


def test_a_redundant_citation_is_irrelevant_and_an_unsupported_sentence_scores_zero() -> None:
    # s1 cites [1, 2]: together 0.8 (entailed); [1] alone 0.9 entails -> relevant; [2] alone 0.1 does not
    # and [1] without it still entails -> irrelevant. s2 cites [3] at 0.2: not entailed, [3] irrelevant.
    s1 = sentence((1, 2), s1=0.9, s2=0.1, s12=0.8)
    s2 = sentence((3,), s3=0.2)
    assert citation_recall([s1, s2], T) == 1 / 2
    assert citation_precision([s1, s2], T) == 1 / 3


def test_multi_hop_sentence_needs_both_citations() -> None:
    # Neither passage alone (0.3, 0.4) but both together (0.7): both citations are needed, so relevant.
    s = sentence((1, 2), s1=0.3, s2=0.4, s12=0.7)
    assert citation_recall([s], T) == 1.0
    assert citation_precision([s], T) == 1.0


def test_alce_recall_takes_the_joint_citations_while_faithfulness_counts_the_agents_verdicts() -> None:
    # [1] alone supports (0.9) but the two passages joined score 0.3 (e.g. cut by the checker's length):
    # the one support scorer calls the sentence supported (best single passage), ALCE recall does not.
    s = sentence((1, 2), s1=0.9, s2=0.2, s12=0.3)
    assert faithfulness(["supported"]) == 1.0 and faithfulness(["supported", "weak", "unsupported"]) == 1 / 3
    assert citation_recall([s], T) == 0.0
    assert citation_precision([s], T) == 0.0  # ALCE: no citation of an unsupported sentence is relevant


def test_three_citations_use_the_leave_one_out_pairs() -> None:
    # [1] carries the sentence; [2] and [3] are each irrelevant because the rest still entails without them.
    s = sentence((1, 2, 3), s1=0.9, s2=0.1, s3=0.1, s123=0.9, s12=0.9, s13=0.9, s23=0.2)
    assert citation_precision([s], T) == 1 / 3
    assert citation_recall([s], T) == 1.0


def test_edge_cases_no_claims_and_no_citations() -> None:
    # No sentences (an abstention): nothing was claimed, every support metric is undefined.
    assert faithfulness([]) is None
    assert citation_recall([], T) is None
    assert citation_precision([], T) is None
    # A sentence without citations is an unsupported claim; precision over zero citations is 0 (ALCE).
    bare = ScoredSentence((), {})
    assert faithfulness([None]) == 0.0  # a sentence without a verdict (no citations) is not supported
    assert citation_recall([bare], T) == 0.0
    assert citation_precision([bare], T) == 0.0
    # With one supported cited sentence beside it: half the claims, but its one citation is precise.
    good = sentence((1,), s1=0.8)
    assert citation_recall([good, bare], T) == 0.5
    assert citation_precision([good, bare], T) == 1.0


# -- retrieval ---------------------------------------------------------------------------------------------
def test_evidence_recall_normalises_case_quotes_and_whitespace() -> None:
    passages = ["Intro. STANFORD'S   Alpaca\n7B, a model fine-tuned from LLaMA.", "Other text."]
    quotes = ["Stanford’s Alpaca 7B, a model", "175 in this case"]
    assert evidence_recall(quotes, passages) == 0.5
    assert evidence_recall([], passages) is None
    # A quote split over two passages is not found in either.
    assert evidence_recall(["alpha beta"], ["x alpha", "beta y"]) == 0.0


def test_citations_resolve_only_when_the_span_is_the_quote_inside_its_chunk() -> None:
    doc = "Alpaca is small. Stanford's Alpaca 7B was fine-tuned on 52K demonstrations."
    start = doc.index("Stanford")
    good = {
        "kind": "passage",
        "source": "a.md",
        "start": start,
        "end": start + 8,
        "quote": "Stanford",
        "chunk_id": "c",
    }
    docs = {"a.md": doc}.get

    def span(chunk_id: str) -> tuple[int, int]:
        return (0, len(doc))

    assert citations_resolve([good], docs, span) is True
    assert citations_resolve([{**good, "quote": "Stanfort"}], docs, span) is False
    assert citations_resolve([good], docs, lambda c: (0, 5)) is False  # outside its chunk
    assert citations_resolve([{**good, "source": "gone.md"}], docs, span) is False
    computed = {"kind": "computed", "quote": "42", "output": "42\n"}
    assert citations_resolve([computed], docs, span) is True
    assert citations_resolve([], docs, span) is None


# -- aggregation ---------------------------------------------------------------------------------------------
def row(kind: str, abstained: bool, total_s: float, first: float | None = None, **metrics: Any) -> dict:
    return {
        "kind": kind,
        "unanswerable": kind == "unanswerable",
        "abstained": abstained,
        "metrics": metrics,
        "timings": {"total_s": total_s} | ({"first_token_s": first} if first is not None else {}),
        "error": None,
    }


def test_summary_means_leave_undefined_values_out_and_split_by_kind() -> None:
    rows = [
        row("factoid", False, 1.0, 0.5, keyword_hit=True, faithfulness=1.0, abstention_correct=True),
        row("factoid", False, 2.0, 1.5, keyword_hit=False, faithfulness=0.5, abstention_correct=True),
        row("numeric", True, 3.0, keyword_hit=False, faithfulness=None, abstention_correct=False),
        row("unanswerable", True, 4.0, keyword_hit=None, faithfulness=None, abstention_correct=True),
    ]
    summary = summarise(rows, {"llm": "fake"})
    m = summary["metrics"]
    assert summary["n"] == 4 and summary["config"] == {"llm": "fake"}
    assert m["keyword_hit"] == round(1 / 3, 4)  # the unanswerable item has no keywords
    assert m["faithfulness"] == 0.75  # abstentions claim nothing
    assert m["abstention_correct"] == 0.75
    assert m["abstention_accuracy"] == 1.0 and m["false_abstention_rate"] == round(1 / 3, 4)
    assert m["citation_recall"] is None  # no checker values at all
    assert summary["by_kind"]["factoid"]["keyword_hit"] == 0.5
    assert summary["by_kind"]["numeric"]["n"] == 1
    lat = summary["latency"]
    assert lat["total_p50"] == 2.5 and lat["first_token_p50"] == 1.0  # first token only where it exists


def test_all_abstained_run() -> None:
    rows = [row("factoid", True, 1.0, keyword_hit=False), row("unanswerable", True, 1.0, keyword_hit=None)]
    m = summarise(rows, {})["metrics"]
    assert m["keyword_hit"] == 0.0 and m["faithfulness"] is None
    assert m["abstention_accuracy"] == 1.0 and m["false_abstention_rate"] == 1.0
    assert summarise(rows, {})["latency"]["first_token_p95"] is None


def test_percentile_matches_numpy_linear_interpolation() -> None:
    values = [3.2, 0.5, 9.9, 1.1, 4.4, 2.0, 7.5]
    for q in (0, 25, 50, 95, 100):
        assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)), abs=1e-3)
    assert percentile([], 50) is None
