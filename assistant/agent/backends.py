"""Chat backends behind one small protocol (the factory picks one from the settings).

The agent only needs "complete these messages (optionally under a JSON schema)" and the same as a stream,
so any OpenAI-compatible server (embedded llama.cpp, vLLM, Ollama) and any LangChain chat model fit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from assistant.llm.client import ChatClient, Message, TokenLogprob, response_format

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel
    from langchain_core.messages import BaseMessage


@dataclass(frozen=True, slots=True)
class Completion:
    """A model reply and, where the backend reports them, its token counts (for traces) and the log
    probabilities of its tokens (asked for by the self-check)."""

    text: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int | None = None
    logprobs: list[TokenLogprob] | None = None


class ChatBackend(Protocol):
    """What the agent asks of a model. A backend that cannot enforce `json_schema` may ignore it:
    the agent validates every reply and re-asks on invalid output. A backend without log probabilities
    returns `logprobs=None`, and the self-check signal is then absent. `context_tokens` is the served
    model's context window, which the agent's prompt budget derives from."""

    context_tokens: int

    def complete(
        self,
        messages: Sequence[Message],
        json_schema: dict[str, Any] | None = None,
        *,
        max_tokens: int,
        logprobs: bool = False,
    ) -> Completion: ...


class OpenAIBackend:
    """An OpenAI-compatible server through `ChatClient`; schemas go out as `response_format: json_schema`."""

    streams = True  # `complete` takes `on_text` (the agent streams drafts only through backends that do)

    def __init__(self, client: ChatClient, temperature: float, context_tokens: int) -> None:
        self.client = client
        self.temperature = temperature
        self.context_tokens = context_tokens

    def complete(
        self,
        messages: Sequence[Message],
        json_schema: dict[str, Any] | None = None,
        *,
        max_tokens: int,
        logprobs: bool = False,
        on_text: Callable[[str], None] | None = None,
    ) -> Completion:
        """One reply; with `on_text` it is streamed and each piece is handed over as it arrives."""
        if on_text is not None and not logprobs:
            usage: dict[str, int] = {}
            pieces = []
            for piece in self.client.stream(
                messages,
                json_schema=json_schema,
                max_tokens=max_tokens,
                temperature=self.temperature,
                usage=usage,
            ):
                pieces.append(piece)
                on_text(piece)
            return Completion(
                "".join(pieces),
                usage.get("prompt_tokens"),
                usage.get("completion_tokens"),
                usage.get("cached_tokens"),
            )
        result = self.client.chat(
            messages,
            json_schema=json_schema,
            max_tokens=max_tokens,
            temperature=self.temperature,
            logprobs=logprobs,
            top_logprobs=10 if logprobs else None,
        )
        usage = result.usage
        return Completion(
            result.text,
            usage.get("prompt_tokens"),
            usage.get("completion_tokens"),
            usage.get("cached_tokens"),
            result.logprobs,
        )


class LangChainBackend:
    """Any LangChain `BaseChatModel`. With `structured=True` the schema is bound as an OpenAI
    `response_format` (for ChatOpenAI-like models); otherwise the agent's validation enforces it."""

    def __init__(self, model: BaseChatModel, context_tokens: int, structured: bool = False) -> None:
        self.model = model
        self.context_tokens = context_tokens
        self.structured = structured

    def complete(
        self,
        messages: Sequence[Message],
        json_schema: dict[str, Any] | None = None,
        *,
        max_tokens: int,
        logprobs: bool = False,
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
