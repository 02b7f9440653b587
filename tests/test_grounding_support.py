"""The one support scorer: best single passage or all together; computed sentences checked by code."""

from __future__ import annotations

from collections.abc import Sequence

from assistant.agent.records import Evidence, Operand, Sentence
from assistant.grounding.support import score_sentences


class TableChecker:
    """Scores from a table keyed by the evidence text (joined passages are looked up as joined)."""

    name, threshold = "table", 0.5

    def __init__(self, table: dict[str, float]) -> None:
        self.table = table
        self.pairs: list[tuple[str, str]] = []

    def scores(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        self.pairs += pairs
        return [self.table.get(evidence, 0.0) for evidence, _ in pairs]


A = Evidence(1, "passage", "Alpaca was tuned on 52K demonstrations.", "a.md", None, 0, 39, "c1")
B = Evidence(2, "passage", "It cost little.", "b.md", None, 0, 15, "c2")
LEDGER = {1: A, 2: B}


def test_support_is_the_best_of_each_passage_alone_and_all_together() -> None:
    checker = TableChecker({A.text: 0.2, B.text: 0.1, f"{A.text}\n\n{B.text}": 0.7})
    [s] = score_sentences(
        checker,
        [Sentence("Alpaca was cheap to tune on 52K.", (1, 2))],
        LEDGER,
        threshold=None,
        weak_margin=0.1,
    )
    assert (s.support, s.verdict) == (0.7, "supported")
    [s] = score_sentences(checker, [Sentence("Alpaca: 52K.", (1,))], LEDGER, threshold=0.5, weak_margin=0.35)
    assert (s.support, s.verdict) == (0.2, "weak")


def test_a_computed_sentence_is_supported_only_when_its_operands_are_in_the_passages_it_cites() -> None:
    ok = Operand("demos", 52000.0, "52K", "demonstrations", "K", 1)
    forged = Operand("demos", 53000.0, "53K", "demonstrations", "K", 1)
    for operand, expected in ((ok, "supported"), (forged, "unsupported")):
        run = Evidence(3, "computed", "104000", code="print(52000 * 2)", operands=(operand,))
        ledger = {**LEDGER, 3: run}
        [s] = score_sentences(
            TableChecker({}),
            [Sentence("104000, computed as 52K × 2.", (1, 3), kind="computed")],
            ledger,
            threshold=None,
            weak_margin=0.1,
        )
        assert s.verdict == expected
    checker = TableChecker({})
    uncited = score_sentences(
        checker, [Sentence("104000.", (3,), kind="computed")], ledger, threshold=None, weak_margin=0.1
    )
    assert (
        uncited[0].verdict == "unsupported" and checker.pairs == []
    )  # no checker call for computed sentences


def test_not_stated_sentences_and_runs_without_a_checker_are_left_alone() -> None:
    note = Sentence("The documents do not answer this part: “x”.", (), kind="not_stated")
    checker = TableChecker({})
    assert (
        score_sentences(checker, [note], LEDGER, threshold=None, weak_margin=0.1) == [note]
        and not checker.pairs
    )
    plain = Sentence("Alpaca: 52K.", (1,))
    assert score_sentences(None, [plain], LEDGER, threshold=None, weak_margin=0.1) == [plain]


def test_a_citation_that_adds_nothing_is_dropped_and_one_that_is_needed_stays() -> None:
    from assistant.grounding.support import needed_citations

    both = f"{A.text}\n\n{B.text}"
    s = Sentence("Alpaca was tuned on 52K demonstrations.", (1, 2))
    idle = needed_citations(TableChecker({A.text: 0.9, both: 0.9}), s, LEDGER, "", threshold=None)
    assert idle.citations == (1,)
    # a fact that needs both passages: neither alone supports it, so both stay
    joint = needed_citations(TableChecker({both: 0.9}), s, LEDGER, "", threshold=None)
    assert joint.citations == (1, 2)
    # B alone does not support it, but the name "Stanford" is only in B: dropping B would unanchor it
    c = Evidence(3, "passage", "Stanford built it.", "c.md", None, 0, 18, "c3")
    named = Sentence("Stanford's Alpaca was tuned on 52K demonstrations.", (1, 3))
    ledger = {**LEDGER, 3: c}
    checker = TableChecker({A.text: 0.9, f"{A.text}\n\n{c.text}": 0.9})
    assert needed_citations(checker, named, ledger, "", threshold=None).citations == (1, 3)
    assert needed_citations(None, s, LEDGER, "", threshold=None) == s


# -- acceptance: anchoring, the checker, the self-check -------------------------------------------------------
def test_anchoring_finds_numbers_by_value_and_names_in_what_is_cited_or_asked() -> None:
    from assistant.grounding.support import anchoring

    ok = Sentence("Alpaca 7B was tuned on 52,000 demonstrations.", (1,))
    assert anchoring(ok, LEDGER, "How many demonstrations did Alpaca 7B use?") == ()  # 52K = 52,000
    wrong = Sentence("Vicuna was tuned on 64K demonstrations.", (1,))
    assert anchoring(wrong, LEDGER, "How many demonstrations?") == ("64K", "Vicuna")
    assert anchoring(Sentence("Alpaca used 52K demos.", (2,)), LEDGER, "Alpaca?") == ("52K",)  # not cited


def accepted(
    verdict: str | None, self_check: float | None, text: str = "Alpaca was tuned on 52K demos."
) -> bool:
    from assistant.grounding.support import accept

    s = Sentence(text, (1,), verdict=verdict)  # type: ignore[arg-type]
    return accept(s, LEDGER, "How many?", self_check=self_check, self_threshold=0.5).accepted


def test_acceptance_needs_anchoring_and_either_the_checker_or_the_self_check() -> None:
    assert accepted("supported", 0.1) and accepted("unsupported", 0.9) and accepted("supported", None)
    assert not accepted("unsupported", 0.2) and not accepted("weak", None)
    assert not accepted("supported", 0.99, "Alpaca was tuned on 64K demos.")  # not anchored: no signal helps
    assert accepted(None, None)  # neither signal available: anchoring decides alone


def test_a_computation_stands_on_its_code_check_unless_the_model_doubts_what_it_computed() -> None:
    from assistant.grounding.support import accept

    run = Evidence(
        3,
        "computed",
        "3.44",
        "python",
        operands=(Operand("fast", 155.0, "155", "", "", 4), Operand("base", 45.0, "45", "", "", 4)),
    )
    passage = Evidence(4, "passage", "Fast YOLO runs at 155 fps; YOLO at 45 fps.", "y.md")
    ledger = {3: run, 4: passage}
    sentence = Sentence("3.44 times: 155 ÷ 45.", (4, 3), kind="computed")
    assert accept(sentence, ledger, "q", self_check=0.8, self_threshold=0.5).accepted
    assert not accept(sentence, ledger, "q", self_check=0.2, self_threshold=0.5).accepted
    uncited = Sentence("3.44 times: 155 ÷ 45.", (3,), kind="computed")  # the operands' passage not cited
    assert not accept(uncited, ledger, "q", self_check=0.9, self_threshold=0.5).accepted
