"""Grounding checker v2 (`align`): MiniLM token alignment with a trained claim-side layer, per claim sentence.

What is trained (eval/checker_train_align.py): an importance layer over the frozen MiniLM token vectors
(which claim words must be found: names and numbers more than "the"; a softmax over the claim's words of
u . vector + flag weights) and a logistic head over the importance-pooled alignment, its soft minimum and
a few lexical checks (numbers and names verbatim, negation and qualifier words the evidence lacks), by
gradient descent on labelled pairs plus synthetic hard examples. A trained claim-side projection of the
token vectors was tried and dropped: it has to recompute every claim x evidence similarity each step, which
took over 20 minutes on two shared cores (the build budget is 10). The encoder runs as the verified int8
ONNX export of index/embeddings.py (about 2.4x torch on CPU), which is what makes 800-character citations
cheap. Inference needs numpy and onnxruntime only.

Aggregation (AlignScore-style): the claim is split into sentences and each is scored against its own best
evidence sentences (ranked by shared words; the best single window of LOCAL_WINDOW of them and all of them
together); the claim's score is the minimum over its sentences, so a supported sentence cannot hide an
unsupported one (docs/benchmarks.md section 9 measures min/mean/max).

Artifacts (never committed): `cache_dir/checkers/<VERSION>/checker.json` (head, threshold, report) and
`weights.npz` (the importance vector).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from assistant.grounding.base import CheckerNotBuilt
from assistant.grounding.evidence import content_terms, is_content, select_sentences, split_sentences, term
from assistant.grounding.minilm import Encoded, _grouped

VERSION = "minilm-align-v2"
ARTIFACT = "checker.json"
WEIGHTS = "weights.npz"
BUILD_COMMAND = "ra eval train-checker --checker align"
SENTENCES = 6  # evidence sentences aligned per claim sentence
LOCAL_WINDOW = 3
MAX_PIECES = 6  # word pieces per word that count (longer words are matched by their first pieces)
SOFTMIN_TEMPERATURE = 0.05
ENCODE_BATCH = 32
Aggregate = Literal["min", "mean", "max"]
AGGREGATE: Aggregate = "min"

# pooled alignment features, then lexical ones (the head's inputs, in order)
POOLED = ("weighted_global", "weighted_local", "softmin_global", "softmin_local", "weighted_exact")
LEXICAL = ("number_recall", "name_recall", "negation_mismatch", "qualifier_mismatch", "log_words")
FEATURES = POOLED + LEXICAL

_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_WORD = re.compile(r"[\w'’]+")
NEGATIONS = frozenset({"not", "no", "never", "none", "nor", "neither", "without", "cannot", "n't", "nt"})
QUALIFIERS = frozenset(
    {"only", "all", "always", "every", "first", "last", "most", "some", "many", "few", "several",
     "may", "might", "about", "approximately", "nearly", "almost", "exclusively", "largest", "smallest"}
)  # fmt: skip


def artifact_dir(cache_dir: Path) -> Path:
    return Path(cache_dir) / "checkers" / VERSION


def claim_sentences(claim: str) -> list[str]:
    """The claim's sentences (one for most claims); a claim with none is kept whole."""
    return split_sentences(claim) or [claim]


def aggregate(scores: Sequence[float], how: Aggregate = AGGREGATE) -> float:
    """One score for a claim from its sentences' scores: min means every sentence must be supported."""
    if not scores:
        raise ValueError("no sentence scores to aggregate")
    return float({"min": np.min, "mean": np.mean, "max": np.max}[how](scores))


class OnnxTokenEncoder:
    """Contextual token vectors (unit length, special tokens dropped) from the int8 ONNX MiniLM export.

    The export is the index's (built and verified once per model in `cache_dir/onnx/`). Texts are batched
    in one fixed order (length, then text), so batch-dependent int8 activation scales, and so the scores,
    are the same on every run. One lock: onnxruntime sessions are shared by the UI's threads."""

    def __init__(self, cache_dir: Path) -> None:
        from index.config import EmbeddingConfig
        from index.embeddings import load_embedder

        embedder: Any = load_embedder(EmbeddingConfig(backend="onnx-int8"), cache_dir)
        self.tokenizer = embedder.tokenizer
        self.session = embedder.session
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


