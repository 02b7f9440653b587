"""The conversation as Markdown: each question, its answer with [n] markers, and the numbered sources
("Title — Authors (year), p. N" and the quote; code and output for computed results) and BibTeX entries
of every cited document, so the export stands on its own and its references paste into a paper."""

from __future__ import annotations

import time
from collections.abc import Iterable

from assistant.agent.records import Citation
from assistant.cli.sources import citation_label, citations_bibtex
from ui.agent_run import Turn
from ui.citations_html import citation_numbers, renumbered


def conversation_markdown(turns: Iterable[Turn], index_dir: str) -> str:
    turns = list(turns)
    lines = [
        "# Research conversation",
        "",
        f"Exported {time.strftime('%Y-%m-%d %H:%M')} · index `{index_dir}`",
    ]
    for n, turn in enumerate(turns, 1):
        lines += ["", f"## {n}. {turn.question.strip()}", ""]
        if turn.standalone:
            lines += [f"_Searched for: {turn.standalone}_", ""]
        answer = turn.answer
        if turn.error or answer is None:
            lines.append(f"**Error:** {turn.error or 'no answer'}")
            continue
        shown = citation_numbers(answer)  # the numbers the page shows
        if answer.sentences:
            lines.append(
                " ".join(
                    _sentence(s.text, tuple(shown[n] for n in s.citations), s.verdict)
                    for s in answer.sentences
                )
            )
        else:
            lines.append(renumbered(answer.text))
        if answer.citations:
            lines += ["", "**Sources**", ""]
            for c in sorted(answer.citations, key=lambda c: shown[c.id]):
                lines += _source(c, shown[c.id])
    cited = [c for turn in turns if turn.answer and not turn.error for c in turn.answer.citations]
    if bibtex := citations_bibtex(cited):
        lines += ["", "## References (BibTeX)", "", "```bibtex", bibtex.rstrip("\n"), "```"]
    return "\n".join(lines) + "\n"


def _sentence(text: str, ids: tuple[int, ...], verdict: str | None) -> str:
    marks = "".join(f"[{n}]" for n in ids)
    tag = f" _({verdict})_" if verdict else ""
    return f"{text.strip()} {marks}{tag}".replace("  ", " ")


def _source(c: Citation, number: int) -> list[str]:
    if c.kind == "computed":
        return [
            f"{number}. python (computed): “{c.quote}”",
            "",
            "   ```python",
            *(f"   {line}" for line in (c.code or "").splitlines()),
            "   ```",
        ]
    return [f"{number}. {citation_label(c)}: “{c.quote}”"]
