"""On-disk layout of an index: a manifest that points at one complete, immutable generation directory.

    DIR/manifest.json      format version, build spec, per-source-file hashes, the generation and the size
                           and sha256 of each of its files
    DIR/gen-000007/        chunks.sqlite (chunks + document texts), vectors.npy, dense.faiss, bm25/
    DIR/.tmp-*/            a generation being written (ignored by readers, swept by the next writer)
    DIR/.lock              the writer lock: held from reading the manifest to committing the next one

Why generations: a commit writes a whole new directory, fsyncs it, renames it into place and only then
replaces manifest.json (temp file + os.replace). A `kill -9` at any moment therefore leaves the manifest
pointing at the last complete generation, which readers keep loading. The previous generation is kept one
round so a reader that read the old manifest just before a commit can still open it.

Why the lock spans the whole ingest: a writer builds on the generation it read, so two writers that both
read generation 7 would each commit "7 + my files", and the second would silently drop the first's files.
Damage (a truncated or edited file) is caught by sizes on every open and by checksums in `ra index verify`.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import re
import shutil
import sqlite3
import stat
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from index.errors import IndexDamaged, IndexIncompatible, IndexNotFound, UserFacingError

# 2: build spec, per-file sizes and checksums of the generation, per-file document metadata (title,
# authors, year, DOI, arXiv) and chunk section roles
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
    # The metadata the ingest was given for it (--meta, a Zotero item), kept to tell a changed override
    # from an unchanged one without re-reading the file; empty when none (and in older manifests)
    override: dict[str, Any] = field(default_factory=dict)
    # The library it came from ("zotero:DIR"), whose re-import removes what left the library; "" otherwise
    origin: str = ""


@dataclass
class Artifact:
    """One file of a generation as committed: a cheap size check on open, the checksum on `verify`."""

    size: int
    sha256: str


@dataclass
class Manifest:
    build: dict[str, Any]  # the build spec (index.build_spec): setting name -> value
    dim: int
    generation: str = ""
    files: dict[str, FileEntry] = field(default_factory=dict)
    artifacts: dict[str, Artifact] = field(default_factory=dict)
    dense_kind: str = ""
    created: float = field(default_factory=time.time)
    updated: float = field(default_factory=time.time)
    format_version: int = FORMAT_VERSION

    @property
    def embedding_model(self) -> str:
        return str(self.build.get("index.embedding.model", ""))

    def to_json(self) -> dict[str, Any]:
        return {
            "format_version": self.format_version,
            "generation": self.generation,
            "created": self.created,
            "updated": self.updated,
            "build": self.build,
            "dim": self.dim,
            "dense_kind": self.dense_kind,
            "artifacts": {k: vars(v) for k, v in sorted(self.artifacts.items())},
            "files": {k: vars(v) for k, v in sorted(self.files.items())},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Manifest:
        """Raises KeyError/TypeError/ValueError on any shape other than what `to_json` writes."""
        manifest = cls(
            format_version=data["format_version"],
            generation=_typed(data["generation"], str),
            created=float(data["created"]),
            updated=float(data["updated"]),
            build=_typed(data["build"], dict),
            dim=_typed(data["dim"], int),
            dense_kind=_typed(data["dense_kind"], str),
            artifacts={
                _typed(k, str): Artifact(**_typed(v, dict))
                for k, v in _typed(data["artifacts"], dict).items()
            },
            files={
                _typed(k, str): FileEntry(**_typed(v, dict)) for k, v in _typed(data["files"], dict).items()
            },
        )
        if not manifest.generation.startswith("gen-") or "/" in manifest.generation:
            raise ValueError(f"generation {manifest.generation!r} is not a generation name")
        for art in manifest.artifacts.values():
            _typed(art.size, int)
            _typed(art.sha256, str)
        return manifest


def _typed(value: Any, kind: type) -> Any:
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise TypeError(f"expected {kind.__name__}, found {type(value).__name__}")
    return value


def manifest_path(index_dir: Path) -> Path:
    return index_dir / MANIFEST


def rebuild_hint(index_dir: Path) -> str:
    return f"rebuild it from your documents with `ra ingest PATH --rebuild --index {index_dir}`"


def check_index_dir(index_dir: Path) -> None:
    """`--index` must name a folder (or nothing yet): a file there would otherwise read as "no index"."""
    try:
        mode = index_dir.stat().st_mode
    except FileNotFoundError:
        return
    except OSError as exc:  # e.g. a parent folder we may not enter
        raise UserFacingError(f"cannot open {index_dir} ({exc.strerror}): check its permissions") from None
    if not stat.S_ISDIR(mode):
        raise UserFacingError(f"{index_dir} is a file, not an index folder: pass a folder to --index")


def read_manifest(index_dir: Path) -> Manifest | None:
    """The committed manifest, or None when the directory holds no index yet; any damage is one line."""
    check_index_dir(index_dir)
    path = manifest_path(index_dir)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise UserFacingError(
            f"cannot read {path} ({exc.strerror}): check the index folder's permissions"
        ) from None
    try:
        data = json.loads(raw.decode("utf-8"))
    except ValueError as exc:  # bad JSON and non-UTF-8 bytes
        reason = " ".join(str(exc).split())
        raise IndexDamaged(
            f"index manifest {path} is unreadable ({reason}): {rebuild_hint(index_dir)}"
        ) from None
    version = data.get("format_version") if isinstance(data, dict) else None
    if isinstance(version, int) and version != FORMAT_VERSION:
        raise IndexIncompatible(
            f"index at {index_dir} has format version {version}, this version reads {FORMAT_VERSION}: "
            f"{rebuild_hint(index_dir)}"
        )
    try:
        return Manifest.from_json(data)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        what = f"missing key {exc}" if isinstance(exc, KeyError) else " ".join(str(exc).split())
        shape = "is not a JSON object" if not isinstance(data, dict) else f"is damaged ({what})"
        raise IndexDamaged(f"index manifest {path} {shape}: {rebuild_hint(index_dir)}") from None


def require_manifest(index_dir: Path) -> Manifest:
    manifest = read_manifest(index_dir)
    if manifest is None:
        raise IndexNotFound(f"no index at {index_dir}: build one with `ra ingest PATH --index {index_dir}`")
    return manifest


def generation_problems(index_dir: Path, manifest: Manifest, checksums: bool = False) -> list[str]:
    """What is wrong with the committed generation's files: missing, resized, or (with `checksums`)
    changed bytes. Sizes cost one stat per file, so every open checks them."""
    problems = []
    gen = index_dir / manifest.generation
    for rel, art in sorted(manifest.artifacts.items()):
        path = gen / rel
        try:
            size = path.stat().st_size
        except OSError:
            problems.append(f"{rel} is missing")
            continue
        if size != art.size:
            problems.append(f"{rel} is {size} bytes, the manifest says {art.size}")
        elif checksums and sha256_file(path) != art.sha256:
            problems.append(f"{rel} does not match its checksum")
    if not manifest.artifacts:
        problems.append("the manifest lists no files")
    return problems


def check_generation(index_dir: Path, manifest: Manifest, checksums: bool = False) -> None:
    """Raise one line naming the damage and the fix when the generation is not as committed."""
    problems = generation_problems(index_dir, manifest, checksums)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise IndexDamaged(
            f"index generation {manifest.generation} at {index_dir} is damaged: {problems[0]}{more}: "
            f"{rebuild_hint(index_dir)}"
        )


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def describe_generation(root: Path) -> dict[str, Artifact]:
    """Size and sha256 of every file under a generation directory, keyed by relative path."""
    return {
        str(path.relative_to(root)): Artifact(path.stat().st_size, sha256_file(path))
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


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
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # as readable as any other file of the index, not mkstemp's 0600
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


# A write that ran out of room: the errno, SQLite's wording, numpy's short write, FAISS's failed fwrite
_FULL_WORDING = re.compile(
    r"disk is full|no space left|\d+ requested and \d+ written|write error|fwrite", re.I
)
_NEARLY_FULL_BYTES = 1 << 20


def _disk_full(index_dir: Path, exc: BaseException) -> bool:
    """Whether a failed write failed for want of space. Libraries word it differently (or, like numpy's
    short write, carry no errno), so a failure on a disk with under 1 MiB left counts too."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    if _FULL_WORDING.search(str(exc)):
        return True
    try:
        return shutil.disk_usage(index_dir).free < _NEARLY_FULL_BYTES
    except OSError:
        return False


