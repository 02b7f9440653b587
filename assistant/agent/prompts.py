"""Prompt files live in the `prompts` package; `$name` placeholders are filled with `string.Template`.

Template rather than `str.format` because prompts show JSON, whose braces would need escaping.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from string import Template


@cache
def prompt_text(name: str) -> str:
    return files("prompts").joinpath(name).read_text(encoding="utf-8").strip()


def render(name: str, **values: object) -> str:
    """The prompt file `name` with its `$placeholders` substituted (a missing one raises KeyError)."""
    return Template(prompt_text(name)).substitute({k: str(v) for k, v in values.items()})
