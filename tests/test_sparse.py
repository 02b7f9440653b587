"""BM25: the tokenizer, agreement with a plain reference of Okapi BM25 with Lucene's idf, search semantics
and persistence."""

from __future__ import annotations

import json
import math
import os
from itertools import islice
from pathlib import Path

import numpy as np
import pytest

from index.config import BM25Config
from index.errors import IndexIncompatible, IndexNotFound
from index.sparse import BM25Index, Tokenizer

SHARED = Path(os.environ.get("RA_SHARED_DIR", Path(__file__).resolve().parents[2] / "shared"))
SCIFACT = SHARED / "bench" / "scifact"
K1, B = 0.9, 0.4


def _reference(docs: list[list[str]], query: list[str]) -> np.ndarray:
    """Okapi BM25 with Lucene's idf, term by term in plain Python: what the sparse matrix must equal."""
    n, avgdl = len(docs), sum(map(len, docs)) / len(docs)
    out = np.zeros(n)
    for term in query:  # a repeated query term counts each time
        df = sum(term in d for d in docs)
        idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
        for i, d in enumerate(docs):
            tf = d.count(term)
            out[i] += idf * tf * (K1 + 1) / (tf + K1 * (1 - B + B * len(d) / avgdl))
    return out


def _synthetic(seed: int = 0, n_docs: int = 300) -> tuple[list[list[str]], list[list[str]]]:
    """Zipf-distributed words, so some terms sit in most docs (where rank-bm25's idf is <= 0)."""
    rng = np.random.default_rng(seed)
    vocab = np.array([f"w{i}" for i in range(400)])
    docs = [list(vocab[np.minimum(rng.zipf(1.3, rng.integers(0, 60)), 400) - 1]) for _ in range(n_docs)]
    queries = [list(vocab[np.minimum(rng.zipf(1.2, rng.integers(1, 8)), 400) - 1]) for _ in range(50)]
    queries[0] += queries[0][:1]  # a repeated query token counts twice
    queries[1] += ["never-seen"]
    return docs, queries


def _scifact() -> tuple[list[list[str]], list[list[str]]]:
    if not (SCIFACT / "corpus.jsonl").is_file():
        pytest.skip(f"SciFact not found under {SCIFACT} (set RA_SHARED_DIR)")
    tok = Tokenizer()
    with open(SCIFACT / "corpus.jsonl", encoding="utf-8") as f:
        docs = [json.loads(line) for line in islice(f, 2000)]
    with open(SCIFACT / "queries.jsonl", encoding="utf-8") as f:
        queries = [json.loads(line)["text"] for line in islice(f, 50)]
    return tok.tokenize_many([d["title"] + " " + d["text"] for d in docs]), tok.tokenize_many(queries)


@pytest.mark.parametrize("corpus", [_synthetic, _scifact], ids=["synthetic", "scifact"])
def test_matches_the_reference(corpus) -> None:
    docs, queries = corpus()
    ours = BM25Index.build(docs, K1, B)
    for query in queries:
        expected = _reference(docs, query)
        np.testing.assert_allclose(ours.scores(query), expected, rtol=1e-4, atol=1e-5)

        ids, scores = ours.search(query, 10)
        best = np.sort(expected[expected > 0])[::-1][:10]
        # Same ranking up to swaps among (float32-)tied scores: the score at each rank agrees.
        assert len(ids) == len(best)
        np.testing.assert_allclose(expected[ids], best, rtol=1e-5)
        np.testing.assert_allclose(scores, expected[ids], rtol=1e-4)


