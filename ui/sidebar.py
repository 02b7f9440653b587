"""The sidebar every page shares: index statistics, document upload with ingest, and the settings."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import streamlit as st

from assistant.index_access import index_config
from assistant.settings import Settings
from index.errors import UserFacingError
from ui import resources, session_settings
from ui.uploads import ALLOWED_TYPES, file_outcomes, save_uploads, transfer_limit_mb

_OUTCOME = "ingest.outcome"


@dataclass
class IngestOutcome:
    """What the last upload did, kept in the session so it survives the rerun that refreshes the stats."""

    summary: str = ""
    skipped: list[tuple[str, str]] = field(default_factory=list)
    files: list[tuple[str, str]] = field(default_factory=list)  # every uploaded file and its outcome
    error: str = ""


class BarProgress:
    """`index.ingest.Progress` on one st.progress bar, relabelled per stage; redrawn only when the
    percentage changes (an embedding stage advances once per chunk)."""

    def __init__(self, bar: Any) -> None:
        self.bar = bar
        self.stage, self.total, self.done, self.shown = "", None, 0, -1

    def start(self, stage: str, total: int | None) -> None:
        self.stage, self.total, self.done, self.shown = stage, total, 0, -1
        self._draw()

    def advance(self, n: int = 1) -> None:
        self.done += n
        self._draw()

    def _draw(self) -> None:
        percent = int(100 * self.done / self.total) if self.total else 0
        if percent != self.shown:
            self.shown = percent
            count = f" {self.done}/{self.total}" if self.total else "…"
            self.bar.progress(min(percent, 100) / 100, text=f"{self.stage}{count}")


def render(settings: Settings) -> None:
    st.subheader(":material/library_books: Index")
    index_panel(settings)
    upload_panel(settings)
    st.divider()
    with st.expander(":material/tune: Settings", expanded=False):
        session_settings.render(session_settings.base_settings(), collections(settings))


def collections(settings: Settings) -> list[str]:
    """The index's collections to choose from; none when there is no index yet."""
    try:
        return resources.index_for(settings).collections()
    except UserFacingError:
        return []


def index_panel(settings: Settings) -> None:
    try:
        stats = resources.index_for(settings).stats()
    except UserFacingError as exc:
        st.info(f"No index yet. Upload documents below to build one.\n\n{exc}", icon=":material/inbox:")
        return
    files, chunks, pages = st.columns(3)
    files.metric("Files", _compact(stats["files"]))
    chunks.metric("Chunks", _compact(stats["chunks"]))
    pages.metric("Pages", _compact(stats["pages"]))
    kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(stats["files_by_kind"].items()))
    st.caption(f"{kinds} · {stats['embedding_model']} · `{stats['index']}`")


def _compact(n: int) -> str:
    """Numbers that fit a third of the sidebar: 1599, 12.3k, 1.2M."""
    if n >= 1_000_000:
        return f"{n / 1_000_000:.1f}M"
    return f"{n / 1000:.1f}k" if n >= 10_000 else str(n)


def upload_panel(settings: Settings) -> None:
    limit = settings.ui.max_upload_mb
    with st.form("upload", clear_on_submit=True, border=False):
        # No `type=`: Streamlit would check each name itself and raise on one bad name (a NUL byte, an
        # unknown suffix), losing the whole batch; save_uploads refuses such a file alone, with its reason.
        files = st.file_uploader(
            "Add documents",
            accept_multiple_files=True,
            help=f"PDF, text, Markdown or HTML ({', '.join(ALLOWED_TYPES)}), up to {limit} MB each; "
            "stored in the index folder.",
        )
        submitted = st.form_submit_button("Upload and ingest", type="primary", width="stretch")
    if submitted:
        if files:
            st.session_state[_OUTCOME] = ingest_uploads([(f.name, f.getvalue()) for f in files], settings)
            st.rerun()  # the stats above and every page pick up the new generation
        st.warning(
            f"No file arrived: choose one or more files first. The browser itself refuses a file over "
            f"{transfer_limit_mb(limit)} MB (a red note beside its name): `ra ingest FILE` takes any size."
        )
    outcome: IngestOutcome | None = st.session_state.get(_OUTCOME)
    if outcome is not None:
        show_outcome(outcome)


def ingest_uploads(files: list[tuple[str, bytes]], settings: Settings) -> IngestOutcome:
    """Save the files under the index folder and ingest them incrementally with a progress bar."""
    from index.ingest import ingest_paths  # heavy: only when there is something to ingest

    index_dir = Path(settings.index.dir)
    saved = save_uploads(files, index_dir, settings.ui.max_upload_mb)
    outcome = IngestOutcome(skipped=list(saved.rejected))
    if not saved.paths:
        outcome.error = "Nothing to ingest: every file was refused (see below)."
        return outcome
    bar = st.progress(0.0, text="saving")
    try:
        report = ingest_paths(saved.paths, index_dir, index_config(settings), progress=BarProgress(bar))
    except UserFacingError as exc:
        outcome.error = f"Ingest failed: {exc}"
        return outcome
    finally:
        bar.empty()
    for path, reason in report.skipped:
        outcome.skipped.append((os.path.basename(path), reason))
        Path(path).unlink(missing_ok=True)  # a file the index cannot read is not kept among the uploads
    outcome.files = file_outcomes(saved, report)
    added, updated = len(report.added), len(report.updated)
    outcome.summary = (
        f"Added {added}, updated {updated}, unchanged {report.unchanged} file(s) · "
        f"{report.chunks_embedded} new chunks · {report.seconds:.1f} s"
    )
    return outcome


def show_outcome(outcome: IngestOutcome) -> None:
    if outcome.error:
        st.error(outcome.error, icon=":material/error:")
    if outcome.summary:
        st.success(outcome.summary, icon=":material/check_circle:")
    if outcome.files:
        with st.expander(f"Each file ({len(outcome.files)})", expanded=False):
            st.markdown("\n".join(f"- **{name}**: {what}" for name, what in outcome.files))
    if outcome.skipped:
        lines = "\n".join(f"- **{name}**: {reason}" for name, reason in outcome.skipped)
        st.warning(f"Skipped {len(outcome.skipped)} file(s):\n{lines}", icon=":material/skip_next:")
