"""The one support scorer: how far an answer sentence is supported by the evidence it cites.

The agent's per-part acceptance, the UI's badges and `ra eval qa`'s faithfulness all take a sentence's
support from `score_sentences`, so they can never disagree. A sentence's support is the best score of
one cited passage alone or of all its citations together (a fact may need two passages). A computed
sentence is supported when code can check it: every operand's number is written, verbatim, in the passage
it cites, and the computation's evidence is cited.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from assistant.agent.prompts import render
from assistant.agent.records import Evidence, Sentence
from assistant.grounding.base import GroundingChecker, verdict


def evidence_text(ev: Evidence) -> str:
    """What a checker reads for one piece of evidence: the passage, or a computation's code and output."""
    if ev.kind == "computed":
        return render("checker_computed_evidence.md", code=ev.code or "", output=ev.text)
    return ev.text


def subsets(citations: Sequence[int]) -> list[tuple[int, ...]]:
    """Each citation alone, then all of them together (when there are several)."""
    ids = tuple(dict.fromkeys(citations))
    return [(c,) for c in ids] + ([ids] if len(ids) > 1 else [])


def computed_support(sentence: Sentence, evidence: Mapping[int, Evidence]) -> float:
    """1.0 when the cited computation's operands all appear verbatim in the passages they name."""
    runs = [evidence[n] for n in sentence.citations if n in evidence and evidence[n].kind == "computed"]
    if not runs:
        return 0.0
    for operand in runs[0].operands:
        passage = evidence.get(operand.evidence_id)
        if (
            passage is None
            or operand.evidence_id not in sentence.citations
            or operand.text not in passage.text
        ):
            return 0.0
    return 1.0


def score_sentences(
    checker: GroundingChecker | None,
    sentences: Sequence[Sentence],
    evidence: Mapping[int, Evidence],
    *,
    threshold: float | None,
    weak_margin: float,
) -> list[Sentence]:
    """The sentences with `support` and `verdict` set (one batched checker call); `not_stated` sentences
    and, without a checker, every sentence are returned unchanged."""
    if checker is None:
        return list(sentences)
    cut = checker.threshold if threshold is None else threshold
    pairs: dict[tuple[str, str], int] = {}
    plans: list[list[tuple[str, str]]] = []
    for s in sentences:
        keyed = []
        if s.kind == "answer":
            for sub in subsets([c for c in s.citations if c in evidence]):
                pair = ("\n\n".join(evidence_text(evidence[c]) for c in sub), s.text)
                pairs.setdefault(pair, len(pairs))
                keyed.append(pair)
        plans.append(keyed)
    scores = checker.scores(list(pairs)) if pairs else []
    out = []
    for s, keyed in zip(sentences, plans, strict=True):
        if s.kind == "not_stated":
            out.append(s)
            continue
        score = (
            computed_support(s, evidence)
            if s.kind == "computed"
            else max((scores[pairs[p]] for p in keyed), default=0.0)
        )
        out.append(replace(s, support=round(score, 4), verdict=verdict(score, cut, weak_margin)))
    return out
