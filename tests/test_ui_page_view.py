"""The page view: a cited or found PDF passage opens on its rendered page with the quote boxed, a text
passage in its document's context; pages are turned, zoomed and downloaded in the viewer; nothing
outside the index is rendered. The browser test checks the drawn highlight against where pypdf (not
PDFium, which drew it) places the passage's words."""

from __future__ import annotations

import base64
import io
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import streamlit as st
from PIL import Image
from pypdf import PdfReader
from streamlit.testing.v1 import AppTest
from test_ui_browser import CHROMIUM_ARGS, _missing, chromium  # noqa: F401

from assistant.agent.citations import whole_passage
from assistant.agent.records import Citation
from assistant.agent.tools import Ledger
from assistant.index_access import open_index
from assistant.settings import load_settings
from eval.bench.pdf_boxes import MARK_PT, held, key
from eval.bench.ui_latency import start_ui
from index.pdf_layout import read_page
from ui.page_view import render_page, source_views, viewable_pdf

APP = Path(__file__).resolve().parents[1] / "ui" / "app.py"
SCREENSHOT = Path(__file__).resolve().parents[1] / "artifacts" / "ui-page-view.png"
QUERY = "Google Scholar is often insufficient, leading researchers to spend considerable time on literature review"
TEXT_QUERY = "Alpaca 7B fine-tuned instruction-following demonstrations"


def _citations(index_dir: Path, query: str, pdf: bool) -> list[Citation]:
    index = open_index(load_settings({"index": {"dir": index_dir}}))
    ledger = Ledger()
    hits = [h for h in index.search(query, k=8) if h.chunk.source.endswith(".pdf") == pdf]
    return [whole_passage(ledger.add_chunk(h.chunk, part=None, query=query, tool="search")) for h in hits]


def test_a_pdf_citation_opens_on_its_page_with_every_box_of_the_quote(seed_index: Path) -> None:
    index = open_index(load_settings({"index": {"dir": seed_index}}))
    cite = _citations(seed_index, QUERY, pdf=True)[0]
    assert cite.source.endswith("paperqa_pasa.pdf") and cite.page == 3
    assert cite.boxes and {b[0] for b in cite.boxes} == {3}

    view = source_views([cite], index)[cite.id]
    assert f'data-page="{cite.page}"' in view
    drawn = re.findall(r'data-box="([^"]+)"', view)
    assert [tuple(float(v) for v in d.split(",")) for d in drawn] == [
        tuple(map(float, b)) for b in cite.boxes
    ]
    jpeg = base64.b64decode(view.split("data:image/jpeg;base64,", 1)[1].split('"', 1)[0])
    width, height = Image.open(io.BytesIO(jpeg)).size
    assert abs(width - 595.3) <= 1 and abs(height - 841.9) <= 1  # the A4 page itself, rendered at 72 dpi
    assert '<mark class="ra-hl">' in view  # the passage text under the page, quote marked


def test_a_text_citation_opens_in_its_document_context(seed_index: Path) -> None:
    index = open_index(load_settings({"index": {"dir": seed_index}}))
    cite = _citations(seed_index, TEXT_QUERY, pdf=False)[0]
    view = source_views([cite], index)[cite.id]
    document = index.document_text(cite.source)
    assert document is not None and cite.start is not None
    before = document[max(0, cite.start - 200) : cite.start]
    assert "in the document" in view and "ra-pageview" not in view
    assert before.split()[-1] in view  # words from before the passage: the context, not the chunk alone
    marked = view.split('<mark class="ra-hl">', 1)[1].split("</mark>", 1)[0]
    assert marked.split() == cite.quote.split()


def test_nothing_outside_the_index_is_rendered(seed_index: Path, shared: Path, tmp_path: Path) -> None:
    index = open_index(load_settings({"index": {"dir": seed_index}}))
    documents = index.documents
    indexed = str(shared / "pdfs" / "paperqa_pasa.pdf")
    assert viewable_pdf(indexed, documents) == Path(indexed)
    copy = tmp_path / "paperqa_pasa.pdf"
    shutil.copy(indexed, copy)
    for outside in (str(copy), "/etc/passwd", str(shared / "pdfs" / ".." / "pdfs" / "paperqa_pasa.pdf")):
        assert viewable_pdf(outside, documents) is None
    cite = _citations(seed_index, QUERY, pdf=True)[0]
    moved = replace(cite, evidence=replace(cite.evidence, source=str(copy)))
    assert moved.id not in source_views([moved], index)


@pytest.fixture
def _fresh_caches() -> Iterator[None]:
    st.cache_resource.clear()
    yield
    st.cache_resource.clear()


