"""Evidence of any length cut to what a checker can read: sentences, ranked by overlap with the claim.

An agent citation is one ~800-character passage, a WiCE evidence page runs to 100,000 characters; a
checker reads at most a few hundred tokens. Ranking sentences by how many of the claim's content words
they share and keeping the best (in document order) keeps what can support the claim and drops
navigation, boilerplate and unrelated paragraphs, at the cost of one regex pass. Short evidence is
kept whole, so citations are scored on exactly what was cited.
"""

from __future__ import annotations

from collections.abc import Sequence

from index.text import rank_by_overlap, sentence_spans

MAX_SENTENCE_WORDS = 48  # longer "sentences" (tables, run-on lists) are cut into pieces of this many words


def split_sentences(text: str, max_words: int = MAX_SENTENCE_WORDS) -> list[str]:
    """Sentences (line breaks also end them), each at most `max_words` words."""
    pieces: list[str] = []
    for start, end in sentence_spans(text, 0, len(text), lines=True):
        words = text[start:end].split()
        pieces.extend(" ".join(words[i : i + max_words]) for i in range(0, len(words), max_words))
    return pieces


def select_sentences(sentences: Sequence[str], claim: str, limit: int) -> list[int]:
    """The `limit` sentences that share the most words with the claim, in document order."""
    return sorted(rank_by_overlap(sentences, claim)[:limit])


def fit_evidence(evidence: str, claim: str, max_chars: int) -> str:
    """`evidence` itself when it fits in `max_chars`, else its best sentences (document order) that fit."""
    if len(evidence) <= max_chars:
        return evidence
    sentences = split_sentences(evidence)
    kept, used = [], 0
    for i in rank_by_overlap(sentences, claim):
        if used + len(sentences[i]) + 1 <= max_chars:
            kept.append(i)
            used += len(sentences[i]) + 1
    return "\n".join(sentences[i] for i in sorted(kept))
