"""`ra eval checker` usage errors and WiCE-format reading (no model needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from eval import checker_cmds
from eval.checker_data import BadDataFile, is_held_out, read_wice


@pytest.fixture
def app() -> typer.Typer:
    app = typer.Typer()
    checker_cmds.register(app)
    return app


def write(path: Path, *rows: object) -> Path:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return path


def test_wice_lines_become_pairs_with_binary_labels(tmp_path: Path) -> None:
    data = write(
        tmp_path / "d.jsonl",
        {"claim": "A", "evidence": ["s1", "s2"], "label": "supported"},
        {"claim": "B", "evidence": "one text", "label": "partially_supported"},
        {"claim": "C", "evidence": ["x"], "label": "not_supported"},
        {"claim": "D", "evidence": ["x"]},
    )
    pairs = read_wice(data)
    assert [p.evidence for p in pairs[:2]] == ["s1\ns2", "one text"]
    assert [p.label for p in pairs] == [True, False, False, None]


def test_a_bad_line_names_its_line_number(tmp_path: Path) -> None:
    data = write(tmp_path / "d.jsonl", {"claim": "A", "evidence": []}, {"text": "no claim"})
    with pytest.raises(BadDataFile, match=r"d\.jsonl:2"):
        read_wice(data)


def test_missing_file_is_a_one_line_error(app: typer.Typer, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["checker", "--data", str(tmp_path / "nope.jsonl")])
    assert isinstance(result.exception, BadDataFile)
    assert "WiCE" in str(result.exception) and "\n" not in str(result.exception)


def test_checker_none_and_calibrating_minilm_are_refused(app: typer.Typer, tmp_path: Path) -> None:
    data = write(tmp_path / "d.jsonl", {"claim": "A", "evidence": ["A."], "label": "supported"})
    result = CliRunner().invoke(app, ["checker", "--data", str(data), "--checker", "none"])
    assert result.exit_code == 1 and "--checker minilm" in result.output
    result = CliRunner().invoke(app, ["checker", "--data", str(data), "--checker", "minilm", "--calibrate"])
    assert result.exit_code == 1 and "train-checker" in result.output


def test_held_out_split_is_fixed_by_group() -> None:
    groups = [f"claim:{i}" for i in range(2000)]
    held = [g for g in groups if is_held_out(g, 0.15)]
    assert 0.12 < len(held) / len(groups) < 0.18
    assert held == [g for g in groups if is_held_out(g, 0.15)]
    assert set(held) <= {g for g in groups if is_held_out(g, 0.3)}
