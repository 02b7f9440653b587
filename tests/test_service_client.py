"""The service client's decisions without a model: where the socket lives, which folders it refuses, what
`ra service status|stop` say when nothing runs, and that `--no-service`-free commands fall back to the
process when no service runs and autostart is off. test_service.py runs the real service."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from assistant.cli.main import app
from assistant.service.client import (
    ServiceError,
    private_folder,
    running_service,
    served_key,
    service_for,
    socket_path,
    start_service,
)
from assistant.settings import load_settings
from eval.bench.corruption_cases import unprivileged


def test_the_socket_is_in_the_users_runtime_dir_unless_set(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("RA_SERVICE__SOCKET")
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    assert socket_path(load_settings()) == tmp_path / "research-assistant" / "service.sock"
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    assert socket_path(load_settings()).parent.name == f"ra-{os.getuid()}"
    chosen = tmp_path / "mine.sock"
    assert socket_path(load_settings({"service": {"socket": chosen}})) == chosen


def test_a_folder_others_can_enter_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "svc"
    assert private_folder(folder / "s.sock") == folder and folder.stat().st_mode & 0o777 == 0o700
    folder.chmod(0o755)
    with pytest.raises(ServiceError, match="not private to you"):
        private_folder(folder / "s.sock")


def test_a_socket_folder_this_user_cannot_enter_holds_no_service_and_cannot_take_one(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    (locked / "svc").mkdir(parents=True)
    locked.chmod(0)  # as root, `unprivileged` runs as nobody, for whom it is just as closed
    settings = load_settings({"service": {"socket": locked / "svc" / "s.sock"}})
    try:
        with unprivileged():
            assert running_service(settings) is None
            with pytest.raises(ServiceError, match=r"cannot use the service folder .*a folder of your own"):
                start_service(settings)
    finally:
        locked.chmod(0o700)


def test_a_socket_path_too_long_is_refused_with_what_to_do(tmp_path: Path) -> None:
    sock = tmp_path / ("x" * 120) / "s.sock"
    settings = load_settings({"service": {"socket": sock}})
    with pytest.raises(ServiceError, match="shorter path"):
        start_service(settings)
    assert not sock.parent.exists()


def test_status_and_stop_when_none_runs() -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["service", "status", "--json"])
    assert result.exit_code == 1 and json.loads(result.stdout)["running"] is False
    result = runner.invoke(app, ["service", "stop"])
    assert result.exit_code == 0 and "no service is running" in result.stderr


def test_without_a_service_or_autostart_questions_stay_in_process() -> None:
    settings = load_settings()
    said: list[str] = []
    assert service_for(settings, True, said.append, said.append) is None and said == []


def test_the_served_key_names_the_model_the_checker_and_the_cache() -> None:
    a = load_settings()
    assert served_key(a) == served_key(load_settings({"index": {"dir": "elsewhere"}, "retrieval": {"k": 3}}))
    assert served_key(a) != served_key(load_settings({"llm": {"model": "qwen2.5-coder-0.5b"}}))
    assert served_key(a) != served_key(load_settings({"grounding": {"checker": "none"}}))
    assert served_key(a) != served_key(load_settings({"llm": {"slots": 4}}))
