"""The trained align checker (v2): the weak spots of v1 on hand-made pairs, and a restored build that
scores as its training report says.

The checker is built once per machine by `make checker` (minutes on 2 cores); the session fixture builds it
only when it is missing.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from assistant.grounding.align import ARTIFACT, AlignChecker, artifact_dir
from assistant.grounding.calibration import balanced_accuracy
from assistant.settings import load_settings
from eval import checker_cmds
from eval.checker_data import read_wice
from eval.checker_train import wice_dev_path

pytestmark = [pytest.mark.slow, pytest.mark.integration]

PASSAGE = (
    "The Golden Gate Bridge is a suspension bridge spanning the Golden Gate strait. It opened to traffic "
    "in 1937 and connects San Francisco to Marin County. At the time of its opening it was the longest "
    "suspension bridge in the world, with a main span of 4,200 feet."
)
CITATION = (
    "Stanford's Alpaca 7B was fine-tuned from Meta's LLaMA 7B model on 52K instruction-following "
    "demonstrations generated with OpenAI's text-davinci-003. The authors report that Alpaca behaves "
    "qualitatively similarly to text-davinci-003 while being cheap to reproduce."
)
SUPPORTED = [
    (PASSAGE, "The Golden Gate Bridge opened to traffic in 1937."),
    (PASSAGE, "The Golden Gate Bridge connects San Francisco to Marin County."),
    (CITATION, "Alpaca 7B was fine-tuned on 52K instruction-following demonstrations."),
]
WEAK_SPOTS = {
    "swapped name": [
        (PASSAGE, "The Golden Gate Bridge connects Oakland to Marin County."),
        (CITATION, "Stanford's Alpaca 7B was fine-tuned from Google's LLaMA 7B model."),
    ],
    "changed number": [
        (PASSAGE, "The Golden Gate Bridge opened to traffic in 1962."),
        (CITATION, "Alpaca 7B was fine-tuned on 85K instruction-following demonstrations."),
    ],
    "negation": [
        (PASSAGE, "The Golden Gate Bridge did not open to traffic in 1937."),
        (CITATION, "Alpaca does not behave similarly to text-davinci-003."),
    ],
    "half supported": [
        (PASSAGE, "The Golden Gate Bridge opened in 1937. It was designed by Gustave Eiffel."),
    ],
}


@pytest.fixture(scope="session")
def checker(shared: Path) -> AlignChecker:
    from eval.checker_train_align import build

    cache_dir = load_settings().cache_dir
    build(cache_dir, shared)  # a no-op when already built
    return AlignChecker.load(cache_dir)


def test_supported_claims_pass(checker: AlignChecker) -> None:
    assert all(s >= checker.threshold for s in checker.scores(SUPPORTED))


@pytest.mark.parametrize("kind", sorted(WEAK_SPOTS))
def test_weak_spots_are_not_called_supported(checker: AlignChecker, kind: str) -> None:
    scores = checker.scores(WEAK_SPOTS[kind])
    assert all(s < checker.threshold for s in scores), list(zip(WEAK_SPOTS[kind], scores, strict=True))


def test_the_restored_checker_scores_wice_dev_as_its_build_did(checker: AlignChecker, shared: Path) -> None:
    report = json.loads((artifact_dir(load_settings().cache_dir) / ARTIFACT).read_text())
    wice = read_wice(wice_dev_path(shared))
    scores = checker.scores([(p.evidence, p.claim) for p in wice])
    accuracy = balanced_accuracy([bool(p.label) for p in wice], scores, checker.threshold)
    assert accuracy == pytest.approx(report["wice_dev"]["balanced_accuracy"], abs=1e-3)


def test_a_fresh_build_reproduces_the_scores_recorded_in_the_benchmarks() -> None:
    """CI builds the checker from scratch (`make test-checker`); seeded, it must land on the numbers that
    docs/bench/checker.json records (a little slack: int8 kernels differ between CPU generations)."""
    bench = Path(__file__).resolve().parents[1] / "docs" / "bench" / "checker.json"
    recorded = json.loads(bench.read_text(encoding="utf-8"))["align"]["build"]
    built = json.loads((artifact_dir(load_settings().cache_dir) / ARTIFACT).read_text())
    assert built["threshold"] == pytest.approx(recorded["threshold"], abs=0.01)
    for key in ("balanced_accuracy", "auroc", "balanced_accuracy_2fold"):
        assert built["wice_dev"][key] == pytest.approx(recorded["wice_dev"][key], abs=0.01), key
    source = recorded["transfer_source"]
    assert built["transfer"][source]["auroc"] == pytest.approx(
        recorded["transfer"][source]["auroc"], abs=0.01
    )


def test_eval_checker_reports_auroc_confusion_and_sources(checker: AlignChecker, tmp_path: Path) -> None:
    def row(evidence: str, claim: str, label: str) -> dict[str, str]:
        source = "bridge" if evidence == PASSAGE else "alpaca"
        return {"claim": claim, "evidence": evidence, "label": label, "source": source}

    rows = [row(e, c, "supported") for e, c in SUPPORTED]
    rows += [row(e, c, "not_supported") for pairs in WEAK_SPOTS.values() for e, c in pairs]
    data = tmp_path / "hand.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    app = typer.Typer()
    checker_cmds.register(app)
    result = CliRunner().invoke(app, ["checker", "--data", str(data), "--checker", "align", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["checker"] == "align" and summary["n"] == len(rows)
    assert summary["confusion"] == {
        "true_supported": 3,
        "false_supported": 0,
        "true_unsupported": len(rows) - 3,
        "false_unsupported": 0,
    }
    assert summary["auroc"] == 1.0
    assert set(summary["per_source"]) == {"bridge", "alpaca"}
    assert summary["per_source"]["bridge"]["n"] == sum(r["source"] == "bridge" for r in rows)
    assert all(s["balanced_accuracy"] == 1.0 for s in summary["per_source"].values())
