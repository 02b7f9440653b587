"""Batch generation with in-process `vllm.LLM` (evaluation): no HTTP, all prompts scheduled together.

Two halves in one small module:
- `python -m assistant.llm.vllm_batch --model DIR < requests.jsonl > out.jsonl` runs in the vLLM venv.
  It imports only the stdlib and vllm (never the rest of our package, whose dependencies that venv lacks).
  Each request line: {"messages": [...], "json_schema": {...} | null, "max_tokens": int}; each output line:
  {"text": str, "finish_reason": str | null}, in request order.
- `VLLMBatch` runs that subprocess from the main venv and returns the texts.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


def generate(
    model: str, requests: list[dict[str, Any]], max_model_len: int, enforce_eager: bool
) -> list[dict[str, Any]]:
    """In the vLLM venv: one `LLM.chat` call for all requests, each with its own sampling parameters."""
    from vllm import LLM, SamplingParams
    from vllm.sampling_params import StructuredOutputsParams

    llm = LLM(model=model, max_model_len=max_model_len, enforce_eager=enforce_eager)
    params = [
        SamplingParams(
            temperature=float(r.get("temperature", 0.0)),
            max_tokens=int(r.get("max_tokens", 512)),
            structured_outputs=StructuredOutputsParams(json=r["json_schema"])
            if r.get("json_schema")
            else None,
        )
        for r in requests
    ]
    outputs = llm.chat([r["messages"] for r in requests], params, use_tqdm=False)
    return [{"text": o.outputs[0].text, "finish_reason": o.outputs[0].finish_reason} for o in outputs]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="HF folder or hub id")
    ap.add_argument("--max-model-len", type=int, default=4096)
    ap.add_argument("--enforce-eager", action="store_true")
    args = ap.parse_args()
    # vLLM logs to stdout: keep a private copy of it for the results and send everything else to stderr.
    results = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    requests = [json.loads(line) for line in sys.stdin if line.strip()]
    with results:
        for row in generate(args.model, requests, args.max_model_len, args.enforce_eager):
            results.write(json.dumps(row, ensure_ascii=False) + "\n")


class VLLMBatch:
    """From the main venv: `VLLMBatch(hf_dir).run([{"messages": [...], "json_schema": None, ...}])`."""

    def __init__(
        self,
        model: Path | str,
        *,
        python: Path | None = None,
        max_model_len: int = 4096,
        enforce_eager: bool = True,
        timeout: float = 3600.0,
    ) -> None:
        # Imported here, not at the top: in the vLLM venv this module must stay stdlib-only.
        from assistant.llm.vllm_env import vllm_python

        self.python = vllm_python(python)
        self.model, self.max_model_len = str(model), max_model_len
        self.enforce_eager, self.timeout = enforce_eager, timeout

    def command(self) -> list[str]:
        cmd = [str(self.python), "-m", "assistant.llm.vllm_batch", "--model", self.model]
        cmd += ["--max-model-len", str(self.max_model_len)]
        return [*cmd, "--enforce-eager"] if self.enforce_eager else cmd

    def run(self, requests: Sequence[dict[str, Any]]) -> list[str]:
        """Generate one text per request (same order); one engine start-up for the whole batch."""
        from assistant.llm.vllm_env import VLLMStartError, log_tail

        payload = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in requests)
        env = dict(
            os.environ,
            PYTHONPATH=str(REPO),
            VLLM_CPU_KVCACHE_SPACE=os.environ.get("VLLM_CPU_KVCACHE_SPACE", "2"),
        )
        with tempfile.NamedTemporaryFile(prefix="ra-vllm-batch-", suffix=".log", delete=False) as log:
            proc = subprocess.run(
                self.command(),
                input=payload.encode(),
                stdout=subprocess.PIPE,
                stderr=log,
                env=env,
                timeout=self.timeout,
                check=False,
            )
        if proc.returncode != 0:
            raise VLLMStartError(
                f"vLLM batch failed (code {proc.returncode}): {log_tail(Path(log.name), 3)}; log: {log.name}"
            )
        Path(log.name).unlink()
        return [json.loads(line)["text"] for line in proc.stdout.decode().splitlines() if line.strip()]


if __name__ == "__main__":
    main()
