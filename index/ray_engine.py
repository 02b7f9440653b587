"""`ra ingest --engine ray`: Ray Data reads, parses, chunks and embeds the changed files in parallel.

Only the work that scales with the corpus moves to Ray: parsing and chunking run as Ray tasks, embedding in
a pool of actors that each load the model once. The driver keeps everything that must stay single and
ordered: hashing against the manifest, the writer lock, the backend writes and the atomic manifest commit
(index/ingest.py), so the content-hash, `--prune` and crash-safety guarantees are those of the local engine.

Without an address a local Ray is started for the run and stopped after; with one (`ray://...` or
`host:6379`) the job joins that cluster, whose workers must have this package installed.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from index.documents import DocumentMeta
from index.errors import LoadError, UserFacingError
from index.types import Chunk, LoadedDocument, Page

if TYPE_CHECKING:
    from index.ingest import IndexConfig, Progress

FILES_PER_BLOCK = 4  # parse tasks get a few files each: enough to amortise task overhead
# Files per embedding call. The embedder sorts a call's chunks by length before batching, so small calls pad
# more: on 400 SciFact abstracts the actor took 1.6x the local embedding time with 16 files, 1.1x with 200.
EMBED_BATCH_FILES = 256


@dataclass
class Prepared:
    """A changed file after Ray: its document, chunks and vectors, or why it could not be read."""

    doc: LoadedDocument | None
    chunks: list[Chunk]
    vectors: np.ndarray
    error: str | None = None
    sha256: str = ""  # of the bytes the worker parsed (the manifest records this, not an earlier hash)


def _parse_and_chunk(row: dict[str, Any], chunking: dict[str, Any]) -> dict[str, Any]:
    """Ray task: load one file and chunk it exactly as the local engine does."""
    from index.chunking import chunk_document
    from index.config import ChunkingConfig
    from index.ingest import doc_id, indexed_text, read_to_parse
    from index.loaders import load_document

    override = DocumentMeta.from_json(json.loads(row["meta"])) if row["meta"] else None
    try:
        data, digest = read_to_parse(Path(row["path"]))  # the digest of what is parsed here, not earlier
        doc = load_document(Path(row["path"]), override, data)
    except LoadError as exc:
        return {**row, "error": str(exc), "doc": "", "chunks": "[]", "texts": "[]"}
    doc.source = row["key"]
    row = {**row, "sha256": digest}
    chunks = chunk_document(doc, ChunkingConfig(**chunking), doc_id(row["key"], digest))
    record = {"source": doc.source, "title": doc.title, "kind": doc.kind, "warnings": doc.warnings}
    record["pages"] = [[p.number, p.text] for p in doc.pages]  # the driver needs the text, not the layout
    record["meta"] = doc.meta.to_json()
    return {
        **row,
        "error": "",
        "doc": json.dumps(record, ensure_ascii=False),
        "chunks": json.dumps([dataclasses.asdict(c) for c in chunks], ensure_ascii=False),
        "texts": json.dumps([indexed_text(c) for c in chunks], ensure_ascii=False),
    }


class _Embed:
    """Ray actor: loads the embedding model once and embeds the chunks of a batch of files."""

    def __init__(self, embedding: dict[str, Any], cache_dir: str) -> None:
        from index.config import EmbeddingConfig
        from index.embeddings import load_embedder

        self.embedder = load_embedder(EmbeddingConfig(**embedding), Path(cache_dir))

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        per_file = [json.loads(t) for t in batch["texts"]]
        flat = [t for texts in per_file for t in texts]
        vectors = (
            self.embedder.embed_documents(flat) if flat else np.zeros((0, self.embedder.dim), np.float32)
        )
        out, start = [], 0
        for texts in per_file:
            out.append(np.ascontiguousarray(vectors[start : start + len(texts)], dtype=np.float32).tobytes())
            start += len(texts)
        return {**batch, "vectors": np.array(out, dtype=object), "dim": np.full(len(out), self.embedder.dim)}


def _check_reachable(address: str) -> None:
    """Ray waits minutes on an address where nothing listens: fail in seconds instead."""
    hostport = address.removeprefix("ray://")
    host, _, port = hostport.rpartition(":")
    if address == "auto" or not port.isdigit():
        return  # "auto" and other forms are Ray's to resolve
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=3).close()
    except OSError as exc:
        raise UserFacingError(
            f"cannot join the Ray cluster at {address} ({exc.strerror or exc}): start it with `ray start --head` "
            "or drop --ray-address to run a local Ray"
        ) from None


def _start(address: str | None) -> Any:
    if address:
        _check_reachable(address)
    try:
        import ray
    except ImportError:
        raise UserFacingError(
            "--engine ray needs Ray: pip install 'research-assistant[ray]' (or use --engine local)"
        ) from None
    project = str(Path(__file__).resolve().parents[1])
    env = {"PYTHONPATH": os.pathsep.join(p for p in (project, os.environ.get("PYTHONPATH", "")) if p)}
    try:
        ray.init(
            address=address,
            runtime_env={"env_vars": env},
            log_to_driver=False,
            logging_level="ERROR",
            include_dashboard=False if address is None else None,
            ignore_reinit_error=True,
        )
    except (ConnectionError, RuntimeError, ValueError) as exc:
        reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise UserFacingError(
            f"cannot join the Ray cluster at {address} ({reason}): start it with `ray start --head` "
            "or drop --ray-address to run a local Ray"
        ) from None
    logging.getLogger("ray").setLevel(logging.ERROR)  # Ray Data's INFO lines would bury our progress
    return ray


def prepare(
    files: list[tuple[str, Path, str]],
    config: IndexConfig,
    address: str | None = None,
    progress: Progress | None = None,
    meta: dict[str, DocumentMeta] | None = None,
) -> dict[str, Prepared]:
    """Parse, chunk and embed `files` ((key, path, sha256) each) on Ray; keyed by manifest key.
    `meta` overrides extracted metadata by key, as in `ingest_paths`."""
    if not files:
        return {}
    ray = _start(address)
    try:
        import ray.data

        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        ctx.print_on_execution_start = False
        cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
        meta = meta or {}
        items = [
            {
                "key": k,
                "path": str(p),
                "sha256": s,
                "meta": json.dumps(meta[k].to_json()) if k in meta else "",
            }
            for k, p, s in files
        ]
        ds = ray.data.from_items(
            items, override_num_blocks=max(1, min(len(items) // FILES_PER_BLOCK, 4 * cpus))
        )
        ds = ds.map(_parse_and_chunk, fn_kwargs={"chunking": config.chunking.model_dump()})
        ds = ds.map_batches(
            _Embed,
            fn_constructor_kwargs={
                "embedding": config.embedding.model_dump(),
                "cache_dir": str(config.cache_dir),
            },
            batch_size=EMBED_BATCH_FILES,
            compute=ray.data.ActorPoolStrategy(size=max(1, cpus // 2)),  # each actor's ONNX uses 2 threads
            num_cpus=1,
            batch_format="numpy",
        )
        if progress:
            progress.start("parsing, chunking, embedding (ray)", len(items))
        out: dict[str, Prepared] = {}
        for row in ds.iter_rows():
            out[row["key"]] = _prepared(row)
            if progress:
                progress.advance()
        return out
    finally:
        ray.shutdown()


def _prepared(row: dict[str, Any]) -> Prepared:
    dim = int(row["dim"])
    if row["error"]:
        return Prepared(None, [], np.zeros((0, dim), np.float32), row["error"])
    record = json.loads(row["doc"])
    doc = LoadedDocument(
        source=record["source"],
        title=record["title"],
        kind=record["kind"],
        pages=[Page(n, t) for n, t in record["pages"]],
        warnings=record["warnings"],
        meta=DocumentMeta.from_json(record["meta"]),
    )
    chunks = [Chunk(**c) for c in json.loads(row["chunks"])]
    vectors = np.frombuffer(row["vectors"], dtype=np.float32).reshape(len(chunks), dim)
    return Prepared(doc, chunks, vectors, sha256=row["sha256"])
