"""The embedded offline LLM: llama.cpp's OpenAI-compatible server (via xllamacpp) in a child process.

Why a subprocess rather than `xllamacpp.Server` in-process: a native crash or an out-of-memory kill then
takes down only the server, not the CLI/UI that started it; the model's ~0.5-1 GB and its threads are freed
for sure on `stop()`; and the same entry point (`python -m assistant.llm.llamacpp_serve`) serves in the
foreground for `ra serve`, so the CLI and the UI can share one loaded model by URL. The cost is one
Python start-up (~0.1 s) next to a multi-second model load.

Every backend is then reached the same way: `ChatClient(server.base_url)`.
"""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.llm.client import ChatClient
from assistant.llm.llamacpp_serve import DEFAULT_CTX, cpu_threads
from assistant.llm.models import ResolvedModel
from assistant.llm.server import ManagedServer
from index.errors import UserFacingError

if TYPE_CHECKING:
    from assistant.settings import LLMSettings


class LLMStartError(UserFacingError):
    """The embedded server did not come up; the message names its log."""


class LlamaCppServer(ManagedServer):
    """Start with `with LlamaCppServer(model) as srv: ChatClient(srv.base_url, srv.model_name)`."""

    def __init__(
        self,
        model: ResolvedModel,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        n_ctx: int = DEFAULT_CTX,
        threads: int | None = None,
        startup_timeout: float = 300.0,
        log_path: Path | None = None,
        slots: int = 1,
        speculative: str = "none",
        draft: ResolvedModel | None = None,
    ) -> None:
        if model.gguf_path is None and model.hf_id is None:
            raise UserFacingError(f"model {model.name} is a Hugging Face folder: llama.cpp needs a .gguf")
        self.model = model
        self.host, self.port, self.n_ctx = host, port, n_ctx
        self.threads = threads or cpu_threads()
        self.startup_timeout = startup_timeout
        self.log_path = log_path
        self.slots, self.speculative, self.draft = slots, speculative, draft
        if speculative == "draft" and (draft is None or draft.gguf_path is None):
            raise UserFacingError(
                "llm.speculative = draft needs llm.draft_model to be a GGUF (e.g. qwen2.5-coder-0.5b)"
            )
        self.base_url = ""
        self._proc: subprocess.Popen[bytes] | None = None

    @classmethod
    def for_settings(cls, llm: LLMSettings, cache_dir: Path, **where: Any) -> LlamaCppServer:
        """The embedded server the settings describe (model, context, slots, speculative decoding); `where`
        passes host, port, start-up timeout and log path."""
        from assistant.llm.models import resolve_model

        model = resolve_model(llm.model, cache_dir, llm.allow_download)
        draft = (
            resolve_model(llm.draft_model, cache_dir, llm.allow_download)
            if llm.speculative == "draft"
            else None
        )
        return cls(
            model, n_ctx=llm.context_size, slots=llm.slots, speculative=llm.speculative, draft=draft, **where
        )

    @property
    def model_name(self) -> str:
        return self.model.name

    def command(self) -> list[str]:
        m = self.model
        src = ["--gguf", str(m.gguf_path)] if m.gguf_path else ["--hf-repo", str(m.hf_id)]
        return [
            sys.executable,
            "-m",
            "assistant.llm.llamacpp_serve",
            *src,
            "--name",
            self.model.name,
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--ctx",
            str(self.n_ctx),
            "--threads",
            str(self.threads),
            "--slots",
            str(self.slots),
            "--speculative",
            self.speculative,
            *(
                ["--draft-gguf", str(self.draft.gguf_path)]
                if self.speculative == "draft" and self.draft
                else []
            ),
            "--exit-with-parent",
        ]

    def start(self) -> str:
        """Spawn the server, wait until it answers, and return its base URL (`http://host:port/v1`)."""
        if self._proc is not None:
            return self.base_url
        if self.log_path is None:
            fd, name = tempfile.mkstemp(prefix="ra-llamacpp-", suffix=".log")
            self.log_path = Path(name)
            log = open(fd, "wb")  # noqa: SIM115 - handed to the child, closed right below
        else:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            log = self.log_path.open("wb")
        with log:
            self._proc = subprocess.Popen(
                self.command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log
            )
        try:
            url = self._read_announced_url(time.monotonic() + self.startup_timeout)
            self.base_url = url.rstrip("/") + "/v1"
            self._wait_healthy(time.monotonic() + self.startup_timeout)
        except BaseException:
            self.stop()
            raise
        return self.base_url

    def _read_announced_url(self, deadline: float) -> str:
        assert self._proc is not None and self._proc.stdout is not None
        lines: queue.Queue[bytes] = queue.Queue()
        stdout = self._proc.stdout
        threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
        while True:
            try:
                line = lines.get(timeout=0.2)
                break
            except queue.Empty:
                if time.monotonic() > deadline:
                    raise self._failure(f"did not start within {self.startup_timeout:.0f} s") from None
        if not line:
            self._proc.wait(timeout=10)
            raise self._failure(f"exited during start-up (code {self._proc.returncode})")
        return str(json.loads(line)["url"])

    def _wait_healthy(self, deadline: float) -> None:
        with ChatClient(self.base_url, self.model.name, timeout=5.0) as client:
            while not client.health():
                if time.monotonic() > deadline or self._proc is None or self._proc.poll() is not None:
                    raise self._failure("started but does not answer /v1/models")
                time.sleep(0.2)

    def _failure(self, what: str) -> LLMStartError:
        last = _last_line(self.log_path) if self.log_path else ""
        detail = f" ({last})" if last else ""
        return LLMStartError(f"llama.cpp server for {self.model.name} {what}{detail}; log: {self.log_path}")

    def stop(self, timeout: float = 15.0) -> None:
        """Ask the server to exit (SIGTERM), kill it if it does not; idempotent."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.stdin:
            proc.stdin.close()
        if proc.stdout:
            proc.stdout.close()
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _last_line(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return lines[-1].strip()[:300] if lines else ""
