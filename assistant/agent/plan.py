"""The question cut into parts a small model can answer one at a time.

Rules do what rules do reliably: split "…, and how many …" into its clauses, find the compared items of
"X and Y both …" / "How does X differ from Y", and tell a computation by its cue words ("how many times",
"combined", "in total"). Only when a question reads as a comparison but the rules cannot name the items is
the model asked, under a schema of short strings, and each item it names must occur in the question.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from assistant.agent.citations import content_words
from assistant.agent.prompts import render
from assistant.agent.records import Operation, Part, Plan
from assistant.agent.replies import parse_json

_WH = (
    r"how|what|which|who|whom|whose|when|where|why|up to|at what|in what|on what|from what|by what|to what|"
    r"for what|is|are|was|were|does|do|did"
)
_PREP = r"(?:from|across|in|on|at|by|to|for|with|over|under)\s+(?:how|what|which)"
_CLAUSE_SPLIT = re.compile(rf"(?:,\s*|;\s*|\s+)and\s+(?=(?:{_WH}|{_PREP})\b)|;\s+|\?\s+(?=\S)", re.IGNORECASE)
_COMPARISON_CUE = re.compile(
    r"\b(?:differs?|differed|difference between|how different|contrast|compare|compared (?:with|to)|"
    r"comparison|versus|vs\.?|each one's|both)\b",
    re.IGNORECASE,
)
_BOTH = re.compile(r"^(?P<a>.+?)\s+and\s+(?P<b>.+?)\s+(?:are\s+)?both\b", re.IGNORECASE)
_DIFFER = re.compile(
    r"\bhow\s+(?:does|do|did|is|are)\s+(?:the\s+)?(?P<a>.+?)\s+"
    r"(?:contrast|differ|compare)\s+(?:with|from|to)\s+(?P<b>.+?)\s*(?:[?,.]|$)",
    re.IGNORECASE,
)
_COMPUTE: list[tuple[Operation, re.Pattern[str]]] = [
    (
        "ratio",
        re.compile(
            r"\bhow many times\b|\btimes (?:more|longer|larger|faster|bigger|higher|as)\b|\bratio\b", re.I
        ),
    ),
    ("sum", re.compile(r"\b(?:combined|in total|altogether|sum of|total number)\b", re.I)),
    (
        "difference",
        re.compile(r"\b(?:difference between|how (?:much|many) (?:more|fewer|less|higher|lower))\b", re.I),
    ),
]
_NUMBER_ASKED = re.compile(
    r"\b(?:how many|how much|by what factor|what (?:\w+ ){0,3}?(?:value|number|size|length|percentage|rate|"
    r"factor|year|accuracy|score|error rates?|batch size|ap)\b|at (?:roughly |about )?what (?:\w+ )?"
    r"(?:size|rate|scale|batch size)\b)",
    re.IGNORECASE,
)
_PER = re.compile(r"\b(?:about|roughly|approximately|on average|based on)\b.*\bhow many\b.*\bper\s+\w+", re.I)
_SNIPPET = re.compile(
    r"\b(?:run|execute|output of|print|prints|printed|returns?)\b.*\b(?:code|snippet|script|function|program|example)\b"
    r"|\b(?:code|snippet|script|function|program)\b.*\b(?:run|execute|output|print|prints|printed|return)\b",
    re.I,
)
_NOISE = frozenset(
    [
        "differ",
        "different",
        "difference",
        "contrast",
        "compare",
        "compared",
        "comparison",
        "versus",
        "vs",
        "each",
        "both",
        "one",
        "one's",
        "pitch",
        "corpus",
        "documents",
        "document",
        "paper",
        "according",
        "described",
        "mentioned",
        "presented",
        "way",
        "these",
        "those",
        "how",
        "purposes",
        "purpose",
        "kind",
    ]
)
_ITEMS_SCHEMA = {
    "type": "object",
    "properties": {
        "items": {"type": "array", "minItems": 2, "maxItems": 4, "items": {"type": "string", "maxLength": 60}}
    },
    "required": ["items"],
    "additionalProperties": False,
}


@dataclass(frozen=True, slots=True)
class ItemsAsk:
    """A request for the model: name the compared items (the loop runs it as a recorded step)."""

    messages: list[dict[str, str]]
    schema: dict[str, object]
    parse: Callable[[str], list[str]]


def plan_question(question: str) -> Plan | ItemsAsk:
    """The plan by rules, or the model call needed to name a comparison's items."""
    q = " ".join(question.split())
    if (op := compute_operation(q)) is not None:
        return Plan(q, (Part(1, q, "compute", queries=(q,), operation=op),))
    if _SNIPPET.search(q):
        return Plan(q, (Part(1, q, "snippet", queries=(q,)),))
    clauses = split_clauses(q)
    if len(clauses) > 1:
        return Plan(q, tuple(_clause_part(i, c, clauses[: i - 1]) for i, c in enumerate(clauses, 1)))
    if _COMPARISON_CUE.search(q):
        items = comparison_items(q)
        if items:
            return comparison_plan(q, items, "rules")
        return ItemsAsk(
            [{"role": "user", "content": render("plan_items.md", question=q)}],
            _ITEMS_SCHEMA,
            lambda raw: _parse_items(raw, q),
        )
    return single_part(q)


