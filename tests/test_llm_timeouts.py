"""A server that accepts connections but never answers is reported after the first-token timeout."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant.llm.client import ChatClient, LLMError
from assistant.settings import load_settings
from eval.bench.corruption_cases import build_healthy, run_cli


@pytest.fixture
def silent_server() -> Iterator[str]:
    """Accepts every connection, reads nothing, sends nothing (a hung server behind a live socket)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.1)
    stop = threading.Event()
    held: list[socket.socket] = []

    def serve() -> None:
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/v1"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    listener.close()


@pytest.mark.parametrize("call", ["models", "stream"])
def test_silent_server_fails_after_the_first_token_timeout(silent_server: str, call: str) -> None:
    client = ChatClient(silent_server, None if call == "models" else "m", timeout=60, first_token_timeout=0.5)
    started = time.monotonic()
    with pytest.raises(LLMError) as caught:
        client.list_models() if call == "models" else list(client.stream([{"role": "user", "content": "hi"}]))
    assert time.monotonic() - started < 5
    assert str(caught.value) == (
        f"the LLM at {silent_server} accepted the connection but sent nothing for 0.5 s "
        "(llm.first_token_timeout_s): check that the server is up and not stuck, or raise the timeout"
    )


def test_first_token_timeout_is_a_setting_distinct_from_the_total() -> None:
    llm = load_settings({"llm": {"first_token_timeout_s": 7}}).llm
    assert (llm.first_token_timeout_s, llm.timeout_s) == (7, 300)


@pytest.mark.slow
def test_ra_ask_against_a_silent_server_is_one_line_naming_the_url(
    silent_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index_dir, _ = build_healthy(tmp_path)
    monkeypatch.setenv("RA_LLM__FIRST_TOKEN_TIMEOUT_S", "1")
    started = time.monotonic()
    run = run_cli(
        "ask", "What is Alpaca?", "--index", str(index_dir), "--llm-url", silent_server, "--checker", "none"
    )
    assert time.monotonic() - started < 30
    assert run.exit_code == 1 and run.traceback is None
    assert (
        run.stderr.strip()
        .splitlines()[-1]
        .startswith(f"error: the LLM at {silent_server} accepted the connection but sent nothing for 1 s")
    )
