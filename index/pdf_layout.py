"""What pypdf's plain text loses and the page layout still knows: font sizes and positions.

One pass of pypdf's text visitor per page gives positioned fragments. From them: the title (largest font
on the upper half of page 1) and the author names under it, heading lines (larger than body text), and
the reading order of two-column pages whose content stream interleaves the columns (pdfTeX writes one
column after the other, so its pages keep pypdf's text; a generator drawing row by row does not).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from index.documents import ARXIV_ID, DOI, DocumentMeta, arxiv_year


@dataclass(frozen=True, slots=True)
class Fragment:
    """One shown string: baseline position in points (y grows upwards), effective font size."""

    x: float
    y: float
    size: float
    text: str
    width: float


@dataclass(slots=True)
class PageLayout:
    number: int
    width: float
    height: float
    text: str  # pypdf's text, or the column-ordered rebuild
    fragments: list[Fragment]


def _width_of(font: Any, cache: dict[int, Any]) -> Any:
    """A function giving a string's width in ems from the font's metrics (the /Widths array, or the
    standard-14 metrics pypdf ships); half an em per character where the metrics cannot be read."""
    key = id(font)
    if key not in cache:
        widths: dict[str, float] | None = None
        try:  # pypdf's font model is internal; it is only an aid to measuring, so any failure is fine
            from pypdf.generic._font import Font

            widths = Font.from_font_resource(font).character_widths
        except Exception:
            widths = None
        if not widths:
            cache[key] = lambda text: 0.5 * len(text)
        else:
            default = float(widths.get("default", 500) or 500)
            cache[key] = lambda text: sum(float(widths.get(ch, default)) for ch in text) / 1000.0
    return cache[key]


def read_page(page: Any, number: int) -> PageLayout:
    """pypdf's text of the page plus its upright fragments; columns put in order when interleaved."""
    frags: list[Fragment] = []
    fonts: dict[int, Any] = {}

    def visit(text: str, cm: list[float], tm: list[float], font: Any, size: float) -> None:
        if not text.strip():
            return
        a = tm[0] * cm[0] + tm[1] * cm[2]
        b = tm[0] * cm[1] + tm[1] * cm[3]
        c = tm[2] * cm[0] + tm[3] * cm[2]
        d = tm[2] * cm[1] + tm[3] * cm[3]
        if abs(b) > 1e-3 or abs(c) > 1e-3 or a <= 0 or d <= 0:
            return  # rotated or mirrored (arXiv side stamps, figure labels): not part of the reading flow
        x = tm[4] * cm[0] + tm[5] * cm[2] + cm[4]
        y = tm[4] * cm[1] + tm[5] * cm[3] + cm[5]
        eff = size * math.hypot(c, d)
        ems = _width_of(font, fonts)(text.rstrip("\n")) if font is not None else 0.5 * len(text)
        frags.append(Fragment(x, y, round(eff, 2), text, ems * eff))

    text = page.extract_text(visitor_text=visit) or ""
    box = page.mediabox
    width, height = float(box.width), float(box.height)
    rebuilt = _column_text(frags, width)
    return PageLayout(number, width, height, rebuilt if rebuilt is not None else text, frags)


# --- lines ------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Line:
    """Fragments on one baseline with no wide gap between them (a column gutter splits a baseline)."""

    y: float
    size: float  # the largest font on the line (footnote marks are smaller)
    parts: list[Fragment]

    @property
    def x0(self) -> float:
        return min(f.x for f in self.parts)

    @property
    def x1(self) -> float:
        return max(f.x + f.width for f in self.parts)

    @property
    def text(self) -> str:
        out = ""
        prev: Fragment | None = None
        for f in sorted(self.parts, key=lambda f: f.x):
            piece = f.text.replace("\n", " ")
            if prev is not None and not out.endswith(" ") and not piece.startswith(" "):
                gap = f.x - (prev.x + prev.width)
                out += " " if gap > 0.15 * f.size else ""
            out += piece
            prev = f
        return " ".join(out.split())


def _lines(frags: list[Fragment]) -> list[_Line]:
    """Fragments grouped by baseline (superscripts, a few points up, join the line they mark) and split
    at gaps wider than two ems; top first, then left to right."""
    rows: list[_Line] = []
    for f in sorted(frags, key=lambda f: (-f.y, f.x)):
        for row in rows[-3:]:
            if abs(row.y - f.y) <= 0.45 * max(row.size, f.size):
                row.parts.append(f)
                if f.size > row.size:
                    row.size, row.y = f.size, f.y
                break
        else:
            rows.append(_Line(f.y, f.size, [f]))
    out: list[_Line] = []
    for row in sorted(rows, key=lambda r: -r.y):
        seg: list[Fragment] = []
        reach = 0.0  # right end of the segment so far
        for f in sorted(row.parts, key=lambda f: f.x):
            if seg and f.x - reach > 2.0 * max(f.size, row.size):
                out.append(_line(seg))
                seg = []
            reach = f.x + f.width if not seg else max(reach, f.x + f.width)
            seg.append(f)
        out.append(_line(seg))
    return out


