"""`ra ui` in a real browser: Chromium (the Debian package) driven by Playwright against the app on
127.0.0.1, over the seed-corpus index with the real embedded model. A person's path: type a question, wait
for the answer, click a citation, read the highlighted passage. The page is saved to artifacts/ui-answer.png
(kept by CI; README names it), also when the test fails, to show how far it got.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest

from eval.bench.ui_latency import start_ui

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = [pytest.mark.slow, pytest.mark.integration, pytest.mark.browser]

REPO = Path(__file__).resolve().parents[1]
SCREENSHOT = REPO / "artifacts" / "ui-answer.png"
QUESTION = "How many instruction-following demonstrations was Stanford's Alpaca 7B fine-tuned on?"
FOLLOW_UP = "Which base model was it fine-tuned from?"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
ANSWER_TIMEOUT_MS = 15 * 60_000  # the embedded 0.5B model on two shared CPU cores: minutes, not seconds


def _missing(what: str) -> None:
    """CI installs Chromium and Playwright (make system-deps, the dev extra): missing there is a failure."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} is missing under CI: run `make system-deps` and install the dev extra")
    pytest.skip(f"{what} is not installed (apt-get install chromium; pip install playwright)")


@pytest.fixture(scope="module")
def chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        _missing("chromium")
    return str(path)


@pytest.fixture
def ui_url(seed_index: Path, tmp_path: Path) -> Iterator[str]:
    """`ra ui` on a free port over the seed index, stopped (with its model server) after the test."""
    with _serve(seed_index, tmp_path) as url:
        yield url


@pytest.fixture(scope="module")
def small_ui_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`ra ui` over a two-document index: pages that ask nothing need no bigger one."""
    from assistant.index_access import index_config
    from assistant.settings import load_settings
    from index.ingest import ingest_paths

    docs = tmp_path_factory.mktemp("docs")
    (docs / "alpaca.md").write_text("# Alpaca\n\nAlpaca 7B was fine-tuned on 52K demonstrations.\n")
    (docs / "glide.md").write_text("# GLIDE\n\nEvaluators preferred classifier-free guidance.\n")
    index_dir = tmp_path_factory.mktemp("small") / "index"
    ingest_paths([docs], index_dir, index_config(load_settings({"index": {"dir": index_dir}})))
    with _serve(index_dir, tmp_path_factory.mktemp("ui")) as url:
        yield url


@contextmanager
def _serve(index: Path, cwd: Path) -> Iterator[str]:
    """The UI bench's launcher, stopped (with its model server) when the test ends."""
    proc, url = start_ui(index, dict(os.environ), cwd / "ui.log", cwd=cwd)
    try:
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_a_question_gets_a_cited_answer_whose_citation_opens_its_passage(chromium: str, ui_url: str) -> None:
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        _missing("playwright")
    SCREENSHOT.parent.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            page.goto(ui_url)
            box = page.get_by_placeholder("Ask a question about your documents")
            box.fill(QUESTION, timeout=60_000)
            box.press("Enter")

            # Words stream: the draft shows (marked as being checked) before the answer is finished.
            page.locator(".ra-draft").first.wait_for(timeout=ANSWER_TIMEOUT_MS)
            assert page.get_by_text("Answered in").count() == 0

            # Finished answers are redrawn with their sources panel; wait for one of its markers.
            cite = page.locator(".ra-answer .ra-cite").first
            cite.wait_for(timeout=ANSWER_TIMEOUT_MS)
            target = cite.get_attribute("href")
            assert target and target.startswith("#ra-")
            passage = page.locator(f"{target} .ra-passage")
            expect(passage).to_be_hidden()

            cite.click()
            expect(passage).to_be_visible()
            assert page.evaluate("location.hash") == target
            quote = page.locator(f"{target} mark.ra-hl")
            expect(quote).to_be_visible()
            assert quote.inner_text().strip()  # the quoted span is highlighted inside the opened passage

            # A follow-up that needs the first question's subject is searched with it.
            box.fill(FOLLOW_UP)
            box.press("Enter")
            searched = page.get_by_text(re.compile("^Searched for: "))
            searched.first.wait_for(timeout=ANSWER_TIMEOUT_MS)
            assert "Alpaca" in searched.first.inner_text()
            expect(page.get_by_text("Answered in")).to_have_count(2, timeout=ANSWER_TIMEOUT_MS)
        finally:
            page.screenshot(path=str(SCREENSHOT), full_page=True)
            browser.close()


# Where the evaluation page shows a metric's name: the summary table's cells, or an st.metric label.
SUMMARY_CELLS = '[data-testid="stTable"] td, [data-testid="stTable"] th, [data-testid="stMetricLabel"]'
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}


def _off_machine(url: str) -> bool:
    parsed = urlsplit(url)
    return parsed.scheme not in ("data", "blob") and parsed.hostname not in LOOPBACK


