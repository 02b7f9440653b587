"""`ra serve --agent`: the research assistant behind the OpenAI chat API, for clients researchers already
use (Open WebUI, IDE agents, any `openai` client).

The model these clients see is the assistant itself: a request's last user message is the question, the
earlier user/assistant turns are the conversation (follow-ups are rewritten as `ra chat` does), and the
reply is the checked, cited answer. Citations travel twice: as OpenAI `url_citation` annotations (file
URL with the page, title, and the span of the sentence they support) for clients that draw them, and as a
Sources block at the end of the text for those that show plain text. A streamed reply carries only checked
words (what `ra ask` prints on stdout), then the Sources block, then the annotations.

Answers come from the same place as `ra ask`'s: the resident service when one runs (or is started), else
an agent in this process, one question at a time.
"""

from __future__ import annotations

import hmac
import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from assistant.agent.chat import Exchange
from assistant.agent.citations import render_sentence
from assistant.agent.loop import QuestionTooLong, check_question
from assistant.agent.records import Answer, AnswerToken, Citation, FinalAnswer, StepStarted
from assistant.cli.sources import citation_label, source_line
from assistant.service.client import Answerer, History, LocalAnswerer
from assistant.settings import Settings
from index.errors import UserFacingError

SOURCES_HEADING = "\n\nSources:\n"


class APIError(Exception):
    """A request the API refuses, in OpenAI's error shape: one line saying what to change."""

    def __init__(self, status: int, message: str, code: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.param = status, message, code, param

    def response(self) -> JSONResponse:
        kind = "authentication_error" if self.status == 401 else "invalid_request_error"
        body = {"error": {"message": self.message, "type": kind, "param": self.param, "code": self.code}}
        return JSONResponse(body, status_code=self.status)


@dataclass(frozen=True, slots=True)
class ChatRequest:
    question: str
    history: History
    stream: bool


def parse_request(body: bytes, settings: Settings) -> ChatRequest:
    """The question, the conversation before it and whether to stream, from a chat completions body."""
    api = settings.agent_api
    if len(body) > api.max_body_kb * 1024:
        raise APIError(
            413, f"request body over agent_api.max_body_kb ({api.max_body_kb} KB)", "body_too_large"
        )
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise APIError(
            400, 'the request body is not JSON: send {"model": ..., "messages": [...]}', "invalid_json"
        ) from None
    if not isinstance(data, dict):
        raise APIError(400, "the request body must be a JSON object with model and messages", "invalid_json")
    if data.get("model") != api.model_id:
        raise APIError(
            404,
            f"unknown model {str(data.get('model'))[:80]!r}: this server answers as {api.model_id!r}",
            "model_not_found",
            "model",
        )
    messages = data.get("messages")
    if not isinstance(messages, list) or not messages:
        raise APIError(
            400, "messages must be a non-empty list of {role, content}", "invalid_messages", "messages"
        )
    turns = [(m.get("role"), _text(m.get("content"))) for m in messages if isinstance(m, dict)]
    if len(turns) != len(messages) or any(
        r not in ("system", "developer", "user", "assistant", "tool") for r, _ in turns
    ):
        raise APIError(
            400,
            "each message needs a role (system, user or assistant) and content",
            "invalid_messages",
            "messages",
        )
    turns = [(r, t) for r, t in turns if r in ("user", "assistant")]  # instructions are the assistant's own
    if not turns or turns[-1][0] != "user" or not turns[-1][1].strip():
        raise APIError(400, "the last message must be the user's question", "invalid_messages", "messages")
    try:
        question = check_question(turns[-1][1], settings.agent.max_question_chars)
    except QuestionTooLong as exc:
        raise APIError(400, str(exc), "question_too_long", "messages") from None
    return ChatRequest(question, _history(turns[:-1]), bool(data.get("stream", False)))


def _text(content: Any) -> str:
    """A message's text: a string, or the text parts of a content list (images are not read)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def _history(turns: list[tuple[str, str]]) -> History:
    """Earlier exchanges; an answer's Sources block is ours and stays out (a client sends back the text,
    not the annotations, so the cited titles are not known here: the rewriter reads the answer's names)."""
    history: History = []
    for (role, text), (next_role, reply) in pairwise(turns):
        if role == "user" and next_role == "assistant":
            history.append(Exchange(text, reply.split(SOURCES_HEADING, 1)[0]))
    return history


# -- the reply --------------------------------------------------------------------------------------------
def sources_block(answer: Answer) -> str:
    if answer.abstained or not answer.citations:
        return ""
    return SOURCES_HEADING + "\n".join(source_line(c) for c in answer.citations)


def citation_url(citation: Citation) -> str:
    """Where a client can open the cited document: its file URL, at the page for a PDF."""
    url = Path(citation.source).absolute().as_uri()
    return url + (f"#page={citation.page}" if citation.page else "")


def annotations(answer: Answer, content: str) -> list[dict[str, Any]]:
    """One `url_citation` per cited sentence and citation; the indices span the sentence in `content`."""
    by_id = {c.id: c for c in answer.citations if c.kind == "passage"}
    found: list[dict[str, Any]] = []
    at = 0
    for sentence in answer.sentences:
        shown = render_sentence(sentence)
        start = content.find(shown, at)
        if start < 0:
            continue
        at = start + len(shown)
        for n in sentence.citations:
            if (c := by_id.get(n)) is not None:
                cite = {
                    "url": citation_url(c),
                    "title": citation_label(c),
                    "start_index": start,
                    "end_index": at,
                }
                found.append({"type": "url_citation", "url_citation": cite})
    return found


def _usage(answer: Answer) -> dict[str, int]:
    prompt = sum(s.prompt_tokens or 0 for s in answer.steps)
    completion = sum(s.completion_tokens or 0 for s in answer.steps)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def completion(answer: Answer, model: str) -> dict[str, Any]:
    content = answer.text + sources_block(answer)
    message = {"role": "assistant", "content": content, "annotations": annotations(answer, content)}
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": "stop", "logprobs": None}],
        "usage": _usage(answer),
        "citations": [c.to_json() for c in answer.citations],  # the full records, for clients that want them
    }


