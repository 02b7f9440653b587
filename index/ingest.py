"""Ingestion: files (or ready-made documents) -> chunks -> vectors + BM25 -> a new committed generation.

Incremental by content hash: an unchanged file costs a hash and nothing else (no parse, no embedding); its
chunks and vectors are copied from the previous generation. Nothing is written when nothing changed.
The writer lock is held from reading the previous manifest to the commit, so concurrent ingests (CLI, UI
uploads, benchmarks) run one after another and none builds on a generation another has replaced. Parsing,
the slow and unbounded part, comes first and outside the lock: the files that the committed manifest does
not hold at their current hash are parsed (PDF and HTML in a worker with a time and memory budget, see
index/parse_worker.py), then the lock is taken, the manifest read again and the same choice made; a file
another writer changed in between is parsed there, under the lock.
The chunks go to the configured backend: `local` files in the generation, or a Milvus collection (then the
generation records where, and the manifest stays the authority on which files and versions are indexed).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

import numpy as np

from index.backends.base import DocumentChunks
from index.build_spec import CHUNKING, STRUCTURES, build_spec, check_embedding_spec, differences, part
from index.chunking import chunk_document
from index.config import (
    DEFAULT_LOCK_WAIT_S,
    DEFAULT_MAX_FILE_MB,
    DEFAULT_PARSE_MEMORY_MB,
    DEFAULT_PARSE_TIMEOUT_S,
    BackendName,
    ChunkingConfig,
    EmbeddingConfig,
    MilvusConfig,
    RetrievalConfig,
)
from index.documents import DocumentMeta, display_path, is_sidecar, sidecar_for
from index.errors import IndexIncompatible, LoadError, UserFacingError
from index.loaders import iter_files, printable_path, read_file_bytes
from index.parse_worker import ParseWorker
from index.search_text import search_text
from index.store import (
    BM25_DIR,
    CHUNKS_DB,
    DENSE,
    VECTORS,
    FileEntry,
    Manifest,
    StoreWriter,
    check_generation,
    create_chunk_db,
    read_manifest,
    sha256_file,
    write_json_atomic,
)
from index.types import Chunk, LoadedDocument

if TYPE_CHECKING:
    from index.ray_engine import Prepared


class Progress(Protocol):
    """Receives progress of long stages; the CLI renders it with Rich, the UI with st.progress."""

    def start(self, stage: str, total: int | None) -> None: ...

    def advance(self, n: int = 1) -> None: ...


class NullProgress:
    def start(self, stage: str, total: int | None) -> None:
        pass

    def advance(self, n: int = 1) -> None:
        pass


@dataclass
class SourceDoc:
    """A document ready to index. `key` is its identity in the manifest (absolute path, or e.g. 'beir:123')."""

    key: str
    sha256: str
    doc: LoadedDocument
    override: dict[str, object] = field(default_factory=dict)  # the metadata it was given, as JSON
    origin: str = ""  # the library it came from (see `Origin`)


@dataclass(frozen=True)
class Origin:
    """A library the ingested paths are the whole content of (a Zotero data folder): its files are recorded
    with `name`, and a file recorded with it earlier that is neither among the paths nor in `keep` has
    left the library and is removed, while files ingested from anywhere else stay."""

    name: str
    keep: frozenset[str] = frozenset()  # still in the library but unreadable now: their last version stays


@dataclass
class IngestReport:
    index_dir: str
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    metadata_updated: list[str] = field(default_factory=list)  # new metadata, same text and vectors
    unchanged: int = 0
    removed: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[tuple[str, str]] = field(default_factory=list)
    pages: int = 0
    chunks_total: int = 0
    chunks_embedded: int = 0
    seconds: float = 0.0
    committed: bool = False

    def to_json(self) -> dict[str, object]:
        return {
            "index": self.index_dir,
            "files_added": len(self.added),
            "files_updated": len(self.updated),
            "files_metadata_updated": len(self.metadata_updated),
            "files_unchanged": self.unchanged,
            "files_removed": len(self.removed),
            "files_missing": self.missing,
            "pages": self.pages,
            "chunks": self.chunks_total,
            "chunks_embedded": self.chunks_embedded,
            "skipped": [{"path": p, "reason": r} for p, r in self.skipped],
            "warnings": [{"path": p, "warning": w} for p, w in self.warnings],
            "seconds": round(self.seconds, 3),
            "committed": self.committed,
        }


@dataclass
class IndexConfig:
    """The parts of the settings that shape what is stored (what the manifest must agree with)."""

    chunking: ChunkingConfig
    embedding: EmbeddingConfig
    retrieval: RetrievalConfig
    cache_dir: Path
    max_file_bytes: int = DEFAULT_MAX_FILE_MB * 2**20
    lock_wait_s: float = DEFAULT_LOCK_WAIT_S
    parse_timeout_s: float = DEFAULT_PARSE_TIMEOUT_S
    parse_memory_mb: int = DEFAULT_PARSE_MEMORY_MB
    backend: BackendName = "local"
    milvus: MilvusConfig = field(default_factory=MilvusConfig)

    @property
    def spec(self) -> dict[str, object]:
        return build_spec(self.chunking, self.embedding, self.retrieval, self.backend, self.milvus)


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def doc_id(key: str, sha256: str) -> str:
    """The prefix of a file version's chunk ids: a new version gets new ids."""
    return hashlib.sha256(f"{key}\0{sha256}".encode()).hexdigest()[:12]


