"""FAISS inner-product index over L2-normalised embeddings (so scores are cosines).

Small collections get an exact flat index (fast enough and never wrong); past `DenseConfig.exact_max`
an approximate one (IVF by default: it builds in about a minute at 1M vectors on two cores, where HNSW
takes tens of minutes; HNSW as the option with the fastest queries) keeps query time flat as n grows.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import faiss
import numpy as np

from index.config import DenseConfig
from index.errors import IndexIncompatible, UserFacingError

Kind = Literal["flat", "hnsw", "ivf"]
IVF_TARGET_RECALL = 0.95


def _as_matrix(vectors: np.ndarray, dim: int | None = None) -> np.ndarray:
    arr = np.asarray(vectors, dtype=np.float32)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise UserFacingError(f"expected a vector or a 2-D matrix of vectors, got shape {arr.shape}")
    if dim is not None and arr.shape[1] != dim:
        raise IndexIncompatible(
            f"vectors have dimension {arr.shape[1]} but the dense index has {dim}: "
            "rebuild the index with the current embedding model"
        )
    return np.ascontiguousarray(arr)


def _kind_of(index: faiss.Index) -> Kind:
    if isinstance(index, faiss.IndexHNSW):
        return "hnsw"
    if isinstance(index, faiss.IndexIVF):
        return "ivf"
    return "flat"


def _build_ivf(vectors: np.ndarray, rng: np.random.Generator) -> faiss.IndexIVFFlat:
    """IVF with ~sqrt(n) lists, trained on a 50-per-list sample (k-means cost, not query cost, dominates a
    1M build on a laptop); nprobe is raised until sampled queries reach
    IVF_TARGET_RECALL@10 against exact search (recall depends on the data, so it is measured, not guessed)."""
    n, dim = vectors.shape
    nlist = max(1, int(np.sqrt(n)))
    quantizer = faiss.IndexFlatIP(dim)
    index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
    sample = vectors[rng.choice(n, size=min(n, 50 * nlist), replace=False)]
    index.train(sample)
    index.add(vectors)
    queries = vectors[rng.choice(n, size=min(n, 100), replace=False)]
    exact = faiss.IndexFlatIP(dim)
    exact.add(vectors)
    k = min(10, n)
    truth = exact.search(queries, k)[1]
    for nprobe in (1, 2, 4, 8, 16, 32, 64, 128, 256):
        index.nprobe = min(nprobe, nlist)
        found = index.search(queries, k)[1]
        recall = np.mean([len(set(t) & set(f)) / k for t, f in zip(truth, found, strict=True)])
        if recall >= IVF_TARGET_RECALL or index.nprobe == nlist:
            break
    return index


class DenseIndex:
    """A FAISS index plus the few facts callers need (kind, dim, size)."""

    def __init__(self, index: faiss.Index) -> None:
        self.index = index

    @classmethod
    def build(cls, vectors: np.ndarray, cfg: DenseConfig) -> DenseIndex:
        arr = _as_matrix(vectors)
        n, dim = arr.shape
        if n <= cfg.exact_max:
            index: faiss.Index = faiss.IndexFlatIP(dim)
        elif cfg.approximate == "ivf":
            return cls(_build_ivf(arr, np.random.default_rng(0)))
        else:
            index = faiss.IndexHNSWFlat(dim, cfg.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = cfg.hnsw_ef_construction
            index.hnsw.efSearch = cfg.hnsw_ef_search
        index.add(arr)
        return cls(index)

    @property
    def kind(self) -> Kind:
        return _kind_of(self.index)

    @property
    def dim(self) -> int:
        return int(self.index.d)

    def __len__(self) -> int:
        return int(self.index.ntotal)

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k ids (int64) and cosine scores.

        A 1-D query gives 1-D arrays with missing hits dropped. A (q, dim) batch gives (q, k') arrays,
        k' = min(k, len); an approximate index that finds fewer hits pads with id -1 and score -inf.
        """
        single = np.asarray(query).ndim == 1
        queries = _as_matrix(query, self.dim)
        k = min(k, len(self))
        if k <= 0:
            empty = np.zeros((0,) if single else (len(queries), 0))
            return empty.astype(np.int64), empty.astype(np.float32)
        if len(queries) == 1:
            # one query: OpenMP fan-out costs more than it saves (2.0 vs 3.3 ms on 14k vectors, 2 cores)
            threads = faiss.omp_get_max_threads()
            faiss.omp_set_num_threads(1)
            try:
                scores, ids = self.index.search(queries, k)
            finally:
                faiss.omp_set_num_threads(threads)
        else:
            scores, ids = self.index.search(queries, k)
        ids = ids.astype(np.int64, copy=False)
        if single:
            keep = ids[0] >= 0
            return ids[0][keep], scores[0][keep]
        return ids, np.where(ids >= 0, scores, -np.inf).astype(np.float32)

    def save(self, path: Path) -> None:
        """Write atomically: a crash mid-write never leaves a truncated index behind."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            faiss.write_index(self.index, str(tmp))
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)

    @classmethod
    def load(cls, path: Path, mmap: bool = True) -> DenseIndex:
        """Read an index; with `mmap`, flat vectors are paged in from disk on demand instead of copied."""
        path = Path(path)
        if not path.is_file():
            raise IndexIncompatible(f"dense index file {path} is missing: rebuild the index")
        if mmap:
            try:
                return cls(faiss.read_index(str(path), faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY))
            except RuntimeError:
                pass  # index types without mmap support are read into memory below
        try:
            return cls(faiss.read_index(str(path)))
        except RuntimeError as exc:
            reason = str(exc).strip().splitlines()[-1]
            msg = f"dense index file {path} is unreadable ({reason}): rebuild the index"
            raise IndexIncompatible(msg) from exc