@dataclass(frozen=True)
class Unit:
    """One claim sentence against its selected evidence sentences, as the trained layers read it.

    `alignment[w, j]`: how well content word w of the claim is matched in selected sentence j (best cosine
    of its worst-matched piece); `first[w]` its first token's vector (what the importance layer reads);
    `flags[w]` = (is a number, is a name, found verbatim in the evidence)."""

    alignment: np.ndarray  # (words, sentences)
    first: np.ndarray  # (words, dim)
    flags: np.ndarray  # (words, 3)
    lexical: np.ndarray  # (len(LEXICAL),)


def _is_name(word: str, first: bool) -> bool:
    return word[:1].isupper() and (not first or word[1:2].isupper()) and word.lower() not in QUALIFIERS


def _words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


def _negated(text: str) -> bool:
    return any(w in NEGATIONS or w.endswith(("n't", "n’t")) for w in _words(text))


def lexical_features(claim: str, chosen: Sequence[str], evidence: str) -> list[float]:
    """LEXICAL of one claim sentence: verbatim numbers and names, and negation/qualifier words the selected
    evidence sentences do not share (what a contradiction by "not" or "only" looks like)."""
    words = _WORD.findall(claim)
    numbers = _NUMBER.findall(claim)
    names = [w for i, w in enumerate(words) if _is_name(w, i == 0)]
    window = " ".join(chosen)
    found = content_terms(evidence)
    qualifiers = {w for w in _words(claim) if w in QUALIFIERS} - set(_words(window))
    return [
        sum(n in evidence for n in numbers) / len(numbers) if numbers else 1.0,
        sum(term(n) in found for n in names) / len(names) if names else 1.0,
        float(_negated(claim) != _negated(window)),
        float(bool(qualifiers)),
        float(np.log1p(len([w for w in words if is_content(w)]))),
    ]


def make_unit(claim: str, encoded: dict[str, Encoded], chosen: Sequence[str], evidence: str) -> Unit:
    enc = encoded[claim]
    words = [(w, t) for w, t in enc.words if is_content(w)] or enc.words
    found = content_terms(evidence)
    dim = enc.vectors.shape[1]
    if not words or not chosen:
        empty = np.zeros((1, 0 if not chosen else 1), np.float32)
        return Unit(
            empty,
            np.zeros((1, dim), np.float32),
            np.zeros((1, 3), np.float32),
            _lexical(claim, chosen, evidence),
        )
    evidence_vectors = [encoded[s].vectors for s in chosen]
    per_sentence = np.stack([(enc.vectors @ v.T).max(axis=1) for v in evidence_vectors], axis=1)
    alignment = np.stack([per_sentence[t[:MAX_PIECES]].min(axis=0) for _, t in words])
    flags = np.array(
        [(bool(_NUMBER.fullmatch(w)), _is_name(w, enc.words[0][0] == w), term(w) in found) for w, _ in words],
        dtype=np.float32,
    )
    first = np.stack([enc.vectors[t[0]] for _, t in words])
    return Unit(alignment.astype(np.float32), first, flags, _lexical(claim, chosen, evidence))


def _lexical(claim: str, chosen: Sequence[str], evidence: str) -> np.ndarray:
    return np.asarray(lexical_features(claim, chosen, evidence), dtype=np.float32)


def units_of(encoder: OnnxTokenEncoder, pairs: Sequence[tuple[str, str]]) -> list[list[Unit]]:
    """The Units of each (evidence, claim) pair, one per claim sentence; shared texts are encoded once."""
    plans = []
    for evidence, claim in pairs:
        sentences = split_sentences(evidence)
        plans.append(
            [
                (c, [sentences[i] for i in select_sentences(sentences, c, SENTENCES)])
                for c in claim_sentences(claim)
            ]
        )
    encoded = encoder.encode([t for plan in plans for c, chosen in plan for t in (c, *chosen)])
    return [
        [make_unit(c, encoded, chosen, evidence) for c, chosen in plan]
        for (evidence, _), plan in zip(pairs, plans, strict=True)
    ]


