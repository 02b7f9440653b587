"""Shared fixtures and hooks: where ../shared is, the tests' own model cache, settings isolated from the
developer's, and (under CI=true) every skipped test failing the run, so a missing dependency cannot pass
by accident.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# The tests' model cache (assembled GGUF, ONNX export, trained checker): never the user's
# ~/.cache/research-assistant. It lives under the repo's gitignored .cache/ because it is slow to fill;
# `make test` builds the checker into it first, and a direct `pytest` run fills what is missing.
TEST_CACHE = Path(os.environ.get("RA_TEST_CACHE_DIR") or REPO / ".cache" / "research-assistant")


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def shared_dir() -> Path:
    return Path(os.environ.get("RA_SHARED_DIR", REPO.parent / "shared"))


@pytest.fixture(scope="session")
def shared() -> Path:
    path = shared_dir()
    if not (path / "corpus").is_dir():
        pytest.skip(f"shared data not found at {path} (set RA_SHARED_DIR)")
    return path


def _isolate(mp: pytest.MonkeyPatch, config: Path) -> None:
    """No developer's ra.toml, RA_* variables or running service, and the tests' own model cache
    (subprocesses inherit all of it through the environment)."""
    for key in list(os.environ):
        if key.startswith("RA_") and key != "RA_SHARED_DIR":
            mp.delenv(key)
    mp.setenv("RA_CONFIG", str(config / "no-such-ra.toml"))
    mp.setenv("RA_CACHE_DIR", str(TEST_CACHE))
    mp.setenv("RA_SERVICE__SOCKET", str(config / "service" / "s.sock"))  # never the developer's service


@pytest.fixture(scope="session", autouse=True)
def _isolated_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Session fixtures (the seed index, the packaged model) run before any function fixture: isolate them too."""
    with pytest.MonkeyPatch.context() as mp:
        _isolate(mp, tmp_path_factory.mktemp("config"))
        yield


@pytest.fixture(autouse=True)
def _isolated_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Again per test, undoing what a previous test left in the environment."""
    _isolate(monkeypatch, tmp_path)


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


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Under CI=true say how many tests skipped (the `-ra` summary above lists why)."""
    skipped = len(terminalreporter.stats.get("skipped", []))
    if in_ci():
        terminalreporter.write_line(f"CI=true: {skipped} skipped (every skip fails CI)", red=skipped > 0)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Under CI=true a skip fails the run: CI installs every dependency, so a skip means a broken setup."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter is not None else 0
    if in_ci() and skipped and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
