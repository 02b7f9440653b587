"""No escape sequence from a document, a model or sandboxed code reaches the terminal: `ra search` over a
document whose title and text carry OSC/CSI sequences, and `ra sandbox run` printing them, on a real
pseudo-terminal; a pipe still gets the program's bytes."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
from pathlib import Path

from assistant.cli.terminal import SafeStdout, terminal_safe

HOSTILE = "\x1b]0;owned\x07\x1b]52;c;ZWNobyBwd25lZA==\x07\x1b[2J\x1b[1A\x9b31m"


def _on_a_terminal(args: list[str], env: dict[str, str]) -> bytes:
    """Run `ra ARGS` with stdout and stderr on a pseudo-terminal; everything it wrote."""
    main, child = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "assistant", *args], stdout=child, stderr=child, env=env)
    os.close(child)
    data = b""
    while True:
        ready, _, _ = select.select([main], [], [], 120)
        if not ready:
            break
        try:
            piece = os.read(main, 65536)
        except OSError:  # the child closed the terminal
            break
        if not piece:
            break
        data += piece
    proc.wait(timeout=120)
    os.close(main)
    return data


def test_terminal_safe_keeps_text_tabs_and_newlines_only() -> None:
    assert terminal_safe(f"a{HOSTILE}b\tc\nd\r") == "a]0;owned]52;c;ZWNobyBwd25lZA==[2J[1A31mb\tc\nd"


def test_stdout_keeps_richs_colours_and_drops_everything_else(capsys) -> None:
    SafeStdout().write(f"\x1b[1mbold\x1b[0m {HOSTILE}end")
    assert capsys.readouterr().out == "\x1b[1mbold\x1b[0m ]0;owned]52;c;ZWNobyBwd25lZA==[2J[1A31mend"


def test_a_hostile_document_title_and_text_do_not_reach_the_terminal_as_escapes(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "evil.md").write_text(f"# Zebra{HOSTILE} facts\n\nZebras are striped{HOSTILE} animals.\n")
    env = {**os.environ, "RA_CONFIG": str(tmp_path / "none.toml"), "TERM": "xterm"}
    index = str(tmp_path / "idx")
    subprocess.run(
        [sys.executable, "-m", "assistant", "ingest", str(docs), "--index", index],
        env=env,
        check=True,
        capture_output=True,
    )
    shown = _on_a_terminal(["search", "zebras striped", "--index", index], env)
    assert b"Zebras are striped" in shown
    assert (
        b"\x1b]" not in shown and b"\x1b[2J" not in shown and b"\x1b[1A" not in shown and b"\x07" not in shown
    )
    assert b"\xc2\x9b" not in shown  # the C1 CSI, UTF-8 encoded


def test_sandbox_output_is_cleaned_on_a_terminal_and_verbatim_in_a_pipe(tmp_path: Path) -> None:
    script = tmp_path / "hostile.py"
    script.write_text(f"print({HOSTILE!r} + 'done')\n")
    env = {**os.environ, "RA_CONFIG": str(tmp_path / "none.toml"), "TERM": "xterm"}
    shown = _on_a_terminal(["sandbox", "run", str(script)], env)
    assert b"done" in shown and b"\x1b]" not in shown and b"\x1b[2J" not in shown
    piped = subprocess.run(
        [sys.executable, "-m", "assistant", "sandbox", "run", str(script)],
        env=env,
        capture_output=True,
        timeout=120,
    )
    assert piped.stdout.startswith(HOSTILE.encode()) and piped.stdout.rstrip().endswith(b"done")
