"""`ra ask` / `ra chat`: usage errors, JSON output with a scripted model, and (slow) real index and model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import typer
from langchain_core.language_models import FakeListChatModel
from test_agent_loop import DOCS, TinyIndex, answer, step
from typer.testing import CliRunner

from assistant.agent.backends import LangChainBackend
from assistant.agent.loop import ResearchAgent, final_answer
from assistant.cli import ask_cmd
from assistant.index_access import index_config, open_index
from assistant.llm.client import LLMUnavailable
from assistant.settings import load_settings
from index.errors import IndexNotFound
from index.ingest import ingest_paths

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def app() -> typer.Typer:
    app = typer.Typer()
    ask_cmd.register(app)
    return app


def scripted(monkeypatch: pytest.MonkeyPatch, replies: list[str]) -> None:
    """Run the CLI over the tiny index with a scripted model instead of a server."""

    @contextmanager
    def fake_backend(settings: object) -> Iterator[LangChainBackend]:
        yield LangChainBackend(FakeListChatModel(responses=replies))

    monkeypatch.setattr("assistant.agent.backends.open_backend", fake_backend)
    monkeypatch.setattr(ask_cmd, "open_index", lambda settings: TinyIndex())


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
    monkeypatch.setattr(ask_cmd, "open_index", lambda settings: TinyIndex())
    result = CliRunner().invoke(app, ["ask", "Which guidance?", "--llm-url", "http://127.0.0.1:9"])
    assert isinstance(result.exception, LLMUnavailable)
    assert "127.0.0.1:9" in str(result.exception) and "ra serve" in str(result.exception)


def test_ask_json_reports_answer_citations_steps_and_timings(
    app: typer.Typer, monkeypatch: pytest.MonkeyPatch
) -> None:
    scripted(
        monkeypatch, [step("finish", ""), answer(("Evaluators preferred classifier-free guidance.", [1, 9]))]
    )
    result = CliRunner().invoke(app, ["ask", "Which guidance did evaluators prefer?", "--json"])

    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["answer"] == "Evaluators preferred classifier-free guidance. [1]"
    assert data["abstained"] is False and data["invalid_citations"] == 1
    [cite] = data["citations"]
    assert set(cite) >= {"id", "source", "page", "start", "end", "quote", "chunk_id"}
    assert DOCS[cite["source"]][cite["start"] : cite["end"]] == cite["quote"]
    assert [s["action"] for s in data["steps"]] == ["search", "finish"] and "total_s" in data["timings"]


def test_ask_streams_the_answer_then_the_sources_and_traces_steps(
    app: typer.Typer, monkeypatch: pytest.MonkeyPatch
) -> None:
    scripted(
        monkeypatch, [step("finish", "", thought="enough"), answer(("Alpaca used 52K demonstrations.", [1]))]
    )
    result = CliRunner().invoke(app, ["ask", "How many demonstrations for Alpaca?", "--trace"])

    assert result.exit_code == 0, result.output
    assert "Alpaca used 52K demonstrations. [1]" in result.stdout
    assert "Sources:" in result.stdout and "[1] docs/alpaca.md" in result.stdout
    assert "thought: enough" in result.output and "timings" in result.output


def test_chat_keeps_history_and_handles_new_and_exit(
    app: typer.Typer, monkeypatch: pytest.MonkeyPatch
) -> None:
    scripted(
        monkeypatch,
        [
            step("finish", ""),
            answer(("Alpaca 7B was fine-tuned on 52K demonstrations.", [1])),
            json.dumps({"query": "Which guidance did GLIDE evaluators prefer?"}),
            step("finish", ""),
            answer(("They preferred classifier-free guidance.", [1])),
        ],
    )
    lines = "How many demonstrations for Alpaca?\nand for GLIDE?\n/new\n/exit\n"
    result = CliRunner().invoke(app, ["chat"], input=lines)

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
    model = FakeListChatModel(
        responses=[
            step("finish", ""),
            answer(("Human evaluators preferred classifier-free guidance.", [1, 2])),
        ]
    )
    result = final_answer(
        ResearchAgent(LangChainBackend(model), index).run("GLIDE guidance human evaluators")
    )

    assert result.citations and not result.abstained
    for c in result.citations:
        chunk = index.get_chunk(c.chunk_id or "")
        assert chunk is not None and chunk.start <= c.start and c.end <= chunk.end  # type: ignore[operator]
        assert index.document_text(c.source)[c.start : c.end] == c.quote  # type: ignore[index]


@pytest.mark.slow
@pytest.mark.integration
def test_ra_ask_json_with_the_embedded_model(real_index: Path, tmp_path: Path) -> None:
    """End to end: the real CLI, the packaged llama.cpp model, a cited (or abstaining) answer."""
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
    assert data["abstained"] or data["citations"]
    index = open_index(load_settings({"index": {"dir": real_index}}))
    for c in data["citations"]:
        assert index.document_text(c["source"])[c["start"] : c["end"]] == c["quote"]
        chunk = index.get_chunk(c["chunk_id"])
        assert chunk is not None and c["quote"] in chunk.text
