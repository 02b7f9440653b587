"""Where a quoted span sits on its PDF page: rectangles in PDF points, origin at the bottom left.

Why a second PDF library: pypdf extracts the text we index, but it has no reliable per-character
geometry and cannot render a page; PDFium (pypdfium2) gives both, so the page view and every client of
`ra search --json` / `ra ask --json` can draw the same highlight. The quote is our (pypdf) text, PDFium
has its own, so they are matched on a key of letters and digits only (NFKC, case-folded): hyphens,
line breaks, ligatures and spacing differ between extractors, the words do not. A quote whose lines
were reordered (two-column pages rebuilt in reading order) is matched line by line.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

Box = tuple[int, float, float, float, float]  # page (1-based), x0, y0, x1, y1 in points, y up
_MIN_LINE_KEY = 12  # a shorter line matched alone could land anywhere on the page
_PAGE_BREAK = "\f"  # what LoadedDocument puts between pages (index.types imports this module)


def _key(text: str) -> tuple[str, list[int]]:
    out: list[str] = []
    origin: list[int] = []
    for i, ch in enumerate(text):
        for c in unicodedata.normalize("NFKC", ch).casefold():
            if c.isalnum():
                out.append(c)
                origin.append(i)
    return "".join(out), origin


@contextmanager
def open_pdf(path: Path) -> Iterator[object]:
    import pypdfium2 as pdfium  # imported here: only PDF citations need it

    pdf = pdfium.PdfDocument(str(path))
    try:
        yield pdf
    finally:
        pdf.close()


def _page_chars(page: object) -> tuple[object, str]:
    """The text page and its characters one per PDFium index (get_text_range would merge surrogates)."""
    import pypdfium2.raw as raw

    textpage = page.get_textpage()  # type: ignore[attr-defined]
    count = textpage.count_chars()
    chars = "".join(chr(raw.FPDFText_GetUnicode(textpage.raw, i) or 32) for i in range(count))
    return textpage, chars


def _match(key: str, quote: str) -> list[tuple[int, int]]:
    """Key ranges [lo, hi) of the quote in the page key: the whole quote, else each long-enough line."""
    whole, _ = _key(quote)
    if not whole:
        return []
    at = key.find(whole)
    if at >= 0:
        return [(at, at + len(whole))]
    found: list[tuple[int, int]] = []
    for line in quote.splitlines():
        part, _ = _key(line)
        if len(part) < _MIN_LINE_KEY:
            continue
        at = key.find(part)
        if at >= 0:
            found.append((at, at + len(part)))
    return found


def _continues(run: list[float], box: tuple[float, float, float, float], vertical: bool) -> bool:
    """Whether a character's box extends the run: on the same line (or, for text turned by 90 degrees,
    the same column), not jumping back, and no further on than three character sizes (a new column)."""
    x0, y0, x1, y1 = box
    if vertical:
        gap = min(abs(y0 - run[3]), abs(run[1] - y1))
        return run[0] <= (x0 + x1) / 2 <= run[2] and gap <= 3 * max(x1 - x0, run[2] - run[0])
    size = max(y1 - y0, run[3] - run[1])
    return run[1] <= (y0 + y1) / 2 <= run[3] and x0 >= run[0] and x0 - run[2] <= 3 * size


def _line_boxes(textpage: object, chars: str, indices: list[int], page_no: int) -> list[Box]:
    """Merge the characters' boxes into one rectangle per run of a line; a turned character (an arXiv
    stamp in the margin) runs along its own direction."""
    import pypdfium2.raw as raw

    runs: list[list[float]] = []
    vertical_run = False
    for i in indices:
        if chars[i].isspace():
            continue
        box = textpage.get_charbox(i)  # type: ignore[attr-defined]
        if box[2] <= box[0] or box[3] <= box[1]:
            continue
        vertical = abs(math.sin(raw.FPDFText_GetCharAngle(textpage.raw, i))) > 0.7  # type: ignore[attr-defined]
        if runs and vertical == vertical_run and _continues(runs[-1], box, vertical):
            run = runs[-1]
            runs[-1] = [min(run[0], box[0]), min(run[1], box[1]), max(run[2], box[2]), max(run[3], box[3])]
        else:
            runs.append(list(box))
            vertical_run = vertical
    return [(page_no, *(round(v, 1) for v in run)) for run in runs]  # type: ignore[misc]


def quote_boxes(path: str | Path, page: int, quote: str) -> list[Box]:
    """Rectangles covering `quote` on page `page` (1-based) of the PDF at `path`; a quote holding the
    page separator continues on the next page(s). Empty when the file or the text cannot be found:
    a highlight drawn in the wrong place is worse than none."""
    path = Path(path)
    if path.suffix.lower() != ".pdf" or not path.is_file() or page < 1:
        return []
    pieces = quote.split(_PAGE_BREAK)
    boxes: list[Box] = []
    try:
        with open_pdf(path) as pdf:
            for number, piece in enumerate(pieces, start=page):
                if number > len(pdf):  # type: ignore[arg-type]
                    break
                textpage, chars = _page_chars(pdf[number - 1])  # type: ignore[index]
                key, origin = _key(chars)
                for lo, hi in _match(key, piece):
                    indices = list(range(origin[lo], origin[hi - 1] + 1))
                    boxes.extend(_line_boxes(textpage, chars, indices, number))
    except Exception:  # a damaged PDF loses its highlight, never the answer
        return []
    return boxes


def page_count(path: str | Path) -> int:
    with open_pdf(Path(path)) as pdf:
        return len(pdf)  # type: ignore[arg-type]
