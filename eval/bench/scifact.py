"""SciFact side by side: this project's hybrid/dense/BM25 vs rank-bm25 vs LangChain's EnsembleRetriever.

    python -m eval.bench.scifact [--shared ../shared] [--out docs/bench/scifact.json]

All systems index the same chunks with the same embedding model (all-MiniLM-L6-v2). Reports nDCG@10 /
Recall@100 / MRR@10 on the train qrels, query latency p50/p95 (k=10, query embedding included), ingest
throughput against a plain `SentenceTransformer.encode`, and the fusion sweep that chose the defaults
(tuned on one half of the queries, checked on the other).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
from langchain_core.embeddings import Embeddings

from eval.beir import BeirData, Run, corpus_documents, evaluate_run, load_beir, max_passage
from index.config import RETRIEVAL_MODES, ChunkingConfig, EmbeddingConfig, FusionConfig, RetrievalConfig
from index.fusion import reciprocal_rank_fusion, weighted_score_fusion
from index.ingest import IndexConfig, indexed_text, ingest_documents
from index.search import HybridIndex

DEPTH_CHUNKS = 300  # chunk hits asked for per query before collapsing to the top 100 documents


def percentiles(samples: list[float]) -> dict[str, float]:
    ms = sorted(s * 1000 for s in samples)
    return {"p50_ms": round(statistics.median(ms), 3), "p95_ms": round(ms[int(0.95 * (len(ms) - 1))], 3)}


def latency(search: Callable[[str, int], object], queries: dict[str, str], k: int = 10) -> dict[str, float]:
    """Per-query latency at k=10 (what an interactive user asks), after a 20-query warm-up."""
    for text in list(queries.values())[:20]:
        search(text, k)
    lat = []
    for text in queries.values():
        t0 = time.perf_counter()
        search(text, k)
        lat.append(time.perf_counter() - t0)
    return percentiles(lat)


def scored(
    search: Callable[[str, int], list[tuple[str, float]]], data: BeirData, quality: bool
) -> dict[str, float]:
    """Quality at full depth (unless latency-only), then latency."""
    metrics: dict[str, float] = {}
    if quality:
        run = {qid: max_passage(search(text, DEPTH_CHUNKS), 100) for qid, text in data.queries.items()}
        metrics = evaluate_run(run, data.qrels)
    return {**metrics, **latency(search, data.queries)}


def split_queries(queries: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """Deterministic halves by a hash of the query id: tune on A, check on B."""
    a = {q: t for q, t in queries.items() if zlib.crc32(q.encode()) % 2 == 0}
    return a, {q: t for q, t in queries.items() if q not in a}


def fusion_sweep(
    dense: dict[str, tuple[list[int], list[float]]],
    sparse: dict[str, tuple[list[int], list[float]]],
    source_of: Callable[[int], str],
    qrels: dict,
    tune: dict[str, str],
    check: dict[str, str],
) -> list[dict]:
    """Score every fusion setting on both halves from precomputed rankings (no re-querying)."""
    settings = [("rrf", k, w) for k in (5, 10, 20, 40, 60, 100) for w in (0.3, 0.4, 0.5, 0.6, 0.7)]
    settings += [("weighted", 0, w) for w in (0.3, 0.4, 0.5, 0.6, 0.7, 0.8)]
    rows = []
    for method, rrf_k, w in settings:

        def fused_run(qids: dict[str, str], method: str = method, rrf_k: int = rrf_k, w: float = w) -> Run:
            run = {}
            for qid in qids:
                d, s = dense[qid], sparse[qid]
                if method == "rrf":
                    fused = reciprocal_rank_fusion([d[0], s[0]], k=rrf_k, weights=[w, 1 - w])
                else:
                    fused = weighted_score_fusion([d, s], [w, 1 - w])
                run[qid] = max_passage(((source_of(r), sc) for r, sc in fused), 100)
            return run

        rows.append(
            {
                "method": method,
                "rrf_k": rrf_k,
                "dense_weight": w,
                "ndcg@10_tune": evaluate_run(fused_run(tune), {q: qrels[q] for q in tune})["ndcg@10"],
                "ndcg@10_check": evaluate_run(fused_run(check), {q: qrels[q] for q in check})["ndcg@10"],
            }
        )
    return sorted(rows, key=lambda r: -r["ndcg@10_tune"])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--shared", type=Path, default=Path(os.environ.get("RA_SHARED_DIR", "../shared")))
    parser.add_argument("--out", type=Path, default=Path("docs/bench/scifact.json"))
    parser.add_argument("--index", type=Path, default=None, help="reuse this index dir (default: temp)")
    parser.add_argument("--skip-langchain", action="store_true")
    parser.add_argument(
        "--latency-only", action="store_true", help="re-time queries, keep the recorded quality numbers"
    )
    parser.add_argument(
        "--only", default="throughput,ours,rank-bm25,langchain,sweep", help="comma-separated parts to (re)run"
    )
    args = parser.parse_args()
    base = args.shared / "bench" / "scifact"
    data = load_beir(base / "corpus.jsonl", base / "queries.jsonl", base / "qrels" / "train.tsv")
    parts = set(args.only.split(","))
    previous = json.loads(args.out.read_text()) if args.out.exists() else {}
    results: dict = {
        **previous,
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
        "documents": len(data.corpus),
        "queries": len(data.queries),
    }
    cache_dir = Path.home() / ".cache" / "research-assistant"
    retrieval = RetrievalConfig()
    config = IndexConfig(ChunkingConfig(), EmbeddingConfig(), retrieval, cache_dir)
    index_dir = args.index or Path(tempfile.mkdtemp(prefix="ra-scifact-")) / "index"

    # 1. ingest (this project's path: chunk + int8 ONNX embeddings + BM25 + FAISS)
    report = ingest_documents(corpus_documents(data.corpus), index_dir, config)
    hybrid = HybridIndex(index_dir, retrieval, config.embedding, cache_dir)
    chunks = hybrid.all_chunks()
    texts = [indexed_text(c) for c in chunks]
    sources = [c.source for c in chunks]
    results["chunks"] = len(chunks)
    results["ingest"] = {"seconds": round(report.seconds, 1), "chunks_embedded": report.chunks_embedded}

    # embedding throughput: our embedder vs plain SentenceTransformer.encode on the same chunk texts
    from sentence_transformers import SentenceTransformer

    from index.embeddings import load_embedder, resolve_model_path

    st = SentenceTransformer(resolve_model_path(config.embedding.model, False), device="cpu")
    if "throughput" in parts:
        results["embedding_throughput"] = embedding_throughput(
            texts[:1000], load_embedder(config.embedding, cache_dir), st
        )
        print(json.dumps(results["embedding_throughput"]), flush=True)

    systems: dict[str, dict] = results.get("systems", {})
    if "ours" in parts:
        for mode in RETRIEVAL_MODES:
            systems[f"ra {mode}"] = {
                **systems.get(f"ra {mode}", {}),
                **scored(ours_search(hybrid, mode), data, not args.latency_only),
            }
            print(json.dumps({f"ra {mode}": systems[f"ra {mode}"]}), flush=True)

    # 3. rank-bm25 alone (same chunks, same tokenizer, same k1/b)

    from index.sparse import Tokenizer

    tok = Tokenizer(stem=retrieval.bm25.stem)
    if "rank-bm25" in parts:
        systems["rank-bm25 BM25Okapi"] = {
            **systems.get("rank-bm25 BM25Okapi", {}),
            **rank_bm25_system(texts, sources, tok, retrieval, data, not args.latency_only),
        }
        print(json.dumps({"rank-bm25 BM25Okapi": systems["rank-bm25 BM25Okapi"]}), flush=True)

    # 4. LangChain EnsembleRetriever (BM25Retriever + FAISS vector store), same chunks and model
    if "langchain" in parts and not args.skip_langchain:
        vectors = np.load(hybrid.generation_dir / "vectors.npy")
        systems["LangChain EnsembleRetriever"] = {
            **systems.get("LangChain EnsembleRetriever", {}),
            **langchain_ensemble(texts, sources, vectors, st, tok, data, not args.latency_only),
        }
        print(json.dumps({"LangChain EnsembleRetriever": systems["LangChain EnsembleRetriever"]}), flush=True)

    # 5. fusion sweep on precomputed rankings (tune half A, check half B)
    if "sweep" in parts:
        results["fusion_sweep_top10"] = sweep_fusion(hybrid, sources, data)
    results["fusion_defaults"] = FusionConfig().model_dump()
    results["systems"] = systems
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


def sweep_fusion(hybrid: HybridIndex, sources: list[str], data: BeirData) -> list[dict]:
    tune, check = split_queries(data.queries)

    def split(ranked: list) -> tuple[list[int], list[float]]:
        return [r for r, _ in ranked], [sc for _, sc in ranked]

    backend = hybrid.backend
    dense_r = {
        q: split(backend.dense_search(hybrid.embedder.embed_query(t), DEPTH_CHUNKS))
        for q, t in data.queries.items()
    }
    sparse_r = {q: split(backend.sparse_search(t, DEPTH_CHUNKS)) for q, t in data.queries.items()}
    return fusion_sweep(dense_r, sparse_r, lambda r: sources[r], data.qrels, tune, check)[:10]  # type: ignore[arg-type]


def ours_search(hybrid: HybridIndex, mode: str) -> Callable[[str, int], list[tuple[str, float]]]:
    return lambda q, n: [(h.chunk.source, h.score) for h in hybrid.search(q, k=n, mode=mode)]  # type: ignore[arg-type]


def embedding_throughput(sample: list[str], ours, st) -> dict:  # type: ignore[no-untyped-def]
    """Chunks/s of this project's embedder vs plain SentenceTransformer.encode (batch 32) on the same texts."""
    ours.embed_documents(sample[:32])  # warm-up
    t0 = time.perf_counter()
    ours_vectors = ours.embed_documents(sample)
    ours_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    st_vectors = st.encode(sample, batch_size=32, normalize_embeddings=True)
    st_s = time.perf_counter() - t0
    cos = np.sum(st_vectors * ours_vectors, axis=1)
    return {
        "chunks": len(sample),
        "ours_backend": ours.backend,
        "ours_chunks_per_s": round(len(sample) / ours_s, 1),
        "sentence_transformers_chunks_per_s": round(len(sample) / st_s, 1),
        "speedup": round(st_s / ours_s, 2),
        "cosine_min": round(float(cos.min()), 4),
        "cosine_mean": round(float(cos.mean()), 4),
    }


