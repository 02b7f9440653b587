"""The resident assistant: one process per user that keeps the model, the grounding checker and the
indexes warm, so a command after the first one pays for none of them.

Why a separate process and not a long-lived CLI: `ra ask` is a command a researcher runs and forgets. The
start-up it would otherwise repeat every time (the model load, the checker's import, the embedder, BM25)
costs more than the answer itself on two cores. The service answers on a Unix socket that only its user
can reach (a private folder, a 0600 socket, and the peer's uid checked on every connection). It speaks
JSON lines: one request, then the agent's events as they happen (see `wire.py`). It is stateless per
request: a chat's history travels with each question and comes back updated. It opens an index on first
use and reopens it when `ra ingest` commits a new generation. It exits after `service.idle_timeout_s`
without a request.

Run by `ra service start` or on demand (`service.autostart`); `python -m assistant.service.daemon` reads
its settings from the RA_SERVICE_SETTINGS variable (JSON of the starting command's settings).
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import socketserver
import struct
import sys
import threading
import time
from collections import Counter
from contextlib import ExitStack, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from assistant.agent.chat import ChatSession, Exchange
from assistant.agent.factory import SerialChecker, build_agent, build_checker, open_backend, warm
from assistant.index_access import open_index
from assistant.service.client import PROTOCOL, lock_path, served_key, socket_path
from assistant.service.wire import encode
from assistant.settings import Settings
from index.errors import UserFacingError
from index.store import read_manifest

if TYPE_CHECKING:
    from assistant.agent.backends import OpenAIBackend
    from assistant.grounding.base import GroundingChecker
    from index.search import HybridIndex

SETTINGS_ENV = "RA_SERVICE_SETTINGS"
MAX_REQUEST_BYTES = 1 << 20
_DRAIN_S = 60.0


class Resident:
    """What the service keeps warm, and the counters a client reads to see it was kept."""

    def __init__(self, settings: Settings, socket_path: Path) -> None:
        self.settings = settings
        self.socket_path = socket_path
        self.counters: Counter[str] = Counter()
        self.started = time.time()
        self.last_request = time.monotonic()
        self.active = 0
        self.backend: OpenAIBackend | None = None
        self.checker: GroundingChecker | None = None
        self._indexes: dict[str, HybridIndex] = {}
        self._lock = threading.Lock()
        self._stack = ExitStack()

    def load(self) -> None:
        """Load the model and the checker, once, before the socket accepts anyone."""
        self.backend = self._stack.enter_context(open_backend(self.settings))
        self.counters["model_loads"] += 1
        checker = build_checker(self.settings, self.backend, warn=_log)
        self.checker = SerialChecker(checker) if checker is not None else None
        self.counters["checker_loads"] += self.checker is not None

    def close(self) -> None:
        self._stack.close()

    def index_for(self, settings: Settings) -> HybridIndex:
        """The request's index, opened once per generation: a commit by `ra ingest` is picked up by the
        next request, while a search already running keeps the generation it started on."""
        manifest = read_manifest(settings.index.dir)
        key = json.dumps(
            [
                str(settings.index.dir),
                settings.index.backend,
                settings.index.embedding.model_dump(mode="json"),
                settings.index.milvus.model_dump(mode="json"),
                settings.retrieval.model_dump(mode="json", exclude={"k"}),  # k is passed per search
            ]
        )
        with self._lock:
            index = self._indexes.get(key)
            if (
                index is not None
                and manifest is not None
                and index.manifest.generation == manifest.generation
            ):
                return index
        index = warm(open_index(settings))
        with self._lock:
            self._indexes[key] = index
            self.counters["index_opens"] += 1
        return index

    def status(self) -> dict[str, Any]:
        with self._lock:
            indexes = {str(i.index_dir): i.manifest.generation for i in self._indexes.values()}
        return {
            "protocol": PROTOCOL,
            "pid": os.getpid(),
            "socket": str(self.socket_path),
            "uptime_s": round(time.time() - self.started, 1),
            "idle_s": round(time.monotonic() - self.last_request, 1),
            "idle_timeout_s": self.settings.service.idle_timeout_s,
            "active": self.active,
            "model": self.settings.llm.url or self.settings.llm.model,
            "checker": self.settings.grounding.checker if self.checker is not None else None,
            "serves": served_key(self.settings),
            "indexes": indexes,
            "counters": dict(self.counters),
        }

    # -- requests --------------------------------------------------------------------------------------
    def handle(self, request: dict[str, Any], send: Any) -> None:
        op = request.get("op")
        if op == "status":
            send({"status": self.status()})
            return
        settings = Settings(**request.get("settings", {}))
        if served_key(settings) != served_key(self.settings):
            raise UserFacingError(
                "the running service serves another model or checker: stop it with `ra service stop` "
                "or answer in this process with --no-service"
            )
        if op == "warm":
            manifest = read_manifest(settings.index.dir)
            send({"generation": self.index_for(settings).manifest.generation if manifest else None})
        elif op == "search":
            hits = self.index_for(settings).search(
                str(request["query"]), k=settings.retrieval.k, mode=settings.retrieval.mode
            )
            self.counters["searches"] += 1
            send({"hits": [encode(h) for h in hits]})
        elif op == "ask":
            self._ask(settings, str(request["question"]), request.get("history") or [], send)
        else:
            raise UserFacingError(f"unknown request {op!r}: the client and the service differ in version")

    def _ask(self, settings: Settings, question: str, history: list[dict[str, Any]], send: Any) -> None:
        assert self.backend is not None
        agent = build_agent(settings, self.backend, self.index_for(settings), self.checker)
        session = ChatSession(agent, [Exchange.from_json(e) for e in history])
        events = session.ask(question)
        try:
            for event in events:
                send({"event": encode(event)})
        finally:
            events.close()  # a client that left stops the run at its next step
        self.counters["answers"] += 1
        send({"history": [e.to_json() for e in session.history]})


class _Handler(socketserver.StreamRequestHandler):
    server: _Server

    def handle(self) -> None:
        resident = self.server.resident
        if not _same_user(self.request):
            resident.counters["refused"] += 1
            return
        resident.counters["requests"] += 1
        try:
            request = json.loads(self.rfile.readline(MAX_REQUEST_BYTES))
            if not isinstance(request, dict):
                raise ValueError("a request is a JSON object")
        except ValueError as exc:
            _reply_error(
                self.wfile, f"malformed request ({exc}): the client and the service differ in version"
            )
            return
        if request.get("op") == "stop":
            _write(self.wfile, {"stopping": True})
            threading.Thread(target=self.server.shutdown, daemon=True).start()
            return
        busy = request.get("op") != "status"  # a status request is not work: `active` and idleness ignore it
        with resident._lock:
            resident.active += busy
        try:
            resident.handle(request, lambda msg: _write(self.wfile, msg))
            _write(self.wfile, {"end": True})
        except (BrokenPipeError, ConnectionResetError):
            resident.counters["clients_lost"] += 1
        except UserFacingError as exc:
            _reply_error(self.wfile, str(exc))
        except (ValueError, KeyError, TypeError) as exc:
            _reply_error(
                self.wfile, f"malformed request ({exc}): the client and the service differ in version"
            )
        except Exception as exc:  # one failed request must not take the service down
            _log(f"request failed: {exc!r}")
            _reply_error(self.wfile, f"the service failed on this request ({exc}); its log: {_log_path()}")
        finally:
            with resident._lock:
                resident.active -= busy
                if busy:
                    resident.last_request = time.monotonic()


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def __init__(self, path: Path, resident: Resident) -> None:
        self.resident = resident
        super().__init__(str(path), _Handler)


def _write(stream: BinaryIO, message: dict[str, Any]) -> None:
    stream.write(json.dumps(message).encode() + b"\n")
    stream.flush()


def _reply_error(stream: BinaryIO, message: str) -> None:
    with suppress(OSError):
        _write(stream, {"error": message})


def _same_user(conn: socket.socket) -> bool:
    """The peer's uid from the kernel (SO_PEERCRED): the folder and socket modes already keep other users
    out; this also refuses a peer that got through them (root, or a mode someone loosened)."""
    if not hasattr(socket, "SO_PEERCRED"):
        return True
    _pid, uid, _gid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
    return uid == os.getuid()


def _idle_watch(server: _Server, timeout_s: float) -> None:
    resident = server.resident
    while True:
        time.sleep(min(timeout_s / 4, 5.0))
        with resident._lock:
            idle = resident.active == 0 and time.monotonic() - resident.last_request > timeout_s
        if idle:
            _log(f"idle for {timeout_s:.0f} s: stopping")
            server.shutdown()
            return


def _drain(resident: Resident, timeout_s: float) -> None:
    """Let answers in flight finish (no new ones come: the socket is gone) before the model goes."""
    deadline = time.monotonic() + timeout_s
    while resident.active and time.monotonic() < deadline:
        time.sleep(0.1)


def _log(message: str) -> None:
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}", file=sys.stderr, flush=True)


def _log_path() -> str:
    return os.environ.get("RA_SERVICE_LOG", "the service log")


def serve(settings: Settings, path: Path) -> int:
    """Hold the service lock, load, listen until stopped or idle; 3 when another service holds the lock."""
    with open(lock_path(path), "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            _log("another service is running on this socket: exiting")
            return 3
        resident = Resident(settings, path)
        try:
            resident.load()
            path.unlink(missing_ok=True)  # a socket left by a service that was killed
            old = os.umask(0o177)
            try:
                server = _Server(path, resident)
            finally:
                os.umask(old)
            _log(f"serving on {path} (pid {os.getpid()})")
            threading.Thread(
                target=_idle_watch, args=(server, settings.service.idle_timeout_s), daemon=True
            ).start()
            with server:
                server.serve_forever(poll_interval=0.2)
        finally:
            path.unlink(missing_ok=True)
            _drain(resident, _DRAIN_S)
            resident.close()
    _log("stopped")
    return 0


def main() -> None:
    from assistant.cli.quiet import configure_output

    configure_output(False)
    settings = Settings(**json.loads(os.environ[SETTINGS_ENV]))
    try:
        code = serve(settings, socket_path(settings))
    except UserFacingError as exc:
        _log(f"error: {exc}")
        code = 1
    raise SystemExit(code)


if __name__ == "__main__":
    main()
