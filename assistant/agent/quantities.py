"""Numbers as passages write them ("52K", "363 billion", "45.1%", "∼35"), read into values code can
compute with, and the arithmetic of a computed answer.

Why code and not the model: a 0.5B model copies a number well but multiplies badly, and it cannot tell
"52K" from "52 thousand" as the same value. Here every number keeps the text it was read from (so the
citation quotes it verbatim) and its scale, so results come out in the operands' own scale.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from assistant.agent.records import Operand, Operation

SCALES: dict[str, float] = {
    "k": 1e3,
    "thousand": 1e3,
    "m": 1e6,
    "million": 1e6,
    "b": 1e9,
    "billion": 1e9,
    "t": 1e12,
    "trillion": 1e12,
}
_NUMBER = re.compile(
    r"(?<![\w.])(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)"
    r"(?:(?P<suffix>[kKMBT])(?![\w])|\s?(?P<word>thousand|million|billion|trillion)\b|\s?(?P<pct>%|percent\b))?"
)
_UNIT_WORD = re.compile(r"\s*(?:[-–]\s*)?([A-Za-z][A-Za-z-]*(?:\s+(?:per|of)\s+[A-Za-z]+)?)")
SYMBOLS: dict[Operation, str] = {"ratio": "÷", "sum": "+", "difference": "−", "product": "×"}


@dataclass(frozen=True, slots=True)
class Quantity:
    """One number found in a text: `value` in base units, `text` exactly as written (a substring)."""

    text: str
    value: float
    scale: str
    unit: str
    start: int


def find_quantities(text: str) -> list[Quantity]:
    """Every number in `text` with its scale and the word after it (what it counts)."""
    found = []
    for m in _NUMBER.finditer(text):
        value = float(m.group("num").replace(",", ""))
        scale = m.group("suffix") or m.group("word") or ""
        value *= SCALES.get(scale.lower(), 1.0)
        unit = "%" if m.group("pct") else ""
        if not unit and (w := _UNIT_WORD.match(text, m.end())):
            unit = w.group(1).lower()
        found.append(Quantity(m.group(), value, scale, unit, m.start()))
    return found


def compute(operation: Operation, a: float, b: float) -> float:
    if operation == "ratio":
        if b == 0:
            raise ZeroDivisionError("the divisor is 0")
        return a / b
    if operation == "sum":
        return a + b
    if operation == "difference":
        return a - b
    return a * b


def display_scale(operation: Operation, a: Operand, b: Operand) -> tuple[str, float]:
    """The scale the result is shown in: the operands' shared scale for sums and differences
    (363 billion + 345 billion -> "708 billion"), none for ratios (units cancel)."""
    shared = a.scale and b.scale and SCALES[a.scale.lower()] == SCALES[b.scale.lower()]  # 52K, 12 thousand
    if operation in ("sum", "difference") and shared:
        return a.scale, SCALES[a.scale.lower()]
    return "", 1.0


def result_unit(operation: Operation, a: Operand, b: Operand) -> str:
    """What the result counts: percentage points for a difference of percentages, times for ratios."""
    if operation == "difference" and a.unit == "%" and b.unit == "%":
        return "percentage points"
    if operation == "ratio":
        return "times"
    return a.unit if a.unit == b.unit else ""


def program(operation: Operation, a: Operand, b: Operand) -> str:
    """The Python that computes the answer from the operands (run in the sandbox, shown to the reader)."""
    scale, factor = display_scale(operation, a, b)
    expr = {"ratio": "a / b", "sum": "a + b", "difference": "a - b", "product": "a * b"}[operation]
    suffix = f' + " {scale}"' if scale else ""
    return (
        f"a = {a.value!r}  # {a.name}: {a.text} [{a.evidence_id}]\n"
        f"b = {b.value!r}  # {b.name}: {b.text} [{b.evidence_id}]\n"
        f"result = {expr}\n"
        f'print(f"{{round(result / {factor!r}, 3):,.12g}}"{suffix})\n'
    )


def local_output(operation: Operation, a: Operand, b: Operand) -> str:
    """What `program` prints, computed here (used when no sandbox is available)."""
    scale, factor = display_scale(operation, a, b)
    value = compute(operation, a.value, b.value) / factor
    return f"{round(value, 3):,.12g}" + (f" {scale}" if scale else "")
