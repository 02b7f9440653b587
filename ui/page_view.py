"""A cited passage where it came from: the rendered PDF page with the quote boxed, or the passage in its
document's text, scrollable, with the quote marked.

PDF pages are drawn by PDFium (pypdfium2, the library `index/pdf_boxes.py` takes the quote's boxes from,
so image and boxes share one geometry). The boxes are HTML rectangles laid over the image in percent of
the page, so they stay on the words at any zoom. Only documents of the open index are rendered, only the
page asked for, and rendered pages are kept in a small cache keyed by the file's size and mtime.
"""

from __future__ import annotations

import base64
import functools
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING

import streamlit as st

from assistant.agent.records import Citation
from index.pdf_boxes import Box, open_pdf
from ui.citations_html import passage_block

if TYPE_CHECKING:
    from index.search import HybridIndex

CARD_SCALE = 1.0  # 72 dpi: a page image as wide as a source card, ~100 KB as JPEG
_CONTEXT_BEFORE = 600  # characters of the document shown before a text passage
_CONTEXT_AFTER = 1500


@dataclass(frozen=True, slots=True)
class RenderedPage:
    """A page image (JPEG) and the page's visible area in PDF points (left, bottom, right, top)."""

    page: int
    pages: int
    jpeg: bytes
    area: tuple[float, float, float, float]


def viewable_pdf(source: str, documents: Iterable[str]) -> Path | None:
    """The file of an indexed PDF, or None: a path that is not a document of the index is never opened."""
    if source not in set(documents) or not source.lower().endswith(".pdf"):
        return None
    path = Path(source)
    return path if path.is_file() else None


def render_page(path: Path, page: int, scale: float = CARD_SCALE) -> RenderedPage | None:
    """Page `page` (1-based) of the PDF, or None when it has no such page or cannot be read (gone, damaged:
    PDFium's errors are RuntimeErrors)."""
    try:
        stat = path.stat()
        return _render(str(path), stat.st_size, stat.st_mtime_ns, page, round(scale, 2))
    except (OSError, ValueError, RuntimeError):
        return None


@functools.lru_cache(maxsize=48)
def _render(path: str, size: int, mtime_ns: int, page: int, scale: float) -> RenderedPage | None:
    with open_pdf(Path(path)) as pdf:
        count = len(pdf)  # type: ignore[arg-type]
        if not 1 <= page <= count:
            return None
        pdf_page = pdf[page - 1]  # type: ignore[index]
        left, bottom, right, top = pdf_page.get_cropbox()
        image = pdf_page.render(scale=scale).to_pil().convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=80)
    return RenderedPage(page, count, buffer.getvalue(), (left, bottom, right, top))


def page_html(rendered: RenderedPage, boxes: Iterable[Box], *, width_px: int | None = None) -> str:
    """The page image with each box on this page drawn over it (`width_px` None: as wide as its box)."""
    left, bottom, right, top = rendered.area
    w, h = right - left, top - bottom
    marks = []
    for page, x0, y0, x1, y1 in boxes:
        if page != rendered.page:
            continue
        style = (
            f"left:{(x0 - left) / w * 100:.3f}%;top:{(top - y1) / h * 100:.3f}%;"
            f"width:{(x1 - x0) / w * 100:.3f}%;height:{(y1 - y0) / h * 100:.3f}%"
        )
        marks.append(f'<div class="ra-box" style="{style}" data-box="{page},{x0},{y0},{x1},{y1}"></div>')
    size = f"width:{width_px}px" if width_px else "width:100%"
    data = base64.b64encode(rendered.jpeg).decode("ascii")
    return (
        f'<div class="ra-pageview" style="{size}" data-page="{rendered.page}" '
        f'data-area="{left},{bottom},{right},{top}">'
        f'<img src="data:image/jpeg;base64,{data}" alt="page {rendered.page}">{"".join(marks)}</div>'
    )


def quote_pages_html(path: Path, boxes: tuple[Box, ...], page: int | None) -> str:
    """Every page the quote is on, each with its boxes (a quote across a page break shows both pages);
    the cited page alone, unmarked, when the quote could not be located on it."""
    pages = sorted({b[0] for b in boxes}) or ([page] if page else [])
    shown = [r for r in (render_page(path, p) for p in pages) if r is not None]
    return "".join(page_html(r, boxes) for r in shown)


