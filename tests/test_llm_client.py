"""ChatClient against a scripted OpenAI-compatible server (httpx.MockTransport) and a closed port."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable

import httpx
import pytest

from assistant.llm.client import ChatClient, LLMError, LLMUnavailable, normalize_base_url

URL = "http://llm.test:8000/v1"
SCHEMA = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}


def _client(handler: Callable[[httpx.Request], httpx.Response], model: str | None = "m") -> ChatClient:
    return ChatClient(URL, model, http=httpx.Client(transport=httpx.MockTransport(handler)))


def _completion(content: str, **extra: object) -> dict:
    choice = {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
    usage = {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9}
    return {"choices": [choice | extra], "usage": usage}


def test_chat_sends_openai_json_schema_request_and_parses_the_answer() -> None:
    seen: list[dict] = []

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1/chat/completions"
        seen.append(json.loads(request.content))
        return httpx.Response(200, json=_completion('{"a": "x"}'))

    result = _client(handler).chat([{"role": "user", "content": "hi"}], json_schema=SCHEMA, max_tokens=9)

    assert seen[0]["model"] == "m" and seen[0]["max_tokens"] == 9 and seen[0]["temperature"] == 0.0
    assert seen[0]["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "response", "schema": SCHEMA, "strict": True},
    }
    assert "logprobs" not in seen[0]
    assert (result.text, result.finish_reason, result.usage["prompt_tokens"]) == ('{"a": "x"}', "stop", 7)
    assert result.logprobs is None


def test_chat_returns_logprobs_when_asked() -> None:
    raw = {
        "content": [
            {
                "token": "Yes",
                "logprob": -0.4,
                "top_logprobs": [{"token": "Yes", "logprob": -0.4}, {"token": "No", "logprob": -1.1}],
            }
        ]
    }

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        assert body["logprobs"] is True and body["top_logprobs"] == 2
        return httpx.Response(200, json=_completion("Yes", logprobs=raw))

    result = _client(handler).chat([{"role": "user", "content": "?"}], logprobs=True, top_logprobs=2)

    assert result.logprobs is not None and len(result.logprobs) == 1
    assert result.logprobs[0].token == "Yes" and result.logprobs[0].top == {"Yes": -0.4, "No": -1.1}


def test_model_defaults_to_the_first_served_model() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/models":
            return httpx.Response(200, json={"object": "list", "data": [{"id": "served-a"}, {"id": "b"}]})
        assert json.loads(request.content)["model"] == "served-a"
        return httpx.Response(200, json=_completion("ok"))

    client = _client(handler, model=None)
    assert client.chat([{"role": "user", "content": "x"}]).text == "ok"
    assert client.list_models() == ["served-a", "b"]


def test_stream_yields_content_deltas_until_done() -> None:
    events = [
        {"choices": [{"delta": {"role": "assistant"}}]},
        {"choices": [{"delta": {"content": "Hel"}}]},
        {"choices": [{"delta": {"content": "lo"}, "finish_reason": None}]},
        {"choices": [{"delta": {}, "finish_reason": "stop"}]},
    ]
    sse = "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n" + 'data: {"bad"\n\n'

    def handler(request: httpx.Request) -> httpx.Response:
        assert json.loads(request.content)["stream"] is True
        return httpx.Response(200, text=sse, headers={"content-type": "text/event-stream"})

    assert list(_client(handler).stream([{"role": "user", "content": "x"}])) == ["Hel", "lo"]


def test_stream_surfaces_an_error_event() -> None:
    sse = (
        'data: {"choices":[{"delta":{"content":"a"}}]}\n\n'
        'data: {"error":{"message":"context full\\nmore"}}\n\n'
    )

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text=sse, headers={"content-type": "text/event-stream"})

    with pytest.raises(LLMError, match=r"failed: context full$"):
        list(_client(handler).stream([{"role": "user", "content": "x"}]))


@pytest.mark.parametrize("streaming", [False, True])
def test_http_errors_become_one_line_messages(streaming: bool) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"error": {"message": "bad schema\ntrace...", "code": 400}})

    client = _client(handler)
    with pytest.raises(LLMError) as err:
        if streaming:
            list(client.stream([{"role": "user", "content": "x"}]))
        else:
            client.chat([{"role": "user", "content": "x"}])
    assert str(err.value) == f"the LLM at {URL} answered HTTP 400: bad schema"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("call", ["chat", "stream", "list_models"])
def test_unreachable_server_says_how_to_start_one(call: str) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/v1"
    client = ChatClient(url, "m", connect_timeout=2.0)
    messages = [{"role": "user", "content": "x"}]
    action = {
        "chat": lambda: client.chat(messages),
        "stream": lambda: list(client.stream(messages)),
        "list_models": client.list_models,
    }[call]

    with pytest.raises(LLMUnavailable) as err:
        action()
    assert str(err.value) == f"cannot reach the LLM at {url}: start one with `ra serve` or pass --llm-url"
    assert client.health() is False


def test_base_url_forms() -> None:
    assert normalize_base_url("http://h:1") == "http://h:1/v1"
    assert normalize_base_url(" http://h:1/v1/ ") == "http://h:1/v1"
