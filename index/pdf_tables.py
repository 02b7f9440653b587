"""Tables of PDF pages as rows of cells, from pypdf's layout mode (text placed on a character grid).

pdfTeX draws a table row as one string with wide kerns, so only the character grid of layout mode shows
the columns. Layout mode is slow, so only pages whose text has a caption line ("Table 5: ...") are laid
out. A table is a run of at least three lines whose gaps of two or more spaces fall in the same grid
columns and half of whose cells hold a digit; a cell is kept when its start, centre or end lines up with
cells in half of the rows, and rows with three or more one-word cells lose those (words of justified
prose running beside the table). Not handled: tables drawn as images, cells wrapped over several lines
(each line is its own row), header rows of words only, and two tables side by side (their rows come out
joined).
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Callable
from typing import Any

_CAPTION = re.compile(r"^\s*(Table\s+\d+[:.].*)$", re.M)
_GAP = re.compile(r"\S(\s{2,})(?=\S)")
_CELL = re.compile(r"\S+(?: \S+)*")
_WORD = re.compile(r"[^\W\d_][\w'’:,.;-]*")
_MIN_ROWS = 3
_MAX_CELL_WORDS = 5  # a longer piece is a line of the text column beside the table
_TOLERANCE = 2
_SPREAD = range(-_TOLERANCE, _TOLERANCE + 1)
_DIGIT = re.compile(r"\d")


def _gaps(line: str) -> tuple[int, ...]:
    """Grid columns where the line has a gap of two or more spaces (the gap's end)."""
    return tuple(m.end(1) for m in _GAP.finditer(line))


def _shares_columns(gaps: tuple[int, ...], ref: tuple[int, ...]) -> bool:
    return sum(1 for g in gaps if any(abs(g - r) <= _TOLERANCE for r in ref)) >= 2


_Cell = tuple[int, int, str]  # start and end column on the grid, text


def _keep(row: list[_Cell], lines_up: Callable[[int, int], bool]) -> list[str]:
    """The row's short cells that line up; where three or more of them are one word, those are prose
    words beside the table and go."""
    kept = [text for a, b, text in row if lines_up(a, b) and len(text.split()) <= _MAX_CELL_WORDS]
    words = [c for c in kept if _WORD.fullmatch(c)]
    return [c for c in kept if c not in words] if len(words) >= 3 else kept


def _shape(row: list[_Cell]) -> tuple[tuple[int, int, bool, bool, bool], ...]:
    """What `_keep` and the digit count see of a row: rows of one shape give cells alike."""
    return tuple(
        (a, b, len(t.split()) <= _MAX_CELL_WORDS, bool(_WORD.fullmatch(t)), bool(_DIGIT.search(t)))
        for a, b, t in row
    )


class _Grid:
    """The cells of a page's lines, indexed so that any run of lines is judged without a pass over it.

    A cell lines up when its start, centre or end is within the tolerance of a cell anchor in half of the
    run's lines. `near` maps each grid column to the lines (a bit mask) with an anchor there, so a count is
    one union of three masks; lines are grouped by shape, so a run is judged per shape, not per line."""

    def __init__(self, lines: list[str]) -> None:
        self.cells = [[(m.start(), m.end(), m.group()) for m in _CELL.finditer(line)] for line in lines]
        self.near: dict[int, int] = {}
        for r, row in enumerate(self.cells):
            bit = 1 << r
            for p in {q + d for a, b, _ in row for q in (a, b, (a + b) // 2) for d in _SPREAD}:
                self.near[p] = self.near.get(p, 0) | bit
        first: dict[tuple[tuple[int, int, bool, bool, bool], ...], int] = {}
        self.shape = [first.setdefault(_shape(row), r) for r, row in enumerate(self.cells)]

    def _lines_up(self, i: int, j: int) -> Callable[[int, int], bool]:
        window, need = ((1 << (j - i)) - 1) << i, max(2, (j - i) // 2)
        near = self.near

        @functools.cache
        def lines_up(a: int, b: int) -> bool:
            hits = (near.get(a, 0) | near.get(b, 0) | near.get((a + b) // 2, 0)) & window
            return hits.bit_count() >= need

        return lines_up

    def is_table(self, i: int, j: int) -> bool:
        """Lines i..j-1 hold three rows of two or more kept cells, half of those cells with a digit."""
        lines_up = self._lines_up(i, j)
        rows = cells = digits = 0
        for rep, count in Counter(self.shape[i:j]).items():  # one line stands for its shape
            kept = _keep(self.cells[rep], lines_up)
            if len(kept) >= 2:
                rows += count
                cells += count * len(kept)
                digits += count * sum(1 for c in kept if _DIGIT.search(c))
        return rows >= _MIN_ROWS and digits >= 0.5 * cells

    def rows(self, i: int, j: int) -> list[list[str]]:
        lines_up = self._lines_up(i, j)
        return [kept for row in self.cells[i:j] if len(kept := _keep(row, lines_up)) >= 2]


def _run_ends(gaps: list[tuple[int, ...]], blank: list[bool]) -> list[int]:
    """For each line i, the end of the run of lines after it whose gaps share columns with its own.

    Lines with equal gaps have equal runs, so a run found from line i also serves every later line of it
    with the same gaps: a block of aligned rows costs one scan, not one per row."""
    ends = [i + 1 for i in range(len(gaps))]
    found: dict[tuple[int, ...], tuple[int, int]] = {}  # gaps -> (start, end) of the last run scanned
    for i, ref in enumerate(gaps):
        if len(ref) < 2:
            continue
        start, end = found.get(ref, (-1, -1))
        if not start < i < end:
            end = i + 1
            while end < len(gaps) and not blank[end] and _shares_columns(gaps[end], ref):
                end += 1
            found[ref] = (i, end)
        ends[i] = end
    return ends


def tables_from_layout(layout: str) -> list[dict[str, Any]]:
    """Tables of one page's layout text: {"caption": str, "rows": [[cell, ...], ...]}.

    A run of lines that is no table is tried again from its next line; `_Grid` makes each try cost the
    run's distinct row shapes rather than its lines times its lines, so a page of hundreds of aligned
    lines that form no table takes well under a second instead of minutes."""
    lines = layout.splitlines()
    captions = [(i, m.group(1).strip()) for i, line in enumerate(lines) if (m := _CAPTION.match(line))]
    grid = _Grid(lines)
    ends = _run_ends([_gaps(line) for line in lines], [not line.strip() for line in lines])
    tables: list[dict[str, Any]] = []
    i = 0
    while i < len(lines):
        j = ends[i]
        if j - i >= _MIN_ROWS and grid.is_table(i, j):
            near = min(captions, key=lambda c: abs(c[0] - i), default=(0, ""))
            tables.append({"caption": near[1], "rows": grid.rows(i, j)})
            i = j
        else:
            i += 1
    return tables


def page_tables(page: Any, text: str) -> list[dict[str, Any]]:
    """The tables of a pypdf page whose plain `text` announces one; [] when layout mode fails."""
    if not _CAPTION.search(text):
        return []
    try:
        layout = page.extract_text(extraction_mode="layout") or ""
    except Exception:  # layout mode is stricter than plain extraction on odd fonts
        return []
    return tables_from_layout(layout)
