"""The thin client of the resident assistant, and the one place that decides where a question is answered.

`answerer(settings, use_service=...)` gives `ra ask`, `ra chat` and the web app the same thing either way:
something that turns a question (and a chat history) into the agent's events. It is the running service
when there is one (started first when `service.autostart` is on), else an agent in this process. Search
goes the same way through `search_hits`.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from assistant.agent.records import Event
from assistant.settings import Settings
from index.errors import UserFacingError

if TYPE_CHECKING:
    from assistant.agent.chat import Exchange

History = list["Exchange"]  # earlier turns of a chat (assistant.agent.chat)
Warn = Callable[[str], None]
_CONNECT_TIMEOUT_S = 2.0
_MAX_SOCKET_PATH = 107  # sun_path is 108 bytes with its NUL on Linux
PROTOCOL = 2  # bumped when a request or reply changes shape; a client refuses a service of another version


def served_key(settings: Settings) -> dict[str, Any]:
    """What a service is started with and every request must share: the model, the checker and the cache.
    The index, retrieval, agent and sandbox settings may differ per request (they cost nothing to change)."""
    return {
        "llm": settings.llm.model_dump(mode="json"),
        "checker": settings.grounding.checker,
        "cache_dir": str(settings.cache_dir.absolute()),
    }


class ServiceError(UserFacingError):
    """The service refused or failed a request; the message says what to do."""


class Answerer(Protocol):
    def ask(self, question: str, history: History) -> Iterator[Event]:
        """The agent's events for `question`; `history` (earlier turns) is updated in place at the end."""
        ...


# -- where the service lives ---------------------------------------------------------------------------
def socket_path(settings: Settings) -> Path:
    """`service.socket`, else a private folder in the user's runtime dir (or /tmp) named for the user."""
    if settings.service.socket is not None:
        return settings.service.socket.expanduser().absolute()
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    base = (
        Path(runtime) / "research-assistant" if runtime else Path(tempfile.gettempdir()) / f"ra-{os.getuid()}"
    )
    return base / "service.sock"


def lock_path(sock: Path) -> Path:
    return sock.with_name(sock.name + ".lock")


def log_path(sock: Path) -> Path:
    return sock.with_name(sock.name + ".log")


def private_folder(sock: Path) -> Path:
    """Create the socket's folder 0700, or refuse one another user could enter or that is not ours (or a
    socket path longer than Unix sockets allow)."""
    if len(os.fsencode(sock)) > _MAX_SOCKET_PATH:
        raise ServiceError(
            f"the service socket path {sock} is longer than a Unix socket allows ({_MAX_SOCKET_PATH} "
            "bytes): set service.socket (or RA_SERVICE__SOCKET) to a shorter path"
        )
    folder = sock.parent
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = folder.stat()
    except OSError as exc:
        raise ServiceError(
            f"cannot use the service folder {folder} ({exc.strerror}): set service.socket "
            "(or RA_SERVICE__SOCKET) to a folder of your own"
        ) from exc
    if st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise ServiceError(
            f"the service folder {folder} is not private to you (owner uid {st.st_uid}, mode "
            f"{st.st_mode & 0o777:o}): remove it or set service.socket to a folder of your own"
        )
    return folder


# -- one connection ------------------------------------------------------------------------------------
class ServiceClient:
    """Requests to a running service; each request is one connection (the service keeps no session)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def request(self, message: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """The service's reply lines; a reply `{"error": ...}` raises ServiceError."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(_CONNECT_TIMEOUT_S)
            conn.connect(str(self.path))
            conn.settimeout(None)  # an answer takes as long as it takes; the service has its own timeouts
            conn.sendall(json.dumps(message).encode() + b"\n")
            with conn.makefile("rb") as replies:
                for line in replies:
                    reply = json.loads(line)
                    if "error" in reply:
                        raise ServiceError(reply["error"])
                    yield reply
                    if reply.get("end") or reply.get("stopping"):
                        return
        raise ServiceError(
            f"the service at {self.path} closed the connection mid-reply: see {log_path(self.path)}"
        )

    def reply(self, message: dict[str, Any], key: str) -> Any:
        """The `key` of a one-reply request, read to the end (so the service sees a finished client)."""
        found = [r[key] for r in self.request(message) if key in r]
        if not found:
            raise ServiceError(f"the service sent no {key!r}: the client and the service differ in version")
        return found[0]

    def status(self) -> dict[str, Any]:
        return self.reply({"op": "status"}, "status")

    def stop(self) -> None:
        self.reply({"op": "stop"}, "stopping")

    def warm(self, settings: Settings) -> str | None:
        """Have the service open the settings' index; its generation, or None when there is no index yet."""
        return self.reply({"op": "warm", "settings": wire_settings(settings)}, "generation")

    def search(self, settings: Settings, query: str) -> list[Any]:
        """`ra search` through the service: the index's hits, as `HybridIndex.search` returns them."""
        from assistant.service.wire import decode
        from index.types import SearchHit

        hits = self.reply({"op": "search", "query": query, "settings": wire_settings(settings)}, "hits")
        return decode(list[SearchHit], hits)

    def alive(self) -> bool:
        try:
            return self.status().get("protocol") == PROTOCOL
        except (OSError, ServiceError, ValueError):
            return False


