"""Hostile snippets for the sandbox: each tries one escape or limit bypass and prints HELD when it failed.

A probe counts as held only when its last line of stdout is exactly HELD (a probe that crashed or was
killed before deciding is not counted as held: the tests then fail and the benchmark reports it). The
old containment tests (files, network, fork bomb, caps...) stay in tests/test_sandbox.py; these are the
bypasses found in issue 12 plus their neighbours, and issue 25's hostile-user cases (memory outside
RLIMIT_AS, figure amplification, one run starving the next), shared by those tests and
`eval.bench.reliability`. A probe that needs the host's view (figures) judges the result itself.
"""

from __future__ import annotations

import textwrap
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from assistant.sandbox import FIGURES_DIR, SandboxLimits, SandboxResult, run_python
from assistant.sandbox.command import CODE_PATH

HELD = "HELD"

_LIBC = """
import ctypes, errno, os
libc = ctypes.CDLL(None, use_errno=True)
def call(name, *args):
    rc = getattr(libc, name)(*args)
    return rc, ctypes.get_errno()
"""


def held(result: SandboxResult) -> bool:
    lines = result.stdout.strip().splitlines()
    return bool(lines) and lines[-1] == HELD


def sandbox_processes() -> int:
    """Host processes running a snippet (any run's); zombies have an empty command line and do not count."""
    count = 0
    for entry in Path("/proc").iterdir():
        try:
            count += entry.name.isdigit() and CODE_PATH.encode() in (entry / "cmdline").read_bytes()
        except OSError:
            continue
    return count


@dataclass(frozen=True)
class Probe:
    """`code` prints HELD when contained. With `alongside`, that snippet runs first in its own sandbox
    and `code` starts once `alongside_procs` snippet processes are up (or after 15 s)."""

    name: str
    code: str
    limits: SandboxLimits | None = None
    judge: Callable[[SandboxResult], bool] = held
    alongside: str | None = None
    alongside_procs: int = 0

    def run(self) -> SandboxResult:
        if self.alongside is None:
            return run_python(textwrap.dedent(self.code), self.limits)
        with ThreadPoolExecutor(1) as pool:
            first = pool.submit(run_python, textwrap.dedent(self.alongside), self.limits)
            deadline = time.monotonic() + 15
            while sandbox_processes() < self.alongside_procs and time.monotonic() < deadline:
                time.sleep(0.1)
            result = run_python(textwrap.dedent(self.code), self.limits)
            first.result()
        return result

    def holds(self) -> bool:
        return self.judge(self.run())


_FIGURE_BOMBS = 16


def _figures_skipped(result: SandboxResult) -> bool:
    """Every sparse 16 MB "PNG" skipped with a reason, nothing returned, and inside the 10 s timeout."""
    bombs = [reason for reason in result.images_skipped if reason.startswith("bomb")]
    return len(bombs) == _FIGURE_BOMBS and not result.images and not result.timed_out


