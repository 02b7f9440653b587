"""The local grounding checker: the packaged MiniLM aligns each claim word with the evidence, a small
trained head turns the alignment into P(supported).

Why alignment rather than a fine-tuned cross-encoder: on 2 CPU cores MiniLM-L6 trains at a few pairs per
second, so the 10-minute training budget buys ~2,000 noisy pair updates, too few to turn a sentence-embedding
model into an entailment model. Its frozen contextual token vectors already say which evidence word a
claim word matches, in context; what is learned is how much missing or weakly matched content makes a
claim unsupported (WiCE's "partially supported" is exactly a claim with a part the evidence lacks). The
encoder is run forward only, so training is dominated by one pass over the training text and inference
costs one MiniLM pass over the claim and the selected evidence sentences. That pass runs on MiniLM's fp32
ONNX export (onnxruntime), in training and in use alike: checking an answer imports no torch, which alone
cost ~2 s of every fresh `ra ask`. Not the int8 export `align` uses: its small drift moved this head's
threshold and flipped borderline verdicts (docs/benchmarks.md section 16).

Long evidence: sentences are ranked by shared words with the claim and the best `sentences` of them
(document order) are aligned; a claim word takes its best match over all of them (support may be spread
over several sentences), and a "local" view takes the best single window of three selected sentences,
which is what a claim stated in one place looks like. A short citation is aligned whole.

Artifacts (built by `ra eval train-checker`, never committed): `settings.cache_dir/checkers/<VERSION>/
checker.json` holds the head, its feature statistics, the calibrated threshold and the training report.
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from assistant.grounding.base import CheckerNotBuilt
from assistant.grounding.evidence import select_sentences, split_sentences
from index.text import content_terms, is_content, term

VERSION = "minilm-align-v1-onnx"  # features from the fp32 ONNX encoder (v1: torch, the same numbers)
ARTIFACT = "checker.json"
BUILD_COMMAND = "ra eval train-checker"
SENTENCES = 6  # evidence sentences aligned per pair
LOCAL_WINDOW = 3  # consecutive selected sentences in the local view
MAX_TOKENS = 128  # per encoded text; sentences are cut to 48 words, so this rarely truncates
ENCODE_BATCH = 32
FEATURES = (
    "soft_recall",  # mean over claim words of the best cosine to any evidence token
    "soft_recall_low3",  # mean of the three worst-matched claim words
    "local_recall",  # soft_recall against the best window of LOCAL_WINDOW sentences
    "local_recall_low3",
    "word_recall",  # share of claim content words (crude stems) found anywhere in the evidence
    "number_recall",  # share of the claim's numbers found verbatim in the evidence (1 when none)
    "log_claim_words",
)

_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


def artifact_dir(cache_dir: Path) -> Path:
    return Path(cache_dir) / "checkers" / VERSION


@dataclass(frozen=True)
class Encoded:
    """One text's contextual token vectors (unit length, special tokens dropped) grouped into words."""

    vectors: np.ndarray  # (tokens, dim) float32
    words: list[tuple[str, list[int]]]  # (word, its token rows)


class OnnxTokenEncoder:
    """Contextual token vectors (unit length, special tokens dropped) from MiniLM's ONNX export, on
    onnxruntime: int8 (the index's verified export, `align`) or fp32 (the same numbers as torch, `minilm`).

    The exports live in `cache_dir/onnx/`, built once per model. Texts are batched in one fixed order
    (length, then text), so batch-dependent int8 activation scales, and so the scores, are the same on every
    run. One lock: onnxruntime sessions are shared by the UI's threads."""

    def __init__(self, cache_dir: Path, precision: Literal["int8", "fp32"] = "int8") -> None:
        from index.config import EmbeddingConfig
        from index.embeddings import fp32_session, load_embedder

        cfg = EmbeddingConfig(backend="onnx-int8")
        embedder: Any = load_embedder(cfg, cache_dir)
        self.tokenizer = embedder.tokenizer
        self.session = embedder.session
        if precision == "fp32":
            self.session = fp32_session(cfg, cache_dir)
        self.input_names = embedder.input_names
        self._lock = threading.Lock()

    def encode(self, texts: Sequence[str]) -> dict[str, Encoded]:
        with self._lock:
            return self._encode(texts)

    def _encode(self, texts: Sequence[str]) -> dict[str, Encoded]:
        distinct = sorted(set(texts), key=lambda t: (len(t), t))
        out: dict[str, Encoded] = {}
        for i in range(0, len(distinct), ENCODE_BATCH):
            batch = distinct[i : i + ENCODE_BATCH]
            encodings = self.tokenizer.encode_batch(batch)
            width = max(len(e.ids) for e in encodings)
            ids = np.zeros((len(batch), width), dtype=np.int64)
            mask = np.zeros_like(ids)
            for row, e in enumerate(encodings):
                ids[row, : len(e.ids)] = e.ids
                mask[row, : len(e.ids)] = 1
            feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            hidden = self.session.run(None, {k: v for k, v in feeds.items() if k in self.input_names})[0]
            hidden = hidden / np.linalg.norm(hidden, axis=-1, keepdims=True).clip(1e-9)
            for row, (text, e) in enumerate(zip(batch, encodings, strict=True)):
                n = len(e.ids)
                word_ids = [
                    None if s != 0 else w for w, s in zip(e.word_ids, e.special_tokens_mask, strict=True)
                ]
                out[text] = _grouped(text, hidden[row, :n], word_ids, [list(o) for o in e.offsets])
        return out


