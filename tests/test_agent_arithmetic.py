"""Numbers as passages write them, the expression grammar a computation is written in, and the program
code runs for it: units, scales, percentage points, n-ary expressions, and what cannot be computed."""

from __future__ import annotations

import subprocess
import sys

import pytest

from assistant.agent import arithmetic as ar
from assistant.agent.records import Operand


def test_scales_units_and_number_words_are_read_from_the_text() -> None:
    [k] = ar.find_quantities("fine-tuned on 52K demonstrations")
    [word] = ar.find_quantities("fine-tuned on 52 thousand demonstrations")
    assert k.value == word.value == 52_000 and (k.text, word.text) == ("52K", "52 thousand")
    assert k.unit == word.unit == "demonstrations"
    [pct] = ar.find_quantities("reached 45.1% AP")
    assert (pct.value, pct.unit) == (45.1, "%")
    assert [q.value for q in ar.find_quantities("1,645 API calls and ~35 tokens")] == [1645.0, 35.0]
    [gpus] = ar.find_quantities("trained on eight GPUs for a week")
    assert (gpus.value, gpus.unit) == (8.0, "gpus")
    assert ar.find_quantities("top-1 accuracy, and one of them") == []  # labels and pronouns are not numbers


def operand(name: str, text: str, evidence_id: int | None) -> Operand:
    [q] = ar.find_quantities(text)
    return Operand(name, q.value, q.text, q.unit, q.scale, evidence_id)


def computation(expression: str, **ops: Operand) -> ar.Computation:
    node = ar.parse_expression(expression, set(ops))
    value = ar.evaluate(node, {k: o.value for k, o in ops.items()})
    return ar.Computation(node, ops, value)


def test_grammar_precedence_brackets_unary_minus_and_power() -> None:
    values = {"n1": 2.0, "n2": 3.0, "n3": 4.0}
    assert ar.evaluate(ar.parse_expression("n1 + n2 * n3", set(values)), values) == 14
    assert ar.evaluate(ar.parse_expression("(n1 + n2) * n3", set(values)), values) == 20
    assert ar.evaluate(ar.parse_expression("n1 ^ n2 ^ n1", set(values)), values) == 2**9  # right-assoc
    assert ar.evaluate(ar.parse_expression("-n1 + n3", set(values)), values) == 2
    assert ar.evaluate(ar.parse_expression("n3 − n1 × n2 ÷ n2", set(values)), values) == 2  # typeset ops
    node = ar.parse_expression("n3 - (n1 - n2)", set(values))
    assert ar.render_expression(node, {"n1": "2", "n2": "3", "n3": "4"}) == "4 − (2 − 3)"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("n1 + 7", "'7'"),  # a literal number is not a listed operand
        ("n1 + n9", "'n9'"),
        ("n1 * (", "ends too early"),
        ("(n1 + n2", "not closed"),
        ("n1 n2", "unexpected 'n2'"),
        ("", "empty"),
        (" + ".join(["n1"] * 13), "at most 12"),
    ],
)
def test_expressions_outside_the_grammar_say_what_is_wrong(text: str, says: str) -> None:
    with pytest.raises(ar.ExpressionError, match=says):
        ar.parse_expression(text, {"n1", "n2"})


@pytest.mark.parametrize("expression", ["n1 / (n2 - n2)", "n1 ^ n1 ^ n1", "(n2 - n1 - n1 - n1) ^ PERCENT"])
def test_division_by_zero_and_overflow_are_errors_not_numbers(expression: str) -> None:
    node = ar.parse_expression(expression, {"n1", "n2"})
    with pytest.raises(ar.ExpressionError):
        ar.evaluate(node, {"n1": 1e3, "n2": 2.0})


def test_results_keep_the_operands_scale_and_percent_differences_are_points() -> None:
    total = computation(
        "n1 + n2",
        n1=operand("finance", "363 billion tokens", 1),
        n2=operand("general", "345 billion tokens", 2),
    )
    assert total.result_text() == "708 billion tokens"
    gap = computation("n1 - n2", n1=operand("top-1", "39.7% error", 1), n2=operand("top-5", "18.9% error", 1))
    assert gap.result_text() == "20.8 percentage points"
    factor = computation("n1 / n2", n1=operand("Fast", "155 frames", 3), n2=operand("YOLO", "45 frames", 3))
    assert factor.result_text() == "3.44 times"
    share = computation("n1 / n2 * PERCENT", n1=operand("a", "13 errors", 1), n2=operand("b", "52 errors", 2))
    assert share.result_text() == "25%"
    mixed = computation("n1 - n2", n1=operand("a", "52K demos", 1), n2=operand("b", "12 thousand demos", 2))
    assert mixed.result_text() == "40K demos"