def indexed_text(chunk: Chunk) -> str:
    """What embeddings and BM25 see: the passage with its title and section, which often carry the topic,
    and without inline citation markers (a search-only copy: the chunk text itself stays exact)."""
    head = " / ".join(part for part in (chunk.title, chunk.section) if part and part not in chunk.text)
    text = search_text(chunk.text)
    return f"{head}\n{text}" if head else text


def file_digest(path: Path, data: bytes | None = None) -> str:
    """The file's hash (of `data` when given: the bytes about to be parsed), folded with its sidecar's
    (paper.pdf.bib), so edited metadata re-reads the file."""
    digest = hashlib.sha256(data).hexdigest() if data is not None else sha256_file(path)
    sidecar = sidecar_for(path)
    if sidecar is None:
        return digest
    return hashlib.sha256(digest.encode() + b"\0" + sidecar.read_bytes()).hexdigest()


@dataclass
class _Previous:
    """The committed index a new ingest builds on, and what of it can be reused as is."""

    manifest: Manifest | None
    same_chunking: bool
    same_structures: bool

    def reusable(self, key: str) -> bool:
        """The file's chunks and vectors can be copied (it was indexed with the current chunker)."""
        return self.same_chunking and self.manifest is not None and key in self.manifest.files

    def unchanged(self, key: str, sha256: str, override: DocumentMeta | None = None) -> bool:
        """Same content, and (when metadata is given) the same metadata as the last ingest was given."""
        if not self.reusable(key):
            return False
        entry = self.manifest.files[key]  # type: ignore[union-attr]
        return entry.sha256 == sha256 and (override is None or entry.override == override.to_json())

    def relabelled(self, key: str, sha256: str, override: DocumentMeta) -> FileEntry | None:
        """The file's entry with changed metadata applied, when that needs no re-read: its content is
        unchanged, the title stays (it is part of every chunk's indexed text, so a new one is embedded)
        and every field the previous override set is still set (the file's own value under it was not
        kept). None when the file must be read again."""
        if not self.unchanged(key, sha256):
            return None
        entry = self.manifest.files[key]  # type: ignore[union-attr]
        before, stored = DocumentMeta.from_json(entry.override), DocumentMeta.from_json(entry.document)
        document = stored.merged(override)
        dropped = [
            f.name for f in fields(DocumentMeta) if getattr(before, f.name) and not getattr(override, f.name)
        ]
        if document.title != stored.title or dropped:
            return None
        return replace(entry, document=document.to_json(), override=override.to_json())


def _previous(writer: StoreWriter, config: IndexConfig, rebuild: bool = False) -> _Previous:
    """Read under the writer lock; `rebuild` never reads the old manifest, so it recovers a damaged one."""
    return _previous_of(None if rebuild else writer.current(), writer.index_dir, config)


def _previous_of(old: Manifest | None, index_dir: Path, config: IndexConfig) -> _Previous:
    if old is None:
        return _Previous(None, False, False)
    spec = config.spec
    check_embedding_spec(old.build, spec, index_dir)
    return _Previous(old, part(old.build, spec, CHUNKING), part(old.build, spec, STRUCTURES))