@pytest.mark.usefixtures("_fresh_caches")
def test_the_search_page_opens_hits_on_their_page_and_turns_zooms_and_downloads(
    seed_index: Path, shared: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pages = len(PdfReader(shared / "pdfs" / "paperqa_pasa.pdf").pages)
    monkeypatch.setenv("RA_INDEX__DIR", str(seed_index))
    at = AppTest.from_file(str(APP), default_timeout=120).run()
    at.switch_page("views/search.py").run()
    at.text_input(key="search.query").set_value(QUERY).run()
    assert not at.exception, at.exception
    [download] = [b for b in at.get("download_button") if b.proto.label == "Original PDF"]
    assert download.proto.url.endswith(".pdf")  # the original file, served as a PDF

    [sources] = [h.value for h in at.html if 'class="ra-sources"' in h.value]
    assert "ra-pageview" in sources and 'class="ra-box"' in sources
    where = next(m.value for m in at.markdown if m.value.startswith("page **"))
    assert where == f"page **3** of {pages}"
    next(b for b in at.button if b.label == "▶").click().run()
    assert next(m.value for m in at.markdown if m.value.startswith("page **")) == f"page **4** of {pages}"
    next(b for b in at.button if b.label == "◀").click().run()
    next(b for b in at.button if b.label == "◀").click().run()
    assert next(m.value for m in at.markdown if m.value.startswith("page **")) == f"page **2** of {pages}"
    at.select_slider(key="search-pv-zoom").set_value(200).run()
    [zoomed] = [h.value for h in at.html if 'class="ra-pagescroll"' in h.value]
    assert 'style="width:1587px"' in zoomed  # 595 pt at 200% of 96 dpi
    assert not at.exception, at.exception


@pytest.fixture
def ui_over_pdfs(seed_index: Path, tmp_path: Path) -> Iterator[str]:
    """`ra ui` over the seed index (corpus + the two PDFs), started as the UI latency bench starts it; no
    model starts unless a question is asked."""
    proc, url = start_ui(seed_index, dict(os.environ), tmp_path / "ui.log")
    try:
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.browser
def test_in_the_browser_a_pdf_hit_opens_on_its_page_with_the_words_boxed(
    chromium: str,  # noqa: F811
    ui_over_pdfs: str,
    shared: Path,
) -> None:
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        _missing("playwright")
    SCREENSHOT.parent.mkdir(exist_ok=True)
    pdf = shared / "pdfs" / "paperqa_pasa.pdf"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            page.goto(ui_over_pdfs + "search")
            box = page.get_by_label("Search the documents")
            box.fill(QUERY, timeout=60_000)
            box.press("Enter")
            head = page.locator(".ra-source .ra-source-head").first
            head.wait_for(timeout=120_000)
            card = head.get_attribute("href")
            assert card
            view = page.locator(f"{card} .ra-pageview")
            expect(view).to_be_hidden()
            head.click()
            expect(view).to_be_visible()
            image = view.locator("img")
            expect(image).to_be_visible()
            assert image.evaluate("i => i.complete && i.naturalWidth > 0")
            page_no = int(view.get_attribute("data-page") or 0)
            left, bottom, right, top = (float(v) for v in (view.get_attribute("data-area") or "").split(","))
            quote_key = key(page.locator(f"{card} .ra-quote").inner_text())
            fragments = read_page(PdfReader(pdf).pages[page_no - 1], page_no).fragments
            img = image.bounding_box()
            marks = view.locator(".ra-box")
            assert marks.count() > 0
            inside = checked = 0
            for i in range(marks.count()):
                r = marks.nth(i).bounding_box()
                assert img and r
                # the drawn rectangle, back in PDF points (y up), from the pixels the browser laid out
                x0 = left + (r["x"] - img["x"]) / img["width"] * (right - left)
                x1 = left + (r["x"] + r["width"] - img["x"]) / img["width"] * (right - left)
                y1 = top - (r["y"] - img["y"]) / img["height"] * (top - bottom)
                y0 = top - (r["y"] + r["height"] - img["y"]) / img["height"] * (top - bottom)
                if x1 - x0 < MARK_PT:
                    continue
                checked += 1
                inside += held((page_no, x0, y0, x1, y1), fragments, quote_key)
            assert checked and inside == checked
        finally:
            page.screenshot(path=str(SCREENSHOT), full_page=True)
            browser.close()


def test_a_damaged_or_vanished_pdf_shows_no_page_and_breaks_nothing(tmp_path: Path) -> None:
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.7\nnot really")
    assert render_page(broken, 1) is None
    assert render_page(tmp_path / "gone.pdf", 1) is None
