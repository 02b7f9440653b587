"""Containment battery for the code sandbox: each hostile snippet must leave the host untouched.

Runs real bubblewrap sandboxes. Without bwrap the sandbox tests skip, except under CI=true, where a
missing sandbox is a failure (CI installs bubblewrap, so a skip would hide a broken setup).
"""

from __future__ import annotations

import json
import os
import re
import socket
import struct
import subprocess
import sys
import textwrap
import time
import uuid
import zlib
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from assistant.cli.sandbox_cmd import register
from assistant.sandbox import (
    FIGURES_DIR,
    SandboxLimits,
    SandboxResult,
    SandboxUnavailable,
    check_sandbox,
    run_python,
)
from assistant.sandbox.command import CODE_PATH, explain_setup_failure
from assistant.sandbox.seccomp import DENIED, filter_program
from eval.bench.containment_probes import PROBES, Probe

REPO = Path(__file__).resolve().parents[1]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JSON_KEYS = {"stdout", "stderr", "exit_code", "timed_out", "killed_reason", "duration_s", "truncated"}
JSON_KEYS |= {"images_skipped"}


def png(width: int = 1, height: int = 1, padding: int = 0) -> bytes:
    """A real grey PNG of that size (an ancillary chunk of `padding` bytes makes it as big as wanted)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    pixels = zlib.compress(b"".join(b"\0" + b"\x80" * width for _ in range(height)))
    filler = chunk(b"teXt", b"x" * padding) if padding else b""
    return PNG_SIGNATURE + chunk(b"IHDR", header) + filler + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def sandbox() -> None:
    try:
        check_sandbox()
    except SandboxUnavailable as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI must provide the sandbox, but: {exc}")
        pytest.skip(f"sandbox unavailable on this machine: {exc}")


def run(code: str, **limits: float) -> SandboxResult:
    return run_python(textwrap.dedent(code), SandboxLimits(**limits))


def processes_with(marker: str) -> list[int]:
    """Host pids whose command line contains `marker` (zombies have an empty one and do not count)."""
    hits = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and marker.encode() in (entry / "cmdline").read_bytes():
                hits.append(int(entry.name))
        except OSError:
            continue
    return hits


def test_cannot_read_project_files_or_shadow(sandbox: None) -> None:
    paths = [str(REPO / "pyproject.toml"), "/etc/shadow", str(Path(__file__).resolve())]
    result = run(
        f"""
        for path in {paths!r}:
            try:
                open(path).read()
                print("READ", path)
            except OSError as exc:
                print("DENIED", path, type(exc).__name__)
        """
    )
    assert "READ" not in result.stdout
    assert result.stdout.count("DENIED") == len(paths), result.stderr


def test_writes_outside_tmpfs_do_not_reach_host(sandbox: None, tmp_path: Path) -> None:
    targets = [tmp_path / "escaped.txt", REPO / f"escaped-{uuid.uuid4().hex}.txt"]
    result = run(
        f"""
        import os
        for path in {[str(t) for t in targets]!r} + ["/tmp/inside.txt"]:
            try:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "w") as fh:
                    fh.write("pwned")
                print("WROTE", path)
            except OSError as exc:
                print("DENIED", path, type(exc).__name__)
        """
    )
    assert "WROTE /tmp/inside.txt" in result.stdout, result.stderr  # the tmpfs itself is writable
    for target in targets:
        assert not target.exists()


def test_no_network_to_host_listener(sandbox: None) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        result = run(
            f"""
            import socket
            try:
                socket.create_connection(("127.0.0.1", {port}), timeout=3)
                print("CONNECTED")
            except OSError as exc:
                print("BLOCKED", type(exc).__name__)
            """
        )
        listener.setblocking(False)
        with pytest.raises(BlockingIOError):
            listener.accept()
    assert "BLOCKED" in result.stdout, result.stderr


def test_no_abstract_unix_socket_to_host(sandbox: None) -> None:
    name = f"\0ra-sandbox-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(name)
        listener.listen()
        result = run(
            f"""
            import socket
            try:
                socket.socket(socket.AF_UNIX).connect({name!r})
                print("CONNECTED")
            except OSError as exc:
                print("BLOCKED", type(exc).__name__)
            """
        )
        listener.setblocking(False)
        with pytest.raises(BlockingIOError):
            listener.accept()
    assert "BLOCKED" in result.stdout, result.stderr


def test_fork_bomb_is_contained(sandbox: None) -> None:
    result = run(
        """
        import os
        while True:
            try:
                os.fork()
            except OSError:
                pass
        """,
        timeout_s=3,
        max_procs=16,
    )
    assert result.timed_out
    assert processes_with(CODE_PATH) == []
    assert subprocess.run(["true"], check=False).returncode == 0  # the host can still start processes


def test_memory_cap(sandbox: None) -> None:
    result = run("block = bytearray(4 * 1024**3)", memory_mb=512)
    assert result.exit_code != 0
    assert result.killed_reason == "memory"
    assert "MemoryError" in result.stderr


def test_what_tmp_holds_counts_against_the_memory_limit(sandbox: None) -> None:
    """memory_mb covers /tmp and the address space together: 120 MB in /tmp leave no room for a 400 MB
    block under 512 MB (before, /tmp came on top and the block fitted)."""
    fill = "chunk = b'x' * (15 * 2**20)\nfor i in range(8):\n    open(f'/tmp/f{i}', 'wb').write(chunk)\ndel chunk\n"
    result = run(fill + "block = bytearray(400 * 2**20)\nprint('held')", memory_mb=512, tmp_mb=128)
    assert "MemoryError" in result.stderr and "held" not in result.stdout
    alone = run("block = bytearray(300 * 2**20)\nprint('held')", memory_mb=512, tmp_mb=128)
    assert alone.stdout.strip() == "held"


def test_a_tmp_as_large_as_the_memory_limit_is_refused_in_one_line() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=r"must exceed sandbox\.tmp_mb"):
        SandboxLimits(memory_mb=200, tmp_mb=128)


def test_cpu_cap(sandbox: None) -> None:
    result = run("while True:\n    pass", cpu_s=1, timeout_s=30)
    assert result.killed_reason == "cpu"
    assert not result.timed_out
    assert result.exit_code < 0


def test_wall_timeout_kills_detached_children(sandbox: None) -> None:
    marker = f"ra-sandbox-orphan-{uuid.uuid4().hex}"
    result = run(
        f"""
        import subprocess, sys, time
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", {marker!r}],
                         start_new_session=True)
        print("spawned", flush=True)
        time.sleep(120)
        """,
        timeout_s=3,
    )
    assert "spawned" in result.stdout, result.stderr
    assert result.timed_out and result.killed_reason == "timeout"
    assert processes_with(marker) == []
    assert processes_with(CODE_PATH) == []


def test_output_flood_is_bounded_and_killed(sandbox: None) -> None:
    result = run(
        """
        import sys
        while True:
            sys.stdout.write("x" * 65536)
        """,
        max_output_bytes=10_000,
        timeout_s=60,
    )
    assert result.truncated
    assert result.killed_reason == "output"
    assert len(result.stdout) == 10_000


def test_output_past_cap_is_truncated_without_kill(sandbox: None) -> None:
    result = run("print('y' * 50_000)", max_output_bytes=10_000)
    assert result.exit_code == 0 and result.killed_reason is None
    assert result.truncated
    assert result.stdout == "y" * 10_000


def test_parent_environment_is_not_visible(sandbox: None, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = uuid.uuid4().hex
    monkeypatch.setenv("RA_TEST_SECRET", secret)
    result = run(
        """
        import os
        print(dict(os.environ))
        for path in ("/proc/self/environ", "/proc/1/environ"):
            try:
                print(open(path, "rb").read())
            except OSError as exc:
                print("DENIED", path)
        """
    )
    assert "MPLBACKEND" in result.stdout, result.stderr
    assert secret not in result.stdout + result.stderr


def test_cannot_signal_host_processes(sandbox: None) -> None:
    result = run(
        f"""
        import os, signal
        for pid in ({os.getpid()}, {os.getppid()}, 1):
            try:
                os.kill(pid, signal.SIGKILL)
                print("KILLED", pid)
            except OSError as exc:
                print("FAILED", pid, type(exc).__name__)
        """
    )
    assert result.stdout.count("FAILED") == 3, result.stdout + result.stderr  # and we are still alive


def test_proc_shows_only_sandbox_processes(sandbox: None) -> None:
    result = run("import os\nprint(sorted(int(p) for p in os.listdir('/proc') if p.isdigit()))")
    pids = json.loads(result.stdout)
    assert 0 < len(pids) <= 5
    assert os.getpid() not in pids


def test_runs_as_unprivileged_user_without_project(sandbox: None) -> None:
    result = run("import os\nprint(os.getuid(), os.path.exists(os.path.join(os.getcwd(), 'pyproject.toml')))")
    uid, project_seen = result.stdout.split()
    assert int(uid) not in (0, os.getuid())
    assert project_seen == "False"


def test_run_that_cannot_start_is_a_one_line_error(sandbox: None) -> None:
    """No process left for the snippet: one line saying what to do, not the supervisor's traceback."""
    result = run("print('never')", max_procs=1)
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.startswith("sandbox: cannot start the code (Resource temporarily unavailable)")
    assert "sandbox.max_procs" in result.stderr and result.stderr.count("\n") == 1


