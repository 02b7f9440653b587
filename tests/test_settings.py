"""Settings precedence: defaults < ra.toml < RA_* env < CLI flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.settings import DEFAULT_INDEX_DIR, load_settings


def test_defaults() -> None:
    s = load_settings()
    assert s.index.dir == DEFAULT_INDEX_DIR
    assert s.retrieval.mode == "hybrid" and s.index.embedding.model == "all-MiniLM-L6-v2"


def test_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "ra.toml"
    config.write_text('[retrieval]\nmode = "bm25"\nk = 3\n[index]\ndir = "from-file"\n')
    monkeypatch.setenv("RA_CONFIG", str(config))
    s = load_settings()
    assert (s.retrieval.mode, s.retrieval.k, s.index.dir) == ("bm25", 3, Path("from-file"))

    monkeypatch.setenv("RA_RETRIEVAL__K", "5")
    s = load_settings()
    assert (s.retrieval.mode, s.retrieval.k) == ("bm25", 5)

    s = load_settings({"retrieval": {"k": 7, "mode": None}, "index": {"dir": None}})
    assert (s.retrieval.mode, s.retrieval.k, s.index.dir) == ("bm25", 7, Path("from-file"))


def test_invalid_value_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RA_RETRIEVAL__MODE", "fuzzy")
    with pytest.raises(ValueError, match="mode"):
        load_settings()
