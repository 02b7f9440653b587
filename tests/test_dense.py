"""DenseIndex: exact search is exact, approximate search keeps recall, files round-trip."""

from __future__ import annotations

import numpy as np
import pytest

from index.config import DenseConfig
from index.dense import DenseIndex
from index.errors import IndexIncompatible


def _clustered(n: int, dim: int = 32, centres: int = 20, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((centres, dim))
    x = c[rng.integers(0, centres, n)] + 0.3 * rng.standard_normal((n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _brute_force(x: np.ndarray, q: np.ndarray, k: int) -> np.ndarray:
    return np.argsort(-(q @ x.T), axis=1, kind="stable")[:, :k]


def test_flat_returns_true_nearest_neighbours() -> None:
    data = _clustered(505)
    x, q = data[:500], data[500:]
    index = DenseIndex.build(x, DenseConfig())
    assert index.kind == "flat" and len(index) == 500 and index.dim == 32
    ids, scores = index.search(q, 10)
    assert ids.dtype == np.int64 and ids.shape == (5, 10)
    np.testing.assert_allclose(scores, np.sort(q @ x.T, axis=1)[:, ::-1][:, :10], rtol=1e-5, atol=1e-5)
    assert {tuple(r) for r in ids} == {tuple(r) for r in _brute_force(x, q, 10)}


def test_single_query_gives_1d_arrays_and_k_is_capped() -> None:
    x = _clustered(7)
    ids, scores = DenseIndex.build(x, DenseConfig()).search(x[3], 50)
    assert ids.shape == scores.shape == (7,)
    assert ids[0] == 3 and scores[0] == pytest.approx(1.0, abs=1e-5)
    assert np.all(np.diff(scores) <= 1e-6)


@pytest.mark.parametrize(("approximate", "kind"), [("hnsw", "hnsw"), ("ivf", "ivf")])
def test_approximate_past_threshold_keeps_recall(approximate: str, kind: str) -> None:
    data = _clustered(4100)
    x, q = data[:4000], data[4000:]  # held-out queries from the same clusters
    index = DenseIndex.build(x, DenseConfig(exact_max=1000, approximate=approximate))
    assert index.kind == kind
    found, _ = index.search(q, 10)
    truth = _brute_force(x, q, 10)
    recall = np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth, strict=True)])
    assert recall >= 0.9


@pytest.mark.parametrize("cfg", [DenseConfig(), DenseConfig(exact_max=100)])
@pytest.mark.parametrize("mmap", [True, False])
def test_save_load_round_trip(tmp_path, cfg: DenseConfig, mmap: bool) -> None:
    x = _clustered(300)
    index = DenseIndex.build(x, cfg)
    path = tmp_path / "sub" / "dense.faiss"
    index.save(path)
    assert [p.name for p in path.parent.iterdir()] == ["dense.faiss"]  # no temp file left behind
    loaded = DenseIndex.load(path, mmap=mmap)
    assert (loaded.kind, len(loaded), loaded.dim) == (index.kind, 300, 32)
    for a, b in zip(index.search(x[:5], 5), loaded.search(x[:5], 5), strict=True):
        np.testing.assert_array_equal(a, b)


def test_dimension_mismatch_is_a_clear_error() -> None:
    index = DenseIndex.build(_clustered(10, dim=32), DenseConfig())
    with pytest.raises(IndexIncompatible, match="dimension 16 but the dense index has 32"):
        index.search(np.ones(16, dtype=np.float32), 3)


def test_missing_or_corrupt_file_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(IndexIncompatible, match="missing"):
        DenseIndex.load(tmp_path / "nope.faiss")
    bad = tmp_path / "bad.faiss"
    bad.write_bytes(b"not an index")
    with pytest.raises(IndexIncompatible, match="unreadable"):
        DenseIndex.load(bad)