def _peek(index_dir: Path, config: IndexConfig, rebuild: bool) -> _Previous | None:
    """The committed index as it stands, read without the lock to choose what to parse before taking it.
    None when it cannot be read or written: parsing first would be wasted, and the locked pass says why."""
    if index_dir.exists() and not os.access(index_dir, os.R_OK | os.W_OK | os.X_OK):
        return None
    if rebuild:
        return _Previous(None, False, False)
    try:
        return _previous_of(read_manifest(index_dir), index_dir, config)
    except UserFacingError:
        return None


class _Parsed:
    """Documents parsed by key with the digest of the bytes parsed: the unlocked pass fills it, the locked
    pass takes what still matches the file's hash and parses the rest."""

    def __init__(self, worker: ParseWorker) -> None:
        self.worker = worker
        self.done: dict[str, tuple[str, LoadedDocument | None, str | None]] = {}
        self.on_ray: dict[str, tuple[str, Prepared]] = {}  # key -> (digest hashed, what Ray prepared)

    def prepare_on_ray(
        self,
        to_load: list[tuple[str, Path, str]],
        config: IndexConfig,
        ray_address: str | None,
        progress: Progress,
        meta: dict[str, DocumentMeta],
    ) -> dict[str, Prepared]:
        """What Ray prepared for each (key, path, digest), reusing the unlocked pass's work for files whose
        hash has not changed since."""
        todo = [t for t in to_load if self.on_ray.get(t[0], ("", None))[0] != t[2]]
        if todo:
            from index.ray_engine import prepare

            fresh = prepare(todo, config, ray_address, progress, meta)
            self.on_ray.update({key: (digest, fresh[key]) for key, _, digest in todo})
        return {key: self.on_ray[key][1] for key, _, _ in to_load}

    def load(
        self, key: str, path: Path, digest: str, meta: DocumentMeta | None
    ) -> tuple[str, LoadedDocument | None, str | None]:
        """(digest of the bytes parsed, document or None, reason when None)."""
        hit = self.done.get(key)
        if hit is not None and hit[0] == digest:
            return hit
        try:
            data, digest = read_to_parse(path)
            result: tuple[str, LoadedDocument | None, str | None] = (
                digest,
                self.worker.load(path, meta, data),
                None,
            )
        except LoadError as exc:
            result = (digest, None, str(exc))
        self.done[key] = result
        return result


def read_to_parse(path: Path) -> tuple[bytes, str]:
    """The file's bytes and their digest, read once: the manifest records the hash of the very bytes the
    index holds, so a file replaced while it is read is seen as changed by the next ingest, never as
    "unchanged" beside the old text. LoadError when it cannot be read."""
    data = read_file_bytes(path)
    return data, file_digest(path, data)


def _present(key: str) -> bool:
    """Whether an indexed file is still there; one that cannot be looked at (a folder made unreadable)
    counts as present, so it is neither pruned nor lost: hashing it then says why it is skipped."""
    try:
        return Path(key).exists()
    except OSError:
        return True


def _hash_or_reason(path: Path) -> tuple[str | None, str | None]:
    try:
        return file_digest(path), None
    except OSError as exc:
        return None, f"unreadable: {exc.strerror or exc}"


def ingest_paths(
    paths: Sequence[Path],
    index_dir: Path,
    config: IndexConfig,
    *,
    prune: bool = False,
    rebuild: bool = False,
    progress: Progress | None = None,
    on_wait: Callable[[str], None] | None = None,
    meta: dict[str, DocumentMeta] | None = None,
    origin: Origin | None = None,
    engine: Literal["local", "ray"] = "local",
    ray_address: str | None = None,
) -> IngestReport:
    """Ingest files and folders; unreadable files are skipped with a reason and the batch goes on.

    Files indexed earlier but not under `paths` stay as they are; with `prune`, those deleted from disk go.
    A changed chunker re-reads every indexed file that still exists, since old chunks no longer match.
    `on_wait` hears once that another writer holds the index (this one waits up to `lock_wait_s`).
    `meta` overrides the extracted metadata of files (by resolved path; the file keeps the override until
    its content changes). A file whose override changed is re-read, unless only fields other than the
    title changed: then its stored metadata is updated and its chunks and vectors are kept as they are.
    Sidecar files (paper.pdf.bib) are read with their document, not reported as skipped.
    `origin` says the paths are one library's whole content (see `Origin`).
    `engine="ray"` parses, chunks and embeds the changed files on Ray (index/ray_engine.py); the rest
    (hashing, the lock, the manifest, the writes) is the same.
    """
    meta = meta or {}
    progress = progress or NullProgress()
    t0 = time.perf_counter()
    report = IngestReport(index_dir=str(index_dir))
    with ParseWorker(config.parse_timeout_s, config.parse_memory_mb) as worker:
        parsed = _Parsed(worker)
        args = (paths, config, prune, meta, origin, engine, ray_address, parsed)
        reading = progress
        # parse (here or on Ray) outside the lock; the choice is made again under it
        peek = _peek(index_dir, config, rebuild)
        if peek is not None:
            _plan(peek, *args, progress, IngestReport(index_dir=str(index_dir)))
            reading = NullProgress()  # the locked pass takes the parsed documents: no second bar
        with StoreWriter(index_dir, config.lock_wait_s, on_wait) as writer:
            prev = _previous(writer, config, rebuild)
            keep, new_docs, prepared, relabelled = _plan(prev, *args, reading, report)
            _apply(writer, prev, keep, new_docs, config, report, progress, prepared, relabelled)
    report.seconds = time.perf_counter() - t0
    return report


