"""Batch generation with in-process `vllm.LLM` (evaluation): no HTTP, all prompts scheduled together.

Two halves in one small module:
- `python -m assistant.llm.vllm_batch --model DIR < requests.jsonl > out.jsonl` runs in the vLLM venv.
  It imports only the stdlib and vllm (never the rest of our package, whose dependencies that venv lacks).
  Each request line: {"messages": [...], "json_schema": {...} | null, "max_tokens": int}; each output line:
  {"text": str, "finish_reason": str | null}, in request order.
- `VLLMBatch` runs that subprocess from the main venv and returns the texts.
- `--session` keeps one engine for many batches (`VLLMBatchSession`): each stdin line is a JSON list of
  requests, answered by one stdout line, the JSON list of outputs. Batches whose prompts depend on earlier
  outputs (agents asking step after step) need this: an engine start costs minutes on a CPU.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

REPO = Path(__file__).resolve().parents[2]
# Compact JSON only: with xgrammar's default "any whitespace" the 0.5B model, once a string is closed,
# can write spaces and newlines until its token limit instead of the next key (the whole reply is then
# lost). The engine-wide setting is the only one xgrammar reads (vLLM 0.32); the server takes the same.
STRUCTURED_OUTPUTS = {"backend": "xgrammar", "disable_any_whitespace": True}


def generate(
    model: str, requests: list[dict[str, Any]], max_model_len: int, enforce_eager: bool
) -> list[dict[str, Any]]:
    """In the vLLM venv: one `LLM.chat` call for all requests, each with its own sampling parameters."""
    return generate_with(load(model, max_model_len, enforce_eager), requests)


def load(model: str, max_model_len: int, enforce_eager: bool) -> Any:
    from vllm import LLM

    return LLM(
        model=model,
        max_model_len=max_model_len,
        enforce_eager=enforce_eager,
        structured_outputs_config=STRUCTURED_OUTPUTS,
    )


def generate_with(llm: Any, requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from vllm import SamplingParams
    from vllm.sampling_params import StructuredOutputsParams

    params = [
        SamplingParams(
            temperature=float(r.get("temperature", 0.0)),
            max_tokens=int(r["max_tokens"]),
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
    ap.add_argument("--max-model-len", type=int, required=True)
    ap.add_argument("--enforce-eager", action="store_true")
    ap.add_argument("--session", action="store_true", help="one batch (a JSON list) per stdin line")
    args = ap.parse_args()
    # vLLM logs to stdout: keep a private copy of it for the results and send everything else to stderr.
    results = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    if args.session:
        with results:
            serve_batches(load(args.model, args.max_model_len, args.enforce_eager), sys.stdin, results)
        return
    requests = [json.loads(line) for line in sys.stdin if line.strip()]
    with results:
        for row in generate(args.model, requests, args.max_model_len, args.enforce_eager):
            results.write(json.dumps(row, ensure_ascii=False) + "\n")


def serve_batches(llm: Any, lines: IO[str], results: IO[str]) -> None:
    """Answer each line (a JSON list of requests) with one line (the JSON list of outputs) until EOF."""
    for line in lines:
        if line.strip():
            results.write(json.dumps(generate_with(llm, json.loads(line)), ensure_ascii=False) + "\n")
            results.flush()


class VLLMBatch:
    """From the main venv: `VLLMBatch(hf_dir).run([{"messages": [...], "json_schema": None, ...}])`."""

    def __init__(
        self,
        model: Path | str,
        *,
        python: Path | None = None,
        max_model_len: int | None = None,  # None: the settings' default
        enforce_eager: bool = True,
        timeout: float = 3600.0,
    ) -> None:
        # Imported here, not at the top: in the vLLM venv this module must stay stdlib-only.
        from assistant.llm.vllm_env import vllm_python
        from assistant.settings import DEFAULT_MAX_MODEL_LEN

        self.python = vllm_python(python)
        self.model, self.max_model_len = str(model), max_model_len or DEFAULT_MAX_MODEL_LEN
        self.enforce_eager, self.timeout = enforce_eager, timeout

    def command(self) -> list[str]:
        cmd = [str(self.python), "-m", "assistant.llm.vllm_batch", "--model", self.model]
        cmd += ["--max-model-len", str(self.max_model_len)]
        return [*cmd, "--enforce-eager"] if self.enforce_eager else cmd

    def environment(self) -> dict[str, str]:
        kv_cache = os.environ.get("VLLM_CPU_KVCACHE_SPACE", "2")
        return dict(os.environ, PYTHONPATH=str(REPO), VLLM_CPU_KVCACHE_SPACE=kv_cache)

    def run(self, requests: Sequence[dict[str, Any]]) -> list[str]:
        """Generate one text per request (same order); one engine start-up for the whole batch."""
        from assistant.llm.vllm_env import VLLMStartError, log_tail

        payload = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in requests)
        with tempfile.NamedTemporaryFile(prefix="ra-vllm-batch-", suffix=".log", delete=False) as log:
            proc = subprocess.run(
                self.command(),
                input=payload.encode(),
                stdout=subprocess.PIPE,
                stderr=log,
                env=self.environment(),
                timeout=self.timeout,
                check=False,
            )
        if proc.returncode != 0:
            raise VLLMStartError(
                f"vLLM batch failed (code {proc.returncode}): {log_tail(Path(log.name), 3)}; log: {log.name}"
            )
        Path(log.name).unlink()
        return [json.loads(line)["text"] for line in proc.stdout.decode().splitlines() if line.strip()]


class VLLMBatchSession(VLLMBatch):
    """One engine for many batches: `with VLLMBatchSession(hf_dir) as s: s.run(batch1); s.run(batch2)`.

    `run` may be called from one thread at a time; the worker answers batches in order.
    """

    _proc: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        return [*super().command(), "--session"]

    def __enter__(self) -> VLLMBatchSession:
        from assistant.llm.vllm_env import _die_with_parent

        self._log = tempfile.NamedTemporaryFile(prefix="ra-vllm-session-", suffix=".log", delete=False)
        self._proc = subprocess.Popen(
            self.command(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            env=self.environment(),
            start_new_session=True,  # its own group: Ctrl-C reaches us, and we stop the engine with it
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
        return self

    def run(self, requests: Sequence[dict[str, Any]]) -> list[str]:
        """One batch through the running engine: the texts, in request order."""
        from assistant.llm.vllm_env import VLLMStartError, log_tail

        proc = self._proc
        if proc is None or proc.stdin is None or proc.stdout is None:
            raise RuntimeError("VLLMBatchSession.run outside its `with` block")
        try:
            proc.stdin.write((json.dumps(list(requests), ensure_ascii=False) + "\n").encode())
            proc.stdin.flush()
            line = proc.stdout.readline()
        except (BrokenPipeError, ValueError):
            line = b""
        if not line:
            code = proc.poll()
            raise VLLMStartError(
                f"vLLM batch worker stopped (code {code}): {log_tail(Path(self._log.name), 3)}; "
                f"log: {self._log.name}"
            )
        return [row["text"] for row in json.loads(line)]

    def __exit__(self, *exc: object) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.stdin is not None:
                with contextlib.suppress(BrokenPipeError):
                    proc.stdin.close()
            # EOF ends the worker after its current batch; one that lingers (or hangs) loses its group.
            for sig, wait in ((None, 30.0), (signal.SIGTERM, 10.0), (signal.SIGKILL, None)):
                if sig is not None:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, sig)
                try:
                    proc.wait(timeout=wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
            if proc.stdout is not None:
                proc.stdout.close()
        self._log.close()
        if proc is not None and proc.returncode == 0:
            Path(self._log.name).unlink(missing_ok=True)


if __name__ == "__main__":
    main()
