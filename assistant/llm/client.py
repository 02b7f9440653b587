"""One client for every LLM backend: the OpenAI-compatible `/v1/chat/completions` API.

llama.cpp's server (the embedded default), vLLM and Ollama all speak it, including streaming (SSE) and
`response_format: json_schema` structured output, so the agent never needs to know which one runs.
Plain httpx rather than the openai SDK: four endpoints, no extra dependency, and errors we map ourselves
to one-line messages that say what to do.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any

import httpx

from assistant.llm.replicas import ReplicaPool, split_urls
from index.errors import UserFacingError

if TYPE_CHECKING:
    from assistant.settings import LLMSettings

Message = dict[str, Any]
# The generation cap of a call that names none (the agent passes its own step and answer caps).
DEFAULT_MAX_TOKENS = 512


class LLMUnavailable(UserFacingError):
    """No server answers at the configured URL."""


class LLMError(UserFacingError):
    """The server answered, but with an error or not in time."""


@dataclass(frozen=True)
class TokenLogprob:
    token: str
    logprob: float
    top: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class ChatResult:
    text: str
    usage: dict[str, int]
    finish_reason: str | None
    logprobs: list[TokenLogprob] | None = None
    replica: str = ""  # the base URL that answered


_ANSWER = {"yes": True, "no": False}


def _answer_word(token: str) -> bool | None:
    """True for a "yes" token, False for "no", None for anything else (quotes and spaces ignored)."""
    return _ANSWER.get(token.strip().strip('"').strip().lower())


def yes_probability(tokens: Sequence[TokenLogprob]) -> float | None:
    """P(yes) / (P(yes) + P(no)) at the first token that is the answer word; None if there is none
    (the LLM judge and the agent's self-check both read a yes/no this way).

    The alternatives come from the token's top logprobs (case variants such as "Yes" add to their word);
    normalising over the two words undoes whatever mass a grammar-constrained server assigns elsewhere."""
    for tok in tokens:
        if _answer_word(tok.token) is None:
            continue
        mass = {True: 0.0, False: 0.0}
        for text, logprob in {**tok.top, tok.token: tok.logprob}.items():
            word = _answer_word(text)
            if word is not None:
                mass[word] += math.exp(logprob)
        return mass[True] / (mass[True] + mass[False])
    return None


def normalize_base_url(url: str) -> str:
    """Accept `http://host:port` or `.../v1` and return the `/v1` form every request is built on."""
    url = url.strip().rstrip("/")
    return url if url.endswith("/v1") else url + "/v1"


def response_format(json_schema: dict[str, Any], name: str = "response") -> dict[str, Any]:
    """OpenAI structured-output request body part (accepted as is by llama.cpp and vLLM)."""
    return {"type": "json_schema", "json_schema": {"name": name, "schema": json_schema, "strict": True}}


class ChatClient:
    """Chat with the model served at `base_url`; `model=None` uses the first model the server lists.

    Two clocks: `timeout` bounds a whole answer; `first_token_timeout` (default: the same) bounds the wait
    for a server's first byte on the model listing and on a stream, so a server that accepts connections
    but never answers is reported in seconds rather than after a whole answer's time.

    `base_url` may list several replicas of one model, comma-separated: each request goes to the least busy
    live one (see replicas.py), and one that refuses connections is skipped."""

    def __init__(
        self,
        base_url: str,
        model: str | None = None,
        *,
        timeout: float = 300.0,
        first_token_timeout: float | None = None,
        connect_timeout: float = 5.0,
        api_key: str | None = None,
        http: httpx.Client | None = None,
    ) -> None:
        self.pool = ReplicaPool([normalize_base_url(u) for u in split_urls(base_url)])
        self.base_url = ",".join(self.pool.urls)
        self._model = model
        self._timeout = timeout
        self._first_token_timeout = first_token_timeout or timeout
        self._waiting = httpx.Timeout(timeout, connect=connect_timeout, read=self._first_token_timeout)
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = http or httpx.Client(
            timeout=httpx.Timeout(timeout, connect=connect_timeout), headers=headers
        )

    @classmethod
    def for_settings(cls, llm: LLMSettings, url: str | None = None, model: str | None = None) -> ChatClient:
        """The client for `url` (default `llm.url`) with the configured timeouts and API key: the one place
        a client is built from the settings (the agent's backend, the LLM judge, the eval's judge)."""
        return cls(
            url or llm.url or "",
            model,
            timeout=llm.timeout_s,
            first_token_timeout=llm.first_token_timeout_s,
            api_key=llm.api_key,
        )

    @property
    def model(self) -> str:
        if self._model is None:
            models = self.list_models()
            if not models:
                raise LLMError(f"the LLM at {self.base_url} serves no model: start it with a model")
            self._model = models[0]
        return self._model

    def list_models(self) -> list[str]:
        data = self._request("GET", "/models", timeout=self._waiting).json()
        return [m["id"] for m in data.get("data", [])]

    def context_tokens(self, default: int) -> int:
        """The served model's context window where the server reports it (vLLM's `max_model_len`),
        else `default` (the setting the user gave for a server that does not say)."""
        data = self._request("GET", "/models", timeout=self._waiting).json().get("data") or [{}]
        value = data[0].get("max_model_len") if isinstance(data[0], dict) else None
        return int(value) if isinstance(value, int) and value > 0 else default

    def health(self) -> bool:
        """True when a server answers and has a model loaded (llama.cpp answers 503 while loading)."""
        for url in self.pool.urls:
            try:
                if self._http.get(url + "/models", timeout=3.0).status_code == 200:
                    return True
            except httpx.HTTPError:
                continue
        return False

    def chat(
        self,
        messages: Sequence[Message],
        *,
        json_schema: dict[str, Any] | None = None,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        temperature: float = 0.0,
        logprobs: bool = False,
        top_logprobs: int | None = None,
        stop: Sequence[str] | None = None,
    ) -> ChatResult:
        body = self._body(messages, json_schema, max_tokens, temperature, stop)
        if logprobs:
            body["logprobs"] = True
            if top_logprobs:
                body["top_logprobs"] = top_logprobs
        resp = self._request("POST", "/chat/completions", json=body)
        data = resp.json()
        replica = str(resp.request.url).removesuffix("/chat/completions")
        _raise_embedded_error(data, replica)
        choice = data["choices"][0]
        return ChatResult(
            text=choice["message"].get("content") or "",
            usage=_usage(data.get("usage")),
            finish_reason=choice.get("finish_reason"),
            logprobs=_parse_logprobs(choice.get("logprobs")) if logprobs else None,
            replica=replica,
        )

    def stream(
        self,
        messages: Sequence[Message],
        *,
        json_schema: dict[str, Any] | None = None,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        temperature: float = 0.0,
        stop: Sequence[str] | None = None,
        usage: dict[str, int] | None = None,
    ) -> Iterator[str]:
        """Yield the answer's text deltas as the server sends them (Server-Sent Events); a `usage` dict
        is filled with the token counts the server reports at the end (as `chat` returns them)."""
        body = self._body(messages, json_schema, max_tokens, temperature, stop) | {"stream": True}
        if usage is not None:
            body["stream_options"] = {"include_usage": True}
        deadline = time.monotonic() + self._timeout
        tried: set[str] = set()
        while True:
            with self._replica(tried) as url:
                started = False
                try:
                    with self._http.stream(
                        "POST", url + "/chat/completions", json=body, timeout=self._waiting
                    ) as resp:
                        if resp.status_code >= 400:
                            resp.read()
                            raise _status_error(resp, url)
                        for line in resp.iter_lines():
                            started = True
                            if time.monotonic() > deadline:
                                raise LLMError(
                                    f"the LLM at {url} did not finish within {self._timeout:g} s "
                                    "(llm.timeout_s): use a smaller model or a larger timeout"
                                )
                            if not line.startswith("data:"):
                                continue
                            payload = line[5:].strip()
                            if payload == "[DONE]":
                                self.pool.mark_served(url)
                                return
                            chunk = json.loads(payload)
                            _raise_embedded_error(chunk, url)
                            if usage is not None and chunk.get("usage"):
                                usage.update(_usage(chunk["usage"]))
                            for choice in chunk.get("choices") or []:
                                if text := (choice.get("delta") or {}).get("content"):
                                    yield text
                    self.pool.mark_served(url)
                    return
                except httpx.ReadTimeout as exc:
                    raise (self._silent(url) if not started else _transport_error(exc, url)) from None
                except httpx.HTTPError as exc:
                    if started or not self._failover(exc, url, tried):
                        raise _transport_error(exc, self._named(exc, url)) from None

    def _body(
        self,
        messages: Sequence[Message],
        json_schema: dict[str, Any] | None,
        max_tokens: int,
        temperature: float,
        stop: Sequence[str] | None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": list(messages),
            "max_tokens": max_tokens,
            "temperature": temperature,
        }
        if json_schema is not None:
            body["response_format"] = response_format(json_schema)
        if stop:
            body["stop"] = list(stop)
        return body

    def _silent(self, url: str) -> LLMError:
        return LLMError(
            f"the LLM at {url} accepted the connection but sent nothing for "
            f"{self._first_token_timeout:g} s (llm.first_token_timeout_s): check that the server is up "
            "and not stuck, or raise the timeout"
        )

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        tried: set[str] = set()
        while True:
            with self._replica(tried) as url:
                try:
                    resp = self._http.request(method, url + path, **kwargs)
                except httpx.ReadTimeout as exc:
                    waiting = kwargs.get("timeout") is self._waiting
                    raise (self._silent(url) if waiting else _transport_error(exc, url)) from None
                except httpx.HTTPError as exc:
                    if self._failover(exc, url, tried):
                        continue
                    raise _transport_error(exc, self._named(exc, url)) from None
                if resp.status_code >= 400:
                    raise _status_error(resp, url)
                self.pool.mark_served(url)
                return resp

    @contextlib.contextmanager
    def _replica(self, tried: set[str]) -> Iterator[str]:
        with self.pool.lease(tried) as url:
            tried.add(url)
            yield url

    def _failover(self, exc: httpx.HTTPError, url: str, tried: set[str]) -> bool:
        """On a refused connection, cool `url` down; True when another replica is left to try."""
        if not isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
            return False
        self.pool.mark_down(url)
        return len(tried) < len(self.pool.urls)

    def _named(self, exc: httpx.HTTPError, url: str) -> str:
        """Which URL an error names: all replicas when none could be reached, else the one that failed."""
        return self.base_url if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout) else url

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ChatClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _transport_error(exc: httpx.HTTPError, url: str) -> UserFacingError:
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
        return LLMUnavailable(f"cannot reach the LLM at {url}: start one with `ra serve` or pass --llm-url")
    if isinstance(exc, httpx.TimeoutException):
        return LLMError(f"the LLM at {url} did not answer in time: use a smaller model or a larger timeout")
    return LLMError(f"talking to the LLM at {url} failed ({type(exc).__name__}: {exc}): check the server")


def _status_error(resp: httpx.Response, url: str) -> LLMError:
    try:
        data = resp.json()
    except ValueError:
        data = resp.text
    err = data.get("error", data) if isinstance(data, dict) else data
    detail = str(err.get("message", err)) if isinstance(err, dict) else str(err)
    first_line = (detail.strip().splitlines() or [""])[0][:300]
    return LLMError(f"the LLM at {url} answered HTTP {resp.status_code}: {first_line}")


def _raise_embedded_error(data: dict[str, Any], url: str) -> None:
    """Some servers report failures inside a 200 body or an SSE event."""
    if err := data.get("error"):
        msg = err.get("message", str(err)) if isinstance(err, dict) else str(err)
        raise LLMError(f"the LLM at {url} failed: {msg.splitlines()[0][:300] if msg else 'unknown error'}")


def _usage(raw: dict[str, Any] | None) -> dict[str, int]:
    """Token counts of a reply, with the prompt tokens the server took from its KV cache as `cached_tokens`."""
    raw = raw or {}
    cached = (raw.get("prompt_tokens_details") or {}).get("cached_tokens")
    counts = {k: v for k, v in raw.items() if isinstance(v, int)}
    return counts | ({"cached_tokens": cached} if isinstance(cached, int) else {})


def _parse_logprobs(raw: dict[str, Any] | None) -> list[TokenLogprob]:
    return [
        TokenLogprob(
            token=item["token"],
            logprob=float(item["logprob"]),
            top={t["token"]: float(t["logprob"]) for t in item.get("top_logprobs") or []},
        )
        for item in (raw or {}).get("content") or []
    ]
