"""Batching across questions for in-process vLLM: agents run in threads and their model calls go together.

Why: `vllm.LLM` is fast when it schedules many prompts at once, but one agent asks one thing at a time (each
step depends on the last observation). Running N questions in N threads and collecting their pending calls
into one `generate` gives batches up to N wide without changing the agent. The engine stays loaded between
batches in one worker process (`VLLMBatchSession`): starting it per call would cost minutes each time.

A batch is sent when it is full (`max_batch` callers waiting) or when no new call arrived for `linger_s`
(the other agents are busy in a tool or done); time-to-first-token in this mode measures batch turnaround.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from assistant.agent.backends import Completion
from assistant.llm.client import Message

if TYPE_CHECKING:
    from assistant.settings import Settings

Generate = Callable[[list[dict[str, Any]]], list[str]]


class BatcherClosed(RuntimeError):
    """A call was still waiting when the batcher stopped (the run was interrupted or failed)."""


class Batcher:
    """Collects `submit` calls from many threads and answers them with one `generate` call per batch."""

    def __init__(self, generate: Generate, max_batch: int, linger_s: float = 0.25) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self.generate, self.max_batch, self.linger_s = generate, max_batch, linger_s
        self.sizes: list[int] = []  # size of every batch sent, for reports and tests
        self._pending: list[tuple[dict[str, Any], Future[str]]] = []
        self._last_arrival = 0.0
        self._closed = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._loop, name="ra-batcher", daemon=True)

    def __enter__(self) -> Batcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def submit(self, request: dict[str, Any]) -> str:
        """Queue one request and block until its batch has been generated."""
        future: Future[str] = Future()
        with self._cond:
            if self._closed:
                raise BatcherClosed("the batch generator has stopped")
            self._pending.append((request, future))
            self._last_arrival = time.monotonic()
            self._cond.notify_all()
        return future.result()

    def close(self) -> None:
        """Stop: waiting callers get BatcherClosed; a batch being generated is left to its generator."""
        with self._cond:
            self._closed = True
            for _, future in self._pending:
                future.set_exception(BatcherClosed("the batch generator has stopped"))
            self._pending.clear()
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout=1.0)

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                # Wait for more callers until the batch is full or nobody has come for linger_s.
                while len(self._pending) < self.max_batch and not self._closed:
                    remaining = self._last_arrival + self.linger_s - time.monotonic()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
                if self._closed:
                    return
                batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
            self._send(batch)

    def _send(self, batch: list[tuple[dict[str, Any], Future[str]]]) -> None:
        try:
            texts = self.generate([request for request, _ in batch])
            if len(texts) != len(batch):
                raise RuntimeError(f"the generator returned {len(texts)} texts for {len(batch)} requests")
        except BaseException as exc:  # every waiting agent must hear of it, whatever it is
            for _, future in batch:
                future.set_exception(exc)
            return
        self.sizes.append(len(batch))
        for (_, future), text in zip(batch, texts, strict=True):
            future.set_result(text)


class BatchingBackend:
    """A `ChatBackend` whose calls go through a `Batcher` (one per agent thread is not needed: share it)."""

    def __init__(self, batcher: Batcher, temperature: float, context_tokens: int) -> None:
        self.batcher = batcher
        self.temperature = temperature
        self.context_tokens = context_tokens

    def complete(
        self,
        messages: Sequence[Message],
        json_schema: dict[str, Any] | None = None,
        *,
        max_tokens: int,
        logprobs: bool = False,
    ) -> Completion:
        """The batched reply; without log probabilities (the self-check signal is then absent)."""
        request = {
            "messages": list(messages),
            "json_schema": json_schema,
            "max_tokens": max_tokens,
            "temperature": self.temperature,
        }
        return Completion(self.batcher.submit(request))


@contextmanager
def open_vllm_batch(settings: Settings, width: int) -> Iterator[BatchingBackend]:
    """The settings' model in an in-process vLLM engine (the vLLM venv), batching up to `width` calls."""
    from assistant.llm.models import resolve_model
    from assistant.llm.vllm_batch import VLLMBatchSession
    from assistant.llm.vllm_env import hf_dir_for, vllm_python

    llm = settings.llm
    python = vllm_python(llm.vllm_python)  # fails first, with how to install, when vLLM is missing
    resolved = resolve_model(llm.model, settings.cache_dir, llm.allow_download)
    source = hf_dir_for(resolved, settings.cache_dir, python)
    session = VLLMBatchSession(source, python=python, max_model_len=llm.max_model_len)
    with session, Batcher(session.run, width) as batcher:
        yield BatchingBackend(batcher, llm.temperature, llm.max_model_len)