def _plan(
    prev: _Previous,
    paths: Sequence[Path],
    config: IndexConfig,
    prune: bool,
    meta: dict[str, DocumentMeta],
    origin: Origin | None,
    engine: Literal["local", "ray"],
    ray_address: str | None,
    parsed: _Parsed,
    progress: Progress,
    report: IngestReport,
) -> tuple[set[str], list[SourceDoc], dict[str, Prepared], dict[str, FileEntry]]:
    """What the new generation keeps of `prev`, the documents it adds (parsed here, or taken from
    `parsed` when their bytes are unchanged), what Ray prepared and the relabelled entries."""
    old, same_chunking = prev.manifest, prev.same_chunking

    candidates: dict[str, Path] = {}
    for path, reason in iter_files(paths, config.max_file_bytes):
        if reason is None:
            candidates[str(path.resolve())] = path
        elif not is_sidecar(path):
            report.skipped.append((printable_path(path), reason))
    keep: set[str] = set()
    left: set[str] = set()  # files of the origin's library that left it: removed
    if origin is not None and old is not None:
        listed = {str(Path(p).resolve()) for p in paths} | origin.keep
        left = {k for k, e in old.files.items() if e.origin == origin.name and k not in listed}
    for key in old.files if old else ():
        if key in candidates or key in left:
            continue
        exists = _present(key)
        if not exists and not prune:
            report.missing.append(key)
        if same_chunking and (exists or not prune):
            keep.add(key)
        elif exists:
            candidates[key] = Path(key)

    new_docs: list[SourceDoc] = []

    def take(key: str, digest: str, doc: LoadedDocument | None, error: str | None) -> None:
        if doc is None:
            report.skipped.append((key, str(error)))
            if prev.reusable(key):
                keep.add(key)  # a now-unreadable file keeps its last good version
        else:
            doc.source = key
            report.warnings.extend((key, w) for w in doc.warnings)
            override = meta[key].to_json() if key in meta else {}
            new_docs.append(SourceDoc(key, digest, doc, override, origin.name if origin else ""))

    relabelled: dict[str, FileEntry] = {}

    to_load: list[tuple[str, Path, str]] = []
    progress.start("reading", len(candidates))
    for key, path in candidates.items():
        digest, unreadable = _hash_or_reason(path)
        if digest is None:
            report.skipped.append((key, unreadable or "unreadable"))
            if prev.reusable(key):
                keep.add(key)
        elif prev.unchanged(key, digest, meta.get(key)):
            keep.add(key)
            report.unchanged += 1
        elif key in meta and (entry := prev.relabelled(key, digest, meta[key])) is not None:
            keep.add(key)
            relabelled[key] = entry
        elif engine == "ray":
            to_load.append((key, path, digest))  # parsed on Ray below
        else:
            take(key, *parsed.load(key, path, digest, meta.get(key)))
        progress.advance()
    prepared: dict[str, Prepared] = {}
    if to_load:
        prepared = parsed.prepare_on_ray(to_load, config, ray_address, progress, meta)
        for key, _, digest in to_load:
            take(key, prepared[key].sha256 or digest, prepared[key].doc, prepared[key].error)
    return keep, new_docs, prepared, relabelled