def _line(parts: list[Fragment]) -> _Line:
    top = max(parts, key=lambda f: f.size)
    return _Line(top.y, top.size, parts)


def body_size(pages: list[PageLayout]) -> float:
    """The font size most characters are set in."""
    sizes: Counter[float] = Counter()
    for p in pages:
        for f in p.fragments:
            sizes[round(f.size, 1)] += len(f.text.strip())
    return sizes.most_common(1)[0][0] if sizes else 0.0


def heading_keys(page: PageLayout, body: float) -> frozenset[str]:
    """Whitespace-free texts of short lines set clearly larger than the body (the chunker's headings).

    On page 1 the front matter (title, authors, affiliations: large but no headings) is left out: lines
    above "Abstract" or the first body-size sentence."""
    lines = _lines(page.fragments)
    front = 0
    if page.number == 1:
        front = next(
            (
                i
                for i, ln in enumerate(lines)
                if _STOP.match(ln.text) or (abs(ln.size - body) < 0.5 and len(ln.text.split()) >= 6)
            ),
            0,
        )
    keys = set()
    for i, line in enumerate(lines):
        text = line.text
        if i < front:
            continue
        if line.size >= body + 1.0 and 0 < len(text.split()) <= 12 and sum(c.isalpha() for c in text) >= 3:
            keys.add(heading_key(text))
    return frozenset(keys)


_NUMBERED_KEY = re.compile(r"^(?:\d{1,2}(?:\.\d{1,2})*\.?|[A-H](?:\.\d{1,2})*\.?)[A-Z]")


def document_headings(pages: list[PageLayout]) -> list[frozenset[str]]:
    """Heading keys per page. Where the document numbers its sections ("4.2 Crawler"), only numbered
    lines count, so large labels inside figures ("Select/Drop") are not taken for headings."""
    body = body_size(pages)
    keys = [heading_keys(p, body) for p in pages]
    keys = [frozenset(k for k in ks if k[:1].isupper() or k[:1].isdigit()) for ks in keys]
    numbered = sum(1 for ks in keys for k in ks if _NUMBERED_KEY.match(k))
    if numbered >= 3:
        keys = [frozenset(k for k in ks if _NUMBERED_KEY.match(k)) for ks in keys]
    return keys


def heading_key(text: str) -> str:
    return re.sub(r"\s+", "", text)


# --- two columns ------------------------------------------------------------------------------------


def _column_text(frags: list[Fragment], width: float) -> str | None:
    """Text read column by column when the stream interleaves two columns, else None.

    A line starting right of the page middle is right-column text. An interleaving generator goes from
    a left-column line straight to the right-column line on the same baseline, line after line; a
    column-by-column stream (pdfTeX) jumps back to the top when it changes sides, so it keeps pypdf's
    text. Lines reaching across the middle above the columns (title, a one-column header) stay on top,
    those below at the bottom."""
    mid, slack = width / 2, 0.02 * width
    lines = _lines(frags)
    right = [ln for ln in lines if ln.x0 >= mid - slack]
    left = [ln for ln in lines if ln.x0 < mid - slack and ln.x1 <= mid + slack]
    if min(len(left), len(right)) < 4:
        return None
    side = {id(f): "R" for ln in right for f in ln.parts} | {id(f): "L" for ln in left for f in ln.parts}
    same_row = 0
    for a, b in pairwise(frags):
        sa, sb = side.get(id(a)), side.get(id(b))
        if sa and sb and sa != sb and abs(a.y - b.y) < 0.5 * max(a.size, b.size):
            same_row += 1
    if same_row < max(6, 0.5 * min(len(left), len(right))):
        return None
    top = max(ln.y for ln in left + right)
    sided = {id(ln) for ln in left + right}  # by identity: `in` on the lists was quadratic in the lines
    wide = [ln for ln in lines if id(ln) not in sided]
    ordered = [ln for ln in wide if ln.y > top] + left + right + [ln for ln in wide if ln.y <= top]
    return "\n".join(ln.text for ln in ordered)


# --- first-page metadata ----------------------------------------------------------------------------

