"""Support and acceptance of answer sentences: the one place that decides whether a sentence stands.

Everything that judges a sentence comes from here, so the agent, the UI's badges and `ra eval qa` can
never disagree:

* `score_sentences`: the grounding checker's support of each sentence by what it cites (the best of one
  cited passage alone or of all its citations together, since a fact may need two passages); a computed
  sentence is supported when code can check it (every operand written verbatim in the passage it cites).
* `anchoring`: what code can check of a sentence without a model: every number and name in it occurs in
  what it cites, in the question or in a computation.
* `accept`: the decision over three signals, anchoring, the checker and the answering model's self-check
  (measured on labelled dev drafts: `eval/acceptance.py`).
* `support_table`: the checker's scores of every citation subset the ALCE metrics need (`subsets`).
* `needed_citations`: a sentence without the citations that add nothing to it (ALCE precision, applied).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import combinations

from assistant.agent.arithmetic import find_quantities, same_value
from assistant.agent.citations import names
from assistant.agent.prompts import render
from assistant.agent.records import Acceptance, Evidence, Sentence, Verdict
from assistant.grounding.base import GroundingChecker

DEFAULT_THRESHOLD = 0.5  # a checker-less run's cut for metrics that need one
_MARKER = re.compile(r"\[\d+\]")
_PLAIN = re.compile(r"[^a-z0-9]+")

Subset = tuple[int, ...]


def resolve_threshold(checker: GroundingChecker | None, override: float | None) -> float:
    """The one threshold rule: the setting when given, else the checker's calibrated one."""
    if override is not None:
        return override
    return checker.threshold if checker is not None else DEFAULT_THRESHOLD


def verdict(score: float, threshold: float, weak_margin: float) -> Verdict:
    """supported at or above the threshold, weak within `weak_margin` below it, else unsupported."""
    if score >= threshold:
        return "supported"
    if score >= threshold - weak_margin:
        return "weak"
    return "unsupported"


def evidence_text(ev: Evidence) -> str:
    """What a checker reads for one piece of evidence: the passage (without text addressed to the reader),
    or a computation's code and output."""
    if ev.kind == "computed":
        return render("checker_computed_evidence.md", code=ev.code or "", output=ev.text)
    return ev.citable_text()


def subsets(citations: Sequence[int], *, leave_one_out: bool = False) -> list[Subset]:
    """Each citation alone, then all of them together (when there are several), and with
    `leave_one_out` all of them but one (ALCE precision needs those)."""
    ids = tuple(dict.fromkeys(citations))
    out = [(c,) for c in ids] + ([ids] if len(ids) > 1 else [])
    if leave_one_out and len(ids) > 2:
        out += list(combinations(ids, len(ids) - 1))
    return list(dict.fromkeys(out))


def computed_support(sentence: Sentence, evidence: Mapping[int, Evidence]) -> float:
    """1.0 when the cited computation's operands all appear verbatim in the passages they name."""
    runs = [evidence[n] for n in sentence.citations if n in evidence and evidence[n].kind == "computed"]
    if not runs:
        return 0.0
    for operand in runs[0].operands:
        if operand.evidence_id is None:  # a number the question itself gives
            continue
        passage = evidence.get(operand.evidence_id)
        if (
            passage is None
            or operand.evidence_id not in sentence.citations
            or operand.text not in passage.text
        ):
            return 0.0
    return 1.0


def _pair_scores(
    checker: GroundingChecker,
    sentences: Sequence[Sentence],
    evidence: Mapping[int, Evidence],
    leave_one_out: bool,
) -> list[dict[Subset, float]]:
    """The checker's score of each sentence against each subset of its citations (one batched call)."""
    pairs: dict[tuple[str, str], int] = {}
    plans: list[list[tuple[Subset, tuple[str, str]]]] = []
    for s in sentences:
        keyed = []
        if s.kind == "answer":
            for sub in subsets([c for c in s.citations if c in evidence], leave_one_out=leave_one_out):
                pair = ("\n\n".join(evidence_text(evidence[c]) for c in sub), s.text)
                pairs.setdefault(pair, len(pairs))
                keyed.append((sub, pair))
        plans.append(keyed)
    scores = checker.scores(list(pairs)) if pairs else []
    return [{sub: scores[pairs[pair]] for sub, pair in keyed} for keyed in plans]


def _support(sentence: Sentence, table: Mapping[Subset, float], evidence: Mapping[int, Evidence]) -> float:
    if sentence.kind == "computed":
        return computed_support(sentence, evidence)
    if sentence.kind == "relation":  # code related two supported sides; it stands or falls with them
        return sentence.support if sentence.support is not None else 0.0
    return max(table.values(), default=0.0)


def score_sentences(
    checker: GroundingChecker | None,
    sentences: Sequence[Sentence],
    evidence: Mapping[int, Evidence],
    *,
    threshold: float | None,
    weak_margin: float,
) -> list[Sentence]:
    """The sentences with `support` and `verdict` set; `not_stated` sentences and, without a checker,
    every sentence are returned unchanged."""
    if checker is None:
        return list(sentences)
    cut = resolve_threshold(checker, threshold)
    tables = _pair_scores(checker, sentences, evidence, leave_one_out=False)
    out = []
    for s, table in zip(sentences, tables, strict=True):
        if s.kind == "not_stated":
            out.append(s)
            continue
        score = _support(s, table, evidence)
        out.append(replace(s, support=round(score, 4), verdict=verdict(score, cut, weak_margin)))
    return out