class ServiceAnswerer:
    """Questions answered by the service with these settings (index, retrieval, agent: the client's)."""

    def __init__(self, client: ServiceClient, settings: Settings) -> None:
        self.client = client
        self.settings = wire_settings(settings)

    def ask(self, question: str, history: History) -> Iterator[Event]:
        from assistant.agent.chat import Exchange
        from assistant.service.wire import decode_event

        sent = [e.to_json() for e in history]
        request = {"op": "ask", "question": question, "history": sent, "settings": self.settings}
        for reply in self.client.request(request):
            if "event" in reply:
                yield decode_event(reply["event"])
            elif "history" in reply:
                history[:] = [Exchange.from_json(e) for e in reply["history"]]


class LocalAnswerer:
    """Questions answered by an agent in this process (`--no-service`, or no service running)."""

    def __init__(self, agent: Any) -> None:
        self.agent = agent

    def ask(self, question: str, history: History) -> Iterator[Event]:
        from assistant.agent.chat import ChatSession

        return ChatSession(self.agent, history).ask(question)


def wire_settings(settings: Settings) -> dict[str, Any]:
    """The settings as the service needs them: JSON, with paths absolute (the service has its own cwd)."""
    data = settings.model_dump(mode="json")
    data["index"]["dir"] = str(settings.index.dir.absolute())
    data["cache_dir"] = str(settings.cache_dir.absolute())
    return data


# -- finding or starting one ---------------------------------------------------------------------------
def running_service(settings: Settings) -> ServiceClient | None:
    path = socket_path(settings)
    try:
        if not path.exists():
            return None
    except OSError:  # a folder this user cannot enter holds no service of theirs
        return None
    client = ServiceClient(path)
    return client if client.alive() else None


def start_service(settings: Settings, progress: Warn | None = None) -> ServiceClient:
    """Start the service in the background (detached, its own session) and wait until it answers."""
    path = socket_path(settings)
    private_folder(path)
    if (client := running_service(settings)) is not None:
        return client
    log = log_path(path)
    env = os.environ | {
        "RA_SERVICE_SETTINGS": json.dumps(wire_settings(settings)),
        "RA_SERVICE_LOG": str(log),
    }
    if progress is not None:
        progress(f"starting the assistant service (log: {log})")
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "assistant.service.daemon"],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            env=env,
            start_new_session=True,  # outlives the command that started it, and its Ctrl-C
        )
    deadline = time.monotonic() + settings.service.start_timeout_s
    client = ServiceClient(path)
    while time.monotonic() < deadline:
        if client.alive():
            return client
        if proc.poll() is not None and not client.alive():
            if proc.returncode == 3:  # another start won the race: use that one
                continue
            raise ServiceError(f"the service did not start ({_last_line(log)}): see {log}")
        time.sleep(0.2)
    proc.terminate()
    raise ServiceError(
        f"the service did not answer within service.start_timeout_s ({settings.service.start_timeout_s:.0f} s): see {log}"
    )


@contextmanager
def answerer(settings: Settings, *, use_service: bool, warn: Warn, progress: Warn) -> Iterator[Answerer]:
    """Where questions go: the running (or auto-started) service, else an agent in this process."""
    client = service_for(settings, use_service, warn, progress)
    if client is not None:
        yield ServiceAnswerer(client, settings)
        return
    from assistant.agent.factory import ready_agent

    with ready_agent(settings, warn=warn) as agent:
        yield LocalAnswerer(agent)


def service_for(settings: Settings, use_service: bool, warn: Warn, progress: Warn) -> ServiceClient | None:
    """The service to use, or None: not wanted, none running and no autostart, or one serving another
    model (said once, then answered in process)."""
    if not use_service:
        return None
    client = running_service(settings)
    if client is None and settings.service.autostart:
        client = start_service(settings, progress)
    if client is None:
        return None
    if client.status().get("serves") != served_key(settings):
        warn("the running service serves another model or checker: answering in this process")
        return None
    return client


def _last_line(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "no log"
    return lines[-1][:300] if lines else "no log"
