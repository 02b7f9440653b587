"""Scale run: a synthetic index of N chunks (default 1,000,000), built and then opened like a real one.

    python -m eval.bench.scale [--n 1000000] [--dir /tmp/ra-scale] [--shared ../shared]

Texts are random 3-6 sentence mixes of SciFact abstracts (a realistic vocabulary for BM25); vectors are
clustered synthetic 384-d unit vectors (real embeddings of 1M chunks would take hours on 2 cores and the
structures do not care). The index is committed through the normal store path (manifest + generation),
then a fresh process opens it and measures load time, resident memory and query latency per mode.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from index.build_spec import build_spec
from index.config import PACKAGED_MINILM, ChunkingConfig, EmbeddingConfig, RetrievalConfig
from index.ingest import build_structures
from index.store import CHUNKS_DB, VECTORS, FileEntry, Manifest, StoreWriter, create_chunk_db
from index.text import sentence_spans

DIM = 384


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def sentences(shared: Path) -> list[str]:
    corpus = shared / "bench" / "scifact" / "corpus.jsonl"
    out: list[str] = []
    with open(corpus, encoding="utf-8") as fh:
        for line in fh:
            text = json.loads(line)["text"]
            out.extend(text[a:b] for a, b in sentence_spans(text, 0, len(text)) if b - a > 40)
    return out


def clustered_vectors(n: int, rng: np.random.Generator, centres: int = 2000) -> np.ndarray:
    centre_vecs = rng.standard_normal((centres, DIM)).astype(np.float32)
    out = np.empty((n, DIM), dtype=np.float32)
    step = 100_000
    for lo in range(0, n, step):
        hi = min(n, lo + step)
        block = centre_vecs[rng.integers(0, centres, hi - lo)] + 0.6 * rng.standard_normal(
            (hi - lo, DIM)
        ).astype(np.float32)
        out[lo:hi] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def build(n: int, index_dir: Path, shared: Path, retrieval: RetrievalConfig) -> dict:
    rng = np.random.default_rng(0)
    pool = sentences(shared)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    picks = rng.integers(0, len(pool), size=(n, 6))
    lengths = rng.integers(3, 7, size=n)
    texts = [" ".join(pool[j] for j in picks[i, : lengths[i]]) for i in range(n)]
    vectors = clustered_vectors(n, rng)
    timings["generate_s"] = time.perf_counter() - t0
    files = 1000
    per_file = n // files
    with StoreWriter(index_dir) as writer, writer.new_generation() as tmp:
        t0 = time.perf_counter()
        db = create_chunk_db(tmp / CHUNKS_DB)
        rows = (
            (
                i,
                f"syn{i // per_file:04d}:{i:07d}",
                f"syn://{i // per_file}",
                f"synthetic/{i // per_file}.txt",
                "synthetic",
                None,
                0,
                len(texts[i]),
                1,
                1,
                "",
                texts[i],
                "{}",
            )
            for i in range(n)
        )
        db.executemany("INSERT INTO chunks VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
        db.commit()
        db.close()
        np.save(tmp / VECTORS, vectors)
        timings["chunk_store_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        dense_kind = build_structures(tmp, texts, vectors, retrieval)
        timings["bm25_and_dense_build_s"] = time.perf_counter() - t0
        manifest = Manifest(
            build=build_spec(ChunkingConfig(), EmbeddingConfig(model=PACKAGED_MINILM), retrieval),
            dim=DIM,
            files={f"syn://{f}": FileEntry("0" * 64, "txt", "synthetic", 1, per_file) for f in range(files)},
            dense_kind=dense_kind,
        )
        writer.commit(tmp, manifest)
    size = sum(p.stat().st_size for p in index_dir.rglob("*") if p.is_file())
    return {
        **{k: round(v, 1) for k, v in timings.items()},
        "dense_kind": dense_kind,
        "disk_mb": round(size / 2**20),
    }


def measure(index_dir: Path, shared: Path) -> dict:
    """Runs in a fresh process: open the index, then time queries in each mode."""
    from index.config import EmbeddingConfig
    from index.search import HybridIndex

    lines = (shared / "bench" / "scifact" / "queries.jsonl").read_text(encoding="utf-8").splitlines()
    queries = [json.loads(line)["text"] for line in lines[:200]]
    base_rss = rss_mb()
    t0 = time.perf_counter()
    index = HybridIndex(
        index_dir, RetrievalConfig(), EmbeddingConfig(), Path.home() / ".cache" / "research-assistant"
    )
    index.backend.bm25  # type: ignore[attr-defined]  # noqa: B018 - force the lazy loads so they are timed here
    index.backend.dense  # type: ignore[attr-defined]  # noqa: B018
    load_s = time.perf_counter() - t0
    index.embedder.embed_query("warm up")
    result: dict = {"load_s": round(load_s, 2), "rss_after_load_mb": round(rss_mb() - base_rss)}
    for mode in ("bm25", "dense", "hybrid"):
        lat = []
        for q in queries:
            t = time.perf_counter()
            index.search(q, k=10, mode=mode)  # type: ignore[arg-type]
            lat.append((time.perf_counter() - t) * 1000)
        lat.sort()
        result[mode] = {
            "p50_ms": round(statistics.median(lat), 2),
            "p95_ms": round(lat[int(0.95 * (len(lat) - 1))], 2),
        }
    result["rss_after_queries_mb"] = round(rss_mb() - base_rss)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/ra-scale"))
    parser.add_argument("--shared", type=Path, default=Path(os.environ.get("RA_SHARED_DIR", "../shared")))
    parser.add_argument("--measure-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=Path("docs/bench/scale.json"))
    args = parser.parse_args()
    if args.measure_only:
        print(json.dumps(measure(args.dir, args.shared)))
        return
    report = {
        "n": args.n,
        "date": time.strftime("%Y-%m-%d"),
        "build": build(args.n, args.dir, args.shared, RetrievalConfig()),
    }
    print(json.dumps(report), flush=True)
    probe = subprocess.run(
        [
            sys.executable,
            "-m",
            "eval.bench.scale",
            "--measure-only",
            "--dir",
            str(args.dir),
            "--shared",
            str(args.shared),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    report["query"] = json.loads(probe.stdout.strip().splitlines()[-1])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