@dataclass(frozen=True, slots=True)
class ScoredSentence:
    """A sentence's citation ids and its support by each citation subset the ALCE metrics use."""

    citations: Subset
    scores: Mapping[Subset, float]


def support_table(
    checker: GroundingChecker, sentences: Sequence[Sentence], evidence: Mapping[int, Evidence]
) -> list[ScoredSentence]:
    """For `ra eval qa`: each claiming sentence's support by every subset of its citations (alone, all,
    all but one). A computed or relation sentence carries its one code-checked support on every subset."""
    tables = _pair_scores(checker, sentences, evidence, leave_one_out=True)
    out = []
    for s, table in zip(sentences, tables, strict=True):
        ids = tuple(c for c in dict.fromkeys(s.citations) if c in evidence)
        if s.kind in ("computed", "relation"):
            fixed = _support(s, {}, evidence)
            table = {sub: fixed for sub in subsets(ids, leave_one_out=True)}
        out.append(ScoredSentence(ids, table))
    return out


def needed_citations(
    checker: GroundingChecker | None,
    sentence: Sentence,
    evidence: Mapping[int, Evidence],
    question: str,
    *,
    threshold: float | None,
) -> Sentence:
    """`sentence` without the citations that add nothing to it, judged as ALCE's citation precision
    judges them: a citation is idle when alone it does not support the sentence, the others without it
    do, and they still anchor every name and number. A small model often cites one passage too many
    (the question's other document); the reader should not be sent there. Without a checker, or with
    one citation, the sentence is returned unchanged."""
    ids = tuple(c for c in dict.fromkeys(sentence.citations) if c in evidence)
    if checker is None or sentence.kind != "answer" or len(ids) < 2:
        return sentence
    cut = resolve_threshold(checker, threshold)
    [table] = _pair_scores(checker, [replace(sentence, citations=ids)], evidence, leave_one_out=True)
    unanchored = set(anchoring(sentence, evidence, question))

    def idle(c: int) -> bool:
        rest = tuple(x for x in ids if x != c)
        return (
            table.get((c,), 0.0) < cut
            and table.get(rest, 0.0) >= cut
            and set(anchoring(replace(sentence, citations=rest), evidence, question)) <= unanchored
        )

    kept = tuple(c for c in ids if not idle(c))
    if len(kept) == len(ids) or not kept:
        return sentence
    if len(ids) - len(kept) > 1:  # each was idle beside the others; all of them together must be too
        [joint] = _pair_scores(checker, [replace(sentence, citations=kept)], evidence, leave_one_out=False)
        if max(joint.values(), default=0.0) < cut:
            return sentence
    return replace(sentence, citations=kept)


# -- acceptance ------------------------------------------------------------------------------------------
def anchoring(sentence: Sentence, evidence: Mapping[int, Evidence], question: str) -> tuple[str, ...]:
    """The numbers and names of `sentence` found neither in what it cites nor in the question (empty:
    anchored). Numbers match by value ("52K" = "52,000"); names ignoring case and punctuation.

    Why code checks this: a small model's wrong answers on the dev drafts were mostly a right-looking
    sentence with one number or name that its passage does not contain, which an embedding-based
    checker scores close to a right one."""
    cited = [evidence[c] for c in sentence.citations if c in evidence]
    source = " ".join(ev.citable_text() for ev in cited) + " " + question
    text = _MARKER.sub(" ", sentence.text)
    known = [q.value for q in find_quantities(source)]
    missing = [
        q.text
        for q in find_quantities(text)
        if q.text[:1].isdigit() and not any(same_value(q.value, v) for v in known)
    ]
    plain_source = _PLAIN.sub("", source.lower())
    missing += [n for n in names(text, hyphenated=False) if _PLAIN.sub("", n.lower()) not in plain_source]
    return tuple(dict.fromkeys(missing))


def self_check_decides(sentence: Sentence, evidence: Mapping[int, Evidence], question: str) -> bool:
    """Whether the model's self-check could change what `accept` decides, so that it is worth a model call
    (~1.5 s on 2 cores, before the reader sees checked words). A computed sentence always needs it; a stated
    one not when it cites nothing or is unanchored (refused either way) or the checker already supports it
    (accepted either way)."""
    if sentence.kind == "computed":
        return True
    if not sentence.citations or anchoring(sentence, evidence, question):
        return False
    return sentence.verdict != "supported"


def accept(
    sentence: Sentence,
    evidence: Mapping[int, Evidence],
    question: str,
    *,
    self_check: float | None,
    self_threshold: float,
) -> Acceptance:
    """Whether a drafted sentence stands, from three signals: it must be anchored, and either the
    grounding checker or the answering model's self-check must find it stated by what it cites. With
    neither signal available (no checker, a backend without log probabilities) anchoring decides alone.

    Why "or": on the dev drafts the checker threw away right answers from PDF text (scores far below its
    threshold) that the model's self-check, reading the same sentences, confirmed; anchoring stops the
    wrong drafts either signal lets through (docs/benchmarks.md section 15)."""
    model_yes = self_check >= self_threshold if self_check is not None else None
    if sentence.kind == "computed":  # code checked the operands; the model checks it computed what is asked
        anchored = computed_support(sentence, evidence) >= 1.0
        return Acceptance(anchored, sentence.support, self_check, anchored and model_yes is not False)
    missing = anchoring(sentence, evidence, question)
    checker_yes = sentence.verdict == "supported" if sentence.verdict is not None else None
    signals = [s for s in (checker_yes, model_yes) if s is not None]
    ok = bool(sentence.citations) and not missing and (any(signals) if signals else True)
    return Acceptance(not missing, sentence.support, self_check, ok, missing)
