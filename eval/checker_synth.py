"""Synthetic hard examples for training the grounding checker, made from real text (MiniCheck's lesson).

Each generator takes a sentence the evidence supports and returns a claim that differs from it in one
stated way, or None when the sentence offers nothing to change. Negatives stay close to the evidence
word for word, which is what the labelled data rarely shows and the agent's drafts often do:

* `change_number` / `change_unit`: "opened in 1937" -> "opened in 1941"; "12 km" -> "12 miles";
* `swap_name`: a name for another name of the same shape (preferably one the evidence also mentions);
* `negate`: "is" -> "is not", "was not" -> "was";
* `add_qualifier` / `drop_qualifier`: "is used" -> "is only used"; "may reduce" -> "reduce";
* `combine`: a supported sentence joined with one from another document (half supported).

Positives, so the checker does not learn "any change is unsupported": `clause_of` (the main clause of a
longer sentence), `drop_parenthetical`, and two supported sentences joined by "and" (`combine` applied to
two sentences of the same passage).

Only training material and the seed corpus are fed to these, never an evaluation split.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

_NUMBER = re.compile(r"(?<![\w.\-])(\d+(?:[.,]\d+)*)(?![\w\-])")
_NAME_RUN = re.compile(r"\b[A-Z][A-Za-z'’-]*\b(?:\s+(?:of\s+|de\s+|the\s+)?[A-Z][A-Za-z'’-]*\b)*")
_AUXILIARIES = (
    "is", "are", "was", "were", "has", "have", "had", "can", "will", "does", "do", "did", "could",
    "would", "should", "must",
)  # fmt: skip
_AUX = re.compile(r"\b(" + "|".join(_AUXILIARIES) + r")\b(?!\s+not\b)", re.IGNORECASE)
_NEGATION = re.compile(r"\b(" + "|".join(_AUXILIARIES) + r")\s+not\b|\bnever\s+", re.IGNORECASE)
_CONTRACTION = re.compile(r"\b(is|are|was|were|has|have|had|does|do|did|could|would|should)n['’]t\b", re.I)
UNIT_GROUPS = (
    ("km", "miles", "metres", "feet"),
    ("kilometres", "kilometers", "miles"),
    ("kg", "pounds", "tonnes"),
    ("thousand", "million", "billion"),
    ("seconds", "minutes", "hours", "days"),
    ("days", "weeks", "months", "years"),
    ("percent", "percentage points"),
    ("Celsius", "Fahrenheit"),
    ("dollars", "euros", "pounds"),
)
ADDED_QUALIFIERS = ("only", "always", "exclusively")
HEDGES = (
    "may", "might", "some", "most", "about", "approximately", "nearly", "almost", "partly", "often",
    "sometimes", "usually", "mainly", "largely", "probably", "possibly", "likely", "several",
)  # fmt: skip
_HEDGE = re.compile(r"\b(" + "|".join(HEDGES) + r")\s+", re.IGNORECASE)
_STOP_NAMES = frozenset(
    {"The", "A", "An", "In", "On", "At", "It", "Its", "This", "That", "These", "Those", "They", "He", "She",
     "We", "Our", "Their", "His", "Her", "There", "Here", "As", "For", "By", "With", "When", "While"}
)  # fmt: skip


SOURCE_PREFIX = "synth"  # the source of every synthetic pair starts with it: "synth-name", "synth-pos-copy"


def is_synthetic(source: str) -> bool:
    return source.startswith(SOURCE_PREFIX)


def change_number(claim: str, rng: random.Random) -> str | None:
    """One number replaced by a different, plausible one (a year moves by a few years)."""
    matches = list(_NUMBER.finditer(claim))
    if not matches:
        return None
    m = rng.choice(matches)
    text = m.group(1)
    digits = text.replace(",", "")
    if "." in digits:
        value = float(digits)
        decimals = len(digits.split(".")[1])
        new = f"{value * rng.choice((0.5, 1.5, 2.0)) + 10**-decimals:.{decimals}f}"
    else:
        value = int(digits)
        if 1000 <= value <= 2100 and "," not in text:  # a year
            new = str(value + rng.choice((-7, -3, -2, 2, 3, 5)))
        else:
            new = str(rng.choice((value * 2 + 1, value + 3, max(value // 2, 1) + 7, value * 10)))
            if "," in text:
                new = f"{int(new):,}"
    if new == text:
        return None
    return claim[: m.start(1)] + new + claim[m.end(1) :]


def change_unit(claim: str, rng: random.Random) -> str | None:
    """A unit (or magnitude word) replaced by another of its group: "12 km" -> "12 miles"."""
    options = []
    for group in UNIT_GROUPS:
        for unit in group:
            for m in re.finditer(rf"(?<=\d )({re.escape(unit)})\b", claim):
                options.append((m, [u for u in group if u != unit]))
    if not options:
        return None
    m, others = rng.choice(options)
    return claim[: m.start(1)] + rng.choice(others) + claim[m.end(1) :]


def names_in(text: str) -> list[str]:
    """Runs of capitalised words, not counting a sentence's first word when it stands alone."""
    found = []
    for m in _NAME_RUN.finditer(text):
        run = m.group(0)
        at_start = m.start() == 0 or text[: m.start()].rstrip().endswith((".", "!", "?", '"', "\n"))
        if at_start and " " not in run:
            continue
        if at_start and run.split()[0] in _STOP_NAMES:
            run = run.split(" ", 1)[1]
        if run not in _STOP_NAMES and len(run) > 1:
            found.append(run)
    return found


