"""The synthetic hard-example generators: each changes its source sentence in exactly the stated way."""

from __future__ import annotations

import random
import re

import pytest

from eval import checker_synth as synth

SENTENCE = "The Golden Gate Bridge opened in 1937 and its main span is 1,280 metres long."


def _words(text: str) -> list[str]:
    return re.findall(r"[\w,.]+", text)


def _diff(a: str, b: str) -> tuple[set[str], set[str]]:
    """Words only in a, words only in b."""
    wa, wb = set(a.split()), set(b.split())
    return wa - wb, wb - wa


@pytest.mark.parametrize("seed", range(5))
def test_change_number_changes_one_number_and_nothing_else(seed: int) -> None:
    out = synth.change_number(SENTENCE, random.Random(seed))
    assert out is not None
    gone, new = _diff(SENTENCE, out)
    assert len(gone) == len(new) == 1
    assert re.fullmatch(r"[\d,]+", next(iter(gone)).rstrip(".")) and re.fullmatch(r"[\d,]+", next(iter(new)))


def test_a_year_moves_by_a_few_years() -> None:
    out = synth.change_number("It opened in 1937.", random.Random(0))
    assert out is not None
    year = int(re.search(r"\d{4}", out).group())  # type: ignore[union-attr]
    assert year != 1937 and abs(year - 1937) <= 7


def test_numbers_inside_names_are_not_numbers() -> None:
    assert synth.change_number("They used text-embedding-3-large.", random.Random(0)) is None


def test_change_unit_swaps_a_unit_for_another_of_its_group() -> None:
    out = synth.change_unit(SENTENCE, random.Random(1))
    assert out is not None
    gone, new = _diff(SENTENCE, out)
    assert gone == {"metres"} and new <= {"km", "miles", "feet"} and len(new) == 1


def test_swap_name_uses_another_name_of_the_same_shape() -> None:
    claim = "Marie Curie won the prize with Pierre Curie in Stockholm."
    pool = ["Lise Meitner", "Berlin", "IBM"]
    two_words = {claim.replace(n, "Lise Meitner", 1) for n in ("Marie Curie", "Pierre Curie")}
    expected = two_words | {claim.replace("Stockholm", "Berlin")}  # IBM (all caps) is another shape
    outs = {synth.swap_name(claim, pool, random.Random(seed)) for seed in range(20)}
    assert outs <= expected and len(outs) > 1


def test_swap_name_needs_a_name_in_the_claim_and_a_candidate() -> None:
    assert synth.swap_name("the bridge opened in spring.", ["Paris"], random.Random(0)) is None
    assert synth.swap_name("It was built in Paris.", ["Paris"], random.Random(0)) is None


def test_a_sentence_initial_common_word_is_not_a_name() -> None:
    assert synth.names_in("Bridges opened in Paris and New York City.") == ["Paris", "New York City"]


@pytest.mark.parametrize(
    ("claim", "negated"),
    [
        ("The bridge was painted red.", "The bridge was not painted red."),
        ("The bridge was not painted red.", "The bridge was painted red."),
        ("The bridge wasn't painted red.", "The bridge was painted red."),
        ("The bridge has never been closed.", "The bridge has been closed."),
    ],
)
def test_negate_adds_or_removes_one_negation(claim: str, negated: str) -> None:
    assert synth.negate(claim) == negated


def test_negate_needs_an_auxiliary() -> None:
    assert synth.negate("Bridges span rivers.") is None


def test_add_qualifier_inserts_one_restricting_word() -> None:
    out = synth.add_qualifier("The bridge is used by cars.", random.Random(0))
    assert out is not None
    gone, new = _diff("The bridge is used by cars.", out)
    assert not gone and len(new) == 1 and new <= set(synth.ADDED_QUALIFIERS)
    assert synth.add_qualifier("Bridges span 12 rivers.", random.Random(0)) == "Bridges span only 12 rivers."


def test_drop_qualifier_removes_one_hedge() -> None:
    assert synth.drop_qualifier("The drug may reduce pain.") == "The drug reduce pain."
    assert synth.drop_qualifier("Most birds fly south.") == "Birds fly south."
    assert synth.drop_qualifier("Birds fly south.") is None


def test_combine_keeps_both_statements() -> None:
    out = synth.combine("The bridge opened in 1937.", "The tower is 227 m tall.")
    assert out == "The bridge opened in 1937, and the tower is 227 m tall."
    assert synth.combine("It opened.", "Paris is far.").endswith("and Paris is far.")


def test_clause_of_keeps_the_main_clause_only() -> None:
    sentence = "The bridge was painted orange by the engineers, which made it visible in fog."
    assert synth.clause_of(sentence) == "The bridge was painted orange by the engineers."
    assert synth.clause_of("Short, then more words here and there.") is None


def test_drop_parenthetical() -> None:
    assert synth.drop_parenthetical("The span (1,280 m) was the longest.") == "The span was the longest."
    assert synth.drop_parenthetical("No asides in this sentence.") is None
