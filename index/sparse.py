"""Sparse retrieval: a tokenizer and a BM25 index scored from a precomputed sparse matrix.

BM25 is the lexical half of hybrid search: it catches exact names, numbers and rare terms that an
embedding blurs. Scores are Okapi BM25 with Lucene's idf, `ln(1 + (N - n + .5) / (n + .5))` (as Anserini,
bm25s and Milvus): always positive, so a term found in half the documents or more still counts. rank-bm25's
`ln((N - n + .5) / (n + .5))` is zero or negative there: with two papers, a word in one of them matched
nothing. Every (term, doc) weight is computed once at build time, bm25s-style, so a query is the sum of a
few matrix rows instead of a pass over every document in Python.
"""

from __future__ import annotations

import json
import re
import zipfile
from array import array
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Self

import numpy as np
import scipy.sparse as sp
import Stemmer

from index.config import BM25Config
from index.errors import IndexDamaged, IndexIncompatible, IndexNotFound
from index.text import STOPWORDS

# Decimal numbers stay whole ("3.5", "0.05"); everything else splits on non-alphanumerics, so
# "gpt-4" -> "gpt", "4" and "il_6" -> "il", "6", which lets "GPT 4" in a query match either spelling.
_TOKEN_RE = re.compile(r"\d+(?:\.\d+)+|[^\W_]+")

FORMAT_VERSION = 1
_VOCAB_FILE = "bm25_vocab.json"
_MATRIX_FILE = "bm25_matrix.npz"
_PARAMS_FILE = "bm25_params.json"


class Tokenizer:
    """Lowercase, split into word tokens, drop stopwords and (optionally) Snowball-stem.

    Documents and queries must go through the same tokenizer, which is why the index records `stem`.
    """

    def __init__(self, stem: bool = True) -> None:
        self.stem = stem
        self._stemmer = Stemmer.Stemmer("english") if stem else None
        # Zipf's law: a handful of distinct words make up most tokens, so caching stems pays off.
        self._cache: dict[str, str] = {}

    def tokenize(self, text: str) -> list[str]:
        words = [w for w in _TOKEN_RE.findall(text.lower()) if w not in STOPWORDS]
        if self._stemmer is None:
            return words
        cache = self._cache
        out = []
        for w in words:
            stem = cache.get(w)
            if stem is None:
                stem = cache[w] = self._stemmer.stemWord(w)
            out.append(stem)
        return out

    def tokenize_many(self, texts: Sequence[str]) -> list[list[str]]:
        return [self.tokenize(t) for t in texts]


