"""`ra ui` in a real browser: Chromium (the Debian package) driven by Playwright against the app on
127.0.0.1, over the seed-corpus index with the real embedded model. A person's path: type a question, wait
for the answer, click a citation, read the highlighted passage. The page is saved to artifacts/ui-answer.png
(kept by CI; README names it), also when the test fails, to show how far it got.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.integration, pytest.mark.browser]

REPO = Path(__file__).resolve().parents[1]
SCREENSHOT = REPO / "artifacts" / "ui-answer.png"
QUESTION = "How many instruction-following demonstrations was Stanford's Alpaca 7B fine-tuned on?"
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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def ui_url(seed_index: Path, tmp_path: Path) -> Iterator[str]:
    """`ra ui` on a free port over the seed index, stopped (with its model server) after the test."""
    port = _free_port()
    log = tmp_path / "ui.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "assistant", "ui", "--port", str(port), "--index", str(seed_index)],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
        )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 90
        while not _healthy(url):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"`ra ui` did not come up:\n{log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _healthy(url: str) -> bool:
    try:
        return httpx.get(url + "_stcore/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


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
        finally:
            page.screenshot(path=str(SCREENSHOT), full_page=True)
            browser.close()
