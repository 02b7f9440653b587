"""Parse PDF and HTML files in a worker process with a time and memory budget per file.

Third-party parsers (pypdf, html.parser) can take minutes or gigabytes on a hostile or broken file, and
nothing inside them can be interrupted. A worker process can: it is started once per ingest and reused
file after file; a file that runs past `timeout_s` has its worker killed (the next file gets a new one),
and the worker's address space is capped at `memory_mb`, so a file that needs more fails there alone.
Either way the file is skipped with its reason and the batch goes on. Plain text and Markdown are parsed
in place: their loaders are linear in the size, which `index.max_file_mb` already bounds.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from multiprocessing.connection import Connection
from pathlib import Path

from index.documents import DocumentMeta
from index.errors import LoadError, UserFacingError
from index.loaders import SUPPORTED_SUFFIXES, load_document
from index.types import LoadedDocument

BUDGETED_KINDS = frozenset({"pdf", "html"})
_MB = 2**20


def _serve(requests: Connection, answers: Connection, memory_mb: int) -> None:
    """The worker: parse what arrives, answer ("ok", doc) or ("error", reason), until the pipe closes."""
    limit = memory_mb * _MB
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    while True:
        try:
            path, meta, data = requests.recv()
        except EOFError:
            return
        try:
            answers.send(("ok", load_document(path, meta, data)))
        except LoadError as exc:
            answers.send(("error", str(exc)))
        except MemoryError:
            answers.send(("error", _over_memory(memory_mb)))
        except RecursionError:
            answers.send(("error", "structure nested too deeply to read: save it as text and ingest that"))


def _over_memory(memory_mb: int) -> str:
    return (
        f"parsing needed more than {memory_mb} MB of memory (setting index.parse_memory_mb): "
        "the file may be damaged"
    )


class ParseWorker:
    """Loads documents like `load_document`, PDF and HTML in a budgeted worker; use as a context manager
    so the worker ends with the ingest."""

    def __init__(self, timeout_s: float, memory_mb: int) -> None:
        self.timeout_s = timeout_s
        self.memory_mb = memory_mb
        self._proc: subprocess.Popen[bytes] | None = None
        self._requests: Connection | None = None
        self._answers: Connection | None = None

    def __enter__(self) -> ParseWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def load(self, path: Path, meta: DocumentMeta | None, data: bytes) -> LoadedDocument:
        """The document, or LoadError: unreadable, over the time budget or over the memory budget."""
        if SUPPORTED_SUFFIXES.get(path.suffix.lower()) not in BUDGETED_KINDS:
            return load_document(path, meta, data)
        requests, answers = self._connections()
        try:
            requests.send((path, meta, data))
            if not answers.poll(self.timeout_s):
                self.close()
                raise LoadError(
                    f"parsing took longer than {self.timeout_s:g} s (setting index.parse_timeout_s): "
                    "the file may be damaged or built to be slow"
                )
            status, value = answers.recv()
        except (EOFError, OSError):  # the worker died: the kernel's OOM killer, a crash in a C parser
            self.close()
            raise LoadError(
                f"the parser crashed or needed more than {self.memory_mb} MB of memory "
                "(setting index.parse_memory_mb): the file may be damaged"
            ) from None
        if status == "error":
            raise LoadError(value)
        return value

    def _connections(self) -> tuple[Connection, Connection]:
        """Pipes to the worker, started on first use: a fresh interpreter (`python -m`, so no script is
        imported again and no torch is mapped) that finds `index` where this process did."""
        if self._requests is None or self._answers is None:
            req_read, req_write = os.pipe()
            ans_read, ans_write = os.pipe()
            env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
            argv = [
                sys.executable,
                "-m",
                "index.parse_worker",
                str(req_read),
                str(ans_write),
                str(self.memory_mb),
            ]
            try:
                self._proc = subprocess.Popen(
                    argv,
                    pass_fds=(req_read, ans_write),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    env=env,
                )
            except OSError as exc:
                for fd in (req_read, req_write, ans_read, ans_write):
                    os.close(fd)
                raise UserFacingError(
                    f"cannot start the parser process ({sys.executable}: {exc.strerror or exc}): "
                    "run ra with a Python this user can execute"
                ) from None
            os.close(req_read)
            os.close(ans_write)
            self._requests = Connection(req_write, readable=False)
            self._answers = Connection(ans_read, writable=False)
        return self._requests, self._answers

    def close(self) -> None:
        """End the worker (killed: it may be stuck in a parser)."""
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
        for conn in (self._requests, self._answers):
            if conn is not None:
                conn.close()
        self._proc = self._requests = self._answers = None


if __name__ == "__main__":
    _serve(
        Connection(int(sys.argv[1]), writable=False),
        Connection(int(sys.argv[2]), readable=False),
        int(sys.argv[3]),
    )
