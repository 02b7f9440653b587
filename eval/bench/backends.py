"""SciFact on both index backends: the same chunks and vectors in `local` and in `milvus` (milvus-lite).

    python -m eval.bench.backends [--shared ../shared] [--out docs/bench/backends.json] [--index DIR]
        [--no-latency]

The local index is built by the normal ingest; the milvus index gets exactly its chunks and vectors (written
through the backend's `replace_documents`, timed: that is the Milvus write cost per chunk), so any quality
difference comes from Milvus's side: its BM25 formula and statistics (it counts our own tokens, see
`MilvusBackend.analysed`), its approximate dense index, its fusion. Reports nDCG@10 / Recall@100 (train qrels), top-10 overlap with local, query latency p50/p95 (k=10, query
embedding included), write throughput and bytes per chunk, the numbers the capacity model in
docs/benchmarks.md is built from.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from eval.beir import BeirData, evaluate_run, load_beir, max_passage
from eval.bench import write_result
from eval.bench.scifact import DEPTH_CHUNKS, latency
from index.backends.base import DocumentChunks
from index.backends.milvus import MILVUS_FILE, MilvusBackend, milvus_record
from index.config import ChunkingConfig, EmbeddingConfig, MilvusConfig, RetrievalConfig
from index.ingest import IndexConfig, indexed_text, ingest_documents
from index.search import HybridIndex
from index.store import VECTORS, Manifest, StoreWriter, read_manifest, write_json_atomic


def dir_bytes(path: Path) -> int:
    return (
        sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
        if path.is_dir()
        else path.stat().st_size
    )


def copy_to_milvus(local: HybridIndex, config: IndexConfig, cfg: MilvusConfig, index_dir: Path) -> dict:
    """Write the local index's chunks and vectors into a Milvus collection with its own manifest dir."""
    retrieval = local.retrieval
    chunks = local.all_chunks()
    vectors = np.load(local.generation_dir / VECTORS)
    by_file: dict[str, list[int]] = defaultdict(list)
    for row, c in enumerate(chunks):
        by_file[c.source].append(row)
    store = MilvusBackend(cfg, retrieval=retrieval)
    store.create(vectors.shape[1])
    manifest = local.manifest
    t0 = time.perf_counter()
    batch: list[DocumentChunks] = []
    for source, rows in by_file.items():
        texts = [indexed_text(chunks[r]) for r in rows]
        text = local.document_text(source) or ""  # BEIR documents: the source is the manifest key
        doc = DocumentChunks(
            source, manifest.files[source].sha256, text, [chunks[r] for r in rows], texts, vectors[rows]
        )
        batch.append(doc)
        if len(batch) == 200:
            store.replace_documents(batch)
            batch = []
    store.replace_documents(batch)
    store.flush()
    seconds = time.perf_counter() - t0
    spec = dataclasses.replace(config, backend="milvus", milvus=cfg).spec
    copy = Manifest(build=spec, dim=manifest.dim, files=manifest.files, dense_kind="milvus")
    with StoreWriter(index_dir) as writer, writer.new_generation() as tmp:
        write_json_atomic(tmp / MILVUS_FILE, milvus_record(cfg, len(chunks)))
        writer.commit(tmp, copy)
    store.close()
    return {"write_seconds": round(seconds, 1), "write_chunks_per_s": round(len(chunks) / seconds, 1)}


def quality(index: HybridIndex, data: BeirData, mode: str) -> tuple[dict, dict]:
    run = {
        qid: max_passage(((h.chunk.source, h.score) for h in index.search(t, k=DEPTH_CHUNKS, mode=mode)), 100)  # type: ignore[arg-type]
        for qid, t in data.queries.items()
    }
    return evaluate_run(run, data.qrels), run


def overlap_at_10(a: dict, b: dict) -> float:
    """Mean share of the top-10 documents two runs agree on."""
    return round(
        float(np.mean([len({d for d, _ in a[q][:10]} & {d for d, _ in b[q][:10]}) / 10 for q in a])), 4
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--shared", type=Path, default=Path(os.environ.get("RA_SHARED_DIR", "../shared")))
    parser.add_argument("--out", type=Path, default=Path("docs/bench/backends.json"))
    parser.add_argument(
        "--index", type=Path, default=None, help="local SciFact index dir to reuse (default: temp)"
    )
    parser.add_argument(
        "--no-latency", action="store_true", help="quality only (timings on a shared machine mean little)"
    )
    args = parser.parse_args()
    base = args.shared / "bench" / "scifact"
    data = load_beir(base / "corpus.jsonl", base / "queries.jsonl", base / "qrels" / "train.tsv")
    cache_dir = Path.home() / ".cache" / "research-assistant"
    retrieval = RetrievalConfig()
    config = IndexConfig(ChunkingConfig(), EmbeddingConfig(), retrieval, cache_dir)
    work = Path(tempfile.mkdtemp(prefix="ra-backends-"))
    local_dir = args.index or work / "local"
    from eval.beir import corpus_documents

    if read_manifest(local_dir) is None:
        ingest_documents(corpus_documents(data.corpus), local_dir, config)
    local = HybridIndex(local_dir, retrieval, config.embedding, cache_dir)
    n_chunks = len(local)
    results: dict = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
        "command": "python -m eval.bench.backends",
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "chunks": n_chunks,
        "queries": len(data.queries),
        "local_bytes_per_chunk": round(dir_bytes(local.generation_dir) / n_chunks),
    }
    cfg = MilvusConfig(uri=str(work / "milvus.db"), collection="scifact")
    results["milvus"] = copy_to_milvus(local, config, cfg, work / "milvus")
    results["milvus"]["bytes_per_chunk"] = round(dir_bytes(work / "milvus.db") / n_chunks)
    milvus = HybridIndex(
        work / "milvus", retrieval, config.embedding, cache_dir, backend="milvus", milvus=cfg
    )
    print(json.dumps({"milvus": results["milvus"]}), flush=True)

    systems: dict = {}
    runs: dict = {}
    for mode in ("bm25", "dense", "hybrid"):
        for name, index in (("local", local), ("milvus", milvus)):
            metrics, runs[(name, mode)] = quality(index, data, mode)

            def search(q: str, k: int, index: HybridIndex = index, mode: str = mode) -> object:
                return index.search(q, k=k, mode=mode)  # type: ignore[arg-type]

            systems[f"{name} {mode}"] = {
                **{k: round(v, 4) for k, v in metrics.items()},
                **({} if args.no_latency else latency(search, data.queries)),
                "top10_overlap_with_local": overlap_at_10(runs[(name, mode)], runs[("local", mode)]),
            }
            print(json.dumps({f"{name} {mode}": systems[f"{name} {mode}"]}), flush=True)
    results["systems"] = systems
    results["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    write_result(results, args.out, "systems")  # the systems were printed one by one above


if __name__ == "__main__":
    main()