def test_a_term_in_most_documents_still_matches() -> None:
    # rank-bm25's idf is 0 for a term in 1 of 2 docs and negative for 3 of 4: such a search found nothing.
    ids, scores = BM25Index.build([["zebra", "stripes"], ["horse", "mane"]], K1, B).search(["zebra"], 10)
    assert list(ids) == [0] and scores[0] > 0
    assert list(BM25Index.build([["zebra"]], K1, B).search(["zebra"], 10)[0]) == [0]
    docs = [["common", "a"], ["common", "b"], ["common", "c", "c"], ["d"]]
    ids, scores = BM25Index.build(docs, K1, B).search(["common"], 10)
    assert sorted(ids) == [0, 1, 2] and np.all(scores > 0)
    np.testing.assert_allclose(scores, _reference(docs, ["common"])[ids], rtol=1e-5)
    # and a rarer term still outweighs a common one
    assert list(BM25Index.build(docs, K1, B).search(["common", "d"], 1)[0]) == [3]


def test_search_ties_break_to_lower_id_and_respect_k() -> None:
    # 40 identical "x y" docs scattered among filler, and one doc with x twice (the best) at the end.
    docs = [["x", "y"] if i % 3 == 0 else [f"filler{i}", "y"] for i in range(120)] + [["x", "x"]]
    tied = [i for i in range(120) if i % 3 == 0]
    ids, scores = BM25Index.build(docs, K1, B).search(["x"], 5)
    assert list(ids) == [120, *tied[:4]]
    assert ids.dtype == np.int64 and scores.dtype == np.float32
    assert scores[0] > scores[1] and len(set(scores[1:].tolist())) == 1


def test_empty_and_unknown_queries_return_nothing() -> None:
    index = BM25Index.build([["alpha", "beta"], ["gamma"]], K1, B)
    for query in ([], ["unknown", "tokens"]):
        ids, scores = index.search(query, 5)
        assert len(ids) == 0 and len(scores) == 0
    assert not index.scores([]).any()


def test_bad_arguments_raise() -> None:
    with pytest.raises(ValueError, match="zero documents"):
        BM25Index.build([], K1, B)
    with pytest.raises(ValueError, match="k must be"):
        BM25Index.build([["a"]], K1, B).search(["a"], 0)


def test_tokenizer() -> None:
    tok = Tokenizer()
    assert tok.tokenize("The GPT-4 model, and gpt-3.5!") == ["gpt", "4", "model", "gpt", "3.5"]
    assert tok.tokenize("running") == tok.tokenize("runs") == ["run"]
    assert Tokenizer(stem=False).tokenize("Running runs") == ["running", "runs"]
    assert tok.tokenize_many(["Café au lait", ""]) == [["café", "au", "lait"], []]


def test_stemming_lets_running_match_runs() -> None:
    texts = ["She runs every morning.", "A quiet library.", "Green tea.", "Old maps."]
    stemmed = BM25Index.from_texts(texts, BM25Config(stem=True))
    assert list(stemmed.search_text("running", 5)[0]) == [0]
    plain = BM25Index.from_texts(texts, BM25Config(stem=False))
    assert len(plain.search_text("running", 5)[0]) == 0


def test_save_load_round_trip(tmp_path: Path) -> None:
    docs, queries = _synthetic(seed=1)
    index = BM25Index.build(docs, K1, B)
    index.save(tmp_path / "bm25")
    loaded = BM25Index.load(tmp_path / "bm25")
    assert (len(loaded), loaded.num_docs, loaded.k1, loaded.b) == (len(docs), len(docs), K1, B)
    assert loaded.vocab == index.vocab
    for query in queries[:10]:
        np.testing.assert_array_equal(loaded.scores(query), index.scores(query))

    texts = BM25Index.from_texts(["runs fast", "slow walk", "blue sky"], BM25Config(stem=True))
    texts.save(tmp_path / "texts")
    assert list(BM25Index.load(tmp_path / "texts").search_text("running", 1)[0]) == [0]


def test_load_errors_say_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(IndexNotFound, match="build the index"):
        BM25Index.load(tmp_path)
    BM25Index.build([["a"]], K1, B).save(tmp_path)
    params = tmp_path / "bm25_params.json"
    params.write_text(json.dumps({**json.loads(params.read_text()), "format_version": 999}))
    with pytest.raises(IndexIncompatible, match="rebuild"):
        BM25Index.load(tmp_path)
