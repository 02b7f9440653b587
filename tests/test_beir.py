"""BEIR metrics on hand-computed cases, and `ra eval retrieval` end to end on a tiny BEIR set made here."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from eval.beir import evaluate_run, load_qrels, max_passage, mrr_at, ndcg_at, recall_at, write_trec_run


def test_ndcg_recall_mrr_by_hand() -> None:
    rels = {"a": 1, "b": 1}
    ranked = ["x", "a", "y", "b"]
    expected = (1 / math.log2(3) + 1 / math.log2(5)) / (1 + 1 / math.log2(3))
    assert ndcg_at(ranked, rels, 10) == pytest.approx(expected)
    assert ndcg_at(["a", "b"], rels, 10) == pytest.approx(1.0)
    assert ndcg_at(["x", "y"], rels, 10) == 0.0
    assert recall_at(ranked, rels, 2) == 0.5 and recall_at(ranked, rels, 100) == 1.0
    assert mrr_at(ranked, rels, 10) == 0.5 and mrr_at(["x"], rels, 10) == 0.0
    graded = {"a": 2, "b": 1}
    assert ndcg_at(["b", "a"], graded, 10) == pytest.approx((1 + 2 / math.log2(3)) / (2 + 1 / math.log2(3)))


def test_evaluate_run_counts_missing_queries_as_zero() -> None:
    qrels = {"q1": {"a": 1}, "q2": {"b": 1}, "q3": {"c": 0}}
    metrics = evaluate_run({"q1": [("a", 1.0)]}, qrels)
    assert metrics["queries"] == 2  # q3 has no relevant document
    assert metrics["ndcg@10"] == 0.5 and metrics["mrr@10"] == 0.5


def test_max_passage_keeps_first_score_per_document() -> None:
    hits = [("beir:1", 0.9), ("beir:2", 0.8), ("beir:1", 0.7), ("beir:3", 0.1)]
    assert max_passage(hits, 2) == [("1", 0.9), ("2", 0.8)]


def test_trec_run_and_qrels_io(tmp_path: Path) -> None:
    run_file = tmp_path / "run.tsv"
    write_trec_run({"q1": [("d1", 2.5), ("d2", 1.0)]}, run_file, tag="t")
    assert run_file.read_text().splitlines() == ["q1 Q0 d1 1 2.500000 t", "q1 Q0 d2 2 1.000000 t"]
    qrels = tmp_path / "qrels.tsv"
    qrels.write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td2\t0\n")
    assert load_qrels(qrels) == {"q1": {"d1": 1, "d2": 0}}


def make_beir(root: Path) -> tuple[Path, Path, Path]:
    topics = {
        "1": (
            "Aspirin and heart attacks",
            "Daily low-dose aspirin reduces the risk of myocardial infarction.",
        ),
        "2": ("Vitamin D in winter", "Vitamin D levels fall in winter because of limited sunlight exposure."),
        "3": ("Coffee and sleep", "Caffeine taken late in the day delays sleep onset and shortens sleep."),
        "4": ("Exercise and mood", "Regular aerobic exercise lowers symptoms of depression in adults."),
    }
    corpus = root / "corpus.jsonl"
    corpus.write_text(
        "".join(json.dumps({"_id": k, "title": t, "text": x}) + "\n" for k, (t, x) in topics.items())
    )
    queries = root / "queries.jsonl"
    queries.write_text(
        json.dumps({"_id": "q1", "text": "does aspirin prevent myocardial infarction"})
        + "\n"
        + json.dumps({"_id": "q2", "text": "caffeine delays sleep onset"})
        + "\n"
        + json.dumps({"_id": "q9", "text": "unjudged query"})
        + "\n"
    )
    qrels = root / "qrels.tsv"
    qrels.write_text("query-id\tcorpus-id\tscore\nq1\t1\t1\nq2\t3\t1\n")
    return corpus, queries, qrels


@pytest.mark.slow
def test_cli_eval_retrieval(tmp_path: Path) -> None:
    corpus, queries, qrels = make_beir(tmp_path)
    run_file = tmp_path / "run.trec"
    cmd = [
        sys.executable,
        "-m",
        "assistant",
        "eval",
        "retrieval",
        "--corpus",
        str(corpus),
        "--queries",
        str(queries),
        "--qrels",
        str(qrels),
        "--index",
        str(tmp_path / "idx"),
        "--mode",
        "bm25",
        "--run-out",
        str(run_file),
        "--json",
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["queries"] == 2 and summary["documents"] == 4
    assert summary["ndcg@10"] == 1.0 and summary["mrr@10"] == 1.0
    lines = run_file.read_text().splitlines()
    assert lines[0].split()[:4] == ["q1", "Q0", "1", "1"]


def test_cli_eval_retrieval_bad_path(tmp_path: Path) -> None:
    cmd = [
        sys.executable,
        "-m",
        "assistant",
        "eval",
        "retrieval",
        "--corpus",
        str(tmp_path / "nope.jsonl"),
        "--queries",
        str(tmp_path / "q.jsonl"),
        "--qrels",
        str(tmp_path / "r.tsv"),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 1 and "does not exist" in done.stderr and "Traceback" not in done.stderr
