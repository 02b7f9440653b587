"""Grounding checker v2 (`align`): MiniLM token alignment per claim sentence, two trained heads.

Two heads, trained in two stages (eval/checker_train_align.py), because one linear head cannot serve
both kinds of unsupported claim measured in docs/benchmarks.md section 9b:

1. the **alignment head** reads how well the claim's words are matched in the evidence (pooled best
   cosines of MiniLM token vectors, a soft minimum so one unmatched word counts, verbatim share, length).
   It is fitted on labelled material only, where "unsupported" mostly means "part of it is missing";
2. the **mismatch head** reads four checks that are 0 on a clean claim: a number or a name the evidence
   lacks, a flipped negation, a restricting qualifier the evidence does not state. It is fitted on the
   synthetic hard examples (changed numbers, swapped names, negations, qualifiers, and the positives
   made beside them) with the alignment head's logit held fixed, and its weights may only lower
   support. In the labelled material these checks are noisy (a number written another way, a name in
   another form) and a label does not say why a claim fails; the synthetic pairs isolate each kind.
   Fitting one head on both data kinds cost 6 points of WiCE AUROC (measured).

Training the encoder itself was measured and dropped: fine-tuning MiniLM-L6 as a cross-encoder runs at
about 10 pairs/s on 2 cores, ~3,000 updates in the 10-minute build. A trained word-importance layer over
the token vectors was built and measured too (no gain on any split; dropped). The encoder runs as the
verified int8 ONNX export of index/embeddings.py; inference needs numpy and onnxruntime only, no torch.

Aggregation (AlignScore-style): the claim is split into sentences and each is scored against its own best
evidence sentences (ranked by shared words; all of them together and the best window of LOCAL_WINDOW);
the claim's score is the minimum over its sentences, so a supported sentence cannot hide an unsupported
one (min/mean/max are all measured by the build).

Artifacts (never committed): `cache_dir/checkers/<VERSION>/checker.json` (both heads, threshold, report).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from assistant.grounding.base import CheckerNotBuilt
from assistant.grounding.evidence import split_sentences
from assistant.grounding.minilm import Encoded, LogisticHead, OnnxTokenEncoder
from index.text import content_terms, is_content, rank_by_overlap, term

VERSION = "minilm-align-v2"
ARTIFACT = "checker.json"
BUILD_COMMAND = "ra eval train-checker --checker align"
SENTENCES = 6  # evidence sentences aligned per claim sentence
LOCAL_WINDOW = 3
MAX_PIECES = 6  # word pieces per word that count (longer words are matched by their first pieces)
SOFTMIN_TEMPERATURE = 0.05
NEAR_COPY = 0.5  # share of the claim's content words a sentence must hold for a negation flip to count
ENCODE_BATCH = 32
Aggregate = Literal["min", "mean", "max"]
AGGREGATE: Aggregate = "min"

ALIGNMENT = ("mean_global", "mean_local", "softmin_global", "softmin_local", "exact_share", "log_words")
MISMATCH = ("number_missing", "name_missing", "negation_flip", "qualifier_added")
FEATURES = ALIGNMENT + MISMATCH

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


@dataclass(frozen=True)
class Plan:
    """One claim sentence and the evidence it is checked against: the selected sentences (document
    order) and the one sharing the most words with it (what a near-copy claim was copied from)."""

    claim: str
    chosen: list[str]
    best: str


def plan_pair(evidence: str, claim: str) -> list[Plan]:
    sentences = split_sentences(evidence)
    plans = []
    for c in claim_sentences(claim):
        ranked = rank_by_overlap(sentences, c)
        chosen = [sentences[i] for i in sorted(ranked[:SENTENCES])]
        plans.append(Plan(c, chosen, sentences[ranked[0]] if ranked else ""))
    return plans


def _is_name(word: str, first: bool) -> bool:
    return word[:1].isupper() and (not first or word[1:2].isupper()) and word.lower() not in QUALIFIERS


def _abbreviated(words: Sequence[str], evidence_words: set[str]) -> set[str]:
    """Names of runs of capitalised words that the evidence abbreviates: "Matryoshka Representation
    Learning" when it says "MRL" (an answer often spells out what its passage abbreviates)."""
    found: set[str] = set()
    run: list[str] = []
    for word in [*words, ""]:
        if word[:1].isupper():
            run.append(word)
            continue
        if len(run) >= 2 and "".join(w[0] for w in run) in evidence_words:
            found.update(run)
        run = []
    return found


def _words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


def _negated(text: str) -> bool:
    return any(w in NEGATIONS or w.endswith(("n't", "n’t")) for w in _words(text))


