"""Prompt files live in the `prompts` package; `$name` placeholders are filled with `string.Template`.
Model replies come back as JSON under a schema and are read here too (`json_object`).

Every file starts with a header that declares its variables:

    ---
    vars: question, evidence
    ---

Loading fails when the text uses a variable the header does not declare or declares one it never uses,
and rendering fails on a missing or an unexpected value, so a prompt and its callers cannot drift apart.
Template rather than `str.format` because prompts show JSON, whose braces would need escaping.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from string import Template
from typing import Any


class PromptError(ValueError):
    """A prompt file or a render call that does not match the file's declared variables."""


@dataclass(frozen=True)
class Prompt:
    name: str
    text: str
    variables: frozenset[str]


def prompt_names() -> list[str]:
    """Every prompt file of the package (the test renders each one)."""
    return sorted(p.name for p in files("prompts").iterdir() if p.name.endswith(".md"))


@cache
def load(name: str) -> Prompt:
    raw = files("prompts").joinpath(name).read_text(encoding="utf-8")
    header, sep, body = raw.partition("\n---\n")
    if not raw.startswith("---\n") or not sep:
        raise PromptError(
            f"prompts/{name}: starts with a '---' header declaring 'vars:' and ends it with '---'"
        )
    declared: set[str] = set()
    for line in header.removeprefix("---\n").splitlines():
        key, _, value = line.partition(":")
        if key.strip() != "vars":
            raise PromptError(f"prompts/{name}: unknown header line '{line}' (only 'vars:' is allowed)")
        declared |= {v.strip() for v in value.split(",") if v.strip()}
    text = body.strip("\n")
    used = set(Template(text).get_identifiers())
    if used != declared:
        raise PromptError(
            f"prompts/{name}: declares {sorted(declared)} but uses {sorted(used)}; make the header match"
        )
    return Prompt(name, text, frozenset(declared))


def render(name: str, **values: object) -> str:
    """The prompt file `name` with its `$placeholders` substituted; the values must be exactly the
    declared variables."""
    prompt = load(name)
    given = set(values)
    if given != prompt.variables:
        missing, extra = sorted(prompt.variables - given), sorted(given - prompt.variables)
        raise PromptError(f"prompts/{name}: missing values {missing}, unexpected values {extra}")
    return Template(prompt.text).substitute({k: str(v) for k, v in values.items()})


def parse_json(raw: str) -> Any:
    """A model's JSON reply; a parse failure becomes the ValueError the re-ask feeds back."""
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"it is not JSON ({exc.msg})") from None


def json_object(raw: str) -> dict[str, Any]:
    data = parse_json(raw)
    if not isinstance(data, dict):
        raise ValueError("it is not a JSON object")
    return data


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", '"': '"', "\\": "\\", "/": "/"}


class StreamedField:
    """The decoded value of one string field of a JSON reply that is still arriving, as it grows: what
    lets a reader see an answer's words while the rest of the object (its citations) is not written yet.
    `feed` takes the next piece of the raw reply and returns the field's new characters."""

    def __init__(self, name: str) -> None:
        self._opening = f'"{name}"'
        self._raw = ""
        self._at: int | None = None  # where the undecoded rest of the value starts in `_raw`
        self.done = False

    def feed(self, piece: str) -> str:
        self._raw += piece
        if self._at is None and not self._find_start():
            return ""
        out: list[str] = []
        raw, i = self._raw, self._at or 0
        while i < len(raw) and not self.done:
            c = raw[i]
            if c == '"':
                self.done = True
                i += 1
            elif c != "\\":
                out.append(c)
                i += 1
            elif i + 1 >= len(raw) or (raw[i + 1] == "u" and i + 6 > len(raw)):
                break  # an escape cut in two: wait for its end
            elif raw[i + 1] == "u":
                out.append(chr(int(raw[i + 2 : i + 6], 16)))
                i += 6
            else:
                out.append(_ESCAPES.get(raw[i + 1], raw[i + 1]))
                i += 2
        self._at = i
        return "".join(out)

    def _find_start(self) -> bool:
        key = self._raw.find(self._opening)
        if key < 0:
            return False
        rest = self._raw[key + len(self._opening) :].lstrip()
        if not rest.startswith(":"):
            return False
        value = rest[1:].lstrip()
        if not value.startswith('"'):
            return False
        self._at = len(self._raw) - len(value) + 1
        return True
