"""Embedding layer: offline model resolution, and the int8 ONNX path staying faithful to torch."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from assistant.settings import load_settings
from index import embeddings
from index.config import PACKAGED_MINILM, EmbeddingConfig
from index.embeddings import (
    OnnxInt8Embedder,
    TorchEmbedder,
    load_embedder,
    probe_texts,
    resolve_model_path,
)
from index.errors import UserFacingError

SHARED = Path(os.environ.get("RA_SHARED_DIR", Path(__file__).resolve().parents[2] / "shared"))

# Held out from the export check (probe_texts): different topics, lengths and scripts.
HELD_OUT = [
    "tides",
    "How do vaccines train the immune system?",
    "Le château fut reconstruit après l'incendie de 1871, mais la bibliothèque était perdue.",
    "for i in range(10): print(i ** 2)  # squares",
    "Interest rates, inflation expectations and wage growth moved together through the 1970s. " * 12,
    "The migratory route of the arctic tern spans both poles, roughly seventy thousand kilometres a year.",
]


def _held_out_texts() -> list[str]:
    texts = list(HELD_OUT)
    corpus = sorted((SHARED / "corpus").glob("*.txt")) if SHARED.is_dir() else []
    for f in corpus[:3]:
        body = f.read_text(encoding="utf-8", errors="replace")
        texts += [body[i : i + 800] for i in range(0, min(len(body), 8 * 800), 800)]
    assert not set(texts) & set(probe_texts())
    return texts


def test_packaged_names_resolve_to_the_offline_folder() -> None:
    path = resolve_model_path(PACKAGED_MINILM, allow_download=False)
    assert (Path(path) / "modules.json").is_file()
    assert resolve_model_path("sentence-transformers/all-MiniLM-L6-v2", allow_download=False) == path
    assert os.environ["HF_HUB_OFFLINE"] == "1"


def test_local_path_is_used_as_is(tmp_path) -> None:
    assert resolve_model_path(str(tmp_path), allow_download=False) == str(tmp_path)


def test_unknown_model_offline_is_a_clear_error() -> None:
    with pytest.raises(UserFacingError, match=r"not available offline.*ALLOW_DOWNLOAD=true"):
        resolve_model_path("org/some-other-model", allow_download=False)
    assert resolve_model_path("org/some-other-model", allow_download=True) == "org/some-other-model"


def test_probe_texts_cover_short_and_truncated_inputs() -> None:
    texts = probe_texts()
    assert len(texts) == 64 == len(set(texts))
    assert min(map(len, texts)) < 10 and max(map(len, texts)) > 256 * 6  # > 256 tokens: truncated


@pytest.fixture(scope="module")
def cache_dir() -> Path:
    """The tests' model cache: the export is made once per cache (tests/test_cli_quiet.py makes a fresh one)."""
    return load_settings().cache_dir


@pytest.fixture(scope="module")
def onnx_embedder(cache_dir) -> OnnxInt8Embedder:
    emb = load_embedder(EmbeddingConfig(backend="onnx-int8"), cache_dir)
    assert isinstance(emb, OnnxInt8Embedder)
    return emb


@pytest.fixture(scope="module")
def torch_embedder(cache_dir) -> TorchEmbedder:
    emb = load_embedder(EmbeddingConfig(backend="torch"), cache_dir)
    assert isinstance(emb, TorchEmbedder)
    return emb


@pytest.mark.slow
def test_onnx_matches_torch_on_held_out_texts(onnx_embedder, torch_embedder) -> None:
    texts = _held_out_texts()
    cos = np.einsum("ij,ij->i", onnx_embedder.embed_documents(texts), torch_embedder.embed_documents(texts))
    assert cos.mean() >= embeddings.MEAN_COSINE and cos.min() >= embeddings.MIN_COSINE
    q = "what drives inflation?"
    assert float(onnx_embedder.embed_query(q) @ torch_embedder.embed_query(q)) >= embeddings.MIN_COSINE


@pytest.mark.slow
def test_export_records_its_verification(onnx_embedder, cache_dir) -> None:
    (meta_file,) = (cache_dir / "onnx").glob(f"*/{embeddings.META_FILE}")
    meta = json.loads(meta_file.read_text())
    assert meta["passed"] and meta["n_probe_texts"] == 64
    assert meta["mean_cosine"] >= embeddings.MEAN_COSINE and meta["min_cosine"] >= embeddings.MIN_COSINE
    assert not list((cache_dir / "onnx").glob(".*"))  # no temp dir left behind


@pytest.mark.slow
@pytest.mark.parametrize("which", ["onnx_embedder", "torch_embedder"])
def test_output_contract(which, request) -> None:
    emb = request.getfixturevalue(which)
    texts = ["a", "a much longer sentence about rivers and their deltas " * 5, "mid-length text here"]
    out = emb.embed_documents(texts)
    assert out.dtype == np.float32 and out.shape == (3, emb.dim) == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    assert emb.embed_documents([]).shape == (0, emb.dim)
    assert emb.embed_query("a").shape == (emb.dim,)
    # length-sorted batching must hand rows back in input order
    singles = np.stack([emb.embed_query(t) for t in texts])
    assert np.all(np.argmax(out @ singles.T, axis=1) == [0, 1, 2])
    # dynamic int8 scales activations per batch, so a text's vector moves a little with its batch mates;
    # that drift is held to the export gate (torch only differs by padding arithmetic)
    tolerance = 1 - embeddings.MIN_COSINE if which == "onnx_embedder" else 2e-3
    np.testing.assert_allclose(np.einsum("ij,ij->i", out, singles), 1.0, atol=tolerance)


@pytest.mark.slow
def test_progress_counts_every_text(onnx_embedder) -> None:
    seen: list[int] = []
    onnx_embedder.embed_documents([f"text {i}" for i in range(70)], on_progress=seen.append)
    assert sum(seen) == 70 and len(seen) == -(-70 // onnx_embedder.batch_size)


@pytest.mark.slow
def test_same_config_gives_same_object(onnx_embedder, cache_dir) -> None:
    assert load_embedder(EmbeddingConfig(backend="onnx-int8"), cache_dir) is onnx_embedder


@pytest.mark.slow
def test_rejected_export_falls_back_to_torch(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(embeddings, "MEAN_COSINE", 1.01)  # no export can pass
    auto = load_embedder(EmbeddingConfig(backend="auto"), tmp_path)
    assert auto.backend == "torch"
    (meta_file,) = (tmp_path / "onnx").glob(f"*/{embeddings.META_FILE}")
    assert json.loads(meta_file.read_text())["passed"] is False
    with pytest.raises(UserFacingError, match="rejected"):
        load_embedder(EmbeddingConfig(backend="onnx-int8"), tmp_path)
