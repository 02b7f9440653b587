"""Builds the bubblewrap command line that isolates a snippet, and probes whether it can work here.

Isolation: new pid/net/ipc/uts namespaces, an empty root holding only /usr (+ its /bin, /lib links), the
interpreter's prefixes read-only, a fresh /proc and minimal /dev, and a size-capped tmpfs at /tmp as the
only writable place. The project directory, /etc (but fonts), /home and the caller's environment are never
mapped in. Inside, nothing runs as root, and RLIMIT_NPROC counts only this run's processes, so a run
holding its limit never starves another. Unprivileged, bwrap maps our uid to 65534 in a new user namespace,
where the kernel counts processes per namespace. As root (RLIMIT_NPROC does not bind uid 0) bwrap cannot map
another host uid and an unprivileged bwrap could not bind the interpreter if it lives under /root, so setpriv
drops to a uid of its own for this run, drawn from a range no account uses. Everything inside also runs under
the seccomp filter of `seccomp.py` (no nested namespaces, mounts, ptrace...), which is what keeps the tmpfs
cap and the rlimits binding: without it a nested user namespace could mount its own, uncapped tmpfs.
"""

from __future__ import annotations

import functools
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

from assistant.sandbox.models import SandboxLimits, SandboxUnavailable
from assistant.sandbox.seccomp import filter_fd

SANDBOX_ID = 65534  # "nobody": owns nothing on the host
RUN_UID_BASE = 2_000_000_000  # as root, each run's uid is drawn from [base, base + 2**24)
RUN_UID_SLOTS = 2**24
CODE_PATH = "/sandbox/main.py"
FIGURES_DIR = "/tmp/figures"
_USR_LINKS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
_EXTRA_READ_ONLY = ("/etc/fonts",)  # lets fontconfig (used by matplotlib) load quietly
_SUPERVISOR = (Path(__file__).with_name("supervisor.py")).read_text(encoding="utf-8")
_USERNS_HINT = (
    "enable unprivileged user namespaces (sysctl -w kernel.unprivileged_userns_clone=1, or on Ubuntu "
    "sysctl -w kernel.apparmor_restrict_unprivileged_userns=0)"
)


def sandbox_env() -> dict[str, str]:
    """The whole environment the snippet sees: nothing is inherited, so no secret can leak through it."""
    return {
        "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
        "HOME": "/tmp",
        "LANG": "C.UTF-8",
        "MPLBACKEND": "Agg",
        "MPLCONFIGDIR": "/tmp",
        "XDG_CACHE_HOME": "/tmp/.cache",
        "PYTHONDONTWRITEBYTECODE": "1",
        # One BLAS thread: threads count against RLIMIT_NPROC and each reserves address space.
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }


def _interpreter_roots() -> list[str]:
    """Directories the venv's python needs, outermost only, minus what /usr already provides."""
    candidates = {
        os.path.abspath(path) for path in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix)
    }
    candidates.add(str(Path(sys.executable).resolve().parent))
    roots = sorted(path for path in candidates if not _within(path, ["/usr"]))
    roots = [path for path in roots if not _within(path, [r for r in roots if r != path])]
    cwd = os.getcwd()
    for root in roots:
        if _within(cwd, [root]):
            raise SandboxUnavailable(
                f"the interpreter prefix {root} contains the working directory, so binding it would expose "
                "the project: use a virtual environment outside it, or run from another directory"
            )
    return roots


def _within(path: str, parents: Iterable[str]) -> bool:
    return any(path == parent or path.startswith(parent.rstrip("/") + "/") for parent in parents)


def _ro_bind_with_parents(paths: Iterable[str]) -> list[str]:
    """Bind read-only, creating each parent as 0755 first (bwrap would make it 0700, e.g. /root)."""
    args: list[str] = []
    made = {"/", "/tmp"}
    for path in paths:
        for parent in reversed(Path(path).parents):
            if str(parent) not in made:
                args += ["--perms", "0755", "--dir", str(parent)]
                made.add(str(parent))
        args += ["--ro-bind", path, path]
    return args


@functools.cache
def _bwrap_supports_size(bwrap: str) -> bool:
    help_text = subprocess.run([bwrap, "--help"], capture_output=True, text=True, check=False).stdout
    return "--size" in help_text


