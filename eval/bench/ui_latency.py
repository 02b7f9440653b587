"""What a person waits for in the web app: a question typed into `ra ui` in a real browser (Debian's
Chromium driven by Playwright), timed from pressing Enter to the first draft words on the page, the first
checked words and the finished answer ("Answered in ..." under it).

    python -m eval.bench.ui_latency --index DIR [--data QA.jsonl] [--limit N] [--service]
                                    [--out docs/bench/ui_latency.json]

Each question gets a fresh page (a new chat: no follow-up rewriting). The app's model is loaded before the
first timed question by one untimed warm-up question, so the numbers are those of a running app (the first
visitor's model load is `ra ask`'s cold start). With `--service` the app answers through a running `ra
service` (its own private socket) instead of its in-process agent.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from eval.bench import write_result
from eval.bench.ask_latency import DEFAULT_DATA
from eval.metrics import percentile

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ANSWER_TIMEOUT_MS = 600_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_ui(
    index: Path, env: dict[str, str], log: Path, cwd: Path | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """`ra ui` on a free port over `index`, once it answers its health check (SystemExit naming `log` if
    it does not come up in two minutes)."""
    port = free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "assistant", "ui", "--port", str(port), "--index", str(index)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
        )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "_stcore/health", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            break
        time.sleep(0.5)
    proc.terminate()
    raise SystemExit(f"`ra ui` did not come up: see {log}")


def time_question(page: Any, url: str, question: str) -> dict[str, Any]:
    """Seconds from Enter to the first draft words, the first checked words and the finished answer."""
    page.goto(url)
    box = page.get_by_placeholder("Ask a question about your documents")
    box.fill(question, timeout=60_000)
    t0 = time.perf_counter()
    box.press("Enter")
    marks: dict[str, float] = {}
    page.locator(".ra-draft, .ra-answer").first.wait_for(timeout=ANSWER_TIMEOUT_MS)
    marks["first_draft_s"] = time.perf_counter() - t0
    done = page.get_by_text("Answered in")
    answer = page.locator(".ra-answer").first
    while "total_s" not in marks:
        if "first_words_s" not in marks and answer.count():
            marks["first_words_s"] = time.perf_counter() - t0
        if done.count():
            marks["total_s"] = time.perf_counter() - t0
        elif time.perf_counter() - t0 > ANSWER_TIMEOUT_MS / 1000:
            raise TimeoutError(question)
        else:
            time.sleep(0.05)
    marks.setdefault("first_words_s", marks["total_s"])  # an abstention: no checked words before the end
    return {k: round(v, 2) for k, v in marks.items()}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--index", type=Path, required=True)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--limit", type=int, default=10)
    ap.add_argument("--service", action="store_true", help="answer through a running `ra service`")
    ap.add_argument("--out", type=Path, default=Path("docs/bench/ui_latency.json"))
    args = ap.parse_args(argv)
    items = [json.loads(line) for line in args.data.read_text().splitlines() if line.strip()][: args.limit]
    chromium = shutil.which("chromium")
    if chromium is None:
        raise SystemExit("chromium is not installed: make system-deps")
    work = Path(tempfile.mkdtemp(prefix="ra-ui-bench-"))
    env = os.environ | {"RA_SERVICE__SOCKET": str(work / "service.sock")}  # never the user's service
    if args.service:
        subprocess.run(
            [sys.executable, "-m", "assistant", "service", "start", "--index", str(args.index)],
            env=env,
            check=True,
        )
    ui, url = start_ui(args.index, env, work / "ui.log")
    runs = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            time_question(page, url, items[0]["question"])  # warm-up: the app loads its model once
            for item in items:
                run = {"id": item["id"], "kind": item["kind"], **time_question(page, url, item["question"])}
                print(json.dumps(run), file=sys.stderr, flush=True)
                runs.append(run)
            browser.close()
    finally:
        ui.terminate()
        ui.wait(timeout=60)
        if args.service:
            subprocess.run([sys.executable, "-m", "assistant", "service", "stop"], env=env, check=False)

    def p50(key: str) -> float | None:
        return percentile([r[key] for r in runs], 50)

    result = {
        "data": args.data.name,
        "n": len(runs),
        "through_service": args.service,
        "first_draft_p50": p50("first_draft_s"),
        "first_words_p50": p50("first_words_s"),
        "total_p50": p50("total_s"),
        "total_p95": percentile([r["total_s"] for r in runs], 95),
        "runs": runs,
    }
    return write_result(result, args.out)


if __name__ == "__main__":
    main()