def _grouped(text: str, hidden: np.ndarray, word_ids: list[int | None], offsets: list[list[int]]) -> Encoded:
    rows = [k for k, w in enumerate(word_ids) if w is not None]
    spans: dict[int, list[int]] = {}
    for new, k in enumerate(rows):
        spans.setdefault(word_ids[k], []).append(new)  # type: ignore[index]
    words = []
    for tokens in spans.values():
        start, end = offsets[rows[tokens[0]]][0], offsets[rows[tokens[-1]]][1]
        words.append((text[start:end], tokens))
    return Encoded(np.ascontiguousarray(hidden[rows], dtype=np.float32), words)


def _recalls(word_best: np.ndarray) -> tuple[float, float]:
    """Mean, and mean of the three lowest, of per-word best cosines."""
    low = np.sort(word_best)[:3]
    return float(word_best.mean()), float(low.mean())


def alignment_features(
    claim: str, encoded_claim: Encoded, sentences: Sequence[Encoded], evidence: str
) -> list[float]:
    """The FEATURES of one pair: `sentences` are the selected evidence sentences, `evidence` the full text."""
    words = [(w, t) for w, t in encoded_claim.words if is_content(w)] or encoded_claim.words
    if not sentences or not words:
        return [0.0, 0.0, 0.0, 0.0, 0.0, 0.0 if _NUMBER.search(claim) else 1.0, math.log1p(len(words))]
    # sims[k, j]: claim token k against all tokens of selected sentence j, best match per sentence
    per_sentence = np.stack([(encoded_claim.vectors @ s.vectors.T).max(axis=1) for s in sentences], axis=1)
    # a word is matched as well as its worst-matched piece ("Obama" must match as a whole)
    per_word = np.stack([per_sentence[t].min(axis=0) for _, t in words])  # (words, sentences)
    best_all = per_word.max(axis=1)
    width = min(LOCAL_WINDOW, len(sentences))
    windows = [per_word[:, j : j + width].max(axis=1) for j in range(len(sentences) - width + 1)]
    best_local = max(windows, key=lambda w: float(w.mean()))
    found = content_terms(evidence)
    stems = [term(w) for w, _ in words]
    numbers = _NUMBER.findall(claim)
    return [
        *_recalls(best_all),
        *_recalls(best_local),
        sum(s in found for s in stems) / len(stems),
        sum(n in evidence for n in numbers) / len(numbers) if numbers else 1.0,
        math.log1p(len(words)),
    ]


@dataclass(frozen=True)
class LogisticHead:
    """P(supported) = sigmoid(w . (x - mean) / scale + b), fitted by eval/checker_train.py."""

    weights: np.ndarray
    bias: float
    mean: np.ndarray
    scale: np.ndarray

    def logits(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.mean) / self.scale) @ self.weights + self.bias

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-self.logits(x)))

    def to_json(self) -> dict[str, Any]:
        return {
            "weights": self.weights.tolist(),
            "bias": self.bias,
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LogisticHead:
        return cls(
            np.asarray(data["weights"], dtype=float),
            float(data["bias"]),
            np.asarray(data["mean"], dtype=float),
            np.asarray(data["scale"], dtype=float),
        )


def pair_features(encoder: OnnxTokenEncoder, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
    """FEATURES for each (evidence, claim) pair; texts shared between pairs are encoded once."""
    selected = []
    for evidence, claim in pairs:
        sentences = split_sentences(evidence)
        selected.append([sentences[i] for i in select_sentences(sentences, claim, SENTENCES)])
    encoded = encoder.encode([c for _, c in pairs] + [s for chosen in selected for s in chosen])
    rows = [
        alignment_features(claim, encoded[claim], [encoded[s] for s in chosen], evidence)
        for (evidence, claim), chosen in zip(pairs, selected, strict=True)
    ]
    return np.asarray(rows, dtype=float).reshape(len(pairs), len(FEATURES))


class MiniLMChecker:
    """The trained alignment checker; build it with `ra eval train-checker`."""

    name = "minilm"

    def __init__(
        self, head: LogisticHead, threshold: float, cache_dir: Path, encoder: OnnxTokenEncoder | None = None
    ) -> None:
        self.head = head
        self.threshold = threshold
        self._cache_dir = cache_dir
        self._encoder = encoder

    @property
    def encoder(self) -> OnnxTokenEncoder:
        if self._encoder is None:
            self._encoder = OnnxTokenEncoder(self._cache_dir, precision="fp32")
        return self._encoder

    @classmethod
    def load(cls, cache_dir: Path, threshold: float | None = None) -> MiniLMChecker:
        """The checker trained into `cache_dir`; `threshold` overrides the calibrated one."""
        path = artifact_dir(cache_dir) / ARTIFACT
        if not path.is_file():
            raise CheckerNotBuilt(
                f"the minilm grounding checker is not built yet (no {path}): run `{BUILD_COMMAND}` "
                "(about 5 minutes on 2 CPU cores) or set grounding.checker = 'none'"
            )
        data = json.loads(path.read_text())
        if data.get("version") != VERSION or list(data.get("features", [])) != list(FEATURES):
            raise CheckerNotBuilt(f"{path} was built by another version: run `{BUILD_COMMAND} --force`")
        calibrated = float(data["threshold"])
        return cls(
            LogisticHead.from_json(data["head"]), calibrated if threshold is None else threshold, cache_dir
        )

    def scores(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        if not pairs:
            return []
        return self.head.probabilities(pair_features(self.encoder, pairs)).tolist()
