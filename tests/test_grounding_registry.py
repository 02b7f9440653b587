"""Opening checkers by name: none, unknown names, the LLM judge's client and threshold, an unbuilt minilm."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant.grounding.llm_judge import LLMJudge, write_calibrated_threshold
from assistant.grounding.minilm import (
    ARTIFACT,
    BUILD_COMMAND,
    FEATURES,
    VERSION,
    CheckerNotBuilt,
    artifact_dir,
)
from assistant.grounding.registry import CheckerNeedsLLM, UnknownChecker, open_checker
from assistant.settings import Settings, load_settings


class FakeClient:
    model = "judge-model"


def settings(tmp_path: Path, **grounding: object) -> Settings:
    return load_settings({"grounding": grounding, "cache_dir": tmp_path})


def test_none_means_no_checker(tmp_path: Path) -> None:
    assert open_checker(settings(tmp_path, checker="none")) is None


def test_unknown_name_lists_the_valid_ones(tmp_path: Path) -> None:
    with pytest.raises(UnknownChecker, match="align, minilm, llm, none"):
        open_checker(settings(tmp_path, checker="nli-large"))


def test_llm_judge_needs_a_client_or_a_url(tmp_path: Path) -> None:
    with pytest.raises(CheckerNeedsLLM, match=r"llm\.url"):
        open_checker(settings(tmp_path, checker="llm"))


def test_llm_judge_uses_the_given_client_and_its_calibrated_threshold(tmp_path: Path) -> None:
    judge = open_checker(settings(tmp_path, checker="llm"), FakeClient())  # type: ignore[arg-type]
    assert isinstance(judge, LLMJudge)
    assert judge.threshold == 0.5  # nothing calibrated yet
    write_calibrated_threshold(tmp_path, "judge-model", 0.9, {})
    assert open_checker(settings(tmp_path, checker="llm"), FakeClient()).threshold == 0.9  # type: ignore[arg-type, union-attr]
    override = settings(tmp_path, checker="llm", threshold=0.2)
    assert open_checker(override, FakeClient()).threshold == 0.2  # type: ignore[arg-type, union-attr]


def test_llm_judge_from_the_configured_url(tmp_path: Path) -> None:
    s = load_settings(
        {
            "grounding": {"checker": "llm", "threshold": 0.7},
            "llm": {"url": "http://127.0.0.1:9"},
            "cache_dir": tmp_path,
        }
    )
    judge = open_checker(s)
    assert isinstance(judge, LLMJudge)
    assert judge.client.base_url == "http://127.0.0.1:9/v1"


def test_unbuilt_minilm_says_the_command_that_builds_it(tmp_path: Path) -> None:
    with pytest.raises(CheckerNotBuilt, match=BUILD_COMMAND):
        open_checker(settings(tmp_path, checker="minilm"))


def test_minilm_from_another_version_asks_for_a_rebuild(tmp_path: Path) -> None:
    path = artifact_dir(tmp_path) / ARTIFACT
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"version": "old", "features": list(FEATURES)}))
    with pytest.raises(CheckerNotBuilt, match="--force"):
        open_checker(settings(tmp_path, checker="minilm"))


def test_minilm_loads_its_head_and_threshold_without_touching_the_model(tmp_path: Path) -> None:
    path = artifact_dir(tmp_path) / ARTIFACT
    path.parent.mkdir(parents=True)
    n = len(FEATURES)
    head = {"weights": [1.0] * n, "bias": 0.0, "mean": [0.0] * n, "scale": [1.0] * n}
    path.write_text(
        json.dumps({"version": VERSION, "features": list(FEATURES), "head": head, "threshold": 0.42})
    )
    checker = open_checker(settings(tmp_path, checker="minilm"))
    assert checker is not None and checker.threshold == 0.42
    assert open_checker(settings(tmp_path, checker="minilm", threshold=0.6)).threshold == 0.6  # type: ignore[union-attr]
    assert checker.scores([]) == []


def test_unbuilt_align_says_how_to_build_it(tmp_path: Path) -> None:
    from assistant.grounding import align

    with pytest.raises(CheckerNotBuilt, match="make checker"):
        open_checker(settings(tmp_path, checker="align"))
    folder = align.artifact_dir(tmp_path)
    folder.mkdir(parents=True)
    (folder / align.ARTIFACT).write_text(json.dumps({"version": "old", "features": list(align.FEATURES)}))
    with pytest.raises(CheckerNotBuilt, match="--force"):
        open_checker(settings(tmp_path, checker="align"))


def test_align_loads_its_model_and_threshold_without_touching_the_encoder(tmp_path: Path) -> None:
    from assistant.grounding import align

    folder = align.artifact_dir(tmp_path)
    folder.mkdir(parents=True)

    def head(n: int) -> dict[str, object]:
        return {"weights": [1.0] * n, "bias": 0.0, "mean": [0.0] * n, "scale": [1.0] * n}

    model = {"alignment": head(len(align.ALIGNMENT)), "mismatch": head(len(align.MISMATCH))}
    report = {"version": align.VERSION, "features": list(align.FEATURES), "model": model, "threshold": 0.37}
    (folder / align.ARTIFACT).write_text(json.dumps(report))
    checker = open_checker(settings(tmp_path, checker="align"))
    assert isinstance(checker, align.AlignChecker) and checker.threshold == 0.37
    assert open_checker(settings(tmp_path, checker="align", threshold=0.6)).threshold == 0.6  # type: ignore[union-attr]
    assert checker.scores([]) == []
