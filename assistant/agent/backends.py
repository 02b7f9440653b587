"""Chat backends behind one small protocol, and the choice of backend from the settings.

The agent only needs "complete these messages (optionally under a JSON schema)" and the same as a stream,
so any OpenAI-compatible server (embedded llama.cpp, vLLM, Ollama) and any LangChain chat model fit.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from assistant.llm.client import ChatClient, Message, response_format

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel
    from langchain_core.messages import BaseMessage

    from assistant.settings import Settings


@dataclass(frozen=True, slots=True)
class Completion:
    """A model reply and, where the backend reports them, its token counts (for traces)."""

    text: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


class ChatBackend(Protocol):
    """What the agent asks of a model. A backend that cannot enforce `json_schema` may ignore it:
    the agent validates every reply and re-asks on invalid output. `context_tokens` is the served
    model's context window, which the agent's prompt budget derives from."""

    context_tokens: int

    def complete(
        self, messages: Sequence[Message], json_schema: dict[str, Any] | None = None, *, max_tokens: int
    ) -> Completion: ...


class OpenAIBackend:
    """An OpenAI-compatible server through `ChatClient`; schemas go out as `response_format: json_schema`."""

    def __init__(self, client: ChatClient, temperature: float, context_tokens: int) -> None:
        self.client = client
        self.temperature = temperature
        self.context_tokens = context_tokens

    def complete(
        self, messages: Sequence[Message], json_schema: dict[str, Any] | None = None, *, max_tokens: int
    ) -> Completion:
        result = self.client.chat(
            messages, json_schema=json_schema, max_tokens=max_tokens, temperature=self.temperature
        )
        usage = result.usage
        return Completion(result.text, usage.get("prompt_tokens"), usage.get("completion_tokens"))


class LangChainBackend:
    """Any LangChain `BaseChatModel`. With `structured=True` the schema is bound as an OpenAI
    `response_format` (for ChatOpenAI-like models); otherwise the agent's validation enforces it."""

    def __init__(self, model: BaseChatModel, context_tokens: int, structured: bool = False) -> None:
        self.model = model
        self.context_tokens = context_tokens
        self.structured = structured

    def complete(
        self, messages: Sequence[Message], json_schema: dict[str, Any] | None = None, *, max_tokens: int
    ) -> Completion:
        runnable: Any = self.model
        if self.structured and json_schema is not None:
            runnable = self.model.bind(response_format=response_format(json_schema), max_tokens=max_tokens)
        reply = runnable.invoke(to_langchain(messages))
        usage = getattr(reply, "usage_metadata", None) or {}
        return Completion(_content_text(reply.content), usage.get("input_tokens"), usage.get("output_tokens"))


def to_langchain(messages: Sequence[Message]) -> list[BaseMessage]:
    from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

    kinds = {"system": SystemMessage, "user": HumanMessage, "assistant": AIMessage}
    return [kinds[m["role"]](content=m["content"]) for m in messages]


def _content_text(content: Any) -> str:
    """LangChain content is a string or a list of blocks; keep the text."""
    if isinstance(content, str):
        return content
    return "".join(b if isinstance(b, str) else str(b.get("text", "")) for b in content)


@contextmanager
def open_backend(settings: Settings) -> Iterator[OpenAIBackend]:
    """The backend the settings name: `llm.url` when set, else the embedded llama.cpp server with
    `llm.model`, started here and stopped when the block ends."""
    llm = settings.llm
    if llm.url:
        with ChatClient(
            llm.url, timeout=llm.timeout_s, first_token_timeout=llm.first_token_timeout_s, api_key=llm.api_key
        ) as client:
            yield OpenAIBackend(client, llm.temperature, client.context_tokens(default=llm.context_size))
        return
    from assistant.llm.llamacpp import LlamaCppServer
    from assistant.llm.models import resolve_model

    resolved = resolve_model(llm.model, settings.cache_dir, llm.allow_download)
    with (
        LlamaCppServer(resolved, n_ctx=llm.context_size) as server,
        ChatClient(
            server.base_url,
            server.model_name,
            timeout=llm.timeout_s,
            first_token_timeout=llm.first_token_timeout_s,
        ) as client,
    ):
        yield OpenAIBackend(client, llm.temperature, llm.context_size)