def ingest_documents(
    docs: Iterable[SourceDoc],
    index_dir: Path,
    config: IndexConfig,
    *,
    progress: Progress | None = None,
) -> IngestReport:
    """Make the index hold exactly `docs` (used for benchmark corpora), reusing unchanged ones."""
    progress = progress or NullProgress()
    t0 = time.perf_counter()
    report = IngestReport(index_dir=str(index_dir))
    with StoreWriter(index_dir, config.lock_wait_s) as writer:
        prev = _previous(writer, config)
        keep: set[str] = set()
        new_docs: list[SourceDoc] = []
        for sd in docs:
            if prev.unchanged(sd.key, sd.sha256):
                keep.add(sd.key)
                report.unchanged += 1
            else:
                new_docs.append(sd)
        _apply(writer, prev, keep, new_docs, config, report, progress)
    report.seconds = time.perf_counter() - t0
    return report


def _skips(report: IngestReport, shown: int = 3) -> str:
    """The skipped files and why, for an error that ends the ingest before any report is printed."""
    if not report.skipped:
        return ""
    listed = "; ".join(f"{display_path(p)}: {why}" for p, why in report.skipped[:shown])
    more = f"; and {len(report.skipped) - shown} more" if len(report.skipped) > shown else ""
    return f" (skipped {listed}{more})"


def _apply(
    writer: StoreWriter,
    prev: _Previous,
    keep: set[str],
    new_docs: list[SourceDoc],
    config: IndexConfig,
    report: IngestReport,
    progress: Progress,
    prepared: Mapping[str, Prepared] | None = None,
    relabelled: Mapping[str, FileEntry] | None = None,
) -> None:
    """Write a new generation with the kept files copied and the new ones chunked and embedded (or taken
    from `prepared`, what the Ray engine already chunked and embedded); `relabelled` are kept files with
    new metadata (their entries replace the old ones).

    Also written when only the BM25 or dense settings changed, so that they take effect."""
    index_dir, old = writer.index_dir, prev.manifest
    old_files = {**(old.files if old else {}), **(relabelled or {})}
    report.metadata_updated = sorted(relabelled or ())
    for sd in new_docs:
        (report.updated if sd.key in old_files else report.added).append(sd.key)
    report.removed = sorted(set(old_files) - keep - {sd.key for sd in new_docs})
    report.chunks_total = sum(old_files[k].chunks for k in keep)
    report.pages = sum(old_files[k].pages for k in keep)
    if old is None and not new_docs:
        raise UserFacingError(
            f"nothing to index: no readable pdf, txt, md or html files were found{_skips(report)}"
        )
    if not new_docs and not report.removed and not relabelled and prev.same_structures:
        return  # nothing changed: no embedding, no write
    if config.backend == "milvus":
        _apply_milvus(writer, prev, keep, new_docs, config, report, progress, prepared or {}, old_files)
        return

    if old is not None and keep:
        check_generation(index_dir, old, checksums=True)  # kept data is copied: never copy damage forward
    with writer.new_generation() as tmp:
        db = create_chunk_db(tmp / CHUNKS_DB)
        kept_rows = _copy_kept(db, index_dir, old, keep)
        entries = {k: old_files[k] for k in keep}

        chunk_lists = _chunk_new(new_docs, config, entries, report, progress, prepared or {})
        new_chunks = [c for chunks in chunk_lists for c in chunks]
        _insert_new(db, new_docs, chunk_lists, start_row=len(kept_rows))
        db.commit()

        new_vectors, dim = _embed(new_docs, new_chunks, config, progress, prepared or {})
        dim = dim or (old.dim if old else 0)
        vectors = _gather_vectors(index_dir, old, kept_rows, new_vectors, dim)
        np.save(tmp / VECTORS, vectors)

        progress.start("indexing", None)
        texts = [indexed_text(row_to_chunk(r)) for r in db.execute("SELECT * FROM chunks ORDER BY row")]
        db.close()
        if not texts:
            raise UserFacingError(
                f"nothing would be left in {index_dir}: to start over, delete it or use `ra ingest PATH --rebuild`"
            )
        dense_kind = build_structures(tmp, texts, vectors, config.retrieval)
        manifest = Manifest(
            build=config.spec,
            dim=dim,
            files=entries,
            dense_kind=dense_kind,
            created=old.created if old else time.time(),
        )
        writer.commit(tmp, manifest)
    report.chunks_total = len(texts)
    report.chunks_embedded = len(new_chunks)
    report.committed = True


