"""The peers benchmark end to end, for real: this project, PaperQA2 and the LangChain chain (in
`.venv-peers`, `make peers`) each answer 2 dev questions over the seed corpus and the PDFs with the packaged 1.5B
through one llama.cpp server, so an upgrade that breaks a peer's set-up fails here. Slow: minutes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval.bench.peers import PEERS_PYTHON, SYSTEMS, main

pytestmark = pytest.mark.slow


def test_every_system_answers_dev_questions_over_the_seed_corpus(shared: Path, tmp_path: Path) -> None:
    if not PEERS_PYTHON.is_file():
        pytest.skip("the peers are not installed: run `make peers`")
    out = tmp_path / "peers"
    docs = [str(shared / "corpus"), str(shared / "pdfs")]  # PDFs too: each peer parses them its own way
    args = ["--data", str(shared / "qa" / "seeds_dev.jsonl"), "--docs", *docs]
    assert main([*args, "--limit", "2", "--budget-s", "400", "--out", str(out)]) == 0

    summary = json.loads((out / "summary.json").read_text())
    assert list(summary) == list(SYSTEMS)
    for name, s in summary.items():
        assert s["n"] == 2 and s["errors"] == 0, name
        assert s["ingest_s"] > 0 and s["index_bytes"] > 0, name
        assert s["p50_s"] > 0, name
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert len(rows) == 6
    for row in rows:  # each gave an answer, or said in its own form that it could not
        assert row["answer"].strip() or row["abstained"], row
        assert all(c["document"].endswith((".txt", ".pdf")) for c in row["citations"]), row
    # the chain cites whole retrieved chunks, and this project cites verbatim spans
    assert all(c["verbatim"] for r in rows if r["system"] in ("ra", "langchain") for c in r["citations"])
    table = (out / "table.md").read_text()
    assert all(f"| {name} | 2 |" in table for name in SYSTEMS)
