"""On-disk layout of an index: a manifest that points at one complete, immutable generation directory.

    DIR/manifest.json      format version, embedding model + dim, chunker settings, per-file hashes, generation
    DIR/gen-000007/        chunks.sqlite (chunks + document texts), vectors.npy, dense.faiss, bm25/
    DIR/.tmp-*/            a generation being written (ignored by readers, swept by the next writer)

Why generations: a commit writes a whole new directory, fsyncs it, renames it into place and only then
replaces manifest.json (temp file + os.replace). A `kill -9` at any moment therefore leaves the manifest
pointing at the last complete generation, which readers keep loading. The previous generation is kept one
round so a reader that read the old manifest just before a commit can still open it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from index.errors import IndexIncompatible, IndexNotFound, UserFacingError

# 2: per-file document metadata (title, authors, year, DOI, arXiv) and chunk section roles
FORMAT_VERSION = 2
MANIFEST = "manifest.json"
CHUNKS_DB = "chunks.sqlite"
VECTORS = "vectors.npy"
DENSE = "dense.faiss"
BM25_DIR = "bm25"

SCHEMA = """
CREATE TABLE chunks (
    row INTEGER PRIMARY KEY,      -- position in vectors.npy, the dense index and the BM25 matrix
    chunk_id TEXT NOT NULL UNIQUE,
    file TEXT NOT NULL,           -- key of the file in the manifest
    source TEXT NOT NULL,
    title TEXT NOT NULL,
    page INTEGER,
    start INTEGER NOT NULL,
    "end" INTEGER NOT NULL,
    line_start INTEGER NOT NULL,
    line_end INTEGER NOT NULL,
    section TEXT NOT NULL,
    text TEXT NOT NULL,
    meta TEXT NOT NULL
);
CREATE INDEX chunks_file ON chunks(file, row);
CREATE TABLE documents (file TEXT PRIMARY KEY, text TEXT NOT NULL);
"""


@dataclass
class FileEntry:
    """What the manifest remembers of one ingested file (enough to skip it when unchanged)."""

    sha256: str
    kind: str
    title: str
    pages: int
    chunks: int
    warnings: list[str] = field(default_factory=list)
    document: dict[str, Any] = field(default_factory=dict)  # DocumentMeta.to_json() of the file


@dataclass
class Manifest:
    embedding: dict[str, Any]
    chunking: dict[str, Any]
    generation: str = ""
    files: dict[str, FileEntry] = field(default_factory=dict)
    dense_kind: str = ""
    created: float = field(default_factory=time.time)
    updated: float = field(default_factory=time.time)
    format_version: int = FORMAT_VERSION

    def to_json(self) -> dict[str, Any]:
        return {
            "format_version": self.format_version,
            "generation": self.generation,
            "created": self.created,
            "updated": self.updated,
            "embedding": self.embedding,
            "chunking": self.chunking,
            "dense_kind": self.dense_kind,
            "files": {k: vars(v) for k, v in sorted(self.files.items())},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Manifest:
        return cls(
            format_version=data["format_version"],
            generation=data["generation"],
            created=data["created"],
            updated=data["updated"],
            embedding=data["embedding"],
            chunking=data["chunking"],
            dense_kind=data.get("dense_kind", ""),
            files={k: FileEntry(**v) for k, v in data["files"].items()},
        )


def manifest_path(index_dir: Path) -> Path:
    return index_dir / MANIFEST


def read_manifest(index_dir: Path) -> Manifest | None:
    """The committed manifest, or None when the directory holds no index yet."""
    path = manifest_path(index_dir)
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise UserFacingError(
            f"index manifest {path} is unreadable ({exc}): rebuild with `ra ingest --rebuild`"
        ) from exc
    version = data.get("format_version")
    if version != FORMAT_VERSION:
        raise IndexIncompatible(
            f"index at {index_dir} has format version {version}, this version reads {FORMAT_VERSION}: "
            "rebuild it with `ra ingest PATH --rebuild`"
        )
    return Manifest.from_json(data)


def require_manifest(index_dir: Path) -> Manifest:
    manifest = read_manifest(index_dir)
    if manifest is None:
        raise IndexNotFound(f"no index at {index_dir}: build one with `ra ingest PATH --index {index_dir}`")
    return manifest


def check_embedding(manifest: Manifest, model: str, index_dir: Path) -> None:
    """Refuse to mix vectors from two embedding models in one index."""
    built_with = manifest.embedding.get("model")
    if built_with != model:
        raise IndexIncompatible(
            f"index at {index_dir} was built with embedding model '{built_with}' "
            f"(dim {manifest.embedding.get('dim')}), not '{model}': use that model, another --index, "
            "or `ra ingest PATH --rebuild`"
        )


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(root: Path) -> None:
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            with open(os.path.join(dirpath, name), "rb") as fh:
                os.fsync(fh.fileno())
        _fsync_dir(Path(dirpath))


def write_json_atomic(path: Path, payload: Any) -> None:
    """Write JSON so that readers see either the old file or the whole new one, never a torn write."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(payload, fh, ensure_ascii=False, indent=1)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _generation_number(name: str) -> int:
    return int(name.split("-")[1]) if name.startswith("gen-") else 0


