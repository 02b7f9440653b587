"""Hostile snippets for the sandbox: each tries one escape or limit bypass and prints HELD when it failed.

A probe counts as held only when its last line of stdout is exactly HELD (a probe that crashed or was
killed before deciding is not counted as held: the tests then fail and the benchmark reports it). The
old containment tests (files, network, fork bomb, caps...) stay in tests/test_sandbox.py; these are the
bypasses found in issue 12 plus their neighbours, shared by those tests and `eval.bench.reliability`.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

from assistant.sandbox import SandboxLimits, SandboxResult, run_python

HELD = "HELD"

_LIBC = """
import ctypes, errno, os
libc = ctypes.CDLL(None, use_errno=True)
def call(name, *args):
    rc = getattr(libc, name)(*args)
    return rc, ctypes.get_errno()
"""


@dataclass(frozen=True)
class Probe:
    name: str
    code: str

    def run(self, limits: SandboxLimits | None = None) -> SandboxResult:
        return run_python(textwrap.dedent(self.code), limits)


def held(result: SandboxResult) -> bool:
    lines = result.stdout.strip().splitlines()
    return bool(lines) and lines[-1] == HELD


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
