"""Answer metrics of `ra eval qa`: pure functions over one answered question, and their aggregation.

Every value is a rate in [0, 1] (a bool per question) or None, which means "not defined for this question"
and is left out of every mean. The definitions:

* keyword_hit: every `answer_keywords` entry occurs in the answer text (citation markers removed) after
  `normalise`: NFKC, case-folded, typographic quotes and dashes made ASCII, whitespace collapsed, thousands
  separators dropped ("1,645" -> "1645") and a k suffix expanded ("52K" -> "52000"), so "52K", "52k" and
  "52,000" all match the keyword "52" or "52k". No other unit is converted ("2.8 million" is not 2800000),
  and matching is by substring (keyword "5" also matches "15"): keywords are written to be specific.
  None when the item has no keywords (unanswerable items); False when the agent abstained.
* abstention_correct: the agent abstained exactly when the item is unanswerable.
* Support of a sentence: the grounding checker scores (evidence, sentence) pairs, where evidence is the
  text of some of the passages the sentence cites, joined. A subset "entails" the sentence when its score
  reaches the checker's threshold.
* faithfulness (RAGAS's "share of claims supported", but judged per citation rather than against all the
  retrieved context): the share of answer sentences whose verdict is "supported". The verdict is the one
  the agent acted on, from the one support scorer (`assistant.grounding.support.score_sentences`: the best
  score of any single cited passage or of all of them together; a computed sentence when its operands are
  verbatim in the passages it cites). A sentence without citations is an unsupported claim; the "the
  documents do not answer this part" sentences of a partial answer claim nothing and are left out.
* citation_recall (ALCE): the share of sentences entailed by the concatenation of their citations; a
  sentence without citations counts 0.
* citation_precision (ALCE): the share of citations that are relevant. A citation is irrelevant when its
  sentence is not entailed by its citations at all, or when it alone does not entail the sentence while the
  sentence's other citations still do without it. Sentences with one citation: relevant iff entailed.
  Citations the agent dropped as invalid (numbers of passages it never saw) are not in this count; they
  are the separate `invalid_citations` number. An answer with sentences but no citations scores 0 (ALCE).
* faithfulness, citation_recall and citation_precision are None for an abstention or an answer without
  sentences (nothing was claimed), and None when no checker ran.
* evidence_recall: the share of the item's gold evidence quotes found (normalised: case, quotes, dashes,
  whitespace) inside a passage the agent saw during its run; retrieval_recall: the same inside the top-k
  chunks of a plain search for the question. None when the item has no gold quotes.

Aggregation: means of each metric over the questions where it is defined, per question kind as well, plus
abstention accuracy on unanswerable items, the false-abstention rate on answerable ones, and latency
percentiles (p50/p95 of time to first answer token and of total time).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from assistant.grounding.support import ScoredSentence

# Names of the per-question metrics, in the order reports show them.
METRICS = (
    "keyword_hit",
    "abstention_correct",
    "judge_correct",
    "faithfulness",
    "citation_recall",
    "citation_precision",
    "invalid_citations",
    "citations_resolve",
    "evidence_recall",
    "retrieval_recall",
)

_MARKER = re.compile(r"\[\d+\]")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}\b)")
_K_SUFFIX = re.compile(r"\b(\d+(?:\.\d+)?)k\b")
_ASCII = str.maketrans({"‘": "'", "’": "'", "“": '"', "”": '"', "–": "-", "—": "-", "‐": "-", "−": "-"})


def normalise(text: str) -> str:
    """Case, Unicode forms, quotes, dashes and whitespace made uniform (for quote matching)."""
    text = unicodedata.normalize("NFKC", text).casefold().translate(_ASCII)
    return " ".join(text.split())


def normalise_numbers(text: str) -> str:
    """`normalise` plus "1,645" -> "1645" and "52k" -> "52000" (for keyword matching)."""
    text = _THOUSANDS.sub("", normalise(text))
    return _K_SUFFIX.sub(lambda m: _format_number(float(m.group(1)) * 1000), text)


def _format_number(value: float) -> str:
    return str(int(value)) if value == int(value) else f"{value:g}"


def keyword_hit(answer: str, keywords: Sequence[str]) -> bool | None:
    """All keywords in the answer (see the module doc for the normalisation); None without keywords.
    Pass "" for an abstention: it answers nothing."""
    if not keywords:
        return None
    text = normalise_numbers(_MARKER.sub(" ", answer))
    return all(normalise_numbers(k) in text for k in keywords)


def abstention_correct(abstained: bool, unanswerable: bool) -> bool:
    return abstained == unanswerable


# -- support of cited sentences (scored by assistant.grounding.support.support_table) ---------------------
def faithfulness(verdicts: Sequence[str | None]) -> float | None:
    """Share of claiming sentences whose verdict is supported (None when there are none)."""
    if not verdicts:
        return None
    return sum(v == "supported" for v in verdicts) / len(verdicts)


def citation_recall(sentences: Sequence[ScoredSentence], threshold: float) -> float | None:
    if not sentences:
        return None
    return sum(_entailed(s, threshold) for s in sentences) / len(sentences)


def citation_precision(sentences: Sequence[ScoredSentence], threshold: float) -> float | None:
    if not sentences:
        return None
    relevant = total = 0
    for s in sentences:
        total += len(s.citations)
        if not _entailed(s, threshold):
            continue
        for c in s.citations:
            rest = tuple(x for x in s.citations if x != c)
            alone = s.scores[(c,)] >= threshold
            relevant += alone or not rest or s.scores[rest] < threshold
    return relevant / total if total else 0.0


def _entailed(s: ScoredSentence, threshold: float) -> bool:
    return bool(s.citations) and s.scores[s.citations] >= threshold


# -- retrieval ------------------------------------------------------------------------------------------
def evidence_recall(quotes: Sequence[str], passages: Iterable[str]) -> float | None:
    """Share of gold quotes found (normalised) inside one of `passages`; None without quotes."""
    if not quotes:
        return None
    texts = [normalise(p) for p in passages]
    found = [any(normalise(q) in t for t in texts) for q in quotes]
    return sum(found) / len(quotes)


def citations_resolve(
    citations: Sequence[Mapping[str, Any]],
    document_text: Callable[[str], str | None],
    chunk_span: Callable[[str], tuple[int, int] | None],
) -> bool | None:
    """Every citation's quote is exactly the document text at its span, inside its chunk (computed
    citations: the quote is in the printed output). None for an answer without citations."""
    if not citations:
        return None
    for c in citations:
        if c["kind"] == "computed":
            if c["quote"] not in (c.get("output") or ""):
                return False
            continue
        doc = document_text(c["source"])
        start, end = c["start"], c["end"]
        if doc is None or start is None or end is None or not c["quote"] or doc[start:end] != c["quote"]:
            return False
        span = chunk_span(c["chunk_id"]) if c.get("chunk_id") else None
        if span is not None and not (span[0] <= start and end <= span[1]):
            return False
    return True


def verbatim_key(text: str) -> str:
    """`normalise`d text with everything but letters and digits dropped: what `quote_in_document`
    compares, so two PDF parsers' line breaks, hyphenation and spacing do not count as a difference (a
    paraphrase or a summary still does). Compute it once per document."""
    return "".join(ch for ch in normalise(text) if ch.isalnum())


def quote_in_document(quote: str, document_key: str) -> bool:
    """The quote appears verbatim in the document whose `verbatim_key` is `document_key`."""
    wanted = verbatim_key(quote)
    return bool(wanted) and wanted in document_key


# -- aggregation ----------------------------------------------------------------------------------------
def mean(values: Iterable[float | bool | None]) -> float | None:
    """Mean of the defined values (None left out); None when none is defined."""
    kept = [float(v) for v in values if v is not None]
    return round(sum(kept) / len(kept), 4) if kept else None


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile with linear interpolation between order statistics (numpy's default)."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return round(ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo), 3)


def metric_means(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Per-metric means over rows (each row has a `metrics` dict), plus the abstention split."""
    out: dict[str, Any] = {"n": len(rows)}
    for name in METRICS:
        out[name] = mean(r["metrics"].get(name) for r in rows)
    unanswerable = [r for r in rows if r["unanswerable"]]
    answerable = [r for r in rows if not r["unanswerable"]]
    out["abstention_accuracy"] = mean(r["abstained"] for r in unanswerable)
    out["false_abstention_rate"] = mean(r["abstained"] for r in answerable)
    return out


def latency(rows: Sequence[Mapping[str, Any]]) -> dict[str, float | None]:
    first = [r["timings"]["first_token_s"] for r in rows if r["timings"].get("first_token_s") is not None]
    total = [r["timings"]["total_s"] for r in rows if r["timings"].get("total_s") is not None]
    return {
        "first_token_p50": percentile(first, 50),
        "first_token_p95": percentile(first, 95),
        "total_p50": percentile(total, 50),
        "total_p95": percentile(total, 95),
    }


def summarise(rows: Sequence[Mapping[str, Any]], config: Mapping[str, Any]) -> dict[str, Any]:
    """The summary.json object: config, n, overall means, means per kind, latency percentiles."""
    kinds = sorted({r["kind"] for r in rows})
    return {
        "config": dict(config),
        "n": len(rows),
        "metrics": metric_means(rows),
        "by_kind": {k: metric_means([r for r in rows if r["kind"] == k]) for k in kinds},
        "latency": latency(rows),
    }