def _chunk_new(
    new_docs: list[SourceDoc],
    config: IndexConfig,
    entries: dict[str, FileEntry],
    report: IngestReport,
    progress: Progress,
    prepared: Mapping[str, Prepared],
) -> list[list[Chunk]]:
    """Chunk each new document (unless prepared) and record its manifest entry."""
    chunk_lists: list[list[Chunk]] = []
    progress.start("chunking", len(new_docs))
    for sd in new_docs:
        if sd.key in prepared:
            chunks = prepared[sd.key].chunks
        else:
            chunks = chunk_document(sd.doc, config.chunking, doc_id(sd.key, sd.sha256))
        chunk_lists.append(chunks)
        entries[sd.key] = FileEntry(
            sha256=sd.sha256,
            kind=sd.doc.kind,
            title=sd.doc.title,
            pages=len(sd.doc.pages),
            chunks=len(chunks),
            warnings=list(sd.doc.warnings),
            document=sd.doc.meta.to_json(),
            override=sd.override,
            origin=sd.origin,
        )
        report.pages += len(sd.doc.pages)
        progress.advance()
    return chunk_lists


def _embed(
    new_docs: list[SourceDoc],
    chunks: list[Chunk],
    config: IndexConfig,
    progress: Progress,
    prepared: Mapping[str, Prepared],
) -> tuple[np.ndarray | None, int]:
    """Vectors of `chunks` (the new documents' chunks in order) and their dim; (None, 0) when none."""
    if not chunks:
        return None, 0
    if prepared:
        parts = [prepared[sd.key].vectors for sd in new_docs]
        return np.concatenate(parts).astype(np.float32, copy=False), parts[0].shape[1]
    from index.embeddings import load_embedder  # heavy: only when there is something to embed

    embedder = load_embedder(config.embedding, config.cache_dir)
    progress.start("embedding", len(chunks))
    vectors = embedder.embed_documents([indexed_text(c) for c in chunks], on_progress=progress.advance)
    return vectors, embedder.dim


MILVUS_BATCH_CHUNKS = 1024  # chunks per replace_documents call: round trips dominate small writes


def _apply_milvus(
    writer: StoreWriter,
    prev: _Previous,
    keep: set[str],
    new_docs: list[SourceDoc],
    config: IndexConfig,
    report: IngestReport,
    progress: Progress,
    prepared: Mapping[str, Prepared],
    old_files: Mapping[str, FileEntry],
) -> None:
    """Write changes to Milvus in batches of files, then commit a generation that records where they went.

    All of it under the writer lock `writer` holds, so two ingests never interleave their Milvus writes.
    Milvus is reached before anything is written (an unreachable URI fails with nothing changed); replace
    and delete are idempotent and the manifest is committed last, so a crash before the commit leaves the
    old manifest in charge and the next ingest (which re-reads every file the manifest does not list at its
    current hash) writes the same rows again.
    """
    from index.backends.milvus import MILVUS_FILE, MilvusBackend, milvus_record

    index_dir, old = writer.index_dir, prev.manifest
    if old is not None and not prev.same_structures:
        changed = differences(old.build, config.spec, STRUCTURES)[0]
        raise IndexIncompatible(
            f"index at {index_dir} keeps its BM25 and HNSW settings fixed in its Milvus collection, built with "
            f"{changed}: run `ra ingest PATH --rebuild --index {index_dir}` or set them back"
        )
    store = MilvusBackend(config.milvus, retrieval=config.retrieval)
    if old is not None:
        store.require(old.dim)
    with writer.new_generation() as tmp:
        entries = {k: old_files[k] for k in keep}
        chunk_lists = _chunk_new(new_docs, config, entries, report, progress, prepared)
        new_chunks = [c for chunks in chunk_lists for c in chunks]
        vectors, dim = _embed(new_docs, new_chunks, config, progress, prepared)
        dim = dim or (old.dim if old else 0)
        total = sum(e.chunks for e in entries.values())
        if total == 0:
            raise UserFacingError(
                f"nothing would be left in {index_dir}: to start over, delete it or use `ra ingest PATH --rebuild`"
            )
        if old is None:
            store.create(dim)  # a fresh index owns its collection
        progress.start("indexing", len(new_docs))
        offset, batch = 0, []
        for i, (sd, chunks) in enumerate(zip(new_docs, chunk_lists, strict=True)):
            doc_vectors = (
                vectors[offset : offset + len(chunks)] if vectors is not None else np.zeros((0, dim))
            )
            offset += len(chunks)
            texts = [indexed_text(c) for c in chunks]
            batch.append(DocumentChunks(sd.key, sd.sha256, sd.doc.text, chunks, texts, doc_vectors))
            if sum(len(d.chunks) for d in batch) >= MILVUS_BATCH_CHUNKS or i == len(new_docs) - 1:
                store.replace_documents(batch)
                progress.advance(len(batch))
                batch = []
        store.delete_documents(report.removed)
        store.flush()
        write_json_atomic(tmp / MILVUS_FILE, milvus_record(config.milvus, total))
        manifest = Manifest(
            build=config.spec,
            dim=dim,
            files=entries,
            dense_kind="milvus",
            created=old.created if old else time.time(),
        )
        writer.commit(tmp, manifest)
    store.close()
    report.chunks_total = total
    report.chunks_embedded = len(new_chunks)
    report.committed = True


