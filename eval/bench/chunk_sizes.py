"""Chunk-size sweep: which chunk length lets retrieval put the gold evidence in front of the agent?

    python -m eval.bench.chunk_sizes [--shared ../shared] [--sizes 400,600,800,1200,1600]

For each size the seed corpus is indexed and every answerable question of qa/seeds_dev.jsonl is searched
(hybrid); evidence recall@k is the share of gold quotes found verbatim (whitespace-normalised) inside a
retrieved chunk. Larger chunks find more quotes per hit but cost the agent more context per passage, so the
sweep also reports the characters of context that k hits cost.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

from index.config import ChunkingConfig, EmbeddingConfig, RetrievalConfig
from index.ingest import IndexConfig, ingest_paths
from index.search import HybridIndex


def norm(text: str) -> str:
    return " ".join(text.split()).lower()


def load_qa(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def evidence_recall(index: HybridIndex, items: list[dict], k: int) -> tuple[float, float]:
    """(share of gold quotes inside the top-k chunks, mean characters of those k chunks)."""
    found = total = chars = 0
    for item in items:
        hits = index.search(item["question"], k=k)
        texts = [norm(h.chunk.text) for h in hits]
        chars += sum(len(h.chunk.text) for h in hits)
        for ev in item["evidence"]:
            total += 1
            found += any(norm(ev["quote"]) in t for t in texts)
    return found / max(total, 1), chars / max(len(items), 1)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--shared", type=Path, default=Path(os.environ.get("RA_SHARED_DIR", "../shared")))
    parser.add_argument("--sizes", default="400,600,800,1200,1600")
    parser.add_argument("--out", type=Path, default=Path("docs/bench/chunk_sizes.json"))
    args = parser.parse_args()
    items = [q for q in load_qa(args.shared / "qa" / "seeds_dev.jsonl") if q.get("evidence")]
    cache_dir = Path.home() / ".cache" / "research-assistant"
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        chunking = ChunkingConfig(size=size, overlap=size * 15 // 100)
        retrieval = RetrievalConfig()
        config = IndexConfig(chunking, EmbeddingConfig(), retrieval, cache_dir)
        with tempfile.TemporaryDirectory() as tmp:
            report = ingest_paths([args.shared / "corpus"], Path(tmp), config)
            index = HybridIndex(Path(tmp), retrieval, config.embedding, cache_dir)
            row = {"size": size, "overlap": chunking.overlap, "chunks": report.chunks_total}
            for k in (3, 5, 8):
                recall, chars = evidence_recall(index, items, k)
                row[f"recall@{k}"] = round(recall, 3)
                row[f"context_chars@{k}"] = round(chars)
        rows.append(row)
        print(json.dumps(row), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"questions": len(items), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
