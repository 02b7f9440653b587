"""Numbers as passages write them, read into values with their scale, and the arithmetic code generates."""

from __future__ import annotations

import subprocess
import sys

from assistant.agent.quantities import find_quantities, local_output, program, result_unit
from assistant.agent.records import Operand


def test_scales_and_units_are_read_from_the_text() -> None:
    [k] = find_quantities("fine-tuned on 52K demonstrations")
    [word] = find_quantities("fine-tuned on 52 thousand demonstrations")
    assert k.value == word.value == 52_000 and (k.text, word.text) == ("52K", "52 thousand")
    assert k.unit == word.unit == "demonstrations"
    [pct] = find_quantities("reached 45.1% AP")
    assert (pct.value, pct.unit) == (45.1, "%")
    assert [q.value for q in find_quantities("1,645 API calls and ~35 tokens")] == [1645.0, 35.0]


def operand(name: str, text: str, evidence_id: int) -> Operand:
    [q] = find_quantities(text)
    return Operand(name, q.value, q.text, q.unit, q.scale, evidence_id)


def test_results_keep_the_operands_scale_and_percent_differences_are_points() -> None:
    a, b = operand("finance", "363 billion tokens", 1), operand("general", "345 billion tokens", 2)
    assert local_output("sum", a, b) == "708 billion" and result_unit("sum", a, b) == "tokens"
    top1, top5 = operand("top-1", "39.7% error", 1), operand("top-5", "18.9% error", 1)
    assert local_output("difference", top1, top5) == "20.8"
    assert result_unit("difference", top1, top5) == "percentage points"
    fast, base = operand("Fast YOLO", "155 frames", 3), operand("YOLO", "45 frames", 3)
    assert local_output("ratio", fast, base) == "3.444" and result_unit("ratio", fast, base) == "times"


def test_the_generated_program_prints_what_is_computed_here() -> None:
    cases = [
        ("sum", operand("a", "363 billion tokens", 1), operand("b", "345 billion tokens", 2)),
        ("ratio", operand("a", "155 frames", 1), operand("b", "45 frames", 1)),
        ("difference", operand("a", "52K demos", 1), operand("b", "12 thousand demos", 2)),
    ]
    for operation, a, b in cases:
        code = program(operation, a, b)
        printed = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout
        assert printed.strip() == local_output(operation, a, b)
        assert f"[{a.evidence_id}]" in code and a.text in code  # the code names its cited operands
    assert (
        local_output("difference", operand("a", "52K demos", 1), operand("b", "12 thousand demos", 2))
        == "40 K"
    )
    assert (
        local_output("sum", operand("a", "1,645 calls", 1), operand("b", "2,000,000 calls", 2)) == "2,001,645"
    )
