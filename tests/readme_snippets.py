"""The README's configuration snippets, read back so tests run exactly what a reader would copy.

A snippet sits between `<!-- snippet:NAME -->` and `<!-- /snippet -->` around one fenced block."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def snippet(name: str) -> str:
    """The fenced block's text of snippet `name`; fails the test when the README lost it."""
    text = README.read_text()
    found = re.search(
        rf"<!-- snippet:{re.escape(name)} -->\s*```[\w-]*\n(.*?)```\s*<!-- /snippet -->", text, re.S
    )
    assert found, f"README.md has no snippet {name!r}"
    return found.group(1)


def shell_commands(name: str) -> list[str]:
    """The snippet's shell commands: continuation lines joined, trailing `# comments` dropped."""
    joined = snippet(name).replace("\\\n", " ")
    commands = []
    for line in joined.splitlines():
        line = re.sub(r"\s+#\s.*$", "", line).strip()
        if line:
            commands.append(line)
    return commands
