"""`ra serve --agent`: the assistant behind the OpenAI chat API, driven by the official `openai` client
and by curl. A scripted model (enforcing its schemas) answers the logic tests over a real HTTP server
(uvicorn in a thread); the slow test runs the real command with the packaged model over the seed index."""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import uvicorn
from fakes import RuleBackend, TinyIndex, WordChecker, by_schema, request_kind
from readme_snippets import shell_commands

from assistant.agent.config import AgentSettings
from assistant.agent.loop import ResearchAgent
from assistant.openai_api import create_app
from assistant.service.client import LocalAnswerer
from assistant.settings import load_settings

DOCS = {
    "/docs/alpaca.md": "Alpaca is a small model. Stanford's Alpaca 7B was fine-tuned on 52K "
    "instruction-following demonstrations. It cost less than 600 dollars to train.",
    "/docs/glide.md": "GLIDE compares two guidance strategies. Human evaluators preferred classifier-free "
    "guidance for photorealism. CLIP guidance was preferred less often.",
}
QUESTION = "How many demonstrations was Alpaca 7B fine-tuned on?"
ANSWER = "Alpaca 7B was fine-tuned on 52K demonstrations."
MODEL = "research-assistant"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Served:
    """A running endpoint over a scripted model; `backend.calls` shows what the model was asked."""

    def __init__(self, api_key: str | None = None) -> None:
        self.backend = RuleBackend(by_schema(ANSWER, QUESTION))
        agent = ResearchAgent(
            self.backend,
            TinyIndex(DOCS),
            AgentSettings(sandbox=False, self_check=False),
            checker=WordChecker(),
            weak_margin=0.2,
        )
        self.settings = load_settings({"agent_api": {"api_key": api_key}})
        port = _free_port()
        app = create_app(LocalAnswerer(agent), self.settings)
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.url = f"http://127.0.0.1:{port}/v1"

    def __enter__(self) -> Served:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def client(self, api_key: str = "unused") -> openai.OpenAI:
        return openai.OpenAI(base_url=self.url, api_key=api_key, max_retries=0)


@pytest.fixture
def served() -> Iterator[Served]:
    with Served() as s:
        yield s


def test_models_lists_the_assistant(served: Served) -> None:
    assert [m.id for m in served.client().models.list()] == [MODEL]


def test_a_cited_answer_with_annotations_and_a_sources_block(served: Served) -> None:
    reply = served.client().chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": QUESTION}]
    )
    message = reply.choices[0].message
    content = message.content or ""
    text, sources = content.split("\n\nSources:\n")
    assert text == f"{ANSWER} [1]"
    assert sources.startswith("[1] /docs/alpaca.md, line 1: \u201c") and "52K" in sources
    [note] = message.annotations or []
    assert note.type == "url_citation"
    cite = note.url_citation
    assert cite.url == "file:///docs/alpaca.md" and cite.title == "/docs/alpaca.md, line 1"
    assert content[cite.start_index : cite.end_index] == f"{ANSWER} [1]"  # the sentence it supports
    assert reply.model == MODEL and reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None and reply.usage.completion_tokens > 0
    [record] = reply.model_extra["citations"]  # the full citation records ride along
    assert record["source"] == "/docs/alpaca.md" and "52K" in record["quote"]


def test_streaming_gives_the_same_text_then_the_annotations(served: Served) -> None:
    plain = served.client().chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": QUESTION}]
    )
    stream = served.client().chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": QUESTION}], stream=True
    )
    pieces, notes, finish = [], [], None
    for chunk in stream:
        delta = chunk.choices[0].delta
        pieces.append(delta.content or "")
        notes += (delta.model_extra or {}).get("annotations") or []
        finish = chunk.choices[0].finish_reason or finish
    # checked words as soon as their check ends (one sentence here), then the Sources block on its own
    assert [p for p in pieces if p] == [f"{ANSWER} [1]", plain.choices[0].message.content[len(ANSWER) + 4 :]]
    assert "".join(pieces) == plain.choices[0].message.content
    assert [n["url_citation"]["url"] for n in notes] == ["file:///docs/alpaca.md"]
    assert finish == "stop"


def test_a_follow_up_is_rewritten_with_the_conversation(served: Served) -> None:
    first = served.client().chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": QUESTION}]
    )
    messages: list[Any] = [
        {"role": "system", "content": "You are helpful."},
        {"role": "user", "content": QUESTION},
        {"role": "assistant", "content": first.choices[0].message.content},
        {"role": "user", "content": [{"type": "text", "text": "And what did it cost?"}]},
    ]
    reply = served.client().chat.completions.create(model=MODEL, messages=messages)
    rewrites = [m for m, schema in served.backend.calls if request_kind(schema) == "rewrite"]
    assert len(rewrites) == 1
    prompt = "\n".join(m["content"] for m in rewrites[0])
    assert QUESTION in prompt and "And what did it cost?" in prompt
    assert "Sources:" not in prompt  # the history holds the answer, not our Sources block
    assert reply.choices[0].message.content