def in_context(text: str, start: int, end: int) -> str:
    """The quote (document offsets start..end) marked inside the text around it, for a scrollable view."""
    lo, hi = max(0, start - _CONTEXT_BEFORE), min(len(text), end + _CONTEXT_AFTER)
    before = ("…" if lo else "") + text[lo:start]
    after = text[end:hi] + ("…" if hi < len(text) else "")
    return f'{escape(before)}<mark class="ra-hl">{escape(text[start:end])}</mark>{escape(after)}'


def source_views(citations: Iterable[Citation], index: HybridIndex) -> dict[int, str]:
    """For each cited passage, the HTML its card opens to: the PDF page(s) with the quote boxed, or the
    passage in its document's text. Citations whose document is gone keep the passage text alone."""
    documents = index.documents
    views: dict[int, str] = {}
    for c in citations:
        if c.kind == "computed" or c.start is None or c.end is None:
            continue
        if (path := viewable_pdf(c.source, documents)) is not None:
            if html := quote_pages_html(path, c.boxes, c.page):
                views[c.id] = f'<div class="ra-label">page {c.page}</div>{html}{passage_block(c)}'
        elif c.source in documents and (text := index.document_text(c.source)) is not None:
            context = in_context(text, c.start, c.end)
            views[c.id] = f'<div class="ra-label">in the document</div><div class="ra-text">{context}</div>'
    return views


ZOOMS = (50, 75, 100, 150, 200)  # percent of the page's size at 96 dpi


@st.fragment
def page_viewer(
    citations: Iterable[Citation], index: HybridIndex, key: str, numbers: Mapping[int, int] | None = None
) -> None:
    """Any page of a cited PDF: previous/next page, zoom, and the original file to download. A fragment,
    so turning a page redraws the viewer, not the conversation."""
    documents = index.documents
    cited = [c for c in citations if c.kind != "computed" and viewable_pdf(c.source, documents)]
    if not cited:
        return
    with st.expander("Page view", icon=":material/picture_as_pdf:"):
        pick, zoom_col = st.columns([3, 2])
        choice = pick.selectbox(
            "Cited page",
            cited,
            key=f"{key}-pv-cite",
            format_func=lambda c: f"[{(numbers or {}).get(c.id, c.id)}] {Path(c.source).name}, p. {c.page}",
        )
        zoom = zoom_col.select_slider(
            "Zoom", ZOOMS, value=100, key=f"{key}-pv-zoom", format_func=lambda z: f"{z}%"
        )
        path = viewable_pdf(choice.source, documents)
        if path is None:
            return
        state = f"{key}-pv-page-{choice.id}"
        page = int(st.session_state.setdefault(state, choice.page or 1))
        rendered = render_page(path, page, scale=zoom / 100 * 96 / 72)
        if rendered is None:
            st.warning(f"Page {page} of {path.name} cannot be shown.")
            return
        back, where, forward, download = st.columns([1, 2, 1, 2])
        back.button(
            "◀",
            key=f"{state}-prev",
            disabled=page <= 1,
            on_click=_turn,
            args=(state, -1, rendered.pages),
            help="previous page",
        )
        where.markdown(f"page **{page}** of {rendered.pages}")
        forward.button(
            "▶",
            key=f"{state}-next",
            disabled=page >= rendered.pages,
            on_click=_turn,
            args=(state, 1, rendered.pages),
            help="next page",
        )
        download.download_button(
            "Original PDF",
            path.read_bytes(),
            file_name=path.name,
            mime="application/pdf",
            key=f"{state}-dl",
            icon=":material/download:",
        )
        width = round((rendered.area[2] - rendered.area[0]) * zoom / 100 * 96 / 72)
        st.html(f'<div class="ra-pagescroll">{page_html(rendered, choice.boxes, width_px=width)}</div>')


def _turn(state: str, delta: int, pages: int) -> None:
    st.session_state[state] = min(max(1, int(st.session_state[state]) + delta), pages)