_AFFILIATION = re.compile(
    r"@|https?:|www\.|\b(universit|institut|department|dept\.|laborator|lab\b|school|college|"
    r"cent(er|re)\b|research|inc\.|ltd|corporation|academy|hospital|foundation|e-?mail)",
    re.I,
)
_MARKS = re.compile(r"[∗*†‡§¶‖⋆♠♣♦♥]|\d+")
_STOP = re.compile(r"^(abstract|introduction|keywords|summary)\b", re.I)
_NAME = re.compile(r"^[A-Z][\w'’.-]*(?:\s+[A-Za-z][\w'’.-]*){0,4}$")
_YEAR = re.compile(r"\b(19[89]\d|20[0-4]\d)\b")
_YEAR_CONTEXT = re.compile(
    r"©|copyright|proceedings|conference|workshop|journal|preprint|published|submitted|accepted|arxiv", re.I
)


def first_page_meta(page: PageLayout, text: str) -> DocumentMeta:
    """Title, authors, year and identifiers from the first page's layout and text."""
    lines = [ln for ln in _lines(page.fragments) if ln.y > page.height * 0.4 and ln.text]
    title, authors, header = "", [], []
    candidates = [
        ln for ln in lines if sum(c.isalpha() for c in ln.text) >= 4 and not _AFFILIATION.search(ln.text)
    ]
    if candidates:
        top = max(ln.size for ln in candidates)
        named = {id(ln) for ln in candidates}
        start = next(i for i, ln in enumerate(lines) if ln.size == top and id(ln) in named)
        end = start
        # a title set larger than the text may run over a few lines; in body size it is one line
        display = top > body_size([page]) + 0.5
        while display and end + 1 < len(lines) and abs(lines[end + 1].size - top) < 0.5 and end - start < 3:
            end += 1
        title = " ".join(ln.text for ln in lines[start : end + 1])
        header = [ln.text for ln in lines[:start]]
        authors, used = _authors(lines[end + 1 :], top)
        header += used
    arxiv = ARXIV_ID.search(text)
    doi = DOI.search(text)
    arxiv_id = arxiv.group(1) if arxiv else ""
    return DocumentMeta(
        title=title,
        authors=authors,
        year=arxiv_year(arxiv_id) or _header_year(header, text),
        doi=doi.group(1).rstrip(".") if doi else "",
        arxiv=arxiv_id,
    )


def _authors(lines: list[_Line], title_size: float) -> tuple[list[str], list[str]]:
    """Names on the lines under the title, until affiliations, e-mails or the abstract begin.

    Footnote marks (smaller fragments, ∗†‡, digits) separate names like commas do; a line ending in a
    lone given name ("… and Andrew") continues on the next line."""
    text, used = "", []
    for line in lines[:6]:
        plain = line.text
        if _STOP.match(plain) or _AFFILIATION.search(plain) or line.size >= title_size - 0.1:
            break
        pieces = []
        for f in sorted(line.parts, key=lambda f: f.x):
            pieces.append(" , " if f.size < line.size - 0.5 else f.text)
        segment = _MARKS.sub(" , ", " ".join(pieces))
        tail = [p for p in re.split(r",|\band\b", text) if p.strip()]
        joins = bool(tail) and len(tail[-1].split()) == 1 and not text.rstrip().endswith(",")
        text += (" " if joins else " , ") + segment
        used.append(plain)
    names = []
    for part in re.split(r",|;|\band\b|&", text):
        name = " ".join(part.split())
        if _NAME.match(name) and len(name.split()) >= 2:
            names.append(name)
    return names, used


def _header_year(header: list[str], text: str) -> int | None:
    """A year printed above the abstract, or on a copyright/venue line of the first page."""
    for line in [*header, *(ln for ln in text.splitlines() if _YEAR_CONTEXT.search(ln))]:
        if m := _YEAR.search(line):
            return int(m.group(1))
    return None


def pdf_info_meta(info: Any) -> DocumentMeta:
    """Title and authors from the PDF's Info dictionary, when they say something."""
    if not info:
        return DocumentMeta()

    def get(key: str) -> str:
        try:
            return " ".join(str(info.get(key) or "").split())
        except Exception:  # broken metadata objects
            return ""

    title = get("/Title")
    if len(title) < 4 or re.search(
        r"^(untitled|microsoft word|document\d*$)|\.(pdf|docx?|tex|dvi|ps)$", title, re.I
    ):
        title = ""
    author = get("/Author")
    sep = r";" if ";" in author else r",|\band\b|&"
    authors = [a.strip() for a in re.split(sep, author) if len(a.strip().split()) >= 2]
    return DocumentMeta(title=title, authors=authors)
