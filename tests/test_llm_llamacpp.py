"""The embedded llama.cpp server: start-up failures, and (slow) the real packaged model end to end."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from assistant.llm.client import ChatClient
from assistant.llm.llamacpp import LlamaCppServer, LLMStartError
from assistant.llm.models import DEFAULT_MODEL, PACKAGED, ResolvedModel, resolve_model
from assistant.settings import load_settings
from index.errors import UserFacingError

REACT_SCHEMA = {
    "type": "object",
    "properties": {
        "thought": {"type": "string"},
        "action": {"type": "string", "enum": ["search", "finish"]},
        "input": {"type": "string"},
    },
    "required": ["thought", "action", "input"],
    "additionalProperties": False,
}


def _gguf(path: Path, name: str = "m") -> ResolvedModel:
    return ResolvedModel(name=name, gguf_path=path, hf_dir=None, hf_id=None, source="path")


def test_hugging_face_folder_is_refused(tmp_path: Path) -> None:
    folder = ResolvedModel(name="hf", gguf_path=None, hf_dir=tmp_path, hf_id=None, source="path")
    with pytest.raises(UserFacingError, match=r"needs a \.gguf"):
        LlamaCppServer(folder)


def test_command_serves_the_model_under_its_name(tmp_path: Path) -> None:
    cmd = LlamaCppServer(_gguf(tmp_path / "x.gguf", "qwen"), port=0, n_ctx=2048, threads=3).command()
    args = dict(zip(cmd[3::2], cmd[4::2], strict=False))
    assert cmd[1:3] == ["-m", "assistant.llm.llamacpp_serve"]
    assert args["--gguf"] == str(tmp_path / "x.gguf") and args["--name"] == "qwen"
    assert (args["--host"], args["--ctx"], args["--threads"]) == ("127.0.0.1", "2048", "3")


@pytest.mark.integration
def test_a_broken_model_file_fails_with_the_log_path(tmp_path: Path) -> None:
    pytest.importorskip("xllamacpp")
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"not a gguf at all")
    server = LlamaCppServer(_gguf(bad), log_path=tmp_path / "server.log", startup_timeout=60)

    with pytest.raises(LLMStartError) as err:
        server.start()
    assert "exited during start-up" in str(err.value) and str(tmp_path / "server.log") in str(err.value)
    assert "\n" not in str(err.value) and not server.running


def _packaged_default() -> ResolvedModel:
    pytest.importorskip("xllamacpp")
    if importlib.util.find_spec(PACKAGED[DEFAULT_MODEL].parts[0][0]) is None:
        pytest.skip(f"packaged model not installed: {PACKAGED[DEFAULT_MODEL].install}")
    # The shared user cache: assembling 470 MB once per machine, not per test run.
    return resolve_model(DEFAULT_MODEL, load_settings().cache_dir)


@pytest.mark.slow
@pytest.mark.integration
def test_packaged_model_streams_and_follows_a_json_schema() -> None:
    model = _packaged_default()
    assert model.gguf_path is not None and model.gguf_path.stat().st_size == PACKAGED[DEFAULT_MODEL].size

    with LlamaCppServer(model, n_ctx=4096) as server:
        client = ChatClient(server.base_url)
        assert client.list_models() == [DEFAULT_MODEL]

        deltas = list(client.stream([{"role": "user", "content": "Name three colours."}], max_tokens=24))
        assert len(deltas) > 1 and "".join(deltas).strip()

        messages = [
            {"role": "system", "content": "Decide the next step. Reply with JSON: thought, action, input."},
            {"role": "user", "content": "Who proposed the transformer architecture?"},
        ]
        result = client.chat(messages, json_schema=REACT_SCHEMA, max_tokens=120)
        step = json.loads(result.text)
        assert set(step) == {"thought", "action", "input"}
        assert step["action"] in ("search", "finish")
        assert isinstance(step["thought"], str) and isinstance(step["input"], str)

        judged = client.chat(
            [{"role": "user", "content": "Is Paris in France? Answer yes or no."}],
            max_tokens=1,
            logprobs=True,
            top_logprobs=5,
        )
        assert judged.logprobs and judged.logprobs[0].top
        assert all(lp <= 0.0 for lp in judged.logprobs[0].top.values())
        url = server.base_url

    assert not server.running
    assert ChatClient(url).health() is False