class StoreWriter:
    """Holds the writer lock of an index directory and commits new generations atomically."""

    def __init__(self, index_dir: Path) -> None:
        self.index_dir = index_dir
        self._lock_fh: Any = None

    def __enter__(self) -> StoreWriter:
        self.index_dir.mkdir(parents=True, exist_ok=True)
        self._lock_fh = open(self.index_dir / ".lock", "w")
        try:
            fcntl.flock(self._lock_fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_fh.close()
            raise UserFacingError(
                f"another `ra ingest` is writing {self.index_dir}: wait for it to finish"
            ) from None
        self._sweep_temps()
        return self

    def __exit__(self, *exc: object) -> None:
        fcntl.flock(self._lock_fh, fcntl.LOCK_UN)
        self._lock_fh.close()

    def _sweep_temps(self) -> None:
        """Remove half-written generations left by a crashed writer (we hold the lock, so none is live)."""
        for path in self.index_dir.glob(".tmp-*"):
            shutil.rmtree(path, ignore_errors=True)

    @contextlib.contextmanager
    def new_generation(self) -> Iterator[Path]:
        """A fresh temp directory to fill; removed unless `commit` moved it into place."""
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=self.index_dir))
        try:
            yield tmp
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def commit(self, tmp: Path, manifest: Manifest) -> None:
        """Make `tmp` the current generation: fsync, rename, then swap the manifest atomically."""
        try:
            previous = read_manifest(self.index_dir)
        except IndexIncompatible:
            previous = None  # `--rebuild` over an older format: nothing of it is read or kept
        existing = [_generation_number(p.name) for p in self.index_dir.glob("gen-*")]
        name = f"gen-{max(existing, default=0) + 1:06d}"
        _fsync_tree(tmp)
        os.rename(tmp, self.index_dir / name)
        _fsync_dir(self.index_dir)
        manifest.generation = name
        manifest.updated = time.time()
        write_json_atomic(manifest_path(self.index_dir), manifest.to_json())
        keep = {name, previous.generation if previous else ""}
        for path in self.index_dir.glob("gen-*"):
            if path.name not in keep:
                shutil.rmtree(path, ignore_errors=True)


def create_chunk_db(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path)
    conn.executescript("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;" + SCHEMA)
    return conn


def open_chunk_db(path: Path) -> sqlite3.Connection:
    """Read-only connection usable from several threads (the UI serves many sessions from one index)."""
    if not path.exists():
        raise UserFacingError(f"index data {path} is missing: rebuild with `ra ingest PATH --rebuild`")
    conn = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    return conn