def disk_full_error(index_dir: Path) -> UserFacingError:
    return UserFacingError(
        f"disk full while writing the index at {index_dir}: free space and run again; the previous index is intact"
    )


def _not_writable(index_dir: Path, exc: OSError) -> UserFacingError:
    if isinstance(exc, FileExistsError | NotADirectoryError):
        return UserFacingError(f"{index_dir} is a file, not an index folder: pass a folder to --index")
    if _disk_full(index_dir, exc):
        return disk_full_error(index_dir)
    return UserFacingError(
        f"cannot write the index at {index_dir} ({exc.strerror or exc}): make the folder writable "
        "or pass another --index"
    )


class StoreWriter:
    """Holds the writer lock of an index directory and commits new generations atomically.

    The lock is taken before the caller reads the manifest it builds on (`current`) and held until the
    commit, so writers are serialised; a second writer waits up to `wait_s`, then gets a clear refusal.
    """

    def __init__(
        self, index_dir: Path, wait_s: float = 0.0, on_wait: Callable[[str], None] | None = None
    ) -> None:
        self.index_dir = index_dir
        self.wait_s = wait_s
        self.on_wait = on_wait
        self._lock_fh: Any = None
        self._created = False

    def __enter__(self) -> StoreWriter:
        try:
            check_index_dir(self.index_dir)
            self._created = not self.index_dir.exists()
            self.index_dir.mkdir(parents=True, exist_ok=True)
            self._lock_fh = open(self.index_dir / ".lock", "a")  # held until __exit__
        except OSError as exc:
            raise _not_writable(self.index_dir, exc) from None
        try:
            self._acquire()
            self._sweep_temps()
        except BaseException:
            self._lock_fh.close()
            raise
        return self

    def _acquire(self) -> None:
        deadline = time.monotonic() + self.wait_s
        told = False
        while True:
            try:
                fcntl.flock(self._lock_fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise UserFacingError(
                        f"another ingest is writing {self.index_dir} (waited {self.wait_s:.0f} s): "
                        "run this one again when it has finished"
                    ) from None
            if not told and self.on_wait is not None:
                self.on_wait(f"waiting for another ingest to finish writing {self.index_dir}")
                told = True
            time.sleep(0.05)

    def __exit__(self, *exc: object) -> None:
        fcntl.flock(self._lock_fh, fcntl.LOCK_UN)
        self._lock_fh.close()
        if self._created and [p.name for p in self.index_dir.iterdir()] == [".lock"]:
            shutil.rmtree(self.index_dir, ignore_errors=True)  # a failed first ingest leaves no empty index

    def current(self) -> Manifest | None:
        """The committed manifest (read under the lock, so no other writer can commit past it), with its
        generation checked for damage: building on a damaged one would copy the damage forward."""
        manifest = read_manifest(self.index_dir)
        if manifest is not None:
            check_generation(self.index_dir, manifest)
        return manifest

    def _sweep_temps(self) -> None:
        """Remove half-written generations left by a crashed writer (we hold the lock, so none is live)."""
        for path in self.index_dir.glob(".tmp-*"):
            shutil.rmtree(path, ignore_errors=True)

    @contextlib.contextmanager
    def new_generation(self) -> Iterator[Path]:
        """A fresh temp directory to fill; removed unless `commit` moved it into place."""
        try:
            tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=self.index_dir))
        except OSError as exc:
            raise _not_writable(self.index_dir, exc) from None
        try:
            yield tmp
        except OSError as exc:
            raise _not_writable(self.index_dir, exc) from None
        except (sqlite3.Error, RuntimeError) as exc:  # SQLite's and FAISS's write errors
            if _disk_full(self.index_dir, exc):
                raise disk_full_error(self.index_dir) from None
            raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def _live_generation(self) -> str:
        """The generation readers may still have open; tolerant, since `--rebuild` must work past a
        manifest that no longer parses."""
        try:
            name = json.loads(manifest_path(self.index_dir).read_bytes()).get("generation", "")
        except (OSError, ValueError, AttributeError):
            return ""
        return name if isinstance(name, str) else ""

    def commit(self, tmp: Path, manifest: Manifest) -> None:
        """Make `tmp` the current generation: record its files, fsync, rename, then swap the manifest."""
        previous = self._live_generation()
        existing = [_generation_number(p.name) for p in self.index_dir.glob("gen-*")]
        name = f"gen-{max(existing, default=0) + 1:06d}"
        manifest.artifacts = describe_generation(tmp)
        _fsync_tree(tmp)
        os.rename(tmp, self.index_dir / name)
        _fsync_dir(self.index_dir)
        manifest.generation = name
        manifest.updated = time.time()
        write_json_atomic(manifest_path(self.index_dir), manifest.to_json())
        for path in self.index_dir.glob("gen-*"):
            if path.name not in {name, previous}:
                shutil.rmtree(path, ignore_errors=True)


def create_chunk_db(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path)
    conn.executescript("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;" + SCHEMA)
    return conn


def open_chunk_db(path: Path) -> sqlite3.Connection:
    """Read-only connection usable from several threads (the UI serves many sessions from one index)."""
    if not path.exists():
        raise IndexDamaged(f"index data {path} is missing: {rebuild_hint(path.parent.parent)}")
    conn = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    try:
        conn.execute("SELECT row FROM chunks LIMIT 1").fetchall()
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise IndexDamaged(
            f"index data {path} is damaged ({exc}): {rebuild_hint(path.parent.parent)}"
        ) from None
    return conn