def expects_number(text: str) -> bool:
    """The question asks for a quantity ("how many", "what batch size", "by what factor"): an answer
    without a number does not answer it, however well its passages support it."""
    return bool(_NUMBER_ASKED.search(text))


def single_part(question: str) -> Plan:
    return Plan(question, (Part(1, question, "fact", queries=(question,)),))


def compute_operation(question: str) -> Operation | None:
    for op, cue in _COMPUTE:
        if cue.search(question):
            return op
    return "ratio" if _PER.search(question) else None


def split_clauses(question: str) -> list[str]:
    """ "A …, and how many B …?" -> ["A …?", "how many B …?"]; a clause without content words stays
    attached to the previous one."""
    pieces = [p.strip(" ,;") for p in _CLAUSE_SPLIT.split(question) if p and p.strip(" ,;?")]
    clauses: list[str] = []
    for piece in pieces:
        if clauses and len(content_words(piece)) < 2:
            clauses[-1] = f"{clauses[-1].rstrip('?')} and {piece}"
        else:
            clauses.append(piece)
    return [c if c.endswith("?") else c + "?" for c in clauses]


def comparison_items(question: str) -> list[str]:
    """The compared items the rules can read off the question ([] when they cannot)."""
    for pattern in (_BOTH, _DIFFER):
        if m := pattern.search(question):
            return [_clean_item(m.group("a")), _clean_item(m.group("b"))]
    return []


def comparison_plan(question: str, items: list[str], source: str) -> Plan:
    aspect = [w for w in content_words(question) if w.lower() not in _NOISE and not _in_items(w, items)]
    parts = tuple(
        Part(
            i,
            question,
            "fact",
            focus=f"what the documents say about {item}",
            queries=(" ".join([item, *aspect]),),
        )
        for i, item in enumerate(items, 1)
    )
    return Plan(question, parts, "model" if source == "model" else "rules")


def _clause_part(n: int, clause: str, earlier: list[str]) -> Part:
    """A clause that names nothing itself ("which model family is it based on?") refers back: its search
    takes the names of the clauses before it, and it is searched again with the earlier parts' answers."""
    own = _names(clause)
    context = [] if own else [w for c in earlier for w in _names(c)]
    query = " ".join([clause.rstrip("?"), *context])
    return Part(
        n, " ".join([*earlier, clause]), "fact", focus=clause, queries=(query,), refers_back=not own and n > 1
    )


def _names(text: str) -> list[str]:
    """Names and terms of a question: quoted phrases, capitalised or mixed-case words, acronyms."""
    quoted = re.findall(r"[\"“](.+?)[\"”]", text)
    words = [
        w
        for w in re.findall(r"\b[\w-]+\b", text)
        if any(c.isupper() for c in w[1:]) or w[:1].isupper() or "-" in w
    ]
    words = [w for w in words if w.lower() not in _LEADING]
    return list(dict.fromkeys([*quoted, *words]))


_LEADING = frozenset(
    ["according", "answer", "based", "besides", "only", "part", "using", "documents"]
) | frozenset(
    [
        "how",
        "what",
        "which",
        "who",
        "when",
        "where",
        "why",
        "up",
        "at",
        "in",
        "on",
        "from",
        "by",
        "to",
        "for",
        "is",
        "are",
        "was",
        "were",
        "does",
        "do",
        "did",
        "the",
        "a",
        "an",
        "of",
    ]
)


def _clean_item(text: str) -> str:
    return re.sub(r"^(?:(?:the|a|an|way)\s+)+", "", re.sub(r"[\"“”]", "", text).strip(" '.,?"), flags=re.I)


def _in_items(word: str, items: list[str]) -> bool:
    w = word.lower().removesuffix("'s").removesuffix("’s")
    return any(w in item.lower() or item.lower() in w for item in items)


def _parse_items(raw: str, question: str) -> list[str]:
    """The model's items that really occur in the question (at least two), or ValueError."""
    data = parse_json(raw)
    items = data.get("items") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise ValueError('it needs an "items" list')
    kept = [
        _clean_item(i)
        for i in items
        if isinstance(i, str) and i.strip() and _clean_item(i).lower() in question.lower()
    ]
    kept = list(dict.fromkeys(kept))
    if len(kept) < 2:
        raise ValueError("name at least two things, each copied exactly from the question")
    return kept
