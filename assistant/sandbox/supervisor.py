"""Runs *inside* the sandbox: applies rlimits, runs the snippet, reports how it ended and its figures.

Its source is passed to `python -I -S -c`, so it must import nothing outside the stdlib and must not rely
on being importable as a module. It exists so that the host learns the snippet's exact wait status (a
shell would fold "killed by signal 9" and "exit(137)" together) and can collect PNGs from the tmpfs before
the mount namespace vanishes. It runs as the unprivileged sandbox uid, like the snippet: the snippet can
kill it, which only loses the report (the host then falls back to bwrap's exit code). It is as limited as
the snippet (the same rlimits, set before the fork) and non-dumpable, so the snippet cannot open its memory
through /proc; ptrace is denied to both by the seccomp filter.

argv: REPORT_FD AS_BYTES CPU_S NPROC FSIZE_BYTES MAX_IMAGES FIGURES_DIR CMD...
Report written to REPORT_FD: "<wait status> <cpu seconds>\n", then per image "<size>\n<bytes>".
"""

import ctypes
import os
import resource
import stat
import sys

PR_SET_DUMPABLE = 4


def _limit_self(mem: int, cpu: int, nproc: int, fsize: int) -> None:
    """Rlimits for the supervisor itself; the snippet inherits them across fork and exec."""
    resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    # Soft limit sends SIGXCPU; the hard limit one second later is SIGKILL for code that ignores it.
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
    resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))


def _not_dumpable() -> None:
    """No core dumps, no ptrace attach, /proc/self/mem unreadable to the snippet (exec resets it there)."""
    if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_DUMPABLE, 0) failed")


def _exec(cmd: list[str]) -> None:
    try:
        os.execv(cmd[0], cmd)
    finally:
        os._exit(127)


def _figures(directory: str, max_images: int, max_bytes: int) -> list[bytes]:
    images: list[bytes] = []
    try:
        names = sorted(name for name in os.listdir(directory) if name.endswith(".png"))
    except OSError:  # the snippet removed or replaced the directory
        return images
    for name in names[:max_images]:
        path = os.path.join(directory, name)
        try:
            info = os.lstat(path)
            if stat.S_ISREG(info.st_mode) and info.st_size <= max_bytes:
                with open(path, "rb") as fh:
                    images.append(fh.read(max_bytes))
        except OSError:  # a leftover child deleted it meanwhile
            continue
    return images


def main() -> None:
    fd, mem, cpu, nproc, fsize, max_images = (int(arg) for arg in sys.argv[1:7])
    figures_dir, cmd = sys.argv[7], sys.argv[8:]
    os.set_inheritable(fd, False)  # the snippet must not write into the report
    os.makedirs(figures_dir, exist_ok=True)
    _not_dumpable()
    _limit_self(mem, cpu, nproc, fsize)
    pid = os.fork()
    if pid == 0:
        _exec(cmd)
    _, status, usage = os.wait4(pid, 0)
    with os.fdopen(fd, "wb") as report:
        report.write(b"%d %.3f\n" % (status, usage.ru_utime + usage.ru_stime))
        for image in _figures(figures_dir, max_images, fsize):
            report.write(b"%d\n" % len(image) + image)


if __name__ == "__main__":
    main()
