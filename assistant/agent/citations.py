"""Turn the model's cited sentences into checked citations: source, page, character span and a quote.

The quote is the passage sentence that best matches the citing answer sentences (word overlap), always an
exact substring of the passage, so `document_text[start:end] == quote` holds for every passage citation.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import replace

from assistant.agent.records import Citation, Evidence, Sentence
from assistant.grounding.directives import split_directives
from index.pdf_boxes import quote_boxes
from index.text import STOPWORDS as _STOP
from index.text import sentence_spans

MAX_QUOTE = 240
_WORD = re.compile(r"\w+")
_NAME = re.compile(r"[\w][\w'’.-]*[\w]|\w")
_NOT_NAMES = frozenset(
    [
        "according",
        "answer",
        "based",
        "besides",
        "only",
        "part",
        "using",
        "documents",
        "document",
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
        "and",
        "or",
        "if",
        "it",
        "its",
        "this",
        "that",
        "these",
        "those",
        "they",
        "their",
        "there",
        "both",
        "each",
        "using",
        "given",
        "following",
        "unlike",
        "like",
        "per",
        "also",
        "not",
        "no",
        "yes",
        "so",
        "then",
        "roughly",
        "about",
        "approximately",
        "around",
        "over",
        "under",
        "between",
        "with",
        "without",
        "as",
        "while",
        "whereas",
        "however",
    ]
)


def _words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP}


def content_words(text: str) -> list[str]:
    """The words of `text` that carry meaning (no stop words), in order, each once, case kept."""
    words = [w for w in re.findall(r"[\w][\w'-]*", text) if w.lower() not in _STOP]
    return list(dict.fromkeys(words))


def names(text: str, *, hyphenated: bool = True) -> list[str]:
    """Names and terms of a text: quoted phrases, capitalised or mixed-case words, acronyms, words with
    digits and (with `hyphenated`) hyphenated terms such as "prefix-tuning"."""
    quoted = re.findall(r"[\"“](.+?)[\"”]", text)
    words = [
        w.removesuffix("'s").removesuffix("’s").rstrip(".")
        for w in _NAME.findall(text)
        if (
            any(c.isupper() for c in w[1:])
            or w[:1].isupper()
            or (hyphenated and "-" in w)
            or _has_digit_and_letter(w)
        )
        and w.lower().rstrip(".") not in _NOT_NAMES
    ]
    return list(dict.fromkeys([*quoted, *words]))


def _has_digit_and_letter(word: str) -> bool:
    return any(c.isdigit() for c in word) and any(c.isalpha() for c in word)


def passage_sentences(text: str) -> tuple[tuple[tuple[int, int], ...], tuple[tuple[int, int], ...]]:
    """(statements, directives): a passage's sentences as (start, end) offsets, split once when the passage
    enters the ledger, with those addressed to the reader or an AI set apart (grounding/directives.py)."""
    return split_directives(text, sentence_spans(text, 0, len(text), lines=True))


def best_quote(passage: Evidence, claim: str, max_chars: int = MAX_QUOTE) -> tuple[int, str]:
    """(offset, quote): the passage sentence sharing most words with `claim`, at most `max_chars` long."""
    target = _words(claim)
    best: tuple[float, int, str] = (-1.0, 0, "")
    text = passage.text
    spans = passage.sentences if passage.sentences or passage.directives else passage_sentences(text)[0]
    for lo, hi in spans:
        offset, segment = _strip_span(lo, text[lo:hi])
        if not segment:
            continue
        offset, segment = _best_window(offset, segment, target, max_chars)
        words = _words(segment)
        # Most shared words wins; among equals, the shorter sentence (the more specific quote).
        score = len(words & target) - 0.01 * len(words)
        if score > best[0]:
            best = (score, offset, segment)
    return best[1], best[2]


def key_sentences(evidence: Iterable[Evidence], query: str, n: int) -> list[tuple[int, str]]:
    """About `n` sentences of all passages that best match `query`, each with the sentence after it, the
    best match first, with their evidence ids.

    Why: a small model answers better from a few focused lines than from whole passages. Words are
    weighted by rarity among these sentences (a rare name beats "model"), and the following sentence comes
    along because answers often continue a matching line ("They find that the latter ..."). On the dev
    questions this keeps 48 of 55 gold quotes in a third of the characters of the whole passages (50 of 55).
    Best first, because the 1.5B model, shown the right line among eight in passage order, wrote from an
    earlier plausible one in 15 of the first 19 dev_v2 misses (docs/benchmarks.md section 15).
    """
    target = _words(query)
    segments = [(ev.id, seg[: MAX_QUOTE * 2]) for ev in evidence for seg in ev.sentence_texts()]
    words = [_words(seg) for _, seg in segments]
    df: dict[str, int] = {}
    for ws in words:
        for w in ws & target:
            df[w] = df.get(w, 0) + 1
    weight = {w: math.log(1 + len(segments) / d) for w, d in df.items()}
    ranked = sorted(range(len(segments)), key=lambda i: -sum(weight.get(w, 0.0) for w in words[i] & target))
    groups: list[list[int]] = []  # a matching sentence and the one after it, best match first
    taken: set[int] = set()
    for i in ranked:
        if len(taken) >= n:
            break
        same_passage_next = i + 1 < len(segments) and segments[i + 1][0] == segments[i][0]
        group = [j for j in (i, i + 1) if j not in taken and (j == i or same_passage_next)]
        if not group:
            continue
        taken.update(group)
        groups.append(group)
    return [segments[i] for i in _merged(groups)[:n]]


def _merged(groups: list[list[int]]) -> list[int]:
    """The groups in rank order, a group that continues another (its first sentence follows the other's
    last) joined to it so a passage's lines stay in order where they touch."""
    out: list[list[int]] = []
    for group in groups:
        host = next((g for g in out if g[-1] + 1 == group[0]), None)
        if host is not None:
            host += group
        else:
            out.append(list(group))
    return [i for g in out for i in g]


