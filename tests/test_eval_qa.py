"""`ra eval qa` / `ra eval compare` with a scripted model and a word-overlap checker over a tiny index;
then (slow) the real CLI with the embedded model on seed questions."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import typer
from fakes import TinyIndex, by_schema, part_reply, request_kind, step_reply
from typer.testing import CliRunner

from assistant.agent.backends import Completion
from assistant.settings import Settings, load_settings
from eval import cli as eval_cli
from eval.batching import Batcher, BatchingBackend
from eval.compare import compare_runs, load_run
from eval.metrics import METRICS
from eval.qa_run import QADataError, QAOptions, RunConfigChanged, evaluate, load_items

REPO = Path(__file__).resolve().parents[1]
DOCS = {
    "docs/glide.md": "GLIDE compares two guidance strategies. Human evaluators preferred classifier-free "
    "guidance for photorealism and caption similarity. CLIP guidance was preferred less often.",
    "docs/alpaca.md": "Alpaca is a small model. Stanford's Alpaca 7B was fine-tuned on 52K "
    "instruction-following demonstrations. It cost little to train.",
}
Q_GLIDE = "Which guidance did human <b>evaluators</b> prefer in GLIDE?"
Q_ALPACA = "How many demonstrations was Stanford's Alpaca 7B fine-tuned on?"
Q_NONE = "What context window does Claude 3 support?"
ITEMS = [
    {
        "id": "q1",
        "question": Q_GLIDE,
        "answer": "Classifier-free guidance.",
        "kind": "factoid",
        "evidence": [{"doc": "glide.md", "quote": "Human evaluators preferred classifier-free guidance"}],
        "answer_keywords": ["classifier-free"],
    },
    {
        "id": "q2",
        "question": Q_ALPACA,
        "answer": "52K.",
        "kind": "numeric",
        "evidence": [{"doc": "alpaca.md", "quote": "fine-tuned on 52K instruction-following demonstrations"}],
        "answer_keywords": ["52k"],
    },
    {"id": "q3", "question": Q_NONE, "answer": "not in the corpus", "kind": "unanswerable", "evidence": []},
]
# What the scripted model answers per question: (sentence, citation numbers). [1] is the passage sharing
# most words with the question (alpaca for Q_ALPACA, glide for Q_GLIDE), [2] the other one.
ANSWERS: dict[str, list[tuple[str, list[int]]]] = {
    Q_GLIDE: [("Human evaluators preferred classifier-free guidance.", [1])],
    Q_ALPACA: [("Alpaca 7B was fine-tuned on 52K demonstrations.", [1, 2])],
    Q_NONE: [],
}
RESULT_KEYS = {
    *("id", "question", "kind", "unanswerable", "gold_answer", "answer", "abstained", "citations"),
    *("abstain_reason", "sentences", "parts", "metrics", "timings", "actions"),
}


class EvalIndex(TinyIndex):
    """The tiny index plus what the runner reads: a generation."""

    manifest = SimpleNamespace(generation="gen-000001")

    def __init__(self) -> None:
        super().__init__(DOCS)


class RuleBackend:
    """Replies by question, whatever order threads ask in, under the request's schema: a part answer comes
    from `answers` (a sentence no passage supports when there is none), research steps give up, the judge
    says correct.
    `fail_on` raises for that question."""

    def __init__(self, answers: dict[str, list[tuple[str, list[int]]]], fail_on: str | None = None) -> None:
        self.answers, self.fail_on = answers, fail_on
        self.asked: list[str] = []  # questions in the order their first model call came
        self.context_tokens = 8192

    def complete(
        self,
        messages: Sequence[dict],
        json_schema: dict | None = None,
        *,
        max_tokens: int,
        logprobs: bool = False,
    ) -> Completion:
        text = "\n".join(m["content"] for m in messages)
        props = (json_schema or {}).get("properties", {})
        if "correct" in props:
            return Completion(json.dumps({"correct": True}))
        question = next(q for q in sorted(self.answers, key=len, reverse=True) if q in text)
        if question == self.fail_on:
            raise RuntimeError("the model server went away")
        if question not in self.asked:
            self.asked.append(question)
        kind = request_kind(json_schema)
        if kind in ("plan", "check"):
            return Completion(by_schema("unused", "")(list(messages), json_schema))
        if kind == "answer":
            options = json_schema.get("anyOf") or [json_schema]  # type: ignore[union-attr]
            first = options[0]["properties"]["citations"]["items"]["enum"][0]
            [(sentence, cites)] = self.answers[question] or [("No passage says so at all.", [first])]
            return Completion(part_reply(sentence, cites))
        return Completion(step_reply("give_up"))


class OverlapChecker:
    """Support = share of the claim's longer words found in the evidence."""

    name = "overlap"
    threshold = 0.5

    def __init__(self) -> None:
        self.calls = 0

    def scores(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        self.calls += 1
        out = []
        for evidence, claim in pairs:
            words = [w for w in re.findall(r"\w+", claim.lower()) if len(w) > 3]
            out.append(sum(w in evidence.lower() for w in words) / max(len(words), 1))
        return out


def write_items(path: Path, items: list[dict]) -> Path:
    path.write_text("".join(json.dumps(i) + "\n" for i in items), encoding="utf-8")
    return path


def settings(tmp_path: Path, **agent: Any) -> Settings:
    return load_settings({"index": {"dir": tmp_path / "index"}, "agent": {"sandbox": False, **agent}})


def run(
    tmp_path: Path,
    backend: Any,
    out: Path,
    *,
    cfg: Settings | None = None,
    data: Path | None = None,
    **options: Any,
) -> Any:
    @contextmanager
    def factory(settings: Settings, llm_backend: str, width: int) -> Iterator[Any]:
        yield backend

    data = data or write_items(tmp_path / "qa.jsonl", ITEMS)
    return evaluate(
        cfg or settings(tmp_path),
        QAOptions(data=data, out=out, **options),
        index=EvalIndex(),  # type: ignore[arg-type]
        backend_factory=factory,
        checker_factory=lambda s, b: OverlapChecker(),
    )


def read_rows(out: Path) -> dict[str, dict]:
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    return {r["id"]: r for r in rows}


def test_run_writes_results_summary_and_report(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = run(tmp_path, RuleBackend(ANSWERS), out, judge=True)

    assert result.answered == 3 and result.reused == 0
    rows = read_rows(out)
    assert set(rows) == {"q1", "q2", "q3"}
    for r in rows.values():
        assert set(r) == RESULT_KEYS and set(r["metrics"]) == set(METRICS)
    glide, alpaca, none = rows["q1"], rows["q2"], rows["q3"]
    expected = {
        "keyword_hit": True,
        "abstention_correct": True,
        "judge_correct": True,
        "faithfulness": 1.0,
        "citation_recall": 1.0,
        "citation_precision": 1.0,
        "invalid_citations": 0,
        "citations_resolve": True,
        "evidence_recall": 1.0,
        "retrieval_recall": 1.0,
    }
    assert glide["metrics"] == expected
    assert glide["sentences"][0]["verdict"] == "supported" and glide["sentences"][0]["support"] == 1.0
    [cite] = glide["citations"]
    assert DOCS[cite["source"]][cite["start"] : cite["end"]] == cite["quote"] and cite["passage"]
    # the model cited [1] and [2]; [2] (the GLIDE passage) adds nothing, so the agent dropped it
    assert [c["source"] for c in alpaca["citations"]] == ["docs/alpaca.md"]
    assert alpaca["metrics"]["citation_precision"] == 1.0 and alpaca["metrics"]["citation_recall"] == 1.0
    assert none["abstained"] and none["metrics"]["abstention_correct"] is True
    assert none["metrics"]["keyword_hit"] is None and none["metrics"]["faithfulness"] is None
    assert none["metrics"]["judge_correct"] is None and none["unanswerable"] is True

    summary = json.loads((out / "summary.json").read_text())
    assert summary == result.summary and summary["n"] == 3
    assert set(summary) >= {"config", "n", "metrics", "by_kind", "latency"}
    assert set(summary["by_kind"]) == {"factoid", "numeric", "unanswerable"}
    assert summary["metrics"]["keyword_hit"] == 1.0 and summary["metrics"]["citation_precision"] == 1.0
    assert summary["metrics"]["abstention_accuracy"] == 1.0
    assert set(summary["latency"]) == {"first_token_p50", "first_token_p95", "total_p50", "total_p95"}
    assert summary["config"]["agent"]["sandbox"] is False and summary["config"]["fingerprint"]

    html = (out / "report.html").read_text()
    assert html.count("<img") == 4 and "data:image/png;base64," in html
    assert "<b>evaluators</b>" not in html and "&lt;b&gt;evaluators&lt;/b&gt;" in html
    assert not re.search(r"(src|href)=['\"]?https?:", html) and "url(" not in html


def test_a_crash_keeps_finished_items_and_a_rerun_skips_them(tmp_path: Path) -> None:
    out = tmp_path / "run"
    with pytest.raises(RuntimeError, match="went away"):
        run(tmp_path, RuleBackend(ANSWERS, fail_on=Q_ALPACA), out)
    assert list(read_rows(out)) == ["q1"]
    with (out / "results.jsonl").open("a") as f:
        f.write('{"id": "q2", "question": "How many')  # a line cut short by a kill during the write

    again = RuleBackend(ANSWERS)
    result = run(tmp_path, again, out)
    assert again.asked == [Q_ALPACA, Q_NONE]  # q1 was not asked again
    assert result.answered == 2 and result.reused == 1
    assert set(read_rows(out)) == {"q1", "q2", "q3"} and result.summary["n"] == 3

    # A question edited in the data file is answered again; the others are not.
    edited = [{**ITEMS[0], "question": Q_GLIDE + " Explain."}, *ITEMS[1:]]
    answers = {**ANSWERS, Q_GLIDE + " Explain.": ANSWERS[Q_GLIDE]}
    third = RuleBackend(answers)
    run(tmp_path, third, out, data=write_items(tmp_path / "edited.jsonl", edited))
    assert third.asked == [Q_GLIDE + " Explain."]


def test_a_changed_configuration_is_not_mixed_into_a_run(tmp_path: Path) -> None:
    out = tmp_path / "run"
    run(tmp_path, RuleBackend(ANSWERS), out, limit=1)
    with pytest.raises(RunConfigChanged, match=r"agent\.max_steps.*--fresh"):
        run(tmp_path, RuleBackend(ANSWERS), out, cfg=settings(tmp_path, max_steps=2))
    fresh = RuleBackend(ANSWERS)
    run(tmp_path, fresh, out, cfg=settings(tmp_path, max_steps=2), fresh=True)
    assert len(fresh.asked) == 3 and len(read_rows(out)) == 3


def test_agents_in_threads_share_batches_and_score_as_a_sequential_run(tmp_path: Path) -> None:
    sequential = run(tmp_path, RuleBackend(ANSWERS), tmp_path / "seq")
    rule = RuleBackend(ANSWERS)
    batches: list[int] = []

    def generate(requests: list[dict]) -> list[str]:
        batches.append(len(requests))
        return [
            rule.complete(r["messages"], r["json_schema"], max_tokens=r["max_tokens"]).text for r in requests
        ]

    with Batcher(generate, max_batch=3, linger_s=2.0) as batcher:
        batched = run(tmp_path, BatchingBackend(batcher, 0.0, 8192), tmp_path / "batched", concurrency=3)
    # q1, q2: a plan and an answer each (the checker supports both: no self-check); q3 (no passage): a
    # plan and a research step
    assert sum(batches) == 6 and len(batches) < 6
    a, b = read_rows(tmp_path / "seq"), read_rows(tmp_path / "batched")
    for qid in a:
        assert a[qid]["answer"] == b[qid]["answer"] and a[qid]["metrics"] == b[qid]["metrics"]
    assert batched.summary["metrics"] == sequential.summary["metrics"]


def test_bad_data_files_name_the_file_and_line(tmp_path: Path) -> None:
    with pytest.raises(QADataError, match="no QA file"):
        load_items(tmp_path / "missing.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(ITEMS[0]) + "\n{not json\n")
    with pytest.raises(QADataError, match=re.escape(f"{bad}:2: not valid JSON")):
        load_items(bad)
    bad.write_text(json.dumps(ITEMS[0]) + "\n" + json.dumps({"id": "x"}) + "\n")
    with pytest.raises(QADataError, match=re.escape(f"{bad}:2:") + '.*"question"'):
        load_items(bad)
    bad.write_text(json.dumps(ITEMS[0]) + "\n\n" + json.dumps(ITEMS[0]) + "\n")
    with pytest.raises(QADataError, match=re.escape(f"{bad}:3: id 'q1' already used on line 1")):
        load_items(bad)


# -- the CLI ------------------------------------------------------------------------------------------------
@pytest.fixture
def app() -> typer.Typer:
    app = typer.Typer()
    eval_cli.register(app)
    return app


def scripted_cli(monkeypatch: pytest.MonkeyPatch, answers: dict) -> None:
    @contextmanager
    def factory(settings: Settings, llm_backend: str, width: int) -> Iterator[RuleBackend]:
        yield RuleBackend(answers)

    monkeypatch.setattr("eval.qa_run.open_eval_backend", factory)
    monkeypatch.setattr("eval.qa_run.open_checker", lambda s, b: OverlapChecker())
    monkeypatch.setattr("eval.qa_run.open_index", lambda s: EvalIndex())


def test_ra_eval_qa_and_compare(app: typer.Typer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    data = write_items(tmp_path / "qa.jsonl", ITEMS)
    runner = CliRunner()
    scripted_cli(monkeypatch, ANSWERS)
    res = runner.invoke(app, ["eval", "qa", "--data", str(data), "--out", str(tmp_path / "a"), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["metrics"]["keyword_hit"] == 1.0

    scripted_cli(monkeypatch, {**ANSWERS, Q_GLIDE: []})  # run B abstains on the GLIDE question
    res = runner.invoke(app, ["eval", "qa", "--data", str(data), "--out", str(tmp_path / "b")])
    assert res.exit_code == 0, res.output
    assert "3 answered now" in res.output and "report:" in res.stdout

    res = runner.invoke(app, ["eval", "compare", str(tmp_path / "a"), str(tmp_path / "b"), "--json"])
    assert res.exit_code == 0, res.output
    cmp = json.loads(res.stdout)
    assert cmp["metrics"]["keyword_hit"] == {"a": 1.0, "b": 0.5, "delta": -0.5}
    assert cmp["by_kind"]["factoid"]["keyword_hit"]["delta"] == -1.0
    assert [d["id"] for d in cmp["differing"]] == ["q1"] and cmp["differing"][0]["b"]["abstained"]
    assert cmp["config_changes"] == {} and cmp["only_in_a"] == cmp["only_in_b"] == []
    assert cmp == compare_runs(load_run(tmp_path / "a"), load_run(tmp_path / "b" / "summary.json"))

    res = runner.invoke(app, ["eval", "compare", str(tmp_path / "a"), str(tmp_path / "b")])
    assert res.exit_code == 0 and "B - A" in res.stdout and "q1" in res.stdout and "-50.0 pts" in res.stdout


def test_cli_errors_are_one_line(app: typer.Typer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["eval", "qa", "--data", str(tmp_path / "none.jsonl")])
    assert isinstance(res.exception, QADataError) and "no QA file" in str(res.exception)
    data = write_items(tmp_path / "qa.jsonl", ITEMS)
    res = runner.invoke(app, ["eval", "qa", "--data", str(data), "--index", str(tmp_path / "no-index")])
    assert "ra ingest" in str(res.exception)  # IndexNotFound says how to build one
    res = runner.invoke(app, ["eval", "qa", "--data", str(data), "--llm-backend", "gpu"])
    assert res.exit_code == 2 and "unknown --llm-backend" in res.output
    res = runner.invoke(app, ["eval", "compare", str(tmp_path), str(tmp_path)])
    assert "no finished `ra eval qa` run" in str(res.exception)


# -- the real thing: CLI, seed index, embedded model (slow) -----------------------------------------------
@pytest.mark.slow
@pytest.mark.integration
def test_ra_eval_qa_on_seed_questions_with_the_embedded_model(
    shared: Path, seed_index: Path, tmp_path: Path
) -> None:
    pytest.importorskip("xllamacpp")
    seeds = [json.loads(line) for line in (shared / "qa" / "seeds_dev.jsonl").read_text().splitlines()]
    picked = [next(s for s in seeds if s["kind"] == k) for k in ("factoid", "unanswerable")]
    data = write_items(tmp_path / "seeds.jsonl", picked)
    env = {
        **os.environ,
        "RA_CONFIG": str(tmp_path / "none.toml"),
        "RA_AGENT__MAX_STEPS": "2",  # fewer model steps: this checks the pipeline, not the model
        "RA_LLM__TIMEOUT_S": "1200",  # a busy two-core machine can take minutes per reply
    }
    cmd = [sys.executable, "-m", "assistant", "eval", "qa", "--data", str(data), "--index", str(seed_index)]
    cmd += ["--out", str(tmp_path / "run"), "--checker", "minilm", "--json"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=env, timeout=2400)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads(proc.stdout)
    assert summary["n"] == 2 and set(summary["by_kind"]) == {"factoid", "unanswerable"}
    rows = read_rows(tmp_path / "run")
    assert set(rows) == {s["id"] for s in picked}
    for r in rows.values():
        assert r["abstained"] or r["citations"]
        assert r["metrics"]["citations_resolve"] in (True, None) and r["timings"]["total_s"] > 0
    factoid = rows[picked[0]["id"]]
    assert (
        factoid["metrics"]["retrieval_recall"] is not None
        and factoid["metrics"]["evidence_recall"] is not None
    )
    assert (tmp_path / "run" / "report.html").stat().st_size > 10_000

    # Rerunning the same command finds every question done: no model is started, the summary is the same.
    again = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=env, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    assert json.loads(again.stdout)["metrics"] == summary["metrics"]


def test_bench_summary_keeps_no_machine_paths(tmp_path: Path) -> None:
    from eval.bench.qa_agent import portable

    summary = run(tmp_path, RuleBackend(ANSWERS), tmp_path / "run").summary
    kept = portable(summary)
    assert str(tmp_path) not in json.dumps(kept) and str(tmp_path) in json.dumps(summary)
    assert kept["config"]["data"] == "qa.jsonl" and kept["metrics"] == summary["metrics"]