class BM25Index:
    """Okapi BM25 (Lucene idf) over a terms x docs CSR matrix of precomputed weights."""

    def __init__(
        self, vocab: dict[str, int], weights: sp.csr_matrix, k1: float, b: float, stem: bool | None = None
    ) -> None:
        self.vocab = vocab
        self.weights = weights
        self.k1 = k1
        self.b = b
        # How the documents were tokenized when built from texts; None when built from tokens.
        self.stem = stem

    @property
    def num_docs(self) -> int:
        return self.weights.shape[1]

    def __len__(self) -> int:
        return self.num_docs

    @classmethod
    def build(cls, token_lists: Sequence[Sequence[str]], k1: float, b: float) -> Self:
        if not token_lists:
            raise ValueError("cannot build a BM25 index from zero documents; pass at least one document")
        vocab: dict[str, int] = {}
        term_ids = array("i")  # flat token ids, 4 bytes each: a Python list would not fit 1M chunks
        lengths = np.empty(len(token_lists), dtype=np.int64)
        for d, tokens in enumerate(token_lists):
            term_ids.extend(vocab.setdefault(t, len(vocab)) for t in tokens)
            lengths[d] = len(tokens)
        n_docs, n_terms = len(token_lists), len(vocab)

        # One column per document holding its raw tokens; summing duplicates turns them into tf.
        indptr = np.concatenate(([0], np.cumsum(lengths)))
        data = np.ones(len(term_ids), dtype=np.float64)
        tf = sp.csc_matrix((data, np.frombuffer(term_ids, dtype=np.int32), indptr), shape=(n_terms, n_docs))
        tf.sum_duplicates()

        idf = lucene_idf(np.bincount(tf.indices, minlength=n_terms), n_docs)
        avgdl = lengths.sum() / n_docs
        doc_of_entry = np.repeat(np.arange(n_docs), np.diff(tf.indptr))
        norm = k1 * (1 - b + b * lengths[doc_of_entry] / avgdl) if avgdl > 0 else k1
        tf.data = idf[tf.indices] * tf.data * (k1 + 1) / (tf.data + norm)

        weights = tf.tocsr().astype(np.float32)
        weights.eliminate_zeros()
        return cls(vocab, weights, k1, b)

    @classmethod
    def from_texts(cls, texts: Sequence[str], cfg: BM25Config) -> Self:
        index = cls.build(Tokenizer(cfg.stem).tokenize_many(texts), cfg.k1, cfg.b)
        index.stem = cfg.stem
        return index

    def scores(self, query_tokens: Sequence[str]) -> np.ndarray:
        """Score of every document; a token repeated in the query counts each time (as rank-bm25)."""
        out = np.zeros(self.num_docs, dtype=np.float32)
        w = self.weights
        for token, count in Counter(query_tokens).items():
            row = self.vocab.get(token)
            if row is None:
                continue
            lo, hi = w.indptr[row], w.indptr[row + 1]
            out[w.indices[lo:hi]] += count * w.data[lo:hi]  # indices within a row are unique
        return out

    def search(self, query_tokens: Sequence[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k doc ids (int64) and scores (float32) with score > 0, best first, ties to the lower id."""
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        scores = self.scores(query_tokens)
        ids = np.flatnonzero(scores > 0)
        if len(ids) > k:
            # Keep everything tied with the k-th best so the tie-break below sees all of them.
            kth = np.partition(scores[ids], len(ids) - k)[len(ids) - k]
            ids = ids[scores[ids] >= kth]
        order = np.lexsort((ids, -scores[ids]))[:k]
        top = ids[order].astype(np.int64)
        return top, scores[top]

    def search_text(self, query: str, k: int) -> tuple[np.ndarray, np.ndarray]:
        """`search` after tokenizing `query` the way the documents were (index built by `from_texts`)."""
        if self.stem is None:
            raise ValueError("this BM25 index was built from tokens; tokenize the query and call search()")
        return self.search(Tokenizer(self.stem).tokenize(query), k)

    def save(self, directory: Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        terms = sorted(self.vocab, key=self.vocab.__getitem__)  # list position = row id
        (directory / _VOCAB_FILE).write_text(json.dumps(terms, ensure_ascii=False), encoding="utf-8")
        sp.save_npz(directory / _MATRIX_FILE, self.weights, compressed=False)
        params = {"format_version": FORMAT_VERSION, "k1": self.k1, "b": self.b, "stem": self.stem}
        (directory / _PARAMS_FILE).write_text(json.dumps(params), encoding="utf-8")

    @classmethod
    def load(cls, directory: Path) -> Self:
        directory = Path(directory)
        missing = [f for f in (_VOCAB_FILE, _MATRIX_FILE, _PARAMS_FILE) if not (directory / f).is_file()]
        if missing:
            raise IndexNotFound(
                f"no BM25 index in {directory} (missing {', '.join(missing)}); build the index"
            )
        try:
            params = json.loads((directory / _PARAMS_FILE).read_text(encoding="utf-8"))
            if params.get("format_version") != FORMAT_VERSION:
                raise IndexIncompatible(
                    f"BM25 index in {directory} has format {params.get('format_version')}, "
                    f"this version reads {FORMAT_VERSION}; rebuild the index"
                )
            terms = json.loads((directory / _VOCAB_FILE).read_text(encoding="utf-8"))
            weights = sp.load_npz(directory / _MATRIX_FILE).tocsr()
            vocab = dict(zip(terms, range(len(terms)), strict=True))
            return cls(vocab, weights, params["k1"], params["b"], params["stem"])
        except (
            ValueError,
            KeyError,
            TypeError,
            AttributeError,
            EOFError,
            OSError,
            zipfile.BadZipFile,
        ) as exc:
            # flipped bytes: bad UTF-8 or JSON, a broken zip, "pickled data" (ValueError is their base)
            from index.store import rebuild_hint

            raise IndexDamaged(
                f"BM25 index in {directory} is damaged ({type(exc).__name__}): run `ra index verify`, or "
                f"{rebuild_hint(directory.parent.parent)}"
            ) from None


def lucene_idf(doc_freq: np.ndarray, n_docs: int) -> np.ndarray:
    """ln(1 + (N - n + .5) / (n + .5)): > 0 for every n <= N, so no term is ever ignored."""
    return np.log1p((n_docs - doc_freq + 0.5) / (doc_freq + 0.5))
