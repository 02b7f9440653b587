"""The question cut into parts, and what each part asks: the model decides, code checks.

Division of labour, measured on two CPU cores (docs/benchmarks.md section 15): a free-form plan written by
the 1.5B model (each part's question, focus, attribute, items, queries) took 10-25 s a question, 70-200
generated tokens at ~9 tokens/s, and it put the wrong things in `items`. So the model's plan is one call
whose reply is almost all enums, ~10 tokens: for each part, whether it asks for a fact, a number or a
comparison, and for a comparison the things compared (each checked to occur in the question). Rules do
only what English syntax makes unambiguous: split "…, and how many …?" into clauses, tell a yes/no question
("Do …", "Is …") from a "which" question, and notice a request to run the documents' code. Rule cues for a
number or a comparison are kept beside the model's decision (`Part.rule_asks`) so routing can be measured;
they never override it. Whether a number is written in the documents or must be computed is decided later,
by the model with the part's evidence in front of it (`loop.py`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from itertools import pairwise
from typing import Any

from assistant.agent.citations import content_words, names
from assistant.agent.prompts import json_object, render
from assistant.agent.records import Asks, Message, Part, Plan, Relation

ASKS: tuple[Asks, ...] = ("fact", "number", "comparison")
MAX_PARTS = 4
MAX_ITEMS = 4

_WH = (
    r"how|what|which|who|whom|whose|when|where|why|up to|at what|in what|on what|from what|by what|to what|"
    r"for what|is|are|was|were|does|do|did"
)
_PREP = r"(?:from|across|in|on|at|by|to|for|with|over|under)\s+(?:how|what|which)"
_CLAUSE_SPLIT = re.compile(
    rf"(?:,\s*|;\s*|\s+)(?:and|as well as)\s+(?=(?:{_WH}|{_PREP})\b)|;\s+|\?\s+(?:and\s+|also,?\s+)?(?=\S)",
    re.IGNORECASE,
)
_YES_NO = re.compile(r"^(?:do|does|did|is|are|was|were|has|have|had|can|could|will|would)\b", re.IGNORECASE)
_WHICH = re.compile(r"\b(?:which|who|whose)\b", re.IGNORECASE)
_NUMBER_CUE = re.compile(
    r"\b(?:how many|how much|by what factor|how (?:large|long|big|far|fast|high|low|often)|what (?:percentage|"
    r"share|fraction|proportion|number|value|ratio|factor|multiple)|how many times)\b",
    re.IGNORECASE,
)
_COMPARISON_CUE = re.compile(
    r"\b(?:differs?|differed|difference between|how different|contrast|compared? (?:with|to)|comparison|versus|"
    r"vs\.?|agree|disagree|same|higher|lower|larger|smaller|more|fewer|better|worse|both)\b",
    re.IGNORECASE,
)
_CHOICE = re.compile(r"[,:]\s*(?:the\s+)?[^,:?]+?\s+or\s+[^,:?]+\?$", re.IGNORECASE)
_SNIPPET = re.compile(
    r"\b(?:run|execute|output of|print|prints|printed|returns?)\b.*\b(?:code|snippet|script|function|program|example)\b"
    r"|\b(?:code|snippet|script|function|program)\b.*\b(?:run|execute|output|print|prints|printed|return)\b",
    re.I,
)
_LINK = re.compile(
    r"\b(?:and|or|nor|vs|versus|than|from|against|between|compared? (?:with|to)|compared)\b|[,/:&]",
    re.IGNORECASE,
)
MAX_GAP_WORDS = 8
MIN_CLAUSE_WORDS = 2  # content words a piece needs to be a clause of its own ("and with how many exemplars?")
_QUESTION_START = re.compile(
    rf"^(?:{_WH}|{_PREP}|has|have|had|can|could|will|would|should|name|list|give|add|compute|calculate|tell|state|report|identify|explain|describe|say|find|show)\b",
    re.IGNORECASE,
)
_QUESTION_WORD = re.compile(r"\b(?:how|what|which|who|whom|whose|when|where|why)\b", re.IGNORECASE)
_ARTICLE = re.compile(r"^(?:(?:the|a|an)\s+)+", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class PlanRequest:
    """The one model call that plans a question (the loop runs it as a recorded step)."""

    messages: list[Message]
    schema: dict[str, Any]
    parse: Callable[[str], Plan]


def plan_request(question: str) -> PlanRequest | Plan:
    """The planning call for `question`, or the plan itself when the user asks to run the documents'
    code (a request about the user's own intent, which the rule reads unambiguously)."""
    q = " ".join(question.split())
    clauses = split_clauses(q)
    runs, asked = code_runs(clauses)
    if _SNIPPET.search(q) and (not asked or not any(runs)):
        return Plan(q, (Part(1, q, "snippet", queries=(q,)),), "rules")
    listed = "\n".join(f"Part {i}: {c}" for i, c in enumerate(asked, 1))
    messages: list[Message] = [
        {"role": "system", "content": render("plan_system.md")},
        {"role": "user", "content": render("plan_user.md", question=q, parts=listed)},
    ]
    return PlanRequest(
        messages, plan_schema(len(asked)), lambda raw: with_snippets(parse_plan(raw, q, asked), clauses, runs)
    )


def code_runs(clauses: Sequence[str]) -> tuple[list[bool], list[str]]:
    """Which clauses ask to run the documents' code, and the others (what the plan decides about)."""
    runs = [bool(_SNIPPET.search(c)) for c in clauses]
    return runs, [c for c, run in zip(clauses, runs, strict=True) if not run]


def with_snippets(plan: Plan, clauses: Sequence[str], runs: Sequence[bool]) -> Plan:
    """`plan` of the clauses that ask about the documents, with the clauses that ask to run their code put
    back in place as snippet parts ("What does the snippet print, and what does DPO train on?" has two
    parts: neither is lost to the other)."""
    if not any(runs):
        return plan
    planned = iter(plan.parts)
    parts = [
        Part(n, c, "snippet", queries=(c,)) if run else replace(next(planned), id=n)
        for n, (c, run) in enumerate(zip(clauses, runs, strict=True), 1)
    ]
    return replace(plan, parts=tuple(parts))


def plan_schema(n_parts: int) -> dict[str, Any]:
    """One entry per clause, in order: {"asks": "fact"|"number"} or {"asks": "comparison", "items": [...]}."""
    simple = {
        "type": "object",
        "properties": {"asks": {"type": "string", "enum": ["fact", "number"]}},
        "required": ["asks"],
        "additionalProperties": False,
    }
    comparison = {
        "type": "object",
        "properties": {
            "asks": {"type": "string", "enum": ["comparison"]},
            "items": {
                "type": "array",
                "minItems": 2,
                "maxItems": MAX_ITEMS,
                "items": {"type": "string", "maxLength": 60},
            },
        },
        "required": ["asks", "items"],
        "additionalProperties": False,
    }
    return {
        "type": "object",
        "properties": {
            "parts": {
                "type": "array",
                "minItems": n_parts,
                "maxItems": n_parts,
                "items": {"anyOf": [simple, comparison]},
            }
        },
        "required": ["parts"],
        "additionalProperties": False,
    }


def parse_plan(raw: str, question: str, clauses: Sequence[str]) -> Plan:
    """The plan from the model's reply; ValueError (fed back to the model) when it breaks a check the
    schema cannot express: a comparison's items must be written in its part."""
    entries = json_object(raw).get("parts")
    if not isinstance(entries, list) or len(entries) != len(clauses):
        raise ValueError(f'"parts" must list exactly {len(clauses)} entries, one per part, in order')
    parts: list[Part] = []
    for n, (entry, clause) in enumerate(zip(entries, clauses, strict=True), 1):
        asks = entry.get("asks") if isinstance(entry, dict) else None
        if asks not in ASKS:
            raise ValueError(f'part {n}: "asks" must be one of {", ".join(ASKS)}')
        items: list[str] = []
        if asks == "comparison":
            raw_items = entry.get("items")
            items = _items_in(raw_items if isinstance(raw_items, list) else [], question)
            if _NUMBER_CUE.match(_last_sentence(clause)):  # "How many more layers does X have than Y?"
                asks, items = "number", []
            elif not compares(clause):
                # nothing in the clause compares (no "differ", "agree", "higher", "versus"...): the 1.5B model
                # planned comparisons of "photorealism" and "caption similarity" in a which-one question
                asks, items = ("number" if _NUMBER_CUE.search(clause) else "fact"), []
            elif len(items) < 2 or not side_by_side(items, question):
                raise ValueError(
                    f"part {n}: name at least two compared things, each copied exactly from the question"
                )
        parts.append(make_part(n, clause, asks, items, clauses[: n - 1]))
    return Plan(question, tuple(parts), "model")


def rules_plan(question: str) -> Plan:
    """The plan rules alone would make (the fallback when the model's reply is unusable, and the baseline
    the routing benchmark compares the model with)."""
    q = " ".join(question.split())
    clauses = split_clauses(q)
    runs, asked = code_runs(clauses)
    plan = Plan(
        q,
        tuple(
            make_part(n, c, "number" if rule_asks(c) == "number" else "fact", [], asked[: n - 1])
            for n, c in enumerate(asked, 1)
        ),
        "rules",
    )
    return with_snippets(plan, clauses, runs)


def make_part(n: int, clause: str, asks: Asks, items: Sequence[str], earlier: Sequence[str]) -> Part:
    """A part and its searches. A clause that names nothing itself ("which model family is it based on?")
    refers back: its search takes the names of the clauses before it, and it is searched again with the
    earlier parts' answers. A comparison searches once per compared item, with the clause's other words."""
    own = names(clause)
    context = [] if own else [w for c in earlier for w in names(c)]
    query = " ".join([clause.rstrip("?"), *context])
    queries: tuple[str, ...] = (query,)
    relation: Relation | None = None
    if asks == "comparison":
        aspect = [w for w in content_words(clause) if not _in_items(w, items)]
        queries = tuple(" ".join([item, *aspect]) for item in items)
        relation = "yes_no" if is_yes_no(clause) else "which" if _WHICH.search(clause) else "describe"
    return Part(
        n,
        clause,
        asks,
        items=tuple(items),
        relation=relation,
        queries=queries,
        refers_back=not own and n > 1,
        rule_asks=rule_asks(clause),
    )


def compares(clause: str) -> bool:
    """The clause's words compare: a cue ("differ", "agree", "higher", "versus", "both"…) or a choice
    between alternatives ("Which …, A or B?")."""
    return bool(_COMPARISON_CUE.search(clause) or (_WHICH.search(clause) and _CHOICE.search(clause)))


def is_yes_no(clause: str) -> bool:
    """ "Do …", "Is …", "Has …": a question answered by yes or no."""
    return _YES_NO.match(clause.strip()) is not None


def rule_asks(clause: str) -> Asks | None:
    """What cue words alone suggest (None: no cue). Kept beside the model's decision for measurement."""
    if compares(clause) and len(names(clause)) >= 2:
        return "comparison"
    if _NUMBER_CUE.search(clause):
        return "number"
    return None


def split_clauses(question: str) -> list[str]:
    """ "A …, and how many B …?" -> ["A …?", "how many B …?"]. A piece without two content words stays
    attached to the clause before it, and a question that splits into more than MAX_PARTS pieces is not
    split at all (such a list is a list of things, not of questions)."""
    pieces = [p.strip(" ,;") for p in _CLAUSE_SPLIT.split(question) if p and p.strip(" ,;?")]
    clauses: list[str] = []
    preface = ""  # a statement before a question ("X is Y; what does that model?") belongs to it
    for i, piece in enumerate(pieces):
        if clauses and not preface and len(content_words(piece)) < MIN_CLAUSE_WORDS:
            clauses[-1] = f"{clauses[-1].rstrip('?')} and {piece}"
        elif i < len(pieces) - 1 and not _asks_something(piece, question):
            preface = f"{preface}{piece.rstrip('.')}; "
        else:
            clauses.append(preface + piece)
            preface = ""
    if not clauses or len(clauses) > MAX_PARTS:
        return [question]
    return [c if c.endswith("?") else c.rstrip(".") + "?" for c in clauses]


def _last_sentence(text: str) -> str:
    """The sentence that asks, after any statements that preface it."""
    return re.split(r"(?<=[.!?;])\s+", text.strip())[-1]


def _asks_something(piece: str, question: str) -> bool:
    """The piece is a question or a request, not a statement that prefaces one: it ended in "?" in the
    question, or one of its sentences or clauses starts with a question word or an imperative."""
    if f"{piece.rstrip()}?" in question:
        return True
    return any(_QUESTION_START.match(c.strip()) for c in re.split(r"[.;:,()]\s+", piece))


def _clean_item(text: str) -> str:
    return _ARTICLE.sub("", re.sub(r"[\"“”]", "", text).strip(" '.,?"))


def _items_in(raw: Sequence[object], question: str) -> list[str]:
    """The model's items that really occur in the question and name a thing (not a question phrase such
    as "across how many languages"), cleaned, each once, none inside another."""
    low = question.lower()
    kept = [_clean_item(i) for i in raw if isinstance(i, str) and _clean_item(i)]
    kept = [i for i in dict.fromkeys(kept) if _has_phrase(low, i) and not _QUESTION_WORD.search(i)]
    return [i for i in kept if not any(i != j and _has_phrase(j.lower(), i) for j in kept)]


def side_by_side(items: Sequence[str], question: str) -> bool:
    """The compared things are set side by side in the question: between each and the next, in the order
    written, stand a few words that link them ("and", "or", "than", "versus", "from", a comma...). A
    small model's "comparison" of "unlabeled dataset" and "T5" in "On what unlabeled dataset was T5
    pre-trained?" fails this."""
    low = question.lower()
    spans = sorted(m.span() for i in items if (m := _phrase(low, i)) is not None)
    for (_, end), (start, _) in pairwise(spans):
        gap = low[end:start]
        if start < end or len(gap.split()) > MAX_GAP_WORDS or not _LINK.search(gap):
            return False
    return len(spans) >= 2


def _phrase(text: str, phrase: str) -> re.Match[str] | None:
    return re.search(rf"(?<![\w-]){re.escape(phrase.lower())}(?![\w-])", text)


def _has_phrase(text: str, phrase: str) -> bool:
    """`phrase` occurs in lower-cased `text` as whole words ("BERT" is not in "RoBERTa")."""
    return _phrase(text, phrase) is not None


def _in_items(word: str, items: Sequence[str]) -> bool:
    w = word.lower().removesuffix("'s").removesuffix("’s")
    return any(w in item.lower() or item.lower() in w for item in items)