def _result_dir(path: Path) -> Path:
    """A finished `ra eval qa` folder (results and the summary `eval.metrics` writes), made without a model."""
    from eval.metrics import summarise

    rows = [
        {"id": "q1", "kind": "numeric", "question": "How many?", "answer": "52K. [1]", "abstained": False,
         "unanswerable": False, "timings": {"total_s": 4.0, "first_token_s": 2.0},
         "metrics": {"keyword_hit": True, "faithfulness": 1.0, "citation_recall": 1.0, "citation_precision": 1.0,
                     "invalid_citations": 0, "citations_resolve": True, "evidence_recall": 1.0}},
        {"id": "q2", "kind": "unanswerable", "question": "Who won?", "answer": "", "abstained": True,
         "unanswerable": True, "timings": {"total_s": 6.0}, "metrics": {"abstention_correct": True}},
    ]  # fmt: skip
    path.mkdir()
    (path / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (path / "summary.json").write_text(json.dumps(summarise(rows, {})))
    return path


def _load_result(page: Page, url: str, result: Path) -> None:
    """Open the evaluation page and load `result` through its "Load a result" tab."""
    page.goto(url + "evaluation")
    page.get_by_role("tab", name=re.compile("Load a result")).click(timeout=60_000)
    page.get_by_label("…or a result folder").fill(str(result))
    page.get_by_role("button", name="Load", exact=True).click()
    page.get_by_text("Per question", exact=True).wait_for(timeout=60_000)
    # The table's component loads lazily: under load its cells arrive after the headings that follow it.
    page.locator('[data-testid="stTable"] td').first.wait_for(timeout=60_000)


def test_the_chat_and_evaluation_pages_request_nothing_off_the_machine(
    chromium: str, small_ui_url: str, tmp_path: Path
) -> None:
    """Offline use: a favicon or font fetched from a CDN fails without a network (issue 23)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright")
    requests: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.on("request", lambda request: requests.append(request.url))
        try:
            page.goto(small_ui_url)
            page.get_by_placeholder("Ask a question about your documents").wait_for(timeout=60_000)
            page.wait_for_load_state("networkidle")
            _load_result(page, small_ui_url, _result_dir(tmp_path / "run"))
            page.wait_for_load_state("networkidle")
        finally:
            browser.close()
    assert any(small_ui_url in r for r in requests)  # the listener saw the page's own requests
    assert [r for r in requests if _off_machine(r)] == []


def test_the_evaluation_summary_shows_every_metric_name_in_full(
    chromium: str, small_ui_url: str, tmp_path: Path
) -> None:
    """Seventeen numbers side by side cut their names to "Keyw…" (issue 23): each name must fit its cell."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright")
    from ui.eval_results import METRIC_INFO

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        try:
            _load_result(page, small_ui_url, _result_dir(tmp_path / "run"))
            shown = page.locator(SUMMARY_CELLS).evaluate_all(
                """cells => cells.map(cell => ({
                    text: cell.innerText.trim(),
                    clipped: [cell, ...cell.querySelectorAll('*')].some(e => e.scrollWidth > e.clientWidth)
                }))"""
            )
        finally:
            browser.close()
    texts = {c["text"] for c in shown}
    assert {info.label for info in METRIC_INFO.values()} <= texts  # every metric, by its full name
    assert [c["text"] for c in shown if c["clipped"] or c["text"].endswith("…")] == []


def test_an_upload_over_the_limit_is_refused_by_name_and_the_rest_of_the_batch_is_ingested(
    chromium: str, small_ui_url: str, tmp_path: Path
) -> None:
    """A 60 MB file over the default 50 MB limit was dropped in the browser by Streamlit's own cap, and the
    page then said "Choose one or more files first" (issue 25): it must arrive and be refused with a reason."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright")
    big, small = tmp_path / "big.txt", tmp_path / "matryoshka.md"
    big.write_bytes(b"Lorem ipsum dolor sit amet.\n" * (60 * 2**20 // 28 + 1))
    small.write_text("# Matryoshka\n\nMatryoshka embeddings nest coarse inside fine.\n")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            page.goto(small_ui_url)
            page.get_by_text("Add documents").wait_for(timeout=60_000)
            page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files([big, small])
            page.get_by_text("matryoshka.md").wait_for(timeout=60_000)
            page.get_by_role("button", name="Upload and ingest").click()
            skipped = page.locator('[data-testid="stAlert"]', has_text="Skipped 1 file(s)")
            skipped.wait_for(timeout=120_000)
            shown = skipped.inner_text()
            added = page.locator('[data-testid="stAlert"]', has_text="Added 1,").count()
        finally:
            browser.close()
    assert "big.txt" in shown and "larger than the 50 MB upload limit" in shown
    assert "RA_UI__MAX_UPLOAD_MB" in shown  # what to do, not only what went wrong
    assert added == 1