def mismatches(plan: Plan, evidence: str) -> list[float]:
    """MISMATCH of one claim sentence, each 0 when the claim is clean, 1 when: a number or a name of the
    claim is not in the evidence (nor abbreviated there); the claim negates what none of its selected sentences negates, or
    affirms what its near-copy sentence negates; it restricts ("only", "all", ...) where the selected
    sentences do not."""
    claim = plan.claim
    words = _WORD.findall(claim)
    found = content_terms(evidence)
    spelled_out = _abbreviated(words, set(_WORD.findall(evidence)))
    names = [w for i, w in enumerate(words) if _is_name(w, i == 0) and w not in spelled_out]
    claim_terms = content_terms(claim)
    near_copy = bool(claim_terms) and len(claim_terms & content_terms(plan.best)) >= NEAR_COPY * len(
        claim_terms
    )
    if _negated(claim):
        flipped = bool(plan.chosen) and not any(_negated(s) for s in plan.chosen)
    else:
        flipped = near_copy and _negated(plan.best)
    qualifiers = {w for w in _words(claim) if w in QUALIFIERS} - set(_words(" ".join(plan.chosen)))
    return [
        float(any(n not in evidence for n in _NUMBER.findall(claim))),
        float(any(term(n) not in found for n in names)),
        float(flipped),
        float(bool(qualifiers)),
    ]


def _softmin(values: np.ndarray, temperature: float = SOFTMIN_TEMPERATURE) -> float:
    """A smooth minimum: close to the worst-matched word's score, but every word counts a little."""
    low = values.min()
    return float(-temperature * np.log(np.mean(np.exp(-(values - low) / temperature))) + low)


def alignment_features(plan: Plan, encoded: dict[str, Encoded], evidence: str) -> list[float]:
    """ALIGNMENT of one claim sentence: each content word's best cosine to any token of the selected
    sentences (global) or of their best window of LOCAL_WINDOW (local), pooled by mean and soft minimum."""
    enc = encoded[plan.claim]
    words = [(w, t) for w, t in enc.words if is_content(w)] or enc.words
    log_words = float(np.log1p(len(words)))
    if not words or not plan.chosen:
        return [0.0] * (len(ALIGNMENT) - 1) + [log_words]
    per_sentence = np.stack([(enc.vectors @ encoded[s].vectors.T).max(axis=1) for s in plan.chosen], axis=1)
    # a word is as well matched as its worst-matched piece, in each sentence
    per_word = np.stack([per_sentence[t[:MAX_PIECES]].min(axis=0) for _, t in words])
    width = min(LOCAL_WINDOW, per_word.shape[1])
    windows = [per_word[:, j : j + width].max(axis=1) for j in range(per_word.shape[1] - width + 1)]
    local = max(windows, key=lambda w: float(w.mean()))
    best = per_word.max(axis=1)
    found = content_terms(evidence)
    return [
        float(best.mean()),
        float(local.mean()),
        _softmin(best),
        _softmin(local),
        float(np.mean([term(w) in found for w, _ in words])),
        log_words,
    ]


def pair_features(encoder: OnnxTokenEncoder, pairs: Sequence[tuple[str, str]]) -> list[np.ndarray]:
    """FEATURES of each claim sentence of each (evidence, claim) pair; shared texts are encoded once."""
    plans = [plan_pair(evidence, claim) for evidence, claim in pairs]
    encoded = encoder.encode([t for pair in plans for p in pair for t in (p.claim, *p.chosen)])
    return [
        np.array(
            [alignment_features(p, encoded, evidence) + mismatches(p, evidence) for p in pair], dtype=float
        )
        for (evidence, _), pair in zip(pairs, plans, strict=True)
    ]


@dataclass(frozen=True)
class AlignModel:
    """P(supported) of a claim sentence = sigmoid(alignment logit + mismatch logit)."""

    alignment: LogisticHead  # over ALIGNMENT
    mismatch: LogisticHead  # over MISMATCH, weights <= 0

    def logits(self, features: np.ndarray) -> np.ndarray:
        a = self.alignment.logits(features[:, : len(ALIGNMENT)])
        return a + self.mismatch.logits(features[:, len(ALIGNMENT) :])

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-self.logits(features)))

    def to_json(self) -> dict[str, Any]:
        return {"alignment": self.alignment.to_json(), "mismatch": self.mismatch.to_json()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AlignModel:
        return cls(LogisticHead.from_json(data["alignment"]), LogisticHead.from_json(data["mismatch"]))


def pair_scores(model: AlignModel, features: Sequence[np.ndarray], how: Aggregate = AGGREGATE) -> list[float]:
    """One score per pair from its claim sentences' features."""
    return [aggregate(model.probabilities(f).tolist(), how) for f in features]


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
        if not (folder / ARTIFACT).is_file():
            raise CheckerNotBuilt(
                f"the align grounding checker is not built yet (no {folder / ARTIFACT}): run `make checker` "
                f"or `{BUILD_COMMAND}` (minutes on 2 CPU cores), or set grounding.checker = 'minilm' or 'none'"
            )
        data = json.loads((folder / ARTIFACT).read_text())
        if data.get("version") != VERSION or list(data.get("features", [])) != list(FEATURES):
            raise CheckerNotBuilt(f"{folder} was built by another version: run `{BUILD_COMMAND} --force`")
        calibrated = float(data["threshold"])
        return cls(
            AlignModel.from_json(data["model"]),
            calibrated if threshold is None else threshold,
            Path(cache_dir),
        )

    def scores(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        if not pairs:
            return []
        return pair_scores(self.model, pair_features(self.encoder, pairs), self.how)