@dataclass(frozen=True)
class AlignModel:
    """The trained parts: the importance layer (vector u over a word's token vector, plus flag weights)
    and the logistic head over the pooled alignment and the lexical checks."""

    importance: np.ndarray  # (dim,)
    flag_weights: np.ndarray  # (3,)
    head: np.ndarray  # (len(FEATURES),)
    bias: float

    def features(self, unit: Unit) -> np.ndarray:
        """FEATURES of one unit (numpy twin of the training module's batched torch forward)."""
        per_word = unit.alignment
        n_sent = per_word.shape[1]
        if n_sent == 0:
            return np.concatenate([np.zeros(len(POOLED)), unit.lexical])
        logits = unit.first @ self.importance + unit.flags @ self.flag_weights
        weights = np.exp(logits - logits.max())
        weights /= weights.sum()
        width = min(LOCAL_WINDOW, n_sent)
        windows = np.stack([per_word[:, j : j + width].max(axis=1) for j in range(n_sent - width + 1)])
        local = windows[int(np.argmax(windows @ weights))]
        best = per_word.max(axis=1)
        pooled = [
            weights @ best,
            weights @ local,
            _softmin(best),
            _softmin(local),
            weights @ unit.flags[:, 2],
        ]
        return np.concatenate([pooled, unit.lexical])

    def probability(self, unit: Unit) -> float:
        return float(1.0 / (1.0 + np.exp(-(self.features(unit) @ self.head + self.bias))))

    def to_json(self) -> dict[str, Any]:
        return {"head": self.head.tolist(), "bias": self.bias, "flag_weights": self.flag_weights.tolist()}

    @classmethod
    def load(cls, folder: Path) -> AlignModel:
        model = json.loads((folder / ARTIFACT).read_text())["model"]
        return cls(
            np.load(folder / WEIGHTS)["importance"].astype(np.float32),
            np.asarray(model["flag_weights"], dtype=np.float32),
            np.asarray(model["head"], dtype=np.float64),
            float(model["bias"]),
        )


def _softmin(values: np.ndarray, temperature: float = SOFTMIN_TEMPERATURE) -> float:
    """A smooth minimum: close to the worst-matched word's score, but every word counts a little."""
    return float(
        -temperature * np.log(np.mean(np.exp(-(values - values.min()) / temperature))) + values.min()
    )


class AlignChecker:
    """The trained v2 checker; build it with `make checker` (`ra eval train-checker --checker align`)."""

    name = "align"

    def __init__(
        self,
        model: AlignModel,
        threshold: float,
        cache_dir: Path,
        how: Aggregate = AGGREGATE,
        encoder: OnnxTokenEncoder | None = None,
    ) -> None:
        self.model = model
        self.threshold = threshold
        self.how = how
        self._cache_dir = cache_dir
        self._encoder = encoder

    @property
    def encoder(self) -> OnnxTokenEncoder:
        if self._encoder is None:
            self._encoder = OnnxTokenEncoder(self._cache_dir)
        return self._encoder

    @classmethod
    def load(cls, cache_dir: Path, threshold: float | None = None) -> AlignChecker:
        folder = artifact_dir(cache_dir)
        if not (folder / ARTIFACT).is_file() or not (folder / WEIGHTS).is_file():
            raise CheckerNotBuilt(
                f"the align grounding checker is not built yet (no {folder / ARTIFACT}): run `make checker` "
                f"or `{BUILD_COMMAND}` (minutes on 2 CPU cores), or set grounding.checker = 'minilm' or 'none'"
            )
        data = json.loads((folder / ARTIFACT).read_text())
        if data.get("version") != VERSION or list(data.get("features", [])) != list(FEATURES):
            raise CheckerNotBuilt(f"{folder} was built by another version: run `{BUILD_COMMAND} --force`")
        calibrated = float(data["threshold"])
        return cls(AlignModel.load(folder), calibrated if threshold is None else threshold, Path(cache_dir))

    def sentence_scores(self, pairs: Sequence[tuple[str, str]]) -> list[list[float]]:
        """P(supported) of each claim sentence of each pair."""
        return [[self.model.probability(u) for u in units] for units in units_of(self.encoder, pairs)]

    def scores(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        if not pairs:
            return []
        return [aggregate(s, self.how) for s in self.sentence_scores(pairs)]
