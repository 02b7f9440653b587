"""Uploaded files: checked, given safe names, stored under `<index dir>/uploads/`, then ingested.

Nothing is written outside that folder: a name is reduced to its last path component, normalised (NFKC),
stripped of characters other than letters, digits, `-`, `_`, `.` and spaces, and the resolved target is
checked to lie inside the folder before anything is written. Two files of one batch that reduce to the
same name (`report.txt` and `sub/report.txt`) are kept apart with a numbered suffix (`report-2.txt`).
"""

from __future__ import annotations

import os
import re
import tempfile
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from index.loaders import SUPPORTED_SUFFIXES

if TYPE_CHECKING:
    from index.ingest import IngestReport

UPLOADS_DIR = "uploads"
ALLOWED_TYPES = sorted({suffix.lstrip(".") for suffix in SUPPORTED_SUFFIXES})
_UNSAFE = re.compile(r"[^\w\-. ]+")
_MAX_NAME = 120


def transfer_limit_mb(limit_mb: int) -> int:
    """Streamlit's own per-file cap (`server.maxUploadSize`), four times the setting `ui.max_upload_mb`.
    Why above it: a file over Streamlit's cap is refused in the browser and never reaches the app, so the
    batch arrives without it and nothing here can say why; a file between the two arrives and is refused by
    `save_uploads` with the limit's name and what to do. The cap still bounds what a browser can send."""
    return 4 * limit_mb


def too_large(limit_mb: int) -> str:
    """Why an upload over the limit is refused, and what to do about it."""
    return (
        f"larger than the {limit_mb} MB upload limit: split it, or raise the limit (ui.max_upload_mb "
        "in ra.toml or RA_UI__MAX_UPLOAD_MB) and restart `ra ui`; `ra ingest FILE` takes any size"
    )


class UnsafeName(ValueError):
    pass


def shown_name(name: str) -> str:
    """The uploaded name as the page shows it: control characters (a NUL byte...) as U+FFFD."""
    return "".join("\ufffd" if unicodedata.category(c) == "Cc" else c for c in name)


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
        raise UnsafeName(f"'{shown_name(name)}' has no usable file name: rename it and upload again")
    return f"{stem}.{suffix}" if suffix else stem


@dataclass
class Saved:
    """What `save_uploads` stored (uploaded name, stored path) and what it refused, with the reason."""

    stored: list[tuple[str, Path]] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)

    @property
    def paths(self) -> list[Path]:
        return [path for _, path in self.stored]


def _unique(name: str, taken: set[str]) -> str:
    """`name`, or `stem-2.suffix`, `stem-3.suffix`... when an earlier file of the batch took it."""
    stem, dot, suffix = name.rpartition(".")
    if not dot:
        stem, suffix = name, ""
    candidate, n = name, 1
    while candidate.lower() in taken:
        n += 1
        candidate = f"{stem}-{n}.{suffix}" if suffix else f"{stem}-{n}"
    taken.add(candidate.lower())
    return candidate


def uploads_dir(index_dir: Path) -> Path:
    return index_dir / UPLOADS_DIR


def save_uploads(files: list[tuple[str, bytes]], index_dir: Path, limit_mb: int) -> Saved:
    """Store each (name, content) under the uploads folder (atomically; a same-named file is replaced,
    which re-ingest then treats as an updated document). Refuses empty, oversized and unsupported files,
    each alone: the rest of the batch is stored."""
    folder = uploads_dir(index_dir)
    saved = Saved()
    taken: set[str] = set()
    for uploaded, data in files:
        name = shown_name(uploaded)
        try:
            target_name = safe_name(uploaded)
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
        elif len(data) > limit_mb * 2**20:
            saved.rejected.append((name, too_large(limit_mb)))
        else:
            saved.stored.append((name, _write_inside(folder, _unique(target_name, taken), data)))
    return saved


def file_outcomes(saved: Saved, report: IngestReport) -> list[tuple[str, str]]:
    """(uploaded name, what happened to it) for every file of the batch, in upload order."""
    added, updated = set(report.added), set(report.updated)
    skipped = dict(report.skipped)
    outcomes = []
    for name, path in saved.stored:
        key = str(path.resolve())
        where = f"uploads/{path.name}"
        if key in skipped:
            outcomes.append((name, f"skipped: {skipped[key]}"))
        elif key in added:
            outcomes.append((name, f"added as {where}"))
        elif key in updated:
            outcomes.append((name, f"updated {where}"))
        else:
            outcomes.append((name, f"unchanged ({where} is already indexed)"))
    return outcomes + [(name, f"skipped: {reason}") for name, reason in saved.rejected]


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
