"""Uploaded files: checked, given safe names, stored under `<index dir>/uploads/`, then ingested.

Nothing is written outside that folder: a name is reduced to its last path component, normalised (NFKC),
stripped of characters other than letters, digits, `-`, `_`, `.` and spaces, and the resolved target is
checked to lie inside the folder before anything is written.
"""

from __future__ import annotations

import os
import re
import tempfile
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from index.loaders import SUPPORTED_SUFFIXES

UPLOADS_DIR = "uploads"
ALLOWED_TYPES = sorted({suffix.lstrip(".") for suffix in SUPPORTED_SUFFIXES})
_UNSAFE = re.compile(r"[^\w\-. ]+")
_MAX_NAME = 120


class UnsafeName(ValueError):
    pass


def safe_name(name: str) -> str:
    """A file name that cannot leave the uploads folder or hide: no separators, no leading dots, no
    control characters, bounded length, suffix kept. Raises UnsafeName when nothing usable is left."""
    base = unicodedata.normalize("NFKC", name).replace("\\", "/").rsplit("/", 1)[-1]
    base = _UNSAFE.sub("_", base).strip(" ._")
    stem, dot, suffix = base.rpartition(".")
    if not dot:
        stem, suffix = base, ""
    stem = stem.strip(" ._")[: _MAX_NAME - len(suffix) - 1]
    if not stem:
        raise UnsafeName(f"'{name}' has no usable file name: rename it and upload again")
    return f"{stem}.{suffix}" if suffix else stem


@dataclass
class Saved:
    """What `save_uploads` stored and what it refused, with the reason (shown as the skipped list)."""

    paths: list[Path] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)


def uploads_dir(index_dir: Path) -> Path:
    return index_dir / UPLOADS_DIR


def save_uploads(files: list[tuple[str, bytes]], index_dir: Path, max_bytes: int) -> Saved:
    """Store each (name, content) under the uploads folder (atomically; a same-named file is replaced,
    which re-ingest then treats as an updated document). Refuses empty, oversized and unsupported files."""
    folder = uploads_dir(index_dir)
    saved = Saved()
    for name, data in files:
        try:
            target_name = safe_name(name)
        except UnsafeName as exc:
            saved.rejected.append((name, str(exc)))
            continue
        suffix = Path(target_name).suffix.lower()
        if suffix not in SUPPORTED_SUFFIXES:
            kinds = ", ".join(ALLOWED_TYPES)
            saved.rejected.append(
                (name, f"unsupported file type '{suffix or '(none)'}' (supported: {kinds})")
            )
        elif not data:
            saved.rejected.append((name, "the file is empty"))
        elif len(data) > max_bytes:
            limit = max_bytes / 2**20
            saved.rejected.append(
                (name, f"larger than the {limit:.0f} MB upload limit (setting ui.max_upload_mb)")
            )
        else:
            saved.paths.append(_write_inside(folder, target_name, data))
    return saved


def _write_inside(folder: Path, name: str, data: bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    target = (folder / name).resolve()
    if target.parent != folder.resolve():
        raise UnsafeName(f"'{name}' would be written outside {folder}")
    fd, tmp = tempfile.mkstemp(prefix=".upload-", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
