"""Evidence of any length cut to what a checker can read: sentences, ranked by overlap with the claim.

An agent citation is one ~800-character passage, a WiCE evidence page runs to 100,000 characters; a
checker reads at most a few hundred tokens. Ranking sentences by how many of the claim's content words
they share and keeping the best (in document order) keeps what can support the claim and drops
navigation, boilerplate and unrelated paragraphs, at the cost of one regex pass. Short evidence is
kept whole, so citations are scored on exactly what was cited.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from index.chunking import sentence_spans

MAX_SENTENCE_WORDS = 48  # longer "sentences" (tables, run-on lists) are cut into pieces of this many words

_WORD = re.compile(r"\w+")
_STOPWORDS = frozenset(
    {
        "a", "an", "and", "are", "as", "at", "be", "been", "but", "by", "can", "could", "did", "do", "does",
        "for", "from", "had", "has", "have", "he", "her", "his", "i", "in", "into", "is", "it", "its", "may",
        "more", "most", "of", "on", "or", "our", "she", "so", "than", "that", "the", "their", "them",
        "there", "these", "they", "this", "those", "to", "was", "we", "were", "what", "when", "where", "which",
        "who", "will", "with", "would", "also", "after", "before", "over", "under", "about",
    }
)  # fmt: skip


def term(word: str) -> str:
    """A crude stem (the first five letters, lower case): "elected"/"election", "players"/"player" meet."""
    return word.lower()[:5]


def is_content(word: str) -> bool:
    """Words that carry a claim's facts: not stop words, not punctuation."""
    return word.lower() not in _STOPWORDS and any(c.isalnum() for c in word)


def content_terms(text: str) -> set[str]:
    return {term(w) for w in _WORD.findall(text) if is_content(w)}


def split_sentences(text: str, max_words: int = MAX_SENTENCE_WORDS) -> list[str]:
    """Sentences (line breaks also end them), each at most `max_words` words."""
    pieces: list[str] = []
    for start, end in sentence_spans(text, 0, len(text), lines=True):
        words = text[start:end].split()
        pieces.extend(" ".join(words[i : i + max_words]) for i in range(0, len(words), max_words))
    return pieces


def rank_sentences(sentences: Sequence[str], claim: str) -> list[int]:
    """Indices of `sentences`, most claim words shared first; earlier sentences win ties."""
    wanted = content_terms(claim)
    overlap = [len(wanted & content_terms(s)) for s in sentences]
    return sorted(range(len(sentences)), key=lambda i: (-overlap[i], i))


def select_sentences(sentences: Sequence[str], claim: str, limit: int) -> list[int]:
    """The `limit` sentences that share the most words with the claim, in document order."""
    return sorted(rank_sentences(sentences, claim)[:limit])


def fit_evidence(evidence: str, claim: str, max_chars: int) -> str:
    """`evidence` itself when it fits in `max_chars`, else its best sentences (document order) that fit."""
    if len(evidence) <= max_chars:
        return evidence
    sentences = split_sentences(evidence)
    kept, used = [], 0
    for i in rank_sentences(sentences, claim):
        if used + len(sentences[i]) + 1 <= max_chars:
            kept.append(i)
            used += len(sentences[i]) + 1
    return "\n".join(sentences[i] for i in sorted(kept))
