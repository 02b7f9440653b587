"""The wire between the peers harness (eval/bench/peers.py) and one system's worker process.

A worker runs in its system's own virtual env (PaperQA2 and LangChain in `.venv-peers`, this project in
`.venv`), so it shares no code with the harness but this file, which it imports from its own folder.
One JSON object per line: the harness sends `{"op": "setup", ...}` once, then `{"op": "ask", "question"}`
per question; the worker replies once per request, `{"error": "..."}` when the request failed. Libraries
print freely, so the worker's stdout is moved to stderr and replies go to a private copy of the real one.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, TypedDict


class Cited(TypedDict):
    """One citation as the system gives it: the document's file name, its page (PDFs) and the passage
    the system shows for it."""

    document: str
    page: int | None
    quote: str


class Reply(TypedDict):
    answer: str
    citations: list[Cited]
    abstained: bool


class Setup(TypedDict):
    """What every system gets: the same files, the same served model, the same embedding model."""

    docs: list[str]  # files
    llm_url: str  # OpenAI-compatible base URL, ending in /v1
    llm_model: str
    embedding_model: str  # a local sentence-transformers folder
    state_dir: str  # the system's own folder under the run's output (its index lives there)
    budget_s: float  # per question, all of the system's model calls together
    options: dict[str, Any]  # the worker's switches (e.g. skip_summary)


class System(Protocol):
    def ask(self, question: str) -> Reply: ...


def serve(build: Callable[[Setup], tuple[System, dict[str, Any]]]) -> None:
    """Answer the harness until stdin closes: `build` ingests and returns the system and what to report
    about it (its settings, as run)."""
    replies = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    system: System | None = None
    for line in sys.stdin:
        message = json.loads(line)
        try:
            if message["op"] == "setup":
                started = time.perf_counter()
                system, settings = build(message["setup"])
                reply: dict[str, Any] = {
                    "ingest_s": round(time.perf_counter() - started, 2),
                    "index_bytes": folder_bytes(Path(message["setup"]["state_dir"])),
                    "settings": settings,
                }
            elif system is None:
                reply = {"error": "ask before setup"}
            else:
                reply = dict(system.ask(message["question"]))
        except Exception as exc:  # one failed question is a result, not the end of the run
            traceback.print_exc()
            reply = {"error": f"{type(exc).__name__}: {exc}"[:500]}
        replies.write(json.dumps(reply) + "\n")


def folder_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def file_label(path: str) -> str:
    """The name a system knows a document by (its file name), as the harness resolves citations."""
    return Path(path).name