PROBES = [
    Probe(
        "unshare -U -r (nested user namespace, root inside)",
        """
        import subprocess
        r = subprocess.run(["unshare", "-U", "-r", "id", "-u"], capture_output=True, text=True)
        print("HELD" if r.returncode != 0 and r.stdout.strip() != "0" else "ESCAPED: " + r.stdout)
        """,
    ),
    Probe(
        "unshare(CLONE_NEWUSER) syscall",
        _LIBC
        + """
rc, err = call("unshare", 0x10000000)
print("HELD" if rc == -1 and err == errno.EPERM else f"ESCAPED rc={rc} errno={err}")
""",
    ),
    Probe(
        "clone(2) with CLONE_NEWUSER|CLONE_NEWNS",
        _LIBC
        + """
# raw clone(2) with namespace flags and SIGCHLD; the child (if any) exits at once
rc = libc.syscall(56 if os.uname().machine == "x86_64" else 220, 0x10000000 | 0x00020000 | 17, 0, 0, 0, 0)
err = ctypes.get_errno()
if rc == 0:
    os._exit(0)
print("HELD" if rc == -1 and err == errno.EPERM else f"ESCAPED rc={rc} errno={err}")
""",
    ),
    Probe(
        "mount a tmpfs past the /tmp cap",
        """
        import subprocess
        # 20 files of 15 MB: each under the 16 MB file-size rlimit, together past the 128 MB cap
        fill = "for i in $(seq 20); do head -c 15000000 /dev/zero > /tmp/f$i || exit 1; done"
        script = f"mount -t tmpfs -o size=1g none /tmp && {fill} && echo WROTE"
        r = subprocess.run(["unshare", "-U", "-r", "-m", "sh", "-c", script], capture_output=True, text=True)
        print("HELD" if "WROTE" not in r.stdout else "ESCAPED: wrote 300 MB in a private tmpfs")
        """,
    ),
    Probe(
        "mount(2) syscall directly",
        _LIBC
        + """
rc, err = call("mount", b"none", b"/tmp", b"tmpfs", 0, b"size=1g")
print("HELD" if rc == -1 and err == errno.EPERM else f"ESCAPED rc={rc} errno={err}")
""",
    ),
    Probe(
        "/tmp cap holds when filled",
        """
        import os
        written = 0
        try:
            with open("/tmp/fill", "wb", buffering=0) as fh:
                for _ in range(400):
                    written += fh.write(b"\\0" * 2**20)
        except OSError:
            pass
        os.unlink("/tmp/fill")
        print("HELD" if written <= 128 * 2**20 else f"ESCAPED: wrote {written >> 20} MB")
        """,
    ),
    Probe(
        "ptrace(PTRACE_ATTACH) the supervisor (pid 2)",
        _LIBC
        + """
rc, err = call("ptrace", 16, 2, 0, 0)
print("HELD" if rc == -1 and err == errno.EPERM else f"ESCAPED rc={rc} errno={err}")
""",
    ),
    Probe(
        "ptrace(PTRACE_TRACEME) in a child",
        _LIBC
        + """
rc, err = call("ptrace", 0, 0, 0, 0)
print("HELD" if rc == -1 and err == errno.EPERM else f"ESCAPED rc={rc} errno={err}")
""",
    ),
    Probe(
        "process_vm_readv of the supervisor",
        _LIBC
        + """
buf = ctypes.create_string_buffer(8)
class iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]
local = iovec(ctypes.cast(buf, ctypes.c_void_p), 8)
remote = iovec(0x400000, 8)
rc, err = call("process_vm_readv", 2, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)
print("HELD" if rc == -1 and err == errno.EPERM else f"ESCAPED rc={rc} errno={err}")
""",
    ),
    Probe(
        "read the supervisor's memory via /proc/2/mem",
        """
        try:
            with open("/proc/2/mem", "rb") as fh:
                fh.read(1)
            print("ESCAPED: opened /proc/2/mem")
        except OSError:
            print("HELD")
        """,
    ),
    Probe(
        "supervisor is non-dumpable and rlimited",
        """
        limits = open("/proc/2/limits").read()
        as_line = next(line for line in limits.splitlines() if line.startswith("Max address space"))
        try:
            open("/proc/2/environ", "rb").read(1)  # needs ptrace access: refused when non-dumpable
            dumpable = True
        except OSError:
            dumpable = False
        print("HELD" if "unlimited" not in as_line and not dumpable else f"ESCAPED: {as_line} {dumpable=}")
        """,
    ),
    Probe(
        "setns(2)",
        _LIBC
        + """
fd = os.open("/proc/self/ns/user", os.O_RDONLY)  # own namespace: EINVAL unless denied outright
rc, err = call("setns", fd, 0)
print("HELD" if rc == -1 and err == errno.EPERM else f"ESCAPED rc={rc} errno={err}")
""",
    ),
    Probe(
        "keyctl (kernel keyrings)",
        _LIBC
        + """
rc, err = call("syscall", 250 if os.uname().machine == "x86_64" else 219, 0, -3, 0, 0, 0)
print("HELD" if rc == -1 and err == errno.EPERM else f"ESCAPED rc={rc} errno={err}")
""",
    ),
    Probe(
        "bpf(2)",
        _LIBC
        + """
rc, err = call("syscall", 321 if os.uname().machine == "x86_64" else 280, 0, 0, 0)
print("HELD" if rc == -1 and err == errno.EPERM else f"ESCAPED rc={rc} errno={err}")
""",
    ),
    Probe(
        "io_uring_setup (bypasses seccomp for its operations)",
        _LIBC
        + """
params = ctypes.create_string_buffer(120)
rc, err = call("syscall", 425, 4, params)
print("HELD" if rc == -1 and err == errno.EPERM else f"ESCAPED rc={rc} errno={err}")
""",
    ),
    Probe(
        "memfd_create + posix_fallocate past RLIMIT_AS (96 x 16 MB)",
        """
        import os
        held_mb = 0
        try:
            for _ in range(96):
                fd = os.memfd_create("hold")
                os.posix_fallocate(fd, 0, 16 * 2**20)
                held_mb += 16
        except OSError as exc:
            print(exc)
        print("HELD" if held_mb <= 64 else f"ESCAPED: {held_mb} MB held in memfds")
        """,
    ),
    Probe(
        "SysV shared memory past RLIMIT_AS (shmget, shmat, touch, shmdt; 96 x 16 MB)",
        _LIBC
        + """
libc.shmat.restype = ctypes.c_void_p
held_mb = 0
for _ in range(96):
    shmid = libc.shmget(0, 16 * 2**20, 0o1600)  # IPC_PRIVATE, IPC_CREAT | 0600
    if shmid < 0:
        print("shmget", errno.errorcode[ctypes.get_errno()])
        break
    addr = libc.shmat(shmid, None, 0)
    if addr in (None, 2**64 - 1):
        print("shmat", errno.errorcode[ctypes.get_errno()])
        break
    ctypes.memset(addr, 1, 16 * 2**20)
    libc.shmdt(ctypes.c_void_p(addr))
    held_mb += 16
print("HELD" if held_mb <= 64 else f"ESCAPED: {held_mb} MB held in SysV segments")
""",
    ),
    Probe(
        "SysV message queues (kernel memory outside RLIMIT_AS)",
        _LIBC
        + """
rc, err = call("msgget", 0, 0o1600)
print("HELD" if rc == -1 and err == errno.EPERM else f"ESCAPED rc={rc} errno={err}")
""",
    ),
    Probe(
        "socket buffers past RLIMIT_AS (socket pairs filled until no file is left)",
        """
        import socket
        pairs, queued = [], 0
        try:
            while len(pairs) < 20000:
                a, b = socket.socketpair()
                a.setblocking(False)
                pairs.append((a, b))
                try:
                    while True:
                        queued += a.send(bytes(65536))
                except BlockingIOError:
                    pass
        except OSError:
            pass
        print(f"{queued >> 20} MB queued in {len(pairs)} pairs")
        print("HELD" if queued <= 64 * 2**20 else "ESCAPED: socket buffers past the limit")
        """,
    ),
    Probe(
        "POSIX shared memory in /dev/shm",
        """
        try:
            open("/dev/shm/hold", "wb").write(b"x")
            print("ESCAPED: wrote /dev/shm/hold")
        except OSError:
            print("HELD")
        """,
    ),
    Probe(
        "16 sparse 16 MB files with a PNG header as figures",
        f"""
        import os
        for i in range({_FIGURE_BOMBS}):
            with open(f"{FIGURES_DIR}/bomb{{i:02}}.png", "wb") as fh:
                fh.write(b"\\x89PNG\\r\\n\\x1a\\n\\0\\0\\0\\x0dIHDR\\0\\0\\0\\x10\\0\\0\\0\\x10")
                fh.truncate(16 * 2**20)
        print(os.statvfs("/tmp").f_bfree * os.statvfs("/tmp").f_frsize >> 20, "MB of /tmp free")
        """,
        judge=_figures_skipped,
    ),
    Probe(
        "a run holding all its processes does not block the next run",
        """
        import subprocess, sys
        out = subprocess.run([sys.executable, "-c", "print(6 * 7)"], capture_output=True, text=True)
        print("HELD" if out.stdout.strip() == "42" else f"BLOCKED {out.returncode} {out.stderr[-300:]!r}")
        """,
        limits=SandboxLimits(timeout_s=30),
        alongside="""
        import os, time
        children = []
        while len(children) < 500:  # until RLIMIT_NPROC (64) refuses
            try:
                pid = os.fork()
            except OSError:
                break
            if pid == 0:
                time.sleep(8)
                os._exit(0)
            children.append(pid)
        for pid in children:
            os.waitpid(pid, 0)
        """,
        alongside_procs=40,
    ),
    Probe(
        "personality(READ_IMPLIES_EXEC)",
        _LIBC
        + """
rc, err = call("personality", 0x0400000)
query, _ = call("personality", 0xFFFFFFFF)  # the read-only form stays allowed
print("HELD" if rc == -1 and err == errno.EPERM and query >= 0 else f"ESCAPED rc={rc} errno={err} {query=}")
""",
    ),
    *(
        Probe(
            f"{name} syscall",
            _LIBC
            + f"""
number = {numbers}.get(os.uname().machine)  # None: this machine has no such call
rc, err = call("syscall", number, {args}) if number is not None else (-1, errno.EPERM)
print("HELD" if rc == -1 and err == errno.EPERM else f"ESCAPED rc={{rc}} errno={{err}}")
""",
        )
        # arguments an unprivileged process may pass, so only the filter can answer EPERM
        for name, numbers, args in (
            ("modify_ldt", {"x86_64": 154}, "0, 0, 0"),  # read the LDT
            ("fanotify_init", {"x86_64": 300, "aarch64": 262}, "0x200, 0"),  # FAN_REPORT_FID
            ("memfd_secret", {"x86_64": 447, "aarch64": 447}, "0"),
            ("landlock_create_ruleset", {"x86_64": 444, "aarch64": 444}, "0, 0, 1"),  # the ABI version
            ("landlock_restrict_self", {"x86_64": 446, "aarch64": 446}, "-1, 0"),
        )
    ),
    Probe(
        "threads and subprocesses still work under the filter",
        """
        import subprocess, threading
        done = []
        t = threading.Thread(target=lambda: done.append(1))
        t.start(); t.join()
        out = subprocess.run(["python3", "-c", "print(6 * 7)"], capture_output=True, text=True).stdout
        print("HELD" if done == [1] and out.strip() == "42" else f"BROKEN {done} {out!r}")
        """,
    ),
]
