"""The resident assistant for real: the CLI autostarts it, later commands reuse its one model load, it picks
up a new index generation, keeps other users out, survives a client killed mid-answer, answers four
questions at once without crossing their evidence, streams draft words before the check, and exits when
idle. Real `ra` processes, the packaged llama.cpp model and checker, a small real index."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from assistant.index_access import index_config
from assistant.settings import load_settings
from index.ingest import ingest_paths

pytestmark = [pytest.mark.slow, pytest.mark.integration]
pytest.importorskip("xllamacpp")

REPO = Path(__file__).resolve().parents[1]
DOCS = {
    "glide.md": "GLIDE compares two guidance strategies. Human evaluators preferred classifier-free guidance "
    "for photorealism and caption similarity.",
    "alpaca.md": "Stanford's Alpaca 7B was fine-tuned on 52K instruction-following demonstrations.",
    "yolo.md": "Fast YOLO processes an astounding 155 frames per second.",
    "bloomberg.md": "BloombergGPT was trained on a dataset of 363 billion tokens of financial data.",
}
# question -> (a word the right answer has, the only document it may cite)
QUESTIONS = {
    "Which guidance did GLIDE's human evaluators prefer?": ("classifier-free", "glide.md"),
    "How many demonstrations was Stanford's Alpaca 7B fine-tuned on?": ("52K", "alpaca.md"),
    "How many frames per second does Fast YOLO process?": ("155", "yolo.md"),
    "How many tokens of financial data was BloombergGPT trained on?": ("363", "bloomberg.md"),
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("service-corpus")
    docs = root / "docs"
    docs.mkdir()
    for name, text in DOCS.items():
        (docs / name).write_text(f"# {Path(name).stem}\n\n{text}\n", encoding="utf-8")
    for i, topic in enumerate(["sparrows nest in spring", "rivers carry silt", "bread needs yeast"]):
        (docs / f"filler{i}.md").write_text(f"# Filler\n\nSome notes: {topic}.\n", encoding="utf-8")
    index_dir = root / "index"
    ingest_paths([docs], index_dir, index_config(load_settings({"index": {"dir": index_dir}})))
    return root


def short_socket() -> Path:
    """A socket path under the 108-byte limit (pytest's tmp paths can be longer)."""
    return Path(tempfile.mkdtemp(prefix="ras-", dir="/tmp")) / "s.sock"


@pytest.fixture(scope="module")
def service(corpus: Path) -> Iterator[dict[str, str]]:
    """What a user with `service.autostart` on has: the first `ra` command starts the service."""
    sock = short_socket()
    env = {
        "RA_SERVICE__SOCKET": str(sock),
        "RA_SERVICE__AUTOSTART": "true",
        "RA_LLM__SLOTS": "4",
        "RA_INDEX__DIR": str(corpus / "index"),
    }
    yield env
    stop(env)
    shutil.rmtree(sock.parent, ignore_errors=True)


def ra(*args: str, env: dict[str, str], timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "assistant", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, **env},
        timeout=timeout,
    )


def status(env: dict[str, str]) -> dict[str, Any] | None:
    proc = ra("service", "status", "--json", env=env, timeout=60)
    data = json.loads(proc.stdout)
    assert proc.returncode == (0 if data["running"] else 1)
    return data if data["running"] else None


def stop(env: dict[str, str]) -> None:
    report = status(env)
    if report is None:
        return
    ra("service", "stop", env=env, timeout=60)
    if _wait(lambda: not _alive(report["pid"]), 30) is None:
        os.kill(report["pid"], signal.SIGKILL)


