"""Quotes, spans, rendering and the citations resolved from the evidence ledger."""

from __future__ import annotations

from assistant.agent.citations import best_quote, key_sentences, passage_sentences, render, resolve_citations
from assistant.agent.records import Evidence, Sentence


def passage(id: int, text: str, source: str = "a.txt", **fields: object) -> Evidence:
    """A passage as the ledger records it: split into sentences once, on entry."""
    return Evidence(id, "passage", text, source, sentences=passage_sentences(text)[0], **fields)  # type: ignore[arg-type]


PASSAGE = (
    "Alpaca is small. Stanford's Alpaca 7B was fine-tuned on 52K instruction-following demonstrations.\n"
    "It cost little to train."
)


def test_best_quote_is_the_matching_sentence_and_an_exact_substring() -> None:
    offset, quote = best_quote(passage(1, PASSAGE), "Alpaca was fine-tuned on 52K demonstrations")
    assert quote == "Stanford's Alpaca 7B was fine-tuned on 52K instruction-following demonstrations."
    assert PASSAGE[offset : offset + len(quote)] == quote


def test_a_long_sentence_is_cut_to_the_window_with_the_claim() -> None:
    long = (
        "Filler words about nothing " * 20 + "the key result is 45.1 AP on COCO test-dev" + " and more" * 30
    )
    offset, quote = best_quote(passage(1, long), "CenterNet reaches 45.1 AP on COCO", max_chars=80)
    assert "45.1" in quote and len(quote) <= 80 and long[offset : offset + len(quote)] == quote


def test_spans_are_offsets_into_the_document() -> None:
    ev = Evidence(3, "passage", PASSAGE, "a.md", 2, 1000, 1000 + len(PASSAGE), "c:1")
    _, [cite], invalid = resolve_citations([Sentence("It was cheap to train.", (3,))], {3: ev})
    assert invalid == 0 and (cite.source, cite.page, cite.chunk_id) == ("a.md", 2, "c:1")
    assert PASSAGE[cite.start - 1000 : cite.end - 1000] == cite.quote == "It cost little to train."


def test_render_puts_each_sentences_markers_after_it_and_drops_empty_ones() -> None:
    sentences = [
        Sentence('GELU is x\u03a6(x), "smooth".', (2,)),
        Sentence("  ", (4,)),
        Sentence("Second.", (1, 3)),
    ]
    assert render(sentences) == 'GELU is x\u03a6(x), "smooth". [2] Second. [1][3]'


def test_unseen_citations_are_dropped_and_counted_and_a_sentence_keeps_its_kind() -> None:
    ev = Evidence(1, "passage", PASSAGE, "a.md", None, 0, len(PASSAGE), "c:1")
    kept, cites, invalid = resolve_citations(
        [Sentence("52K demonstrations.", (1, 7), kind="answer", part=2)], {1: ev}
    )
    assert invalid == 1 and kept[0].citations == (1,) and kept[0].part == 2 and [c.id for c in cites] == [1]


def test_key_sentences_prefer_rare_question_words_and_bring_the_next_sentence() -> None:
    glide = passage(
        1,
        "The GLIDE model is large. They compare CLIP guidance and classifier-free guidance. "
        "They find that the latter is preferred by human evaluators. The model has many layers.",
        source="a.txt",
    )
    noise = passage(2, "A model is a model. Every model has a model card. Models are models.", "b.txt")
    lines = key_sentences(
        [noise, glide], "Which guidance strategy of the GLIDE model did evaluators prefer?", 3
    )
    assert [ev for ev, _ in lines] == [1, 1, 1]
    texts = [t for _, t in lines]
    assert texts[1].startswith("They compare CLIP guidance")
    assert texts[2].startswith("They find that the latter")  # follows its matching line, in passage order


def test_key_sentences_never_pull_a_neighbour_from_another_passage() -> None:
    a = passage(1, "Birds fly south. Alpaca was tuned on 52K demonstrations.")
    b = passage(2, "Unrelated text about birds.", "b.txt")
    lines = key_sentences([a, b], "How many demonstrations was Alpaca tuned on?", 1)
    assert lines == [(1, "Alpaca was tuned on 52K demonstrations.")]