def _copy_kept(db: sqlite3.Connection, index_dir: Path, old: Manifest | None, keep: set[str]) -> list[int]:
    """Copy kept files' chunks and texts from the previous generation; return their old rows in new order."""
    if old is None or not keep:
        return []
    old_db = index_dir / old.generation / CHUNKS_DB
    db.execute("ATTACH DATABASE ? AS old", (f"file:{old_db}?mode=ro",))
    db.execute("CREATE TEMP TABLE keep(file TEXT PRIMARY KEY)")
    db.executemany("INSERT INTO keep VALUES (?)", ((k,) for k in keep))
    old_rows = [r[0] for r in db.execute("SELECT row FROM old.chunks WHERE file IN keep ORDER BY row")]
    db.execute(
        """INSERT INTO chunks SELECT ROW_NUMBER() OVER (ORDER BY row) - 1, chunk_id, file, source, title, page,
           start, "end", line_start, line_end, section, text, meta FROM old.chunks WHERE file IN keep"""
    )
    db.execute("INSERT INTO documents SELECT file, text FROM old.documents WHERE file IN keep")
    db.commit()
    db.execute("DETACH DATABASE old")
    return old_rows


def _insert_new(
    db: sqlite3.Connection, docs: list[SourceDoc], chunk_lists: list[list[Chunk]], start_row: int
) -> None:
    row = start_row
    for sd, chunks in zip(docs, chunk_lists, strict=True):
        db.execute("INSERT INTO documents VALUES (?, ?)", (sd.key, sd.doc.text))
        db.executemany(
            "INSERT INTO chunks VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                (
                    row + i,
                    c.chunk_id,
                    sd.key,
                    c.source,
                    c.title,
                    c.page,
                    c.start,
                    c.end,
                    c.line_start,
                    c.line_end,
                    c.section,
                    c.text,
                    json.dumps(c.meta, ensure_ascii=False),
                )
                for i, c in enumerate(chunks)
            ),
        )
        row += len(chunks)


def _gather_vectors(
    index_dir: Path, old: Manifest | None, kept_rows: list[int], new_vectors: np.ndarray | None, dim: int
) -> np.ndarray:
    parts: list[np.ndarray] = [np.zeros((0, dim), dtype=np.float32)]
    if kept_rows and old is not None:
        old_vectors = np.load(index_dir / old.generation / VECTORS, mmap_mode="r")
        parts.append(np.asarray(old_vectors[np.asarray(kept_rows)], dtype=np.float32))
    if new_vectors is not None:
        parts.append(new_vectors.astype(np.float32, copy=False))
    return np.ascontiguousarray(np.concatenate(parts))


def build_structures(tmp: Path, texts: list[str], vectors: np.ndarray, retrieval: RetrievalConfig) -> str:
    """Build and save BM25 and the dense index; returns the dense index kind for the manifest."""
    from index.dense import DenseIndex
    from index.sparse import BM25Index

    BM25Index.from_texts(texts, retrieval.bm25).save(tmp / BM25_DIR)
    dense = DenseIndex.build(vectors, retrieval.dense)
    dense.save(tmp / DENSE)
    return dense.kind


def row_to_chunk(row: sqlite3.Row | tuple) -> Chunk:
    """Turn a `chunks` table row (in schema column order) back into a Chunk."""
    (_, chunk_id, _file, source, title, page, start, end, line_start, line_end, section, text, meta) = tuple(
        row
    )
    return Chunk(
        chunk_id=chunk_id,
        source=source,
        title=title,
        page=page,
        start=start,
        end=end,
        line_start=line_start,
        line_end=line_end,
        text=text,
        section=section,
        meta=json.loads(meta),
    )