def _strip_span(offset: int, text: str) -> tuple[int, str]:
    stripped = text.lstrip()
    return offset + len(text) - len(stripped), stripped.rstrip()


def _best_window(offset: int, segment: str, target: set[str], max_chars: int) -> tuple[int, str]:
    """A long sentence is cut to the `max_chars` window (starting at a word) that covers most of `target`."""
    if len(segment) <= max_chars:
        return offset, segment
    best = (-1, 0)
    starts = [w for w in _WORD.finditer(segment) if w.group().lower() in target]  # begin at a claim word
    for w in starts:
        window = segment[w.start() : w.start() + max_chars]
        hits = len(_words(window) & target)
        if hits > best[0]:
            best = (hits, w.start())
    start, end = best[1], best[1] + max_chars
    window = segment[start:end]
    if end < len(segment) and " " in window:  # do not end mid-word
        window = window[: window.rfind(" ")]
    return _strip_span(offset + start, window)


def resolve_citations(
    sentences: Iterable[Sentence], evidence: Mapping[int, Evidence]
) -> tuple[list[Sentence], list[Citation], int]:
    """Drop (and count) citations of evidence the agent never saw; resolve the rest, one per evidence id."""
    kept: list[Sentence] = []
    claims: dict[int, list[str]] = {}
    invalid = 0
    for s in sentences:
        ids: list[int] = []
        for n in s.citations:
            if n not in evidence:
                invalid += 1
            elif n not in ids:
                ids.append(n)
                claims.setdefault(n, []).append(s.text)
        kept.append(replace(s, citations=tuple(ids)))
    citations = [_citation(evidence[n], " ".join(texts)) for n, texts in sorted(claims.items())]
    return kept, citations, invalid


def _citation(ev: Evidence, claim: str) -> Citation:
    if ev.kind == "computed":
        quote = ev.text.strip().splitlines()[0][:MAX_QUOTE] if ev.text.strip() else ""
        return Citation(ev.id, quote, None, None, ev)
    return _quoting(ev, *best_quote(ev, claim))


def whole_passage(ev: Evidence) -> Citation:
    """The passage quoted whole: how a search hit is shown (the app's search page) with the same card,
    page view and boxes as an answer's citation."""
    return _quoting(ev, 0, ev.text)


def _quoting(ev: Evidence, offset: int, quote: str) -> Citation:
    """The citation of `quote`, found at `offset` in the passage: document span, lines, and its boxes on
    the PDF page."""
    start = (ev.start or 0) + offset
    boxes = tuple(quote_boxes(ev.source, ev.page, quote)) if ev.page else ()
    return Citation(ev.id, quote, start, start + len(quote), ev, _quote_lines(ev, offset, len(quote)), boxes)


def _quote_lines(ev: Evidence, offset: int, length: int) -> tuple[int, int] | None:
    """The quote's first and last document line, counted from the passage's first line."""
    if ev.line_start is None:
        return None
    first = ev.line_start + ev.text.count("\n", 0, offset)
    return first, first + ev.text.count("\n", offset, offset + max(length - 1, 0))


def render(sentences: Iterable[Sentence]) -> str:
    """The answer as shown: each sentence followed by its markers, e.g. `GELU is xΦ(x). [2][5]`."""
    return " ".join(render_sentence(s) for s in sentences if s.text.strip())


def render_sentence(sentence: Sentence) -> str:
    marks = "".join(f"[{n}]" for n in sentence.citations)
    text = sentence.text.strip()
    return f"{text} {marks}" if marks else text
