"""Shared fixtures: where ../shared is, and a small settings object pointing at temporary folders."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_dir() -> Path:
    return Path(os.environ.get("RA_SHARED_DIR", REPO.parent / "shared"))


@pytest.fixture(scope="session")
def shared() -> Path:
    path = shared_dir()
    if not (path / "corpus").is_dir():
        pytest.skip(f"shared data not found at {path} (set RA_SHARED_DIR)")
    return path


@pytest.fixture(autouse=True)
def _isolated_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Tests never read a developer's ra.toml or RA_* variables; the model cache stays shared (it is slow to fill)."""
    for key in list(os.environ):
        if key.startswith("RA_") and key not in ("RA_SHARED_DIR", "RA_CACHE_DIR"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("RA_CONFIG", str(tmp_path / "no-such-ra.toml"))


@pytest.fixture(scope="session")
def seed_index(shared: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The seed corpus and the two PDFs ingested once per test session (real embeddings)."""
    from assistant.index_access import index_config
    from assistant.settings import load_settings
    from index.ingest import ingest_paths

    index_dir = tmp_path_factory.mktemp("seed") / "index"
    settings = load_settings({"index": {"dir": index_dir}})
    ingest_paths([shared / "corpus", shared / "pdfs"], index_dir, index_config(settings))
    return index_dir
