"""Text from documents, models and sandboxed code, made safe for a terminal.

A document title or a program's output can carry escape sequences: OSC ones set the window title, write
the clipboard (OSC 52) or plant links; CSI ones move the cursor and overwrite what was printed (a "checked"
answer painted over a rejected one). What reaches a terminal keeps tabs and newlines only; on stdout the
colour codes Rich itself writes (SGR) pass, every other control character is dropped. A pipe or `--json`
gets the text as it is (JSON escapes control characters itself).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from typing import TextIO

_SGR = re.compile(r"(\x1b\[[0-9;]*m)")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # C0 but tab and newline, DEL, C1 (CSI is \x9b)


def terminal_safe(text: str) -> str:
    """The text without control characters (tab and newline kept)."""
    return _CONTROL.sub("", text)


def for_terminal(text: str, stream: TextIO) -> str:
    """`text` made safe when `stream` is a terminal, else unchanged (a pipe gets the bytes it asked for)."""
    return terminal_safe(text) if stream.isatty() else text


class SafeStdout:
    """stdout for Rich: colour codes kept, every other control character dropped, also when the text came
    from a document. Looks sys.stdout up on each write, so captured output (tests, redirection) still works."""

    def __init__(self, target: Callable[[], TextIO] = lambda: sys.stdout) -> None:
        self._target = target

    def write(self, text: str) -> int:
        parts = _SGR.split(text)
        cleaned = "".join(p if i % 2 else terminal_safe(p) for i, p in enumerate(parts))
        return self._target().write(cleaned)

    def flush(self) -> None:
        self._target().flush()

    def isatty(self) -> bool:
        return self._target().isatty()

    def fileno(self) -> int:
        return self._target().fileno()

    @property
    def encoding(self) -> str:
        return getattr(self._target(), "encoding", "utf-8") or "utf-8"