def test_figures_are_checked_before_they_are_read(sandbox: None) -> None:
    """Only real PNGs within the caps come back; each other `*.png` is named with its reason, and a FIFO
    or a link among them neither hangs the collection nor is followed."""
    mb = 2**20
    files = {
        "a_good.png": png(),
        "b_over_image_cap.png": png(padding=mb + mb // 2),
        "c_fits.png": png(padding=600_000),
        "d_past_total.png": png(padding=600_000),
        "e_huge_dimensions.png": png()[:16] + struct.pack(">II", 100_000, 100_000) + png()[24:],
        "f_text.png": b"just text",
    }
    result = run(
        f"""
        import os
        for name, data in {files!r}.items():
            open("{FIGURES_DIR}/" + name, "wb").write(data)
        with open("{FIGURES_DIR}/g_sparse.png", "wb") as fh:
            fh.write({png()!r})
            fh.truncate({mb // 2})
        os.mkfifo("{FIGURES_DIR}/h_fifo.png")
        os.symlink("{FIGURES_DIR}/a_good.png", "{FIGURES_DIR}/i_link.png")
        """,
        max_image_mb=1,
        max_images_total_mb=1,
    )
    assert result.ok, result.stderr
    assert result.images == [files["a_good.png"], files["c_fits.png"]]
    reasons = dict(entry.split(": ", 1) for entry in result.images_skipped)
    assert sorted(reasons) == [
        "b_over_image_cap.png",
        "d_past_total.png",
        "e_huge_dimensions.png",
        "f_text.png",
        "g_sparse.png",
        "h_fifo.png",
        "i_link.png",
    ]
    assert reasons["b_over_image_cap.png"] == "1.5 MB, over the 1.0 MB cap per image"
    assert "total cap" in reasons["d_past_total.png"]
    assert reasons["e_huge_dimensions.png"] == "implausible dimensions 100000x100000"
    assert reasons["f_text.png"] == "not a PNG (no signature and IHDR chunk)"
    assert reasons["g_sparse.png"] == "sparse file (0.5 MB long, 4096 bytes stored)"
    assert reasons["h_fifo.png"] == "not a regular file"
    assert reasons["i_link.png"].startswith("unreadable")


def test_figure_bombs_cost_the_host_nothing(sandbox: None, tmp_path: Path) -> None:
    """Issue 25: 16 sparse 16 MB "PNGs" grew `ra sandbox run --figures` to 1.09 GB RSS, wrote 257 MB and
    took 16.7 s past a 10 s timeout. Now they are skipped unread: the real `ra`, its peak RSS measured, and
    the run's own duration (ra's start-up, slow on a loaded machine, is not what is measured)."""
    script = tmp_path / "bombs.py"
    script.write_text(textwrap.dedent(next(p for p in PROBES if "sparse" in p.name).code))
    figures = tmp_path / "figs"
    env = {**os.environ, "RA_CONFIG": str(tmp_path / "none.toml")}
    argv = [sys.executable, "-m", "assistant", "sandbox", "run", str(script), "--figures", str(figures)]
    peak_kib = 0
    with (tmp_path / "stderr").open("wb") as stderr:
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
        # ra's own high-water mark (VmHWM), sampled until it exits: wait4's ru_maxrss would also count the
        # pages of this test process that the child shared before exec (about 1 GB in a full test run)
        while proc.poll() is None:
            try:
                status = Path(f"/proc/{proc.pid}/status").read_text()
                peak_kib = max(peak_kib, int(status.split("VmHWM:")[1].split()[0]))
            except (OSError, IndexError):
                pass
            time.sleep(0.02)
    messages = (tmp_path / "stderr").read_text()
    assert proc.returncode == 0, messages
    assert messages.count("figure skipped: bomb") == 16
    duration = re.search(r"sandbox: exit code 0 in (\d+\.\d+)s", messages)
    assert duration is not None and float(duration[1]) < 5, messages  # 7 s before, unloaded
    assert 0 < peak_kib < 400 * 1024  # 1.09 GB before
    assert sum(path.stat().st_size for path in figures.glob("*")) == 0


def test_numpy_and_print(sandbox: None) -> None:
    result = run("import numpy as np\nprint(float(np.linalg.norm(np.array([3.0, 4.0]))))")
    assert result.ok, result.stderr
    assert result.stdout.strip() == str(float(np.linalg.norm(np.array([3.0, 4.0]))))


def test_matplotlib_figure_comes_back_as_png(sandbox: None) -> None:
    result = run(
        f"""
        import matplotlib.pyplot as plt
        plt.plot([1, 2, 3], [1, 4, 9])
        plt.savefig("{FIGURES_DIR}/plot.png")
        plt.savefig("/tmp/not-a-figure.png")
        open("{FIGURES_DIR}/notes.txt", "w").write("ignored")
        """,
        timeout_s=120,
    )
    assert result.ok, result.stderr
    assert len(result.images) == 1
    assert result.images[0].startswith(PNG_SIGNATURE)
    assert len(result.to_json(include_images=True)["images"]) == 1


def test_exit_code_and_json_shape(sandbox: None) -> None:
    result = run("import sys\nprint('bye')\nsys.exit(3)")
    assert result.exit_code == 3 and result.killed_reason is None and not result.timed_out
    assert set(result.to_json()) == JSON_KEYS


def cli() -> typer.Typer:
    app = typer.Typer()
    app.callback()(lambda: None)
    register(app)
    return app


def test_cli_run_json_reports_code_failure_but_exits_zero(sandbox: None, tmp_path: Path) -> None:
    script = tmp_path / "job.py"
    script.write_text("print('from sandbox')\nraise SystemExit(4)\n")
    outcome = CliRunner().invoke(cli(), ["sandbox", "run", str(script), "--json", "--timeout", "20"])
    assert outcome.exit_code == 0, outcome.output
    payload = json.loads(outcome.stdout)
    assert set(payload) == JSON_KEYS
    assert payload["exit_code"] == 4 and payload["stdout"] == "from sandbox\n"


def test_cli_human_output_and_saved_figures(sandbox: None, tmp_path: Path) -> None:
    script = tmp_path / "job.py"
    image = png()
    code = f"open('{FIGURES_DIR}/a.png', 'wb').write({image!r})\nprint('hello :smile: [red]x[/red]')\n"
    script.write_text(code)
    outcome = CliRunner().invoke(cli(), ["sandbox", "run", str(script), "--figures", str(tmp_path / "figs")])
    assert outcome.exit_code == 0, outcome.output
    assert "hello :smile: [red]x[/red]\n" in outcome.stdout  # printed verbatim
    assert "exit code 0" in outcome.output
    assert (tmp_path / "figs" / "figure_1.png").read_bytes() == image


def test_cli_missing_file_is_one_line_error(tmp_path: Path) -> None:
    outcome = CliRunner().invoke(cli(), ["sandbox", "run", str(tmp_path / "missing.py")])
    assert outcome.exit_code == 1
    assert "cannot read" in outcome.output


def test_missing_bwrap_never_runs_code_unsandboxed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no bwrap, no setpriv
    marker = tmp_path / "ran-unsandboxed"
    with pytest.raises(SandboxUnavailable, match="bubblewrap not found"):
        run_python(f"open({str(marker)!r}, 'w').write('x')")
    with pytest.raises(SandboxUnavailable, match="bubblewrap not found"):
        check_sandbox()
    script = tmp_path / "job.py"
    script.write_text("print('hi')\n")
    outcome = CliRunner().invoke(cli(), ["sandbox", "run", str(script)])
    assert outcome.exit_code == 1 and "apt-get install bubblewrap" in outcome.output
    assert not marker.exists()


def test_userns_failure_message_says_how_to_fix() -> None:
    message = explain_setup_failure("bwrap: No permissions to create new namespace, likely because ...\n")
    assert "unprivileged_userns_clone=1" in message
    assert "\n" not in message


@pytest.mark.parametrize("probe", PROBES, ids=[p.name for p in PROBES])
def test_limit_bypass_probe_is_held(sandbox: None, probe: Probe) -> None:
    """Issue 12's bypasses (nested user namespaces, a private tmpfs past the cap, ptrace of the
    supervisor...) and their neighbours each end with HELD; the last probe checks the filter breaks
    nothing ordinary (threads, subprocesses)."""
    result = probe.run()
    assert probe.judge(result), (result.stdout[-500:], result.stderr[-500:])


def test_seccomp_program_covers_every_denied_call_on_both_architectures() -> None:
    for machine in ("x86_64", "aarch64"):
        program = filter_program(machine)
        # 8-byte instructions: arch check (3) + load (1) + 2 per denied call the machine has
        # + clone3 (2), personality (5) and clone (5) tail
        extra = 2 if machine == "x86_64" else 0  # the x32 ABI guard
        denied = len(DENIED) - (machine == "aarch64")  # no modify_ldt there
        assert len(program) == 8 * (4 + extra + 2 * denied + 12)
    with pytest.raises(SandboxUnavailable, match="architecture"):
        filter_program("sparc64")


def test_sandbox_limits_come_from_settings(
    sandbox: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`[sandbox]` in ra.toml reaches `ra sandbox run`: a 32 MB /tmp cap is enforced."""
    config = tmp_path / "ra.toml"
    config.write_text("[sandbox]\ntmp_mb = 32\n", encoding="utf-8")
    monkeypatch.setenv("RA_CONFIG", str(config))
    script = tmp_path / "fill.py"
    script.write_text(
        "written = 0\ntry:\n    with open('/tmp/f', 'wb', buffering=0) as fh:\n        for _ in range(64):\n"
        "            written += fh.write(b'0' * 2**20)\nexcept OSError:\n    pass\nprint(written >> 20)\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(cli(), ["sandbox", "run", str(script), "--json"])
    assert result.exit_code == 0, result.output
    assert int(json.loads(result.stdout)["stdout"]) < 32