def _shape(name: str) -> tuple[int, bool]:
    return len(name.split()), name.isupper()


def swap_name(claim: str, pool: Sequence[str], rng: random.Random) -> str | None:
    """A name in the claim replaced by a different name of the same shape (word count, all caps) from
    `pool` (names from the same evidence first make the hardest negatives)."""
    names = names_in(claim)
    rng.shuffle(names)
    for name in names:
        candidates = sorted(
            {p for p in pool if _shape(p) == _shape(name) and p not in claim and name not in p}
        )
        if candidates:
            start = claim.index(name)
            return claim[:start] + rng.choice(candidates) + claim[start + len(name) :]
    return None


def negate(claim: str) -> str | None:
    """A negated claim loses its negation; an affirmative one gets "not" after its first auxiliary verb."""
    m = _CONTRACTION.search(claim)
    if m:
        return claim[: m.start()] + m.group(1) + claim[m.end() :]
    m = _NEGATION.search(claim)
    if m:
        replacement = m.group(1) if m.group(1) else ""
        return claim[: m.start()] + replacement + claim[m.end() :]
    m = _AUX.search(claim)
    if m:
        return claim[: m.end()] + " not" + claim[m.end() :]
    return None


def add_qualifier(claim: str, rng: random.Random) -> str | None:
    """A restricting word the evidence does not state: "is used" -> "is only used", "12 days" -> "only 12 days"."""
    qualifier = rng.choice(ADDED_QUALIFIERS)
    m = _AUX.search(claim)
    if m:
        return claim[: m.end()] + f" {qualifier}" + claim[m.end() :]
    m = _NUMBER.search(claim)
    if m:
        return claim[: m.start()] + "only " + claim[m.start() :]
    return None


def drop_qualifier(claim: str) -> str | None:
    """A hedge removed, so the claim says more than the evidence: "may reduce" -> "reduce"."""
    m = _HEDGE.search(claim)
    if not m:
        return None
    rest = claim[m.end() :]
    if m.start() == 0:
        rest = rest[:1].upper() + rest[1:]
    return claim[: m.start()] + rest


def combine(first: str, second: str) -> str:
    """Two statements as one claim: "A, and b." (supported only when both are)."""
    head = first.rstrip().rstrip(".!?")
    tail = second.strip()
    if tail.split()[0] in _STOP_NAMES:  # "The tower ..." -> "the tower ...", but "Paris ..." stays
        tail = tail[:1].lower() + tail[1:]
    return f"{head}, and {tail}"


def clause_of(sentence: str, min_words: int = 6) -> str | None:
    """The part of a sentence before its first comma, semicolon or relative clause, when that part is a
    statement on its own (at least `min_words` words and a verb-like auxiliary or a verb ending)."""
    m = re.search(r",|;|\s(?:which|who|while|whereas)\s", sentence)
    if not m:
        return None
    head = sentence[: m.start()].strip()
    words = head.split()
    if len(words) < min_words or not (_AUX.search(head) or any(w.endswith(("ed", "es")) for w in words[1:])):
        return None
    return head + "."


def drop_parenthetical(sentence: str) -> str | None:
    """The sentence without its parenthesised asides."""
    shorter = re.sub(r"\s*\([^()]*\)", "", sentence)
    return shorter if shorter != sentence and len(shorter.split()) >= 4 else None
