"""vLLM backend: venv lookup, GGUF conversion cache, server command and `ra serve` errors (fast, no vLLM);
then (marker `vllm`) a real vLLM server on the packaged model: models list, JSON schema, streaming, batch."""

from __future__ import annotations

import importlib.util
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from assistant.agent.config import AgentSettings
from assistant.agent.loop import YES_NO_SCHEMA, answer_schema, step_schema
from assistant.cli import serve_cmd
from assistant.llm import vllm_env
from assistant.llm.client import ChatClient
from assistant.llm.models import PACKAGED, ResolvedModel, resolve_model
from assistant.llm.vllm_batch import VLLMBatch
from assistant.llm.vllm_env import MARKER, VLLMServer, VLLMStartError, hf_dir_for, vllm_python
from assistant.settings import load_settings
from index.errors import UserFacingError

DEFAULT_MODEL = "qwen2.5-coder-0.5b"  # the small packaged model: this is about the vLLM path on 2 CPU cores
REACT_SCHEMA = step_schema([])  # search or give_up: the prompts show no passage to read
STEP_INSTRUCTION = {
    "role": "system",
    "content": "Decide the next step. Reply with JSON: thought (one short sentence), action (search with a "
    "query, read with a passage number, or give_up).",
}


def _script(path: Path, body: str) -> Path:
    """A fake `python`: a shell script that receives the same arguments."""
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def _gguf_model(tmp_path: Path, content: bytes = b"GGUF fake") -> ResolvedModel:
    gguf = tmp_path / "tiny.gguf"
    gguf.write_bytes(content)
    return ResolvedModel(name="tiny", gguf_path=gguf, hf_dir=None, hf_id=None, source="path")


# --- venv lookup -----------------------------------------------------------------------------------------


def test_missing_configured_python_says_how_to_install(tmp_path: Path) -> None:
    with pytest.raises(UserFacingError, match=r"vLLM is not installed: run scripts/install-vllm\.sh"):
        vllm_python(tmp_path / "nope" / "python")


def test_default_python_is_the_repo_venv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vllm_env, "REPO", tmp_path)
    with pytest.raises(UserFacingError, match=r"\.venv-vllm/bin/python"):
        vllm_python(None)
    (tmp_path / ".venv-vllm" / "bin").mkdir(parents=True)
    python = _script(tmp_path / ".venv-vllm" / "bin" / "python", "")
    assert vllm_python(None) == python


