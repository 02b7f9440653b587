"""The peers harness (eval/bench/peers.py) with a scripted system in a real worker process: the scorer,
the outputs (per-question JSONL, table.md, summary.json), the time budget, resuming, and refusing to mix
configurations. tests/test_peers_real.py runs the real peers."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from eval.bench.peers import Run, SystemFailed, WorkerSpec, run_system, write_outputs
from eval.qa_run import RunConfigChanged, load_items

DOC = "The encoder has twelve layers.\nIt was trained on 52K demon-\nstrations over three days.\n"
ITEMS = [
    {
        "id": "q1",
        "question": "How many layers?",
        "kind": "factoid",
        "answer": "12",
        "answer_keywords": ["twelve"],
    },
    {
        "id": "q2",
        "question": "How many demonstrations?",
        "kind": "numeric",
        "answer": "52K",
        "answer_keywords": ["52,000"],
    },
    {"id": "q3", "question": "Who funded it?", "kind": "unanswerable", "answer": "", "answer_keywords": []},
    {
        "id": "q4",
        "question": "How long was training?",
        "kind": "numeric",
        "answer": "3 days",
        "answer_keywords": ["three days"],
    },
    {
        "id": "q5",
        "question": "What optimiser?",
        "kind": "factoid",
        "answer": "Adam",
        "answer_keywords": ["adam"],
    },
    {
        "id": "q6",
        "question": "What batch size?",
        "kind": "factoid",
        "answer": "256",
        "answer_keywords": ["256"],
    },
]


def _cite(quote: str, document: str = "notes.txt") -> dict[str, Any]:
    return {"document": document, "page": None, "quote": quote}


REPLIES: dict[str, Any] = {
    "How many layers?": {
        "answer": "Twelve layers [1].",
        "citations": [_cite("The encoder has twelve layers.")],
        "abstained": False,
    },
    # the quote crosses a line break and a hyphenation its parser kept: still verbatim
    "How many demonstrations?": {
        "answer": "52k [1]",
        "citations": [_cite("trained on 52K demonstrations")],
        "abstained": False,
    },
    "Who funded it?": {"answer": "I cannot answer.", "citations": [], "abstained": True},
    # a summary is not a quote, nor is a passage of another document
    "How long was training?": {
        "answer": "It took three days [1][2].",
        "citations": [_cite("Training lasted about three days."), _cite("three days", "other.txt")],
        "abstained": False,
    },
    "What optimiser?": "raise",
    "What batch size?": "sleep",
}


SCRIPTED = WorkerSpec(
    Path(sys.executable), Path(__file__).parent / "peer_workers" / "scripted_worker.py", {"replies": REPLIES}
)


@pytest.fixture()
def run(tmp_path: Path) -> Run:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "notes.txt").write_text(DOC)
    data = tmp_path / "qa.jsonl"
    data.write_text("".join(json.dumps(i) + "\n" for i in ITEMS))
    return Run(
        items=load_items(data),
        docs=[docs / "notes.txt"],
        llm_url="http://127.0.0.1:9/v1",
        llm_model="none",
        embedding_model="minilm",
        out=tmp_path / "out",
        budget_s=1.0,
        grace_s=1.0,
    )


def test_scores_outputs_budget_and_resume(run: Run) -> None:
    rows = {r["id"]: r for r in run_system(run, "scripted", SCRIPTED, progress=lambda _: None)}
    assert [rows[q]["keyword_hit"] for q in ("q1", "q2", "q4", "q5", "q6")] == [
        True,
        True,
        True,
        False,
        False,
    ]
    assert rows["q3"]["keyword_hit"] is None and rows["q3"]["abstained"] is True
    assert [c["verbatim"] for c in rows["q1"]["citations"] + rows["q2"]["citations"]] == [True, True]
    assert [c["verbatim"] for c in rows["q4"]["citations"]] == [False, False]
    assert rows["q5"]["error"] == "RuntimeError: the scripted system failed"
    assert rows["q6"]["error"] == "over the 1 s budget" and 1.0 < rows["q6"]["seconds"] < 10
    state = run.out / "scripted" / "state"
    assert (state / "starts").read_text() == "2"  # the worker over budget was replaced

    summary = write_outputs(run.out, {"scripted": list(rows.values())})["scripted"]
    assert summary["n"] == 6 and summary["errors"] == 2
    assert summary["keyword_accuracy"] == 0.6  # 3 of the 5 answerable; errors count as wrong
    assert summary["by_kind"] == {"factoid": round(1 / 3, 4), "numeric": 1.0}
    assert summary["citation_verbatim"] == 0.5
    assert summary["abstention"] == 1.0 and summary["false_abstention"] == 0.0
    assert summary["index_bytes"] >= 1000 and summary["ingest_s"] is not None
    assert set(summary) == {
        "n", "keyword_accuracy", "by_kind", "citation_verbatim", "citations_per_answer", "abstention",
        "false_abstention", "p50_s", "p95_s", "errors", "ingest_s", "index_bytes",
    }  # fmt: skip
    table = (run.out / "table.md").read_text()
    assert "| scripted | 6 | 60.0% | 50.0% | 100.0% | 0.0% |" in table
    lines = (run.out / "results.jsonl").read_text().splitlines()
    assert len(lines) == 6 and json.loads(lines[0])["system"] == "scripted"

    # resumed: nothing left to answer, so no worker starts (this one could not)
    gone = WorkerSpec(Path("/nonexistent/python"), SCRIPTED.script, SCRIPTED.options)
    again = run_system(run, "scripted", gone, progress=lambda _: None)
    assert [r["id"] for r in again] == [i.id for i in run.items]


def test_another_configuration_is_not_mixed_in(run: Run) -> None:
    short = Run(**{**run.__dict__, "items": run.items[:1]})
    run_system(short, "scripted", SCRIPTED, progress=lambda _: None)
    other = Run(**{**short.__dict__, "budget_s": 2.0})
    with pytest.raises(RunConfigChanged, match="budget_s"):
        run_system(other, "scripted", SCRIPTED, progress=lambda _: None)
    assert len(run_system(other, "scripted", SCRIPTED, fresh=True, progress=lambda _: None)) == 1


def test_a_system_that_cannot_start_is_reported_as_such_beside_the_others(run: Run) -> None:
    broken = WorkerSpec(SCRIPTED.python, SCRIPTED.script, {"fail_setup": "no model"})
    with pytest.raises(SystemFailed, match="RuntimeError: no model"):
        run_system(run, "broken", broken, progress=lambda _: None)
    short = Run(**{**run.__dict__, "items": run.items[:1]})
    rows = run_system(short, "scripted", SCRIPTED, progress=lambda _: None)
    summary = write_outputs(run.out, {"scripted": rows}, {"broken": "RuntimeError: no model"})
    assert summary["broken"] == {"n": 0, "could_not_run": "RuntimeError: no model"}
    assert summary["scripted"]["keyword_accuracy"] == 1.0
    table = (run.out / "table.md").read_text()
    assert "| broken | 0 | could not run: RuntimeError: no model |" in table and "| scripted | 1 |" in table