def stream_events(events: Iterator[Any], model: str) -> Iterator[str]:
    """Server-sent events: checked words as they come, then whatever the final answer adds (an abstention,
    the Sources block), then the annotations and the stop. Steps become SSE comments: they keep proxies
    and clients from timing out while the assistant searches, and clients ignore them."""
    base = {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
    }

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        body = (
            base
            | {"choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}]}
            | extra
        )
        return f"data: {json.dumps(body)}\n\n"

    yield chunk({"role": "assistant", "content": ""})
    sent = ""
    try:
        for event in events:
            if isinstance(event, AnswerToken):
                sent += event.text
                yield chunk({"content": event.text})
            elif isinstance(event, StepStarted):
                yield f": {event.action}\n\n"
            elif isinstance(event, FinalAnswer):
                answer = event.answer
                content = answer.text + sources_block(answer)
                rest = (
                    content[len(sent) :] if content.startswith(sent) else ("\n\n" if sent else "") + content
                )
                if rest:
                    yield chunk({"content": rest})
                full = content if content.startswith(sent) else sent + rest
                yield chunk(
                    {"annotations": annotations(answer, full)},
                    citations=[c.to_json() for c in answer.citations],
                )
                yield chunk({}, "stop", usage=_usage(answer))
    except UserFacingError as exc:  # headers are sent: the error goes in the stream, as OpenAI's do
        yield f"data: {json.dumps({'error': {'message': str(exc), 'type': 'server_error', 'code': 'assistant_error'}})}\n\n"
    finally:
        close = getattr(events, "close", None)
        if close is not None:
            close()  # a client that left stops the run at its next step
    yield "data: [DONE]\n\n"


# -- the app ----------------------------------------------------------------------------------------------
def create_app(answerer: Answerer, settings: Settings) -> Starlette:
    """The two endpoints over one answerer; an in-process agent answers one question at a time."""
    api = settings.agent_api
    one_at_a_time = threading.Lock() if isinstance(answerer, LocalAnswerer) else None

    def authorised(request: Request) -> None:
        if api.api_key is None:
            return
        sent = request.headers.get("authorization", "")
        if not hmac.compare_digest(sent.encode(), f"Bearer {api.api_key}".encode()):
            raise APIError(
                401,
                "missing or wrong API key: send it as 'Authorization: Bearer KEY' (agent_api.api_key)",
                "invalid_api_key",
            )

    def ask(request: ChatRequest) -> Iterator[Any]:
        if one_at_a_time is None:
            yield from answerer.ask(request.question, list(request.history))
            return
        with one_at_a_time:
            yield from answerer.ask(request.question, list(request.history))

    async def models(request: Request) -> Response:
        try:
            authorised(request)
        except APIError as exc:
            return exc.response()
        model = {"id": api.model_id, "object": "model", "created": 0, "owned_by": "research-assistant"}
        return JSONResponse({"object": "list", "data": [model]})

    async def chat(request: Request) -> Response:
        try:
            authorised(request)
            parsed = parse_request(await request.body(), settings)
        except APIError as exc:
            return exc.response()
        if parsed.stream:
            return StreamingResponse(stream_events(ask(parsed), api.model_id), media_type="text/event-stream")
        from starlette.concurrency import run_in_threadpool

        try:
            answer = await run_in_threadpool(_final, ask(parsed))
        except UserFacingError as exc:
            return APIError(503, str(exc), "assistant_error").response()
        return JSONResponse(completion(answer, api.model_id))

    routes = [
        Route("/v1/models", models, methods=["GET"]),
        Route("/v1/chat/completions", chat, methods=["POST"]),
    ]
    return Starlette(routes=routes)


def _final(events: Iterator[Any]) -> Answer:
    answer = None
    for event in events:  # read to the end: the service sends the conversation after the answer
        if isinstance(event, FinalAnswer):
            answer = event.answer
    if answer is None:
        raise UserFacingError("the assistant ended without an answer: see the server's log")
    return answer