def test_an_api_key_is_required_when_one_is_set() -> None:
    with Served(api_key="s3cret") as served:
        with pytest.raises(openai.AuthenticationError, match="API key"):
            served.client("wrong").models.list()
        with pytest.raises(openai.AuthenticationError):
            served.client("wrong").chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": "x"}]
            )
        assert [m.id for m in served.client("s3cret").models.list()] == [MODEL]


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        (b"{not json", 400, "not JSON"),
        (b"[1, 2]", 400, "JSON object"),
        (
            json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}).encode(),
            404,
            "unknown model",
        ),
        (json.dumps({"model": MODEL, "messages": []}).encode(), 400, "non-empty list"),
        (
            json.dumps({"model": MODEL, "messages": [{"role": "assistant", "content": "hi"}]}).encode(),
            400,
            "last message",
        ),
        (
            json.dumps({"model": MODEL, "messages": [{"role": "wizard", "content": "hi"}]}).encode(),
            400,
            "role",
        ),
        (
            json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "x" * 20_000}]}).encode(),
            400,
            "max_question_chars",
        ),
        (
            json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "x" * 2_000_000}]}).encode(),
            413,
            "max_body_kb",
        ),
    ],
)
def test_bad_requests_get_one_line_openai_errors_and_the_server_goes_on(
    served: Served, body: bytes, status: int, words: str
) -> None:
    reply = httpx.post(
        served.url + "/chat/completions", content=body, headers={"content-type": "application/json"}
    )
    assert reply.status_code == status
    error = reply.json()["error"]
    assert words in error["message"] and "\n" not in error["message"]
    assert error["type"] == "invalid_request_error"
    assert not served.backend.calls  # nothing reached the model
    assert [m.id for m in served.client().models.list()] == [MODEL]


def test_curl_streams_server_sent_events(served: Served) -> None:
    body = json.dumps({"model": MODEL, "stream": True, "messages": [{"role": "user", "content": QUESTION}]})
    proc = subprocess.run(
        [
            "curl",
            "-sSN",
            served.url + "/chat/completions",
            "-H",
            "Content-Type: application/json",
            "-d",
            body,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    events = [line[len("data: ") :] for line in proc.stdout.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    assert text.startswith(f"{ANSWER} [1]\n\nSources:\n[1] /docs/alpaca.md, line 1")
    assert any(line.startswith(": ") for line in proc.stdout.splitlines())  # progress comments while it works


# -- the real command --------------------------------------------------------------------------------------
@pytest.fixture
def real_endpoint(seed_index: Path, tmp_path: Path) -> Iterator[tuple[str, int]]:
    """The README's `ra serve --agent` command over the seed index (on a free port, in this process's
    answering mode); yields its URL and port."""
    pytest.importorskip("xllamacpp")
    [serve] = [c for c in shell_commands("openai-endpoint") if c.startswith("ra serve --agent")]
    args = shlex.split(serve)[1:]
    args[args.index("--index") + 1] = str(seed_index)
    port = _free_port()
    log = tmp_path / "serve.log"
    env = {**os.environ, "RA_CONFIG": str(tmp_path / "none.toml")}
    cmd = [sys.executable, "-m", "assistant", *args, "--port", str(port), "--no-service"]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 600
        while True:
            try:
                if httpx.get(url + "/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"`ra serve --agent` did not come up:\n{log.read_text(errors='replace')[-3000:]}")
            time.sleep(1)
        yield url, port
    finally:
        proc.terminate()
        proc.wait(timeout=60)


@pytest.mark.slow
@pytest.mark.integration
def test_the_real_assistant_streams_a_cited_multi_turn_answer(real_endpoint: tuple[str, int]) -> None:
    url, port = real_endpoint
    for curl in [c for c in shell_commands("openai-endpoint") if c.startswith("curl")]:
        proc = subprocess.run(
            curl.replace("8090", str(port)), shell=True, capture_output=True, text=True, timeout=900
        )
        assert proc.returncode == 0, proc.stderr
        assert MODEL in proc.stdout if "/models" in curl else "data: [DONE]" in proc.stdout
        if "chat/completions" in curl:
            assert "classifier-free" in proc.stdout.lower() and "url_citation" in proc.stdout
    client = openai.OpenAI(base_url=url, api_key="unused", timeout=900, max_retries=0)
    question = "Which guidance did GLIDE's human evaluators prefer?"
    first = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": question}])
    content = first.choices[0].message.content or ""
    assert "classifier-free" in content.lower() and "\n\nSources:\n" in content
    _annotated(first.choices[0].message.annotations or [], first.model_extra["citations"], content)
    messages = [
        {"role": "user", "content": question},
        {"role": "assistant", "content": content},
        {"role": "user", "content": "How many parameters did their text-conditional diffusion model have?"},
    ]
    pieces, notes, records = [], [], []
    for chunk in client.chat.completions.create(model=MODEL, messages=messages, stream=True):
        pieces.append(chunk.choices[0].delta.content or "")
        notes += (chunk.choices[0].delta.model_extra or {}).get("annotations") or []
        records += (chunk.model_extra or {}).get("citations") or []
    text = "".join(pieces)
    assert "3.5" in text.split("Sources:")[0] and "\n\nSources:\n" in text
    _annotated([openai.types.chat.chat_completion_message.Annotation(**n) for n in notes], records, text)


def _annotated(notes: list[Any], records: list[dict[str, Any]], content: str) -> None:
    """Every annotation points at a cited document's file and spans a cited sentence of the text."""
    files = {Path(r["source"]).as_uri() for r in records}
    assert notes and records
    for note in notes:
        cite = note.url_citation
        assert cite.url.split("#")[0] in files
        said = content[cite.start_index : cite.end_index]
        assert said and said in content.split("\n\nSources:\n")[0] and "[" in said