def rank_bm25_system(texts, sources, tok, retrieval, data, quality) -> dict:  # type: ignore[no-untyped-def]
    from rank_bm25 import BM25Okapi

    okapi = BM25Okapi([tok.tokenize(t) for t in texts], k1=retrieval.bm25.k1, b=retrieval.bm25.b)

    def okapi_search(q: str, n: int) -> list[tuple[str, float]]:
        scores = okapi.get_scores(tok.tokenize(q))
        top = np.argsort(-scores)[:n]
        return [(sources[i], float(scores[i])) for i in top if scores[i] > 0]

    return scored(okapi_search, data, quality)


def langchain_ensemble(texts, sources, vectors, st, tok, data, quality) -> dict:  # type: ignore[no-untyped-def]
    """LangChain's recipe on the same chunks: BM25Retriever + FAISS store, equal-weight RRF.

    The FAISS store gets the chunk vectors this project computed (int8 ONNX of the same model, cosine
    >= 0.999 to torch) to save re-encoding 14k chunks; its queries go through sentence-transformers (torch).
    """
    from langchain_classic.retrievers import EnsembleRetriever
    from langchain_community.retrievers import BM25Retriever
    from langchain_community.vectorstores import FAISS

    embeddings = _LangChainST(st)
    metadatas = [{"source": s} for s in sources]
    store = FAISS.from_embeddings(
        list(zip(texts, vectors.tolist(), strict=True)), embeddings, metadatas=metadatas
    )
    bm25 = BM25Retriever.from_texts(texts, metadatas=metadatas, preprocess_func=tok.tokenize)

    def make(k: int) -> EnsembleRetriever:
        return EnsembleRetriever(
            retrievers=[bm25.model_copy(update={"k": k}), store.as_retriever(search_kwargs={"k": k})],
            weights=[0.5, 0.5],
        )

    deep, shallow = make(DEPTH_CHUNKS), make(10)

    def search(text: str, n: int) -> list[tuple[str, float]]:
        retriever = shallow if n <= 10 else deep
        return [(d.metadata["source"], 1.0) for d in retriever.invoke(text)]

    return scored(search, data, quality)


class _LangChainST(Embeddings):
    """LangChain `Embeddings` over the already loaded SentenceTransformer (same model, torch path)."""

    def __init__(self, st) -> None:  # type: ignore[no-untyped-def]
        self.st = st

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.st.encode(texts, batch_size=32, normalize_embeddings=True).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.st.encode([text], normalize_embeddings=True)[0].tolist()


if __name__ == "__main__":
    main()
