"""`ra ask` / `ra chat`: usage errors, JSON, streaming and traces with a scripted model (enforcing its
schemas), and (slow) a real index with the packaged model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import typer
from fakes import (
    RuleBackend,
    ScriptedBackend,
    TinyIndex,
    by_schema,
    part_reply,
    plan_reply,
    request_kind,
    rewrite_reply,
)
from typer.testing import CliRunner

from assistant.agent.config import AgentSettings
from assistant.agent.loop import ResearchAgent, final_answer
from assistant.cli import ask_cmd
from assistant.index_access import index_config, open_index
from assistant.llm.client import LLMUnavailable
from assistant.settings import load_settings
from index.errors import IndexNotFound
from index.ingest import ingest_paths

REPO = Path(__file__).resolve().parents[1]
DOCS = {
    "docs/glide.md": "GLIDE compares two guidance strategies. Human evaluators preferred classifier-free "
    "guidance for photorealism and caption similarity. CLIP guidance was preferred less often.",
    "docs/alpaca.md": "Alpaca is a small model. Stanford's Alpaca 7B was fine-tuned on 52K "
    "instruction-following demonstrations. It cost little to train.",
}


@pytest.fixture
def app() -> typer.Typer:
    app = typer.Typer()
    ask_cmd.register(app)
    return app


def first_line_cited(text: str, extra: list[int] | None = None) -> Any:
    """A part answer citing the first sentence line of the prompt (plus `extra` ids)."""

    def reply(messages: list[dict[str, Any]], schema: dict[str, Any] | None) -> str:
        options = (schema or {}).get("anyOf") or [schema]
        enum = options[0]["properties"]["citations"]["items"]["enum"] if schema else [1]
        return part_reply(text, [enum[0], *(extra or [])][:2])

    return reply


def in_turn(*replies: Any, asks: str = "fact") -> Any:
    """A model that plans every part as `asks`, says yes to every self-check and gives the `replies` (text
    or functions of the request) to the other requests in turn."""
    queue = list(replies)
    plain = by_schema("unused", "", asks)

    def rule(messages: list[dict[str, Any]], schema: dict[str, Any] | None) -> str:
        if request_kind(schema) in ("plan", "check"):
            return plain(messages, schema)
        reply = queue.pop(0)
        return reply(messages, schema) if callable(reply) else reply

    return rule


def scripted(monkeypatch: pytest.MonkeyPatch, rule: Any, *, enforce: bool = True) -> RuleBackend:
    """Run the CLI over the tiny index with a scripted model instead of a server."""
    backend = RuleBackend(rule, enforce=enforce)

    @contextmanager
    def fake_backend(settings: object) -> Iterator[RuleBackend]:
        yield backend

    monkeypatch.setattr("assistant.agent.factory.open_backend", fake_backend)
    monkeypatch.setattr("assistant.agent.factory.open_index", lambda settings: TinyIndex(DOCS))
    monkeypatch.setattr("assistant.agent.factory.warm", lambda index: index)
    return backend


def test_empty_question_is_a_usage_error(app: typer.Typer) -> None:
    result = CliRunner().invoke(app, ["ask", "   "])
    assert result.exit_code == 2 and "empty question" in result.output


def test_llm_and_llm_url_exclude_each_other(app: typer.Typer) -> None:
    result = CliRunner().invoke(app, ["ask", "q", "--llm", "a", "--llm-url", "http://x"])
    assert result.exit_code == 2 and "exclude each other" in result.output


def test_missing_index_says_how_to_build_one(app: typer.Typer, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["ask", "what?", "--index", str(tmp_path / "none")])
    assert isinstance(result.exception, IndexNotFound) and "ra ingest" in str(result.exception)


def test_unreachable_llm_names_the_url_and_ra_serve(
    app: typer.Typer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("assistant.agent.factory.open_index", lambda settings: TinyIndex(DOCS))
    monkeypatch.setattr("assistant.agent.factory.warm", lambda index: index)
    result = CliRunner().invoke(
        app, ["ask", "Which guidance?", "--llm-url", "http://127.0.0.1:9", "--checker", "none"]
    )
    assert isinstance(result.exception, LLMUnavailable)
    assert "127.0.0.1:9" in str(result.exception) and "ra serve" in str(result.exception)


def test_an_over_long_question_is_a_usage_error_before_anything_starts(app: typer.Typer) -> None:
    result = CliRunner().invoke(app, ["ask", "why " * 1000])
    assert result.exit_code == 2 and "agent.max_question_chars" in result.output


def test_ask_json_reports_answer_citations_parts_evidence_and_timings(
    app: typer.Typer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a server that ignores schemas could send an unseen number: it is dropped and counted
    scripted(
        monkeypatch,
        in_turn(first_line_cited("Evaluators preferred classifier-free guidance.", [9])),
        enforce=False,
    )
    result = CliRunner().invoke(
        app, ["ask", "Which guidance did evaluators prefer?", "--json", "--checker", "none"]
    )

    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["answer"] == "Evaluators preferred classifier-free guidance. [1]"
    assert data["abstained"] is False and data["invalid_citations"] == 1
    [cite] = data["citations"]
    assert set(cite) >= {"id", "source", "page", "start", "end", "quote", "chunk_id", "part"}
    assert DOCS[cite["source"]][cite["start"] : cite["end"]] == cite["quote"]
    assert [s["action"] for s in data["steps"]] == ["plan", "search", "answer", "check"]
    assert "total_s" in data["timings"]
    assert [p["status"] for p in data["parts"]] == ["answered"] and data["plan"]["source"] == "model"
    [seen] = data["evidence"]  # the ledger: everything the agent saw (the one passage sharing words)
    assert (
        seen["source"] == "docs/glide.md" and seen["part"] == 1 and seen["query"].startswith("Which guidance")
    )


def test_ask_shows_sources_found_then_streams_the_answer_and_writes_a_trace(
    app: typer.Typer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    scripted(monkeypatch, in_turn(first_line_cited("Alpaca used 52K demonstrations."), asks="number"))
    trace = tmp_path / "run.jsonl"
    args = [
        "ask",
        "How many demonstrations for Alpaca?",
        "--trace",
        str(trace),
        "--steps",
        "--checker",
        "none",
    ]
    result = CliRunner().invoke(app, args)

    assert result.exit_code == 0, result.output
    assert "Alpaca used 52K demonstrations. [1]" in result.stdout
    assert "Sources:" in result.stdout and "[1] docs/alpaca.md" in result.stdout
    assert result.output.index("found [1] docs/alpaca.md") < result.output.index("Alpaca used 52K")
    assert "action: answer" in result.output and "timings" in result.output
    records = [json.loads(line) for line in trace.read_text().splitlines()]
    assert [r["type"] for r in records][:3] == ["question", "plan", "step"]
    assert next(r for r in records if r["type"] == "step" and r["action"] == "answer")["raw"].startswith("{")


def test_chat_keeps_history_and_handles_new_and_exit(
    app: typer.Typer, monkeypatch: pytest.MonkeyPatch
) -> None:
    scripted(
        monkeypatch,
        in_turn(
            first_line_cited("Alpaca 7B was fine-tuned on 52K demonstrations."),
            rewrite_reply("Which guidance did GLIDE evaluators prefer?"),
            first_line_cited("They preferred classifier-free guidance."),
        ),
    )
    lines = "How many demonstrations for Alpaca?\nand for GLIDE?\n/new\n/exit\n"
    result = CliRunner().invoke(app, ["chat", "--checker", "none"], input=lines)

    assert result.exit_code == 0, result.output
    assert "searching for: Which guidance did GLIDE evaluators prefer?" in result.output
    assert "classifier-free guidance. [1]" in result.stdout and "new conversation" in result.output


# -- a real index (embedding model): slow -----------------------------------------------------------
@pytest.fixture(scope="module")
def real_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("agent-corpus")
    for name, text in DOCS.items():
        (root / Path(name).name).write_text(f"# {Path(name).stem}\n\n{text}\n", encoding="utf-8")
    for i, topic in enumerate(["sparrows nest in spring", "rivers carry silt", "bread needs yeast"]):
        # BM25 gives a term found in half of the documents zero weight: a few unrelated files avoid that.
        (root / f"filler{i}.md").write_text(f"# Filler\n\nSome notes: {topic}.\n", encoding="utf-8")
    index_dir = root / "index"
    ingest_paths([root], index_dir, index_config(load_settings({"index": {"dir": index_dir}})))
    return index_dir


@pytest.mark.slow
def test_citations_resolve_to_spans_of_a_real_index(real_index: Path) -> None:
    index = open_index(load_settings({"index": {"dir": real_index}, "retrieval": {"mode": "bm25"}}))
    backend = ScriptedBackend(
        [plan_reply("fact"), first_line_cited("Human evaluators preferred classifier-free guidance.")]
    )
    agent = ResearchAgent(backend, index, AgentSettings(sandbox=False, self_check=False), weak_margin=0.15)
    result = final_answer(agent.run("GLIDE guidance human evaluators"))

    assert result.citations and not result.abstained
    for c in result.citations:
        chunk = index.get_chunk(c.chunk_id or "")
        assert chunk is not None and chunk.start <= c.start and c.end <= chunk.end  # type: ignore[operator]
        assert index.document_text(c.source)[c.start : c.end] == c.quote  # type: ignore[index]


@pytest.mark.slow
@pytest.mark.integration
def test_ra_ask_json_with_the_embedded_model(real_index: Path, tmp_path: Path) -> None:
    """End to end: the real CLI, the packaged llama.cpp model and checker, a cited right answer."""
    pytest.importorskip("xllamacpp")
    env = {**os.environ, "RA_CONFIG": str(tmp_path / "none.toml")}
    question = "Which guidance did GLIDE's human evaluators prefer?"
    proc = subprocess.run(
        [sys.executable, "-m", "assistant", "ask", question, "--index", str(real_index), "--json"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=1200,
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert not data["abstained"] and "classifier-free" in data["answer"].lower()
    assert data["citations"] and all(c["source"].endswith("glide.md") for c in data["citations"])
    index = open_index(load_settings({"index": {"dir": real_index}}))
    for c in data["citations"]:
        assert index.document_text(c["source"])[c["start"] : c["end"]] == c["quote"]
        chunk = index.get_chunk(c["chunk_id"])
        assert chunk is not None and c["quote"] in chunk.text
