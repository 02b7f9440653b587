"""Runs one snippet in the sandbox and turns what happened into a SandboxResult.

The parent reads stdout/stderr incrementally and keeps at most `max_output_bytes` of each, so a flood
cannot exhaust host memory; far past the cap the run is killed. The wall-clock timeout kills bwrap's
process group; bwrap's pid-1 then dies with it (--die-with-parent) and the kernel kills every process in
the pid namespace, including children the snippet detached.
"""

from __future__ import annotations

import contextlib
import os
import re
import selectors
import signal
import subprocess
import time

from assistant.sandbox.command import explain_setup_failure, sandbox_argv, sandbox_env
from assistant.sandbox.models import SandboxLimits, SandboxResult, SandboxUnavailable
from assistant.sandbox.seccomp import filter_fd

FLOOD_FACTOR = 16  # output beyond this many times the cap ends the run
_KILL_GRACE_S = 5.0  # after a kill, wait this long for the sandbox's pipes to close
_READ_CHUNK = 65536
_TAIL_BYTES = 2048
_MEMORY_ERROR = re.compile(r"^[\w.]*MemoryError\b")
_SETUP_TOOLS = ("bwrap:", "setpriv:")


class _Capture:
    """Keeps the first `cap` bytes of a stream (and a short tail), counting everything it saw."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.head = bytearray()
        self.tail = b""
        self.seen = 0

    def feed(self, chunk: bytes) -> None:
        self.seen += len(chunk)
        room = self.cap - len(self.head)
        if room > 0:
            self.head += chunk[:room]
        self.tail = (self.tail + chunk)[-_TAIL_BYTES:]

    @property
    def truncated(self) -> bool:
        return self.seen > self.cap

    def text(self) -> str:
        return self.head.decode("utf-8", errors="replace")


def _code_fd(code: str) -> int:
    """The snippet in an anonymous memory file: bwrap copies it to a read-only file in the sandbox."""
    fd = os.memfd_create("snippet")
    os.write(fd, code.encode("utf-8"))
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def _kill(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def _pump(
    proc: subprocess.Popen[bytes], captures: dict[int, _Capture], flood_limit: int, deadline: float
) -> str | None:
    """Read every pipe until it closes; returns why the run was killed (None if it was not).

    `flood_limit` bounds stdout + stderr together; the report pipe has its own cap and never floods.
    """
    streams = [captures[pipe.fileno()] for pipe in (proc.stdout, proc.stderr) if pipe is not None]
    reason: str | None = None
    with selectors.DefaultSelector() as selector:
        for fd in captures:
            selector.register(fd, selectors.EVENT_READ)
        while selector.get_map():
            now = time.monotonic()
            if reason is None:
                if now >= deadline:
                    reason = "timeout"
                elif sum(stream.seen for stream in streams) > flood_limit:
                    reason = "output"
                if reason is not None:
                    _kill(proc)
                    deadline = now + _KILL_GRACE_S
            elif now >= deadline:
                break  # killed, yet something still holds a pipe open: stop waiting
            for key, _ in selector.select(deadline - now):
                chunk = os.read(key.fd, _READ_CHUNK)
                if chunk:
                    captures[key.fd].feed(chunk)
                else:
                    selector.unregister(key.fd)
    return reason


def _parse_report(data: bytes) -> tuple[int, float, list[bytes], list[str]] | None:
    """(wait status, cpu seconds, images, skipped images) from the supervisor; None if it never reported.

    Walks by offset: slicing off each image would copy the rest of the report once per image."""
    end = data.find(b"\n")
    if end < 0:
        return None
    try:
        status, cpu = (float(field) for field in data[:end].split())
    except ValueError:  # cut off mid-line
        return None
    images: list[bytes] = []
    skipped: list[str] = []
    start = end + 1
    while start < len(data):
        end = data.find(b"\n", start)
        if end < 0:
            break  # cut short: the report went past its cap or the supervisor was killed
        line, start = data[start:end], end + 1
        if line.startswith(b"-"):
            skipped.append(line[1:].decode("utf-8", errors="replace"))
            continue
        size = int(line) if line.isdigit() else -1
        if size < 0 or len(data) - start < size:
            break
        image, start = data[start : start + size], start + size
        if image.startswith(b"\x89PNG\r\n\x1a\n"):
            images.append(image)
    return int(status), cpu, images, skipped


def _killed_reason(exit_code: int, cpu_s: float, stderr_tail: bytes, limits: SandboxLimits) -> str | None:
    if exit_code < 0:
        sig = -exit_code
        hit_cpu = sig == signal.SIGXCPU or (sig == signal.SIGKILL and cpu_s >= limits.cpu_s)
        return "cpu" if hit_cpu else f"signal {sig}"
    lines = stderr_tail.decode("utf-8", errors="replace").strip().splitlines()
    if exit_code != 0 and lines and _MEMORY_ERROR.match(lines[-1]):
        return "memory"
    return None


def run_python(code: str, limits: SandboxLimits | None = None) -> SandboxResult:
    """Run untrusted Python source in the sandbox. Never runs it unsandboxed: raises SandboxUnavailable.

    Figures: every valid `*.png` the code leaves in /tmp/figures/ (created for it) comes back in
    `images`, in file-name order, if the code ends before the wall-clock timeout; those over the caps or
    not real PNGs are named in `images_skipped` with the reason.
    """
    limits = limits or SandboxLimits()
    started = time.monotonic()
    code_fd = _code_fd(code)
    seccomp_fd = filter_fd()
    report_r, report_w = os.pipe()
    try:
        argv = sandbox_argv(limits, code_fd, report_w, seccomp_fd)
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            pass_fds=(code_fd, report_w, seccomp_fd),
            env=sandbox_env(),
            cwd="/",
            start_new_session=True,  # its own process group, so one killpg reaches bwrap and helpers
        )
    except BaseException:
        os.close(report_r)
        raise
    finally:
        os.close(code_fd)
        os.close(seccomp_fd)
        os.close(report_w)
    assert proc.stdout is not None and proc.stderr is not None
    out, err = _Capture(limits.max_output_bytes), _Capture(limits.max_output_bytes)
    report = _Capture(64 + limits.max_images_total_mb * 2**20 + (limits.max_images + 1) * 256)
    captures = {proc.stdout.fileno(): out, proc.stderr.fileno(): err, report_r: report}
    with proc:
        try:
            flood_limit = FLOOD_FACTOR * limits.max_output_bytes
            reason = _pump(proc, captures, flood_limit, started + limits.timeout_s)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=_KILL_GRACE_S)
        finally:
            os.close(report_r)
            if proc.returncode is None:  # interrupted, or bwrap hangs after its pipes closed
                _kill(proc)
    parsed = _parse_report(bytes(report.head))
    if parsed is None and reason is None and err.text().startswith(_SETUP_TOOLS):
        raise SandboxUnavailable(explain_setup_failure(err.text()))
    status, cpu_s, images, skipped = parsed if parsed is not None else (None, 0.0, [], [])
    exit_code = os.waitstatus_to_exitcode(status) if status is not None else proc.returncode
    return SandboxResult(
        stdout=out.text(),
        stderr=err.text(),
        exit_code=exit_code,
        timed_out=reason == "timeout",
        killed_reason=reason or _killed_reason(exit_code, cpu_s, err.tail, limits),
        duration_s=time.monotonic() - started,
        truncated=out.truncated or err.truncated,
        images=images,
        images_skipped=skipped,
    )
