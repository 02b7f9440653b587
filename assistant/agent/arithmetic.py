"""Numbers as documents write them, and the arithmetic of a computed answer as a program over them.

Why code and not the model: a small model copies a number well but multiplies badly, and it cannot tell
"52K" from "52 thousand" as the same value. So the model only *writes* an expression, under a grammar
whose terms are ids of numbers found in the evidence (or the question), named constants and operators;
code parses it, checks it and computes it. Every number keeps the text it was read from (so the citation
quotes it verbatim) and its scale, and a result is shown in its operands' own scale.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from assistant.agent.citations import content_words
from assistant.agent.records import Operand

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
# Named constants the expression grammar accepts: conversions a question may need, never a data value.
CONSTANTS: dict[str, float] = {
    "PERCENT": 100.0,
    "SECONDS_PER_MINUTE": 60.0,
    "MINUTES_PER_HOUR": 60.0,
    "SECONDS_PER_HOUR": 3600.0,
    "HOURS_PER_DAY": 24.0,
    "DAYS_PER_WEEK": 7.0,
    "DAYS_PER_YEAR": 365.0,
    "MONTHS_PER_YEAR": 12.0,
    "BITS_PER_BYTE": 8.0,
    "THOUSAND": 1e3,
    "MILLION": 1e6,
    "BILLION": 1e9,
}
_PLAIN_CONSTANTS = frozenset(["PERCENT", "THOUSAND", "MILLION", "BILLION"])
_WORDS = {
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "hundred": 100,
}
_NUMBER = re.compile(
    r"(?<![\w.])(?<![A-Za-z]-)(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)"
    r"(?:(?P<suffix>[kKMBT])(?![\w])|\s?(?P<word>thousand|million|billion|trillion)\b|\s?(?P<pct>%|percent\b))?"
)
# A number word counts only before a plural-looking noun ("five days", "eight GPUs"), not as a pronoun.
_WORD_NUMBER = re.compile(r"\b(?P<num>" + "|".join(_WORDS) + r")\s+(?=[A-Za-z-]+s\b)", re.IGNORECASE)
_UNIT_WORD = re.compile(r"\s*(?:[-–]\s*)?([A-Za-z][A-Za-z-]*(?:\s+(?:per|of)\s+[A-Za-z]+)?)")
_SYMBOL = {"+": "+", "-": "−", "*": "×", "/": "÷", "^": "^"}


@dataclass(frozen=True, slots=True)
class Quantity:
    """One number found in a text: `value` in base units, `text` exactly as written (a substring)."""

    text: str
    value: float
    scale: str
    unit: str
    start: int


def find_quantities(text: str) -> list[Quantity]:
    """Every number in `text` with its scale and the word after it (what it counts), in text order."""
    found = []
    for m in _NUMBER.finditer(text):
        value = float(m.group("num").replace(",", ""))
        scale = m.group("suffix") or m.group("word") or ""
        value *= SCALES.get(scale.lower(), 1.0)
        unit = "%" if m.group("pct") else ""
        if not unit and (w := _UNIT_WORD.match(text, m.end())):
            unit = w.group(1).lower()
        found.append(Quantity(m.group(), value, scale, unit, m.start()))
    for m in _WORD_NUMBER.finditer(text):
        w = _UNIT_WORD.match(text, m.end("num"))
        found.append(
            Quantity(
                m.group("num"),
                float(_WORDS[m.group("num").lower()]),
                "",
                w.group(1).lower() if w else "",
                m.start(),
            )
        )
    return sorted(found, key=lambda q: q.start)


def same_value(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


# -- the expression grammar ------------------------------------------------------------------------------
class ExpressionError(ValueError):
    """An expression outside the grammar, naming an unknown term, or that cannot be computed."""


Op = Literal["+", "-", "*", "/", "^", "neg"]


@dataclass(frozen=True, slots=True)
class Term:
    name: str  # an operand id or a constant's name


@dataclass(frozen=True, slots=True)
class Apply:
    op: Op
    args: tuple[Node, ...]


Node = Term | Apply
_TOKEN = re.compile(r"\s*(?:(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<op>[-+*/^×÷−()]))")
_ASCII = {"×": "*", "÷": "/", "−": "-"}
MAX_TERMS = 12


def parse_expression(text: str, names: set[str]) -> Node:
    """The tree of `text` over `names` (operand ids) and CONSTANTS; ExpressionError saying what is wrong.

    Grammar: expr := term (('+'|'-') term)* ; term := power (('*'|'/') power)* ;
    power := unary ('^' power)? ; unary := '-' unary | atom ; atom := NAME | '(' expr ')'."""
    tokens: list[str] = []
    pos = 0
    # A dangling operator is what a constrained model leaves when the term it wanted is not offered
    # (PERCENT for a factor): the expression before it is what it means.
    stripped = text.strip().rstrip(" +-*/^×÷−").strip()
    while pos < len(stripped):
        m = _TOKEN.match(stripped, pos)
        if m is None or m.end() == pos:
            raise ExpressionError(
                f"'{stripped[pos : pos + 12].strip()}' is not a number id, a constant or an operator"
            )
        tok = m.group("name") or _ASCII.get(m.group("op"), m.group("op"))
        if m.group("name") and tok not in names and tok not in CONSTANTS:
            raise ExpressionError(f"'{tok}' is neither one of the listed numbers nor a constant")
        tokens.append(tok)
        pos = m.end()
    if not tokens:
        raise ExpressionError("the expression is empty")
    if sum(t in names or t in CONSTANTS for t in tokens) > MAX_TERMS:
        raise ExpressionError(f"use at most {MAX_TERMS} terms")
    parser = _Parser(tokens)
    node = parser.expr()
    if parser.i != len(tokens):
        raise ExpressionError(f"unexpected '{tokens[parser.i]}' (check the brackets)")
    return node


class _Parser:
    def __init__(self, tokens: list[str]) -> None:
        self.tokens, self.i = tokens, 0

    def peek(self) -> str | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> str:
        tok = self.peek()
        if tok is None:
            raise ExpressionError("the expression ends too early")
        self.i += 1
        return tok

    def expr(self) -> Node:
        node = self.term()
        while self.peek() in ("+", "-"):
            op = self.take()
            node = Apply(op, (node, self.term()))  # type: ignore[arg-type]
        return node

    def term(self) -> Node:
        node = self.power()
        while self.peek() in ("*", "/"):
            op = self.take()
            node = Apply(op, (node, self.power()))  # type: ignore[arg-type]
        return node

    def power(self) -> Node:
        base = self.unary()
        if self.peek() == "^":
            self.take()
            return Apply("^", (base, self.power()))
        return base

    def unary(self) -> Node:
        if self.peek() == "-":
            self.take()
            return Apply("neg", (self.unary(),))
        return self.atom()

    def atom(self) -> Node:
        tok = self.take()
        if tok == "(":
            node = self.expr()
            if self.peek() != ")":
                raise ExpressionError("a bracket is not closed")
            self.take()
            return node
        if tok in "+-*/^()":
            raise ExpressionError(f"'{tok}' where a number id was expected")
        return Term(tok)


def evaluate(node: Node, values: Mapping[str, float]) -> float:
    """The value of `node`; ExpressionError on division by zero or an overflow (the part is then not
    stated rather than answered with nonsense)."""
    if isinstance(node, Term):
        return values[node.name] if node.name in values else CONSTANTS[node.name]
    args = [evaluate(a, values) for a in node.args]
    try:
        if node.op == "neg":
            result = -args[0]
        elif node.op == "+":
            result = args[0] + args[1]
        elif node.op == "-":
            result = args[0] - args[1]
        elif node.op == "*":
            result = args[0] * args[1]
        elif node.op == "/":
            result = args[0] / args[1]
        else:
            result = args[0] ** args[1]
    except ZeroDivisionError:
        raise ExpressionError("it divides by zero") from None
    except OverflowError:
        raise ExpressionError("the result overflows") from None
    if isinstance(result, complex) or not math.isfinite(result):
        raise ExpressionError("the result is not a finite number")
    return float(result)


def degenerate(node: Node, values: Mapping[str, float]) -> str | None:
    """Why the expression says nothing (None when it does): somewhere it subtracts or divides a number by
    an equal one ("2017 - 2017"), which a small model writes when it has no real second operand."""
    if isinstance(node, Term):
        return None
    if node.op in ("-", "/") and same_value(evaluate(node.args[0], values), evaluate(node.args[1], values)):
        return "it subtracts or divides two equal numbers, which says nothing"
    return next((why for a in node.args if (why := degenerate(a, values))), None)


MAX_CONSTANTS = 2  # "5 days × 24 hours per day" needs one; a chain of four is a model reaching for anything


def unit_problem(node: Node, units: Mapping[str, str]) -> str | None:
    """Why the expression mixes what cannot be mixed (None when it does not): a sum or difference of a
    percentage and a plain number, or of two counts of different things ("204 tasks + 442 authors"), or
    more than MAX_CONSTANTS conversion constants. `units` maps each operand id to what it counts."""
    constants = [t for t in _all_terms(node) if t in CONSTANTS]
    if len(constants) > MAX_CONSTANTS:
        return f"it chains {len(constants)} constants: use only the conversions the question needs"
    return _mixed(node, units)


def _mixed(node: Node, units: Mapping[str, str]) -> str | None:
    if isinstance(node, Term):
        return None
    if node.op in ("+", "-"):
        kinds = {_kind(u) for t in _all_terms(node) if (u := units.get(t)) is not None}
        if "%" in kinds and len(kinds) > 1:
            return "it adds or subtracts a percentage and a number that is not one"
        words = {k for k in kinds if k not in ("%", "")}
        if len(words) > 1:
            return f"it adds or subtracts counts of different things ({' and '.join(sorted(words))})"
    return next((why for a in node.args if (why := _mixed(a, units))), None)


def _kind(unit: str) -> str:
    """What a number counts, for comparing: "%", a content word without its plural s, or "" (unknown:
    the word after a number is often "on", "in" or "and", which says nothing)."""
    if unit == "%":
        return unit
    words = content_words(unit)
    return words[0].lower().removesuffix("s") if words else ""


def _all_terms(node: Node) -> list[str]:
    """Every term with repeats (`terms` gives each once)."""
    return [node.name] if isinstance(node, Term) else [t for a in node.args for t in _all_terms(a)]


def terms(node: Node) -> list[str]:
    """The names of the terms in order of appearance, each once."""
    if isinstance(node, Term):
        return [node.name]
    return list(dict.fromkeys(n for a in node.args for n in terms(a)))


def render_expression(node: Node, shown: Mapping[str, str], parent: int = 0) -> str:
    """The expression with each term as the reader should see it (a number as written, a constant's
    name in words) and the operators as × ÷ −."""
    if isinstance(node, Term):
        return shown.get(node.name, node.name.lower().replace("_", " "))
    if node.op == "neg":
        return "−" + render_expression(node.args[0], shown, 3)
    level = {"+": 1, "-": 1, "*": 2, "/": 2, "^": 3}[node.op]
    left = render_expression(node.args[0], shown, level)
    right = render_expression(node.args[1], shown, level + (node.op in "-/"))
    text = f"{left} {_SYMBOL[node.op]} {right}"
    return f"({text})" if level < parent else text


def python_expression(node: Node) -> str:
    """The same expression as Python over variables named like the terms (run in the sandbox)."""
    if isinstance(node, Term):
        return node.name
    if node.op == "neg":
        return f"(-{python_expression(node.args[0])})"
    op = "**" if node.op == "^" else node.op
    return f"({python_expression(node.args[0])} {op} {python_expression(node.args[1])})"


def top_operation(node: Node) -> Op | None:
    return None if isinstance(node, Term) else node.op


# -- one computation --------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Computation:
    """An expression over cited operands: its tree, the operands by id, and the value code computed."""

    node: Node
    operands: Mapping[str, Operand]
    value: float

    @property
    def used(self) -> list[Operand]:
        return [self.operands[n] for n in terms(self.node) if n in self.operands]

    def shown(self) -> str:
        """The expression as the reader checks it: numbers as the passages write them, constants as
        their values ("× 24 hours per day", "× 100")."""
        constants = {
            name: format_number(value)
            + ("" if name in _PLAIN_CONSTANTS else " " + name.lower().replace("_", " "))
            for name, value in CONSTANTS.items()
        }
        return render_expression(self.node, constants | {k: o.text for k, o in self.operands.items()})

    def program(self) -> str:
        """The Python that computes the answer from the operands (run in the sandbox, shown to the reader)."""
        lines = [f"{name} = {CONSTANTS[name]!r}" for name in terms(self.node) if name in CONSTANTS]
        for key in terms(self.node):
            if key in self.operands:
                o = self.operands[key]
                where = f"[{o.evidence_id}]" if o.evidence_id else "(the question)"
                lines.append(f"{key} = {o.value!r}  # {o.name}: {o.text} {where}")
        lines += [f"result = {python_expression(self.node)}", "print(repr(result))"]
        return "\n".join(lines) + "\n"

    def scale(self) -> tuple[str, float]:
        """The scale the result is shown in: the operands' shared scale for sums and differences
        (363 billion + 345 billion -> "708 billion"), none otherwise (ratios cancel units)."""
        used = self.used
        scales = {SCALES[o.scale.lower()] for o in used if o.scale}
        if top_operation(self.node) in ("+", "-") and len(scales) == 1 and all(o.scale for o in used):
            first = next(o.scale for o in used)
            return (first if len(first) == 1 else " " + first), SCALES[first.lower()]
        return "", 1.0

    def unit(self) -> str:
        """What the result counts: percentage points for a sum or difference of percentages, a percent
        when the expression multiplies by PERCENT, "times" for a ratio of like quantities."""
        used = self.used
        op = top_operation(self.node)
        if used and all(o.unit == "%" for o in used) and op in ("+", "-"):
            return "percentage points"
        if "PERCENT" in terms(self.node):
            return "%"
        if op == "/" and len(used) == 2 and used[0].unit == used[1].unit:
            return "times"
        units = {o.unit for o in used}
        return units.pop() if len(units) == 1 and op in ("+", "-") else ""

    def result_text(self) -> str:
        """`11.7` for 11.6667, `95,904` for an integer, with the shared scale ("708 billion") and the unit
        ("76.8%", "3.44 times", "1.4 percentage points")."""
        suffix, factor = self.scale()
        unit = self.unit()
        return (
            format_number(self.value / factor) + suffix + ("%" if unit == "%" else f" {unit}" if unit else "")
        )


def format_number(value: float) -> str:
    """Three significant digits for fractions (11.6667 -> 11.7, 0.0609 -> 0.0609), all digits with
    thousands separators for whole numbers, one decimal above 1,000."""
    if abs(value - round(value)) < 1e-9 * max(1.0, abs(value)):
        return f"{round(value):,}"
    if abs(value) >= 1000:
        return f"{value:,.1f}"
    return f"{value:.3g}" if abs(value) >= 1e-3 else f"{value:.3e}"


def exact_text(value: float) -> str:
    return f"{value:,.6g}" if abs(value) < 1e15 else f"{value:.6e}"