def test_settings_env_variable_reaches_vllm_python(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    python = _script(tmp_path / "python", "")
    monkeypatch.setenv("RA_LLM__VLLM_PYTHON", str(python))
    assert vllm_python(load_settings().llm.vllm_python) == python


# --- conversion cache ------------------------------------------------------------------------------------


def test_hf_folders_and_hub_ids_pass_through(tmp_path: Path) -> None:
    folder = ResolvedModel(name="m", gguf_path=None, hf_dir=tmp_path, hf_id=None, source="path")
    hub = ResolvedModel(name="org/m", gguf_path=None, hf_dir=None, hf_id="org/m", source="hub")
    missing_python = tmp_path / "no-python"  # proves nothing is run
    assert hf_dir_for(folder, tmp_path, missing_python) == tmp_path
    assert hf_dir_for(hub, tmp_path, missing_python) == "org/m"


def test_gguf_is_converted_once_into_the_cache(tmp_path: Path) -> None:
    model = _gguf_model(tmp_path)
    calls = tmp_path / "calls"
    # argv: script --gguf F --out DIR
    python = _script(
        tmp_path / "python", f'echo run >> {calls}; mkdir -p "$5"; echo "{{}}" > "$5/config.json"'
    )
    cache = tmp_path / "cache"

    target = hf_dir_for(model, cache, python)
    assert target == cache / "models" / "tiny-hf"
    assert (target / "config.json").is_file() and (target / MARKER).read_text()
    assert hf_dir_for(model, cache, python) == target
    assert calls.read_text().splitlines() == ["run"]
    assert sorted(p.name for p in (cache / "models").iterdir()) == ["tiny-hf"]  # no temp leftovers

    model.gguf_path.write_bytes(b"GGUF another model")  # type: ignore[union-attr]
    hf_dir_for(model, cache, python)
    assert calls.read_text().splitlines() == ["run", "run"]


def test_failed_conversion_reports_the_cause_and_leaves_no_folder(tmp_path: Path) -> None:
    python = _script(tmp_path / "python", "echo 'ModuleNotFoundError: No module named gguf' >&2; exit 1")
    cache = tmp_path / "cache"
    with pytest.raises(UserFacingError) as err:
        hf_dir_for(_gguf_model(tmp_path), cache, python)
    message = str(err.value)
    assert "No module named gguf" in message and "install-vllm.sh" in message and "\n" not in message
    assert not (cache / "models" / "tiny-hf").exists()
    assert not [p for p in (cache / "models").iterdir() if p.is_dir()]


# --- server and batch command lines ----------------------------------------------------------------------


def test_server_command_serves_the_folder_under_its_name(tmp_path: Path) -> None:
    server = VLLMServer(tmp_path / "python", tmp_path / "hf", "qwen", port=8123, max_model_len=2048)
    cmd = server.command()
    assert cmd[:3] == [str(tmp_path / "python"), "-m", "vllm.entrypoints.openai.api_server"]
    args = dict(zip(cmd[3::2], cmd[4::2], strict=False))
    assert args["--model"] == str(tmp_path / "hf") and args["--served-model-name"] == "qwen"
    assert (args["--host"], args["--port"], args["--max-model-len"]) == ("127.0.0.1", "8123", "2048")
    assert "--enable-prefix-caching" in cmd and "--enforce-eager" not in cmd
    assert server.base_url == "http://127.0.0.1:8123/v1"
    assert "--enforce-eager" in VLLMServer(tmp_path, "m", "m", enforce_eager=True).command()


def test_server_environment_sizes_the_cpu_kv_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VLLM_CPU_KVCACHE_SPACE", raising=False)
    assert VLLMServer(tmp_path, "m", "m", kv_cache_gib=3).environment()["VLLM_CPU_KVCACHE_SPACE"] == "3"
    monkeypatch.setenv("VLLM_CPU_KVCACHE_SPACE", "7")  # the user's choice wins
    assert VLLMServer(tmp_path, "m", "m").environment()["VLLM_CPU_KVCACHE_SPACE"] == "7"


def test_server_that_dies_at_start_up_fails_with_its_log(tmp_path: Path) -> None:
    python = _script(tmp_path / "python", "echo 'ValueError: bad model folder'; exit 3")
    server = VLLMServer(python, tmp_path, "m", log_path=tmp_path / "vllm.log", startup_timeout=30)
    with pytest.raises(VLLMStartError) as err:
        server.start()
    message = str(err.value)
    assert "exited during start-up (code 3)" in message and "bad model folder" in message
    assert str(tmp_path / "vllm.log") in message and "\n" not in message and not server.running


def test_batch_command_runs_the_module_in_the_vllm_venv(tmp_path: Path) -> None:
    python = _script(tmp_path / "python", "")
    cmd = VLLMBatch(tmp_path / "hf", python=python, max_model_len=1024).command()
    assert cmd[:3] == [str(python), "-m", "assistant.llm.vllm_batch"]
    assert cmd[cmd.index("--model") + 1] == str(tmp_path / "hf") and "--enforce-eager" in cmd


def test_failing_batch_reports_its_log(tmp_path: Path) -> None:
    python = _script(tmp_path / "python", "cat > /dev/null; echo 'RuntimeError: engine died' >&2; exit 1")
    with pytest.raises(VLLMStartError, match="engine died"):
        VLLMBatch("m", python=python).run([{"messages": [{"role": "user", "content": "hi"}]}])


# --- ra serve --------------------------------------------------------------------------------------------


def _ra_serve(*args: str) -> tuple[int, str]:
    app = typer.Typer()
    serve_cmd.register(app)
    app.command("noop")(lambda: None)  # keeps `serve` a named sub-command
    result = CliRunner().invoke(app, ["serve", *args])
    return result.exit_code, result.output


def test_serve_without_vllm_fails_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RA_LLM__VLLM_PYTHON", str(tmp_path / "missing-python"))
    code, output = _ra_serve("--model", str(_gguf_model(tmp_path).gguf_path))
    assert code == 1
    assert "vLLM is not installed" in output and len(output.strip().splitlines()) == 1


def test_serve_with_an_unknown_model_fails_in_one_line(tmp_path: Path) -> None:
    code, output = _ra_serve("--backend", "llamacpp", "--model", str(tmp_path / "nope.gguf"))
    assert code == 1 and "model file not found" in output


# --- real vLLM (its own venv) ----------------------------------------------------------------------------


def _require_vllm() -> Path:
    try:
        return vllm_python(load_settings().llm.vllm_python)
    except UserFacingError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{exc} (CI must run scripts/install-vllm.sh first)")
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def vllm_model() -> tuple[Path, Path]:
    """(vLLM python, HF folder of the packaged default model), converted once into the user cache."""
    python = _require_vllm()
    if importlib.util.find_spec(PACKAGED[DEFAULT_MODEL].parts[0][0]) is None:
        pytest.skip(f"packaged model not installed: {PACKAGED[DEFAULT_MODEL].install}")
    settings = load_settings()
    folder = hf_dir_for(resolve_model(DEFAULT_MODEL, settings.cache_dir), settings.cache_dir, python)
    assert isinstance(folder, Path) and (folder / "config.json").is_file()
    return python, folder


@pytest.fixture(scope="session")
def vllm_server(vllm_model: tuple[Path, Path]) -> Iterator[VLLMServer]:
    python, folder = vllm_model
    with VLLMServer(python, folder, DEFAULT_MODEL, max_model_len=2048, enforce_eager=True) as server:
        yield server
    assert not server.running


@pytest.mark.vllm
@pytest.mark.slow
def test_server_lists_the_served_name(vllm_server: VLLMServer) -> None:
    assert ChatClient(vllm_server.base_url).list_models() == [DEFAULT_MODEL]


@pytest.mark.vllm
@pytest.mark.slow
def test_every_agent_schema_is_enforced_by_xgrammar(vllm_server: VLLMServer) -> None:
    """The plan, part answer (stated, or computed under the expression grammar), self-check and research
    step schemas (anyOf, enums of integers and strings, patterns, nested objects) all come back as valid
    JSON through vLLM's structured outputs, within the agent's own token caps (compact JSON: with any
    whitespace allowed the 0.5B wrote spaces after a closed string until its cap)."""
    import jsonschema

    from assistant.agent.plan import PlanRequest, plan_request

    cfg = AgentSettings()
    plan = plan_request("How many frames per second does Fast YOLO run at, and which is faster, YOLO or SSD?")
    assert isinstance(plan, PlanRequest)
    passages = "[3] Fast YOLO runs at 155 fps.\n[5] YOLO runs at 45 fps.\n"
    numbers = [
        {
            "role": "user",
            "content": f"{passages}n1 = 155, n2 = 45\nHow many times faster is Fast YOLO? Compute it.",
        }
    ]
    research = [STEP_INSTRUCTION, {"role": "user", "content": f"{passages}Who proposed the transformer?"}]
    cases = [
        (plan.messages, plan.schema, cfg.plan_max_tokens),
        (research, step_schema([3, 5]), cfg.step_max_tokens),
        (numbers, answer_schema([3, 5], ["n1", "n2"]), cfg.part_max_tokens),
        (
            [*numbers, {"role": "user", "content": "Is that stated? yes or no"}],
            YES_NO_SCHEMA,
            cfg.check_max_tokens,
        ),
    ]
    with ChatClient(vllm_server.base_url, DEFAULT_MODEL) as client:
        for messages, schema, cap in cases:
            jsonschema.validate(
                json.loads(client.chat(messages, json_schema=schema, max_tokens=cap).text), schema
            )


@pytest.mark.vllm
@pytest.mark.slow
def test_streaming_yields_several_deltas(vllm_server: VLLMServer) -> None:
    with ChatClient(vllm_server.base_url, DEFAULT_MODEL) as client:
        deltas = list(client.stream([{"role": "user", "content": "Name three colours."}], max_tokens=24))
    assert len(deltas) > 1 and "".join(deltas).strip()


@pytest.mark.vllm
@pytest.mark.slow
def test_batch_answers_every_prompt_in_order(vllm_model: tuple[Path, Path]) -> None:
    python, folder = vllm_model
    questions = ["What is 2 + 2?", "Name a colour.", "Who proposed the transformer architecture?"]
    # A step instruction and the agent's step budget: without them the 0.5B model's thought can outrun
    # the token limit, and a cut-off JSON string says nothing about batching.
    requests = [
        {
            "messages": [STEP_INSTRUCTION, {"role": "user", "content": q}],
            "json_schema": REACT_SCHEMA,
            "max_tokens": AgentSettings().step_max_tokens,
        }
        for q in questions
    ]
    requests[1] |= {
        "messages": [{"role": "user", "content": questions[1]}],
        "json_schema": None,
        "max_tokens": 16,
    }
    texts = VLLMBatch(folder, python=python, max_model_len=2048).run(requests)
    assert len(texts) == 3 and texts[1].strip()
    for text in (texts[0], texts[2]):
        assert json.loads(text)["action"] in ("search", "read", "give_up")


@pytest.mark.vllm
@pytest.mark.slow
def test_ra_ask_against_the_vllm_server_answers_a_two_part_question_with_both_parts_cited(
    vllm_server: VLLMServer, seed_index: Path
) -> None:
    """The production path end to end: a multi-part `ra ask --llm-url` on a vLLM server, every schema
    through xgrammar, the prompt budget taken from the server's max_model_len (2048 here), citations that
    resolve to exact spans of the indexed documents."""
    import subprocess
    import sys

    from assistant.index_access import open_index

    # Two fact parts: asked "how many", the 0.5B (greedy, compact JSON) writes a computation over
    # unrelated numbers that code refuses, where the 1.5B states the number; this test is the vLLM path.
    question = (
        "Which guidance did GLIDE's human evaluators prefer, and what was Stanford's Alpaca 7B fine-tuned on?"
    )
    # the default checker: the 0.5B's self-check said "no" to its right sentences (P(yes) 0.29)
    env = dict(os.environ)
    cmd = [sys.executable, "-m", "assistant", "ask", question, "--index", str(seed_index)]
    run = subprocess.run(
        [*cmd, "--llm-url", vllm_server.base_url, "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    answer = json.loads(run.stdout)
    assert len(answer["plan"]["parts"]) == 2 and not answer["abstained"]
    answer_steps = [s for s in answer["steps"] if s["action"] == "answer"]
    assert {s["part"] for s in answer_steps} == {1, 2}  # each part was answered from its own evidence
    model_steps = [s for s in answer["steps"] if s["action"] in ("answer", "think", "plan", "operands")]
    assert model_steps and all(isinstance(json.loads(s["raw"]), dict) for s in model_steps)  # xgrammar JSON
    # the 0.5B (bf16 on vLLM) answers the Alpaca part
    alpaca = answer["parts"][1]
    [sentence] = alpaca["sentences"]
    assert alpaca["status"] == "answered" and "52K" in sentence["text"] and sentence["citations"]
    index = open_index(load_settings({"index": {"dir": seed_index}}))
    for c in answer["citations"]:
        assert index.document_text(c["source"])[c["start"] : c["end"]] == c["quote"]
