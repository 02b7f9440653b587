"""Ingest throughput: the local engine vs `--engine ray` (a local Ray on the same cores), same files.

    python -m eval.bench.ray_ingest [--shared ../shared] [--docs 1500] [--out docs/bench/ray_ingest.json]
                                    [--ray-address HOST:PORT]

Writes the first N SciFact abstracts as .txt files (plus the shared PDFs), then ingests them into fresh
indexes with each engine in turn. Ray's time includes starting and stopping its local cluster and loading the
model in its actors: the fixed overhead a user pays per run; `ray_overhead_excl_startup` leaves out a separately
timed `ray.init` + shutdown. With `--ray-address` the Ray run joins that already running cluster instead (what
a lab with a standing Ray pays: no cluster start, still one model load per actor).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

from eval.beir import load_beir
from eval.bench import write_result
from index.config import ChunkingConfig, EmbeddingConfig, RetrievalConfig
from index.ingest import IndexConfig, ingest_paths


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--shared", type=Path, default=Path(os.environ.get("RA_SHARED_DIR", "../shared")))
    parser.add_argument("--docs", type=int, default=1500)
    parser.add_argument("--out", type=Path, default=Path("docs/bench/ray_ingest.json"))
    parser.add_argument("--ray-address", default=None, help="time the Ray run on this running cluster")
    args = parser.parse_args()
    base = args.shared / "bench" / "scifact"
    data = load_beir(base / "corpus.jsonl", base / "queries.jsonl", base / "qrels" / "train.tsv")
    work = Path(tempfile.mkdtemp(prefix="ra-ray-bench-"))
    files = work / "files"
    files.mkdir()
    for docid, (title, text) in list(data.corpus.items())[: args.docs]:
        (files / f"{docid}.txt").write_text(f"{title}\n\n{text}\n", encoding="utf-8")
    for pdf in (args.shared / "pdfs").glob("*.pdf"):
        shutil.copy(pdf, files / pdf.name)
    config = IndexConfig(
        ChunkingConfig(), EmbeddingConfig(), RetrievalConfig(), Path.home() / ".cache" / "research-assistant"
    )
    # warm the embedder's ONNX export cache and the page cache so neither run pays for them
    ingest_paths([files / f"{next(iter(data.corpus))}.txt"], work / "warm", config)

    results: dict = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
        "command": f"python -m eval.bench.ray_ingest --docs {args.docs}"
        + (" --ray-address HOST:PORT" if args.ray_address else ""),
        "files": len(list(files.iterdir())),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }
    if not args.ray_address:
        import ray

        t0 = time.perf_counter()
        ray.init(log_to_driver=False, logging_level="ERROR", include_dashboard=False)
        ray.shutdown()
        results["ray_init_and_shutdown_s"] = round(time.perf_counter() - t0, 1)
    ray_run = "ray_running_cluster" if args.ray_address else "ray"
    for name, engine, address in (("local", "local", None), (ray_run, "ray", args.ray_address)):
        report = ingest_paths([files], work / name, config, engine=engine, ray_address=address)  # type: ignore[arg-type]
        results[name] = {
            "seconds": round(report.seconds, 1),
            "chunks": report.chunks_total,
            "chunks_per_s": round(report.chunks_total / report.seconds, 1),
        }
        print(json.dumps({name: results[name]}), flush=True)
    results[f"{ray_run}_overhead"] = round(results[ray_run]["seconds"] / results["local"]["seconds"] - 1, 3)
    if not args.ray_address:
        results["ray_overhead_excl_startup"] = round(
            (results["ray"]["seconds"] - results["ray_init_and_shutdown_s"]) / results["local"]["seconds"]
            - 1,
            3,
        )
    results["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    shutil.rmtree(work, ignore_errors=True)
    write_result(results, args.out)


if __name__ == "__main__":
    main()