def ask_json(question: str, env: dict[str, str]) -> dict[str, Any]:
    proc = ra("ask", question, "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def assert_right(data: dict[str, Any], question: str) -> None:
    word, source = QUESTIONS[question]
    assert not data["abstained"] and word.lower() in data["answer"].lower(), data["answer"]
    assert data["citations"] and {Path(c["source"]).name for c in data["citations"]} == {source}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _wait(ready: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := ready():
            return value
        time.sleep(0.25)
    return None


# -- the tests, in the order a user meets them --------------------------------------------------------
def test_the_first_ask_starts_the_service_and_the_second_reuses_its_model(service: dict[str, str]) -> None:
    assert status(service) is None
    first, second = list(QUESTIONS)[:2]
    proc = ra("ask", first, "--json", env=service)
    assert proc.returncode == 0, proc.stderr
    assert "starting the assistant service" in proc.stderr
    assert_right(json.loads(proc.stdout), first)
    assert_right(ask_json(second, service), second)
    report = status(service)
    assert report is not None
    counters = report["counters"]
    assert counters["model_loads"] == 1 and counters["checker_loads"] == 1 and counters["index_opens"] == 1
    assert counters["answers"] == 2 and counters.get("clients_lost", 0) == 0  # both read to the end


def test_ra_search_goes_through_the_service_and_sees_a_new_generation(
    service: dict[str, str], corpus: Path
) -> None:
    before = status(service)
    assert before is not None
    new = corpus / "new" / "hyena.md"
    new.parent.mkdir(exist_ok=True)
    new.write_text("# Hyena\n\nHyena operators replace attention with long convolutions.\n", encoding="utf-8")
    assert "Hyena" not in ra("search", "Hyena long convolutions", "--json", env=service).stdout
    ingest = ra("ingest", str(new.parent), "--index", service["RA_INDEX__DIR"], env=service)
    assert ingest.returncode == 0, ingest.stderr
    proc = ra("search", "Hyena long convolutions", "--json", env=service)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)[0]["source"].endswith("hyena.md")
    after = status(service)
    assert after is not None and after["pid"] == before["pid"]
    assert after["counters"]["searches"] == before["counters"].get("searches", 0) + 2
    assert after["counters"]["index_opens"] == before["counters"]["index_opens"] + 1
    assert after["counters"]["model_loads"] == 1
    [generation] = after["indexes"].values()
    assert generation != next(iter(before["indexes"].values()))


@pytest.mark.skipif(os.getuid() != 0, reason="switching to another user needs root")
def test_another_user_cannot_reach_the_service(service: dict[str, str]) -> None:
    report = status(service)
    assert report is not None
    sock = Path(report["socket"])
    assert sock.parent.stat().st_mode & 0o777 == 0o700 and sock.stat().st_mode & 0o777 == 0o600
    connect = (
        "use IO::Socket::UNIX; my $s = IO::Socket::UNIX->new(Peer => $ARGV[0]) or die qq(refused: $!\\n);"
        'print $s qq({"op": "status"}\\n); my $r = <$s>; print defined $r ? $r : qq(closed\\n);'
    )
    as_nobody = [
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "perl",
        "-e",
        connect,
        str(sock),
    ]
    proc = subprocess.run(as_nobody, capture_output=True, text=True, timeout=30)
    assert proc.returncode != 0 and "Permission denied" in proc.stderr  # the folder and socket modes
    # Past loosened modes, the service itself checks who connects (SO_PEERCRED) and closes without a word.
    os.chmod(sock.parent, 0o755)
    os.chmod(sock, 0o666)
    try:
        proc = subprocess.run(as_nobody, capture_output=True, text=True, timeout=30)
    finally:
        os.chmod(sock.parent, 0o700)
        os.chmod(sock, 0o600)
    assert proc.returncode == 0 and proc.stdout.strip() == "closed", proc.stdout + proc.stderr
    after = status(service)
    assert after is not None and after["counters"]["refused"] == report["counters"].get("refused", 0) + 1


def test_streamed_words_come_before_the_check_and_only_checked_words_reach_stdout(
    service: dict[str, str],
) -> None:
    question = list(QUESTIONS)[2]
    proc = subprocess.Popen(
        [sys.executable, "-m", "assistant", "ask", question],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=REPO,
        env={**os.environ, **service},
    )
    reads: list[tuple[float, bytes]] = []

    def read_stderr() -> None:
        assert proc.stderr is not None
        while chunk := os.read(proc.stderr.fileno(), 4096):
            reads.append((time.monotonic(), chunk))

    reader = threading.Thread(target=read_stderr)
    reader.start()
    stdout = proc.stdout.read().decode() if proc.stdout else ""  # type: ignore[union-attr]
    assert proc.wait(timeout=900) == 0
    reader.join()
    stderr = b"".join(c for _, c in reads).decode()
    assert "draft, checking:" in stderr and "(checked)" in stderr, stderr
    began = next(t for t, c in reads if b"draft, checking" in c)
    checked = next(t for t, c in reads if b"(checked)" in c)
    pieces = [c for t, c in reads if began <= t < checked]
    assert len(pieces) >= 3 and checked - began > 0.5  # words arrived one by one, well before the verdict
    assert "155" in stdout and "draft" not in stdout


def test_a_client_killed_mid_answer_does_not_hurt_the_service(service: dict[str, str]) -> None:
    before = status(service)
    assert before is not None
    question = list(QUESTIONS)[3]
    proc = subprocess.Popen(
        [sys.executable, "-m", "assistant", "ask", question],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=REPO,
        env={**os.environ, **service},
    )
    assert proc.stderr is not None
    seen = b""
    while b"found" not in seen and (chunk := os.read(proc.stderr.fileno(), 4096)):
        seen += chunk  # the sources are found: the service is now answering this client
    proc.kill()
    proc.wait()
    lost = _wait(
        lambda: (s := status(service)) and s["active"] == 0 and s["counters"].get("clients_lost"), 300
    )
    assert lost == before["counters"].get("clients_lost", 0) + 1
    assert_right(ask_json(question, service), question)


def test_four_questions_at_once_get_their_own_right_answers(service: dict[str, str]) -> None:
    procs = {
        q: subprocess.Popen(
            [sys.executable, "-m", "assistant", "ask", q, "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
            env={**os.environ, **service},
        )
        for q in QUESTIONS
    }
    for question, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=1200)
        assert proc.returncode == 0, stderr
        data = json.loads(stdout)
        assert data["question"] == question
        assert_right(data, question)  # its own word, citing only its own document
    report = status(service)
    assert report is not None and report["counters"]["model_loads"] == 1


def test_chat_through_the_service_keeps_its_history(service: dict[str, str]) -> None:
    first = list(QUESTIONS)[1]
    proc = subprocess.run(
        [sys.executable, "-m", "assistant", "chat"],
        input=f"{first}\nWhat kind were they?\n/exit\n",
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, **service},
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr
    assert "52K" in proc.stdout
    # Only a chat with history rewrites a follow-up: the first turn travelled to the service and back.
    assert proc.stderr.count("searching for:") == 1, proc.stderr


def test_no_service_answers_in_process_while_one_runs(service: dict[str, str]) -> None:
    before = status(service)
    assert before is not None
    question = list(QUESTIONS)[1]
    proc = ra("ask", question, "--json", "--no-service", env=service)
    assert proc.returncode == 0, proc.stderr
    assert_right(json.loads(proc.stdout), question)
    after = status(service)
    assert after is not None and after["counters"]["answers"] == before["counters"]["answers"]


def test_the_service_stops_when_idle_and_removes_its_socket(corpus: Path) -> None:
    sock = short_socket()
    env = {"RA_SERVICE__SOCKET": str(sock), "RA_INDEX__DIR": str(corpus / "index")}
    try:
        started = ra("service", "start", "--idle-timeout", "3", "--checker", "none", env=env, timeout=300)
        assert started.returncode == 0, started.stderr
        report = status(env)
        assert report is not None and report["idle_timeout_s"] == 3
        assert _wait(lambda: not sock.exists() and not _alive(report["pid"]), 60)
        assert status(env) is None
        assert "idle for 3 s: stopping" in Path(str(sock) + ".log").read_text()
    finally:
        stop(env)
        shutil.rmtree(sock.parent, ignore_errors=True)
