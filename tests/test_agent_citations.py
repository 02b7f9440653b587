"""Quotes, spans and the streamed view of the answer JSON."""

from __future__ import annotations

import json

from assistant.agent.citations import best_quote, render, resolve_citations, visible_text
from assistant.agent.records import Evidence, Sentence

PASSAGE = (
    "Alpaca is small. Stanford's Alpaca 7B was fine-tuned on 52K instruction-following demonstrations.\n"
    "It cost little to train."
)


def test_best_quote_is_the_matching_sentence_and_an_exact_substring() -> None:
    offset, quote = best_quote(PASSAGE, "Alpaca was fine-tuned on 52K demonstrations")
    assert quote == "Stanford's Alpaca 7B was fine-tuned on 52K instruction-following demonstrations."
    assert PASSAGE[offset : offset + len(quote)] == quote


def test_a_long_sentence_is_cut_to_the_window_with_the_claim() -> None:
    long = (
        "Filler words about nothing " * 20 + "the key result is 45.1 AP on COCO test-dev" + " and more" * 30
    )
    offset, quote = best_quote(long, "CenterNet reaches 45.1 AP on COCO", max_chars=80)
    assert "45.1" in quote and len(quote) <= 80 and long[offset : offset + len(quote)] == quote


def test_spans_are_offsets_into_the_document() -> None:
    ev = Evidence(3, "passage", PASSAGE, "a.md", 2, 1000, 1000 + len(PASSAGE), "c:1")
    _, [cite], invalid = resolve_citations([Sentence("It was cheap to train.", (3,))], {3: ev})
    assert invalid == 0 and (cite.source, cite.page, cite.chunk_id) == ("a.md", 2, "c:1")
    assert PASSAGE[cite.start - 1000 : cite.end - 1000] == cite.quote == "It cost little to train."


def test_visible_text_grows_monotonically_while_the_json_streams() -> None:
    sentences = [Sentence('GELU is x\u03a6(x), "smooth".', (2,)), Sentence("Second.", (1, 3))]
    raw = json.dumps(
        {"abstain": False, "sentences": [{"text": s.text, "citations": list(s.citations)} for s in sentences]}
    )
    shown = ""
    for end in range(len(raw) + 1):
        now = visible_text(raw[:end])
        assert now.startswith(shown)
        shown = now
    assert shown == render(sentences) == 'GELU is x\u03a6(x), "smooth". [2] Second. [1][3]'