def test_n_ary_sums_constants_and_question_operands() -> None:
    three = computation(
        "n1 + n2 + n3",
        n1=operand("a", "1,645 calls", 1),
        n2=operand("b", "2,000 calls", 2),
        n3=operand("c", "355 calls", 2),
    )
    assert three.value == 4000 and three.result_text() == "4,000 calls"
    assert three.shown() == "1,645 + 2,000 + 355"
    hours = computation("n1 * HOURS_PER_DAY", n1=operand("training", "5 days", 4))
    assert hours.value == 120 and hours.shown() == "5 × 24 hours per day"
    per = computation("n1 / q1", n1=operand("total", "1,000 GPUs", 2), q1=operand("nodes", "8 nodes", None))
    assert per.value == 125 and "(the question)" in per.program()


def test_the_program_prints_what_code_computed_here_and_names_its_cited_operands() -> None:
    cases = [
        computation("n1 + n2", n1=operand("a", "363 billion tokens", 1), n2=operand("b", "345 billion", 2)),
        computation(
            "(n1 - n2) / n2 * PERCENT", n1=operand("a", "155 frames", 1), n2=operand("b", "45 fps", 3)
        ),
        computation("n1 ^ n2", n1=operand("a", "1.5 points", 1), n2=operand("b", "3 steps", 1)),
    ]
    for comp in cases:
        code = comp.program()
        printed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        assert ar.same_value(float(printed.stdout), comp.value)
        for o in comp.used:
            assert f"[{o.evidence_id}]" in code and o.text in code


def test_numbers_are_formatted_for_people() -> None:
    assert ar.format_number(11.66667) == "11.7"
    assert ar.format_number(95904.0) == "95,904"
    assert ar.format_number(0.0609) == "0.0609"
    assert ar.format_number(1234.5678) == "1,234.6"
    assert ar.exact_text(11.66667) == "11.6667"


def test_an_expression_that_cancels_equal_numbers_is_degenerate() -> None:
    values = {"n1": 2017.0, "q1": 2017.0, "n2": 45.0}
    for text in ("n1 - q1", "n2 * (n1 / q1)", "n1 / n1"):
        assert ar.degenerate(ar.parse_expression(text, set(values)), values) is not None
    assert ar.degenerate(ar.parse_expression("n1 - n2", set(values)), values) is None


def test_a_dangling_operator_is_dropped() -> None:
    values = {"n1": 10.0, "n2": 4.0}
    assert ar.evaluate(ar.parse_expression("n1 / n2 *  ", set(values)), values) == 2.5


@pytest.mark.parametrize(
    ("expression", "units", "mixed"),
    [
        ("n1 + n2", {"n1": "", "n2": "%"}, True),  # 1000 time lags + 84.6% accuracy
        ("n1 + n2", {"n1": "tasks", "n2": "authors"}, True),
        ("n1 + n2 + n3", {"n1": "%", "n2": "%", "n3": "%"}, False),  # percentage points
        ("n1 + n2", {"n1": "tokens", "n2": "token"}, False),
        ("n1 * n2", {"n1": "days", "n2": "gpus"}, False),  # products combine different things
        ("n1 / n2 * PERCENT", {"n1": "wins", "n2": "datasets"}, False),
        ("n1 * HOURS_PER_DAY * n2", {"n1": "days", "n2": "gpus"}, False),
        ("n1 * SECONDS_PER_MINUTE * MINUTES_PER_HOUR * HOURS_PER_DAY", {"n1": "days"}, True),
    ],
)
def test_sums_of_unlike_things_and_chains_of_constants_are_refused(
    expression: str, units: dict[str, str], mixed: bool
) -> None:
    node = ar.parse_expression(expression, set(units))
    assert (ar.unit_problem(node, units) is not None) == mixed


def test_a_function_word_after_a_number_is_no_unit() -> None:
    values = ar.find_quantities("The reranked system got 36.5 BLEU, and SMT alone 33.3 on the same test set.")
    units = {f"n{i}": q.unit for i, q in enumerate(values, 1)}
    assert ar.unit_problem(ar.parse_expression("n1 - n2", set(units)), units) is None
