"""Exact vs approximate dense search at scale: build time, memory, latency and recall@10.

Synthetic clustered unit vectors stand in for real embeddings (which are clustered by topic, unlike
uniform noise, on which every ANN index looks bad). Run: `python -m eval.bench.ann_recall --n 200000`.
"""

from __future__ import annotations

import argparse
import json
import time

import faiss
import numpy as np
import psutil

from index.config import DenseConfig
from index.dense import DenseIndex


def clustered_vectors(n: int, dim: int, centres: int, rng: np.random.Generator) -> np.ndarray:
    """Unit vectors around `centres` random directions, generated in blocks to bound peak memory."""
    c = rng.standard_normal((centres, dim)).astype(np.float32)
    c /= np.linalg.norm(c, axis=1, keepdims=True)
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, 100_000):
        m = min(100_000, n - start)
        block = c[rng.integers(0, centres, m)] + 0.06 * rng.standard_normal((m, dim), dtype=np.float32)
        out[start : start + m] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def _rss_mb() -> float:
    return psutil.Process().memory_info().rss / 2**20


def measure(vectors: np.ndarray, queries: np.ndarray, cfg: DenseConfig, k: int) -> tuple[dict, np.ndarray]:
    rss = _rss_mb()
    t0 = time.perf_counter()
    index = DenseIndex.build(vectors, cfg)
    build_s = time.perf_counter() - t0
    mem = _rss_mb() - rss
    latencies, found = [], []
    for q in queries:
        t = time.perf_counter()
        ids, _ = index.search(q, k)
        latencies.append((time.perf_counter() - t) * 1000)
        found.append(ids)
    stats = {
        "kind": index.kind,
        "build_s": round(build_s, 2),
        "rss_delta_mb": round(mem, 1),  # allocator reuse can hide growth: index_mb is exact
        "index_mb": round(len(faiss.serialize_index(index.index)) / 2**20, 1),
        "query_ms_p50": round(float(np.percentile(latencies, 50)), 3),
        "query_ms_p95": round(float(np.percentile(latencies, 95)), 3),
    }
    return stats, np.array(found)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=200_000)
    p.add_argument("--dim", type=int, default=384)
    p.add_argument("--centres", type=int, default=2000)
    p.add_argument("--queries", type=int, default=200)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--approximate", choices=["hnsw", "ivf"], default="ivf")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()

    rng = np.random.default_rng(args.seed)
    data = clustered_vectors(args.n + args.queries, args.dim, args.centres, rng)
    vectors, queries = data[: args.n], data[args.n :]  # held-out queries from the same clusters
    exact_stats, truth = measure(vectors, queries, DenseConfig(exact_max=args.n), args.k)
    approx_cfg = DenseConfig(exact_max=0, approximate=args.approximate)
    approx_stats, found = measure(vectors, queries, approx_cfg, args.k)
    recall = np.mean([len(set(f) & set(t)) / args.k for f, t in zip(found, truth, strict=True)])
    approx_stats[f"recall@{args.k}"] = round(float(recall), 4)
    print(
        json.dumps(
            {
                "n": args.n,
                "dim": args.dim,
                "config": approx_cfg.model_dump(),
                "exact": exact_stats,
                "approximate": approx_stats,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