def _tools() -> tuple[str, str | None]:
    """bwrap, and setpriv when running as root; a one-line fix when either is missing."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise SandboxUnavailable("bubblewrap not found: install it (apt-get install bubblewrap)")
    if os.geteuid() != 0:
        return bwrap, None
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        raise SandboxUnavailable("setpriv not found: install util-linux (apt-get install util-linux)")
    return bwrap, setpriv


def _bwrap_prefix(limits: SandboxLimits, seccomp_fd: int) -> list[str]:
    """bwrap and its options up to (not including) the `--` before the sandboxed command."""
    bwrap, setpriv = _tools()
    args = [bwrap, "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts"]
    args += ["--seccomp", str(seccomp_fd)]
    args += ["--die-with-parent", "--new-session", "--hostname", "sandbox"]
    if setpriv is None:
        args += ["--unshare-user", "--uid", str(SANDBOX_ID), "--gid", str(SANDBOX_ID)]
    args += ["--ro-bind", "/usr", "/usr"]
    for link in _USR_LINKS:
        if os.path.islink(link):
            args += ["--symlink", os.readlink(link), link]
        elif os.path.isdir(link):
            args += ["--ro-bind", link, link]
    args += ["--proc", "/proc", "--dev", "/dev", "--perms", "1777"]
    if _bwrap_supports_size(bwrap):
        args += ["--size", str(limits.tmp_mb * 2**20)]
    args += ["--tmpfs", "/tmp"]  # before any bind that might land under /tmp
    extras = [path for path in _EXTRA_READ_ONLY if os.path.isdir(path)]
    args += _ro_bind_with_parents([*_interpreter_roots(), *extras])
    return args


def _drop_privileges() -> list[str]:
    """As root: setpriv to a fresh uid, so that RLIMIT_NPROC counts this run alone (a clash of two
    concurrent runs, one in 16 million, would only make them share that count)."""
    _, setpriv = _tools()
    if setpriv is None:
        return []
    uid = RUN_UID_BASE + secrets.randbelow(RUN_UID_SLOTS)
    return [setpriv, f"--reuid={uid}", f"--regid={SANDBOX_ID}", "--clear-groups", "--no-new-privs"]


def sandbox_argv(limits: SandboxLimits, code_fd: int, report_fd: int, seccomp_fd: int) -> list[str]:
    """Full command: bwrap -> setpriv -> supervisor (applies rlimits) -> `python -I` on the snippet."""
    mb = 2**20
    return [
        *_bwrap_prefix(limits, seccomp_fd),
        *["--perms", "0755", "--dir", os.path.dirname(CODE_PATH)],
        *["--perms", "0444", "--ro-bind-data", str(code_fd), CODE_PATH],
        *["--chdir", "/tmp", "--"],
        *_drop_privileges(),
        *[sys.executable, "-I", "-S", "-B", "-c", _SUPERVISOR, str(report_fd)],
        *[str(limits.address_space_mb * mb), str(limits.cpu_s), str(limits.max_procs)],
        *[str(limits.max_file_mb * mb), str(limits.max_open_files), str(limits.max_images)],
        *[str(limits.max_image_mb * mb), str(limits.max_images_total_mb * mb), FIGURES_DIR],
        *[sys.executable, "-I", "-B", "-u", CODE_PATH],
    ]


def explain_setup_failure(stderr: str) -> str:
    """Turn bwrap's complaint into a one-line fix."""
    first = stderr.strip().splitlines()[0] if stderr.strip() else "no message"
    if "namespace" in first or "Operation not permitted" in first or "setting up uid map" in first:
        return f"cannot create a sandbox ({first}): {_USERNS_HINT}"
    return f"cannot create a sandbox ({first}): check that bubblewrap works (bwrap --ro-bind / / true)"


def check_sandbox() -> None:
    """Cheap doctor probe: raises SandboxUnavailable with the fix if a sandbox cannot be built here."""
    seccomp_fd = filter_fd()
    prefix = _bwrap_prefix(SandboxLimits(), seccomp_fd)
    argv = [*prefix, "--", *_drop_privileges(), sys.executable, "-I", "-S", "-c", ""]
    try:
        proc = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=30,
            env=sandbox_env(),
            check=False,
            pass_fds=(seccomp_fd,),
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        message = f"cannot run bubblewrap ({exc}): reinstall it (apt-get install bubblewrap)"
        raise SandboxUnavailable(message) from exc
    finally:
        os.close(seccomp_fd)
    if proc.returncode != 0:
        raise SandboxUnavailable(explain_setup_failure(proc.stderr))
