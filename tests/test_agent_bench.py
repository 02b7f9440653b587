"""The QA bench's scoring: keyword hits, citation validity against the index, and the summary."""

from __future__ import annotations

from test_agent_loop import DOCS, TinyIndex

from assistant.agent.records import Answer, Citation
from eval.bench.qa_agent import citations_valid, keywords_hit, summarise


class SpanIndex(TinyIndex):
    def get_chunk(self, chunk_id: str) -> object:
        return next((c for c in self.chunks if c.chunk_id == chunk_id), None)


def _cite(start: int, end: int, quote: str) -> Citation:
    return Citation(1, "passage", "docs/alpaca.md", None, start, end, quote, "c1")


def test_keywords_must_all_occur_case_insensitively() -> None:
    assert keywords_hit("Trained on 52K demos from 175 seeds", ["175", "52k"])
    assert not keywords_hit("Trained on 52K demos", ["175", "52k"])


def test_a_citation_is_valid_only_when_its_span_is_its_quote() -> None:
    text = DOCS["docs/alpaca.md"]
    start = text.index("Stanford")
    good = _cite(start, start + 8, "Stanford")
    bad = _cite(start, start + 8, "Stanfort")
    index = SpanIndex()
    assert citations_valid(Answer("q", "a", False, citations=[good]), index)  # type: ignore[arg-type]
    assert not citations_valid(Answer("q", "a", False, citations=[good, bad]), index)  # type: ignore[arg-type]


def test_summary_separates_answerable_and_unanswerable_items() -> None:
    row = {"citations": 1, "citations_valid": True, "invalid_citations": 0, "error": None, "steps": 2}
    rows = [
        {
            **row,
            "kind": "factoid",
            "keywords_hit": True,
            "abstained": False,
            "first_token_s": 1.0,
            "total_s": 2.0,
        },
        {
            **row,
            "kind": "numeric",
            "keywords_hit": False,
            "abstained": True,
            "first_token_s": None,
            "total_s": 3.0,
        },
        {
            **row,
            "kind": "unanswerable",
            "keywords_hit": False,
            "abstained": True,
            "first_token_s": 1.0,
            "total_s": 1.0,
        },
    ]
    summary = summarise(rows)
    assert summary["keyword_accuracy_pct"] == 50.0
    assert summary["keyword_accuracy_by_kind_pct"] == {"factoid": 100.0, "numeric": 0.0}
    assert summary["abstention_on_unanswerable_pct"] == 100.0
    assert summary["false_abstention_on_answerable_pct"] == 50.0
