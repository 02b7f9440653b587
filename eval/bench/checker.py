"""Grounding checkers on WiCE dev: balanced accuracy and CPU throughput, recorded for docs/benchmarks.md.

    python -m eval.bench.checker [--data WICE_DEV.jsonl] [--llm-limit N] [--no-llm] [--out docs/bench/checker.json]

* align (v2, built by `make checker`) and minilm (v1, `ra eval train-checker --checker minilm`): all of WiCE
  dev at the calibrated threshold, AUROC, and 2-fold (threshold chosen on one half, scored on the other);
  throughput on WiCE's long evidence and on the same claims with evidence cut to one citation-sized passage
  (800 characters); the training report (held-out material, sources never used for choosing anything, the
  aggregation choices for align).
* llm: the judge with the embedded model (settings llm.model) on a seeded, stratified subset of WiCE dev
  (a CPU judge takes seconds per pair), at its threshold; and on the same pairs align alone and the mean
  of the two probabilities (the ensemble a served model makes possible).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
from pathlib import Path
from typing import Any

from assistant.grounding import align, minilm
from assistant.grounding.base import GroundingChecker
from assistant.grounding.evidence import fit_evidence
from assistant.grounding.llm_judge import LLMJudge
from assistant.settings import load_settings
from eval.checker_data import Pair, read_wice
from eval.checker_eval import label_metrics, score_pairs, summarize
from eval.checker_train import shared_dir, wice_dev_path

CITATION_CHARS = 800  # the index's chunk size: what an agent citation carries
SEED = 0


def stratified_subset(pairs: list[Pair], n: int, seed: int = SEED) -> list[Pair]:
    """`n` pairs with WiCE dev's label ratio, drawn with a fixed seed."""
    rng = random.Random(seed)
    positives = [p for p in pairs if p.label]
    negatives = [p for p in pairs if not p.label]
    k = round(n * len(positives) / len(pairs))
    return rng.sample(positives, k) + rng.sample(negatives, n - k)


def bench_local(checker: GroundingChecker, wice: list[Pair]) -> dict[str, Any]:
    """WiCE dev as it is and with evidence cut to one citation (the agent's case), timed."""
    checker.scores([(wice[0].evidence, wice[0].claim)])  # load the model outside the timings
    full = summarize(checker, wice, score_pairs(checker, wice))
    short = [Pair(fit_evidence(p.evidence, p.claim, CITATION_CHARS), p.claim, p.label) for p in wice]
    short_run = score_pairs(checker, short)
    return {
        "wice_dev": full,
        "citation_sized": {
            "evidence_chars": CITATION_CHARS,
            "pairs_per_s": round(short_run.pairs_per_s, 2),
            **label_metrics([bool(p.label) for p in short], short_run.scores, checker.threshold),
        },
    }


def bench_minilm(wice: list[Pair], cache_dir: Path) -> dict[str, Any]:
    report = json.loads((minilm.artifact_dir(cache_dir) / minilm.ARTIFACT).read_text())
    return {
        **bench_local(minilm.MiniLMChecker.load(cache_dir), wice),
        "held_out": report["held_out"],
        "train_pairs": report["train_pairs"],
        "training_seconds": report["seconds"],
    }


def bench_align(wice: list[Pair], cache_dir: Path) -> dict[str, Any]:
    report = json.loads((align.artifact_dir(cache_dir) / align.ARTIFACT).read_text())
    build = {
        k: report[k]
        for k in ("threshold", "aggregate", "transfer_source", "wice_dev", "transfer", "per_source")
    }
    return {
        **bench_local(align.AlignChecker.load(cache_dir), wice),
        "build": build,
        "aggregates": report["aggregates"],
        "train_pairs": report["train_pairs"],
        "training_seconds": report["seconds"],
    }


def bench_llm(wice: list[Pair], limit: int, cache_dir: Path) -> dict[str, Any]:
    """The judge on a stratified subset, and its ensemble with align on the same pairs (the mean of the
    two probabilities), so whether the ensemble helps is measured, not assumed."""
    from assistant.agent.factory import open_backend

    settings = load_settings()
    subset = stratified_subset(wice, limit)
    with open_backend(settings) as backend:
        judge = LLMJudge(backend.client)
        judge.scores([("The sky is blue.", "The sky is blue.")])  # warm the server up outside the timings
        scored = score_pairs(judge, subset)
    checker = align.AlignChecker.load(cache_dir)
    aligned = checker.scores([(p.evidence, p.claim) for p in subset])
    labels = [bool(p.label) for p in subset]
    mean = [(a + j) / 2 for a, j in zip(aligned, scored.scores, strict=True)]
    return {
        "model": settings.llm.model,
        "subset_seed": SEED,
        **summarize(judge, subset, scored),
        "same_pairs": {
            "align": label_metrics(labels, aligned, checker.threshold),
            "mean_of_align_and_llm": label_metrics(labels, mean, (checker.threshold + judge.threshold) / 2),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None, help="WiCE dev JSONL (default: RA_SHARED_DIR's)")
    parser.add_argument("--llm-limit", type=int, default=40, help="WiCE dev pairs for the LLM judge")
    parser.add_argument(
        "--no-llm", action="store_true", help="skip the LLM judge (its last result in --out is kept)"
    )
    parser.add_argument("--out", type=Path, default=Path("docs/bench/checker.json"))
    args = parser.parse_args()
    wice = read_wice(args.data or wice_dev_path(shared_dir()))
    settings = load_settings()
    results: dict[str, Any] = {
        "data": "wice_claim_dev.jsonl",
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores",
        "align": bench_align(wice, settings.cache_dir),
        "minilm": bench_minilm(wice, settings.cache_dir),
    }
    if not args.no_llm:
        results["llm"] = bench_llm(wice, args.llm_limit, settings.cache_dir)
    elif args.out.is_file() and "llm" in (previous := json.loads(args.out.read_text())):
        results["llm"] = {**previous["llm"], "rerun": False}  # kept from the last run that measured it
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
