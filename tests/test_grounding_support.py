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
