"""Speculative decoding only proposes tokens: at temperature 0 the embedded 1.5B must write exactly what it
writes without it, with the packaged 0.5B drafting and with n-gram (prompt lookup) proposals, on real
answer prompts built from a real index. (Its speed is measured by eval.bench.speculative.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.agent.loop import stated_schema
from assistant.llm.client import ChatClient
from assistant.llm.llamacpp import LlamaCppServer
from assistant.settings import load_settings
from eval.bench.speculative import answer_prompts

pytestmark = [pytest.mark.slow, pytest.mark.integration]
pytest.importorskip("xllamacpp")

QUESTIONS = [
    "How many instruction-following demonstrations was Stanford's Alpaca 7B fine-tuned on?",
    "What does the retention mechanism of RetNet replace?",
    "How many frames per second does Fast YOLO process?",
]


def test_draft_and_ngram_speculation_write_exactly_what_plain_decoding_writes(seed_index: Path) -> None:
    settings = load_settings({"index": {"dir": seed_index}})
    prompts = answer_prompts(settings, QUESTIONS)
    schema = stated_schema(range(1, 9))
    outputs: dict[str, list[str]] = {}
    for mode in ("none", "draft", "ngram"):
        llm = settings.llm.model_copy(update={"speculative": mode})
        with (
            LlamaCppServer.for_settings(llm, settings.cache_dir) as server,
            ChatClient(server.base_url, server.model_name, timeout=600.0) as client,
        ):
            outputs[mode] = [client.chat(p, max_tokens=64, json_schema=schema).text for p in prompts]
    assert all(len(text) > 20 for text in outputs["none"])  # real answers, not empty replies
    assert outputs["draft"] == outputs["none"]
    assert outputs["ngram"] == outputs["none"]
