"""Every model-facing text is a file in prompts/ that declares its variables; rendering checks them."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.agent import prompts
from assistant.agent.prompts import PromptError, load, prompt_names, render


@pytest.mark.parametrize("name", prompt_names())
def test_every_prompt_renders_with_exactly_its_declared_variables(name: str) -> None:
    prompt = load(name)
    text = render(name, **{v: f"<{v}>" for v in prompt.variables})
    assert text.strip() and "$" not in text.replace("$$", "")
    for v in prompt.variables:
        assert f"<{v}>" in text


def test_a_missing_or_unexpected_value_is_refused() -> None:
    with pytest.raises(PromptError, match=r"missing values \['error'\]"):
        render("part_error.md")
    with pytest.raises(PromptError, match=r"unexpected values \['extra'\]"):
        render("part_error.md", error="x", extra="y")


def test_a_file_whose_header_and_text_disagree_fails_to_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "bad.md").write_text("---\nvars: question\n---\nAnswer $question using $evidence.\n")
    (tmp_path / "bare.md").write_text("Answer the question.\n")
    monkeypatch.setattr(prompts, "files", lambda package: tmp_path)
    load.cache_clear()
    try:
        with pytest.raises(PromptError, match=r"declares \['question'\] but uses \['evidence', 'question'\]"):
            load("bad.md")
        with pytest.raises(PromptError, match="header"):
            load("bare.md")
    finally:
        load.cache_clear()
