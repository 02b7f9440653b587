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

import re
from typing import Any

_CAPTION = re.compile(r"^\s*(Table\s+\d+[:.].*)$", re.M)
_GAP = re.compile(r"\S(\s{2,})(?=\S)")
_CELL = re.compile(r"\S+(?: \S+)*")
_WORD = re.compile(r"[^\W\d_][\w'’:,.;-]*")
_MIN_ROWS = 3
_MAX_CELL_WORDS = 5  # a longer piece is a line of the text column beside the table
_TOLERANCE = 2


def _gaps(line: str) -> list[int]:
    """Grid columns where the line has a gap of two or more spaces (the gap's end)."""
    return [m.end(1) for m in _GAP.finditer(line)]


def _shares_columns(gaps: list[int], ref: list[int]) -> bool:
    return sum(1 for g in gaps if any(abs(g - r) <= _TOLERANCE for r in ref)) >= 2


def _aligned_cells(lines: list[str]) -> list[list[str]]:
    """Rows of cells, keeping short cells whose start, centre or end lines up with cells in half of the
    rows; where a row has three or more one-word cells, those are prose words beside the table and go."""
    cells = [[(m.start(), m.end(), m.group()) for m in _CELL.finditer(line)] for line in lines]
    need = max(2, len(lines) // 2)
    row_anchors = [{p for a, b, _ in row for p in (a, b, (a + b) // 2)} for row in cells]

    def lines_up(a: int, b: int) -> bool:
        points = (a, b, (a + b) // 2)
        hits = sum(1 for ra in row_anchors if any(abs(p - q) <= _TOLERANCE for p in points for q in ra))
        return hits >= need

    rows = []
    for row in cells:
        kept = [text for a, b, text in row if lines_up(a, b) and len(text.split()) <= _MAX_CELL_WORDS]
        words = [c for c in kept if _WORD.fullmatch(c)]
        rows.append([c for c in kept if c not in words] if len(words) >= 3 else kept)
    return rows


def tables_from_layout(layout: str) -> list[dict[str, Any]]:
    """Tables of one page's layout text: {"caption": str, "rows": [[cell, ...], ...]}."""
    lines = layout.splitlines()
    captions = [(i, m.group(1).strip()) for i, line in enumerate(lines) if (m := _CAPTION.match(line))]
    tables: list[dict[str, Any]] = []
    i = 0
    while i < len(lines):
        ref = _gaps(lines[i])
        j = i + 1
        while len(ref) >= 2 and j < len(lines) and lines[j].strip() and _shares_columns(_gaps(lines[j]), ref):
            j += 1
        rows = [r for r in _aligned_cells(lines[i:j]) if len(r) >= 2] if j - i >= _MIN_ROWS else []
        cells = [c for r in rows for c in r]
        if len(rows) >= _MIN_ROWS and sum(bool(re.search(r"\d", c)) for c in cells) >= 0.5 * len(cells):
            near = min(captions, key=lambda c: abs(c[0] - i), default=(0, ""))
            tables.append({"caption": near[1], "rows": rows})
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
