"""The operands of a computed answer: the model picks them from the numbers the passages contain.

The choice is an enum of those numbers (as written), so the model cannot invent or mistype one, and each
pick maps back to the passage it came from, which the answer then cites. The arithmetic is code's
(`quantities.program`, run in the sandbox).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from assistant.agent.prompts import render
from assistant.agent.quantities import Quantity, compute, find_quantities
from assistant.agent.records import Operand, Part
from assistant.agent.replies import parse_json

MAX_CANDIDATES = 16
_OPERATION_TEXT = {
    "ratio": "A ÷ B",
    "sum": "A + B",
    "difference": "A − B",
    "product": "A × B",
}
_GROWTH_WORDS = ("times more", "times longer", "times larger", "times faster", "times bigger", "times higher")


@dataclass(frozen=True, slots=True)
class Candidate:
    quantity: Quantity
    evidence_id: int
    sentence: str


@dataclass(frozen=True, slots=True)
class OperandPick:
    a_name: str
    a: str
    b_name: str
    b: str


@dataclass(frozen=True, slots=True)
class OperandRequest:
    """The model call that picks the operands, and the candidates its enum was built from."""

    messages: list[dict[str, str]]
    schema: dict[str, Any]
    parse: Callable[[str], OperandPick]
    candidates: dict[str, Candidate]


def candidates(lines: Sequence[tuple[int, str]]) -> dict[str, Candidate]:
    """The numbers of the evidence sentences, first occurrence of each written form, in ranking order."""
    found: dict[str, Candidate] = {}
    for ev_id, sentence in lines:
        for q in find_quantities(sentence):
            if q.text not in found and len(found) < MAX_CANDIDATES:
                found[q.text] = Candidate(q, ev_id, sentence)
    return found


def operand_request(part: Part, lines: Sequence[tuple[int, str]], question: str) -> OperandRequest | None:
    """The operand-picking call for a compute part; None when the passages hold fewer than two numbers."""
    assert part.operation is not None
    found = candidates(lines)
    if len(found) < 2:
        return None
    listed = "\n".join(f"- {text}: [{c.evidence_id}] {c.sentence}" for text, c in found.items())
    prompt = render(
        "operands_user.md", question=question, operation=_OPERATION_TEXT[part.operation], candidates=listed
    )
    numbers = list(found)
    operand = {
        "type": "object",
        "properties": {
            "name": {"type": "string", "maxLength": 60},
            "number": {"type": "string", "enum": numbers},
        },
        "required": ["name", "number"],
        "additionalProperties": False,
    }
    schema = {
        "type": "object",
        "properties": {"a": operand, "b": operand},
        "required": ["a", "b"],
        "additionalProperties": False,
    }
    return OperandRequest(
        [{"role": "user", "content": prompt}], schema, lambda raw: parse_pick(raw, numbers), found
    )


def parse_pick(raw: str, numbers: Sequence[str]) -> OperandPick:
    """The model's two picks; ValueError when a pick is not one of the listed numbers or both are one."""
    data = parse_json(raw)
    picks = []
    for key in ("a", "b"):
        item = data.get(key) if isinstance(data, dict) else None
        if not isinstance(item, dict) or not isinstance(item.get("number"), str):
            raise ValueError(f'"{key}" needs a "number" from the list')
        if item["number"] not in numbers:
            raise ValueError(f'"{item["number"]}" is not one of the listed numbers')
        name = item.get("name") if isinstance(item.get("name"), str) else ""
        picks.append((" ".join(str(name).split())[:60] or key.upper(), item["number"]))
    if picks[0][1] == picks[1][1]:
        raise ValueError("A and B are the same number: pick two different numbers")
    return OperandPick(picks[0][0], picks[0][1], picks[1][0], picks[1][1])


def operands_from(pick: OperandPick, request: OperandRequest, part: Part) -> tuple[Operand, Operand]:
    """The picks as operands. A "how many times more" ratio below 1 has its operands the wrong way round
    (such a question asks for a factor above 1), so they are swapped; the code shows the final order."""
    a, b = (
        _operand(name, request.candidates[text])
        for name, text in ((pick.a_name, pick.a), (pick.b_name, pick.b))
    )
    q = part.question.lower()
    growth = "how many times" in q or any(w in q for w in _GROWTH_WORDS)
    if part.operation == "ratio" and growth and b.value and compute("ratio", a.value, b.value) < 1:
        a, b = b, a
    return a, b


def _operand(name: str, c: Candidate) -> Operand:
    q = c.quantity
    return Operand(name, q.value, q.text, q.unit, q.scale, c.evidence_id)
