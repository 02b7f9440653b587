"""`ra serve`'s multi-GPU options reach vLLM's command line; defaults leave it as on one device."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from assistant.llm.vllm_env import VLLMServer
from assistant.settings import VLLMParallel, load_settings


def test_parallel_settings_become_vllm_flags(tmp_path: Path) -> None:
    assert VLLMParallel().flags() == []
    parallel = VLLMParallel(tensor=4, pipeline=2, data=1, executor="ray")
    assert parallel.flags() == [
        "--tensor-parallel-size",
        "4",
        "--pipeline-parallel-size",
        "2",
        "--distributed-executor-backend",
        "ray",
    ]
    cmd = VLLMServer(tmp_path, "m", "m", host="0.0.0.0", extra_args=parallel.flags()).command()
    assert cmd[cmd.index("--host") + 1] == "0.0.0.0" and cmd[-6:] == parallel.flags()


def test_parallel_settings_come_from_the_environment(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("RA_LLM__PARALLEL__DATA", "2")
    monkeypatch.setenv("RA_LLM__URL", "http://gpu1:8000/v1,http://gpu2:8000/v1")
    llm = load_settings().llm
    assert llm.parallel.flags() == ["--data-parallel-size", "2"]
    assert llm.url == "http://gpu1:8000/v1,http://gpu2:8000/v1"


def test_llamacpp_refuses_vllm_parallel_options(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "assistant", "serve", "--backend", "llamacpp", "--tensor-parallel", "2"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert result.returncode == 2 and "vLLM options" in result.stderr and "Traceback" not in result.stderr
