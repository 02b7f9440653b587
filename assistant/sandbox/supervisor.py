"""Runs *inside* the sandbox: applies rlimits, runs the snippet, reports how it ended and its figures.

Its source is passed to `python -I -S -c`, so it must import nothing outside the stdlib and must not rely
on being importable as a module. It exists so that the host learns the snippet's exact wait status (a
shell would fold "killed by signal 9" and "exit(137)" together) and can collect PNGs from the tmpfs before
the mount namespace vanishes. It runs as the unprivileged sandbox uid, like the snippet: the snippet can
kill it, which only loses the report (the host then falls back to bwrap's exit code). It is as limited as
the snippet (the same rlimits, set before the fork) and non-dumpable, so the snippet cannot open its memory
through /proc; ptrace is denied to both by the seccomp filter.

Figures are checked before they are read, since the snippet controls them: a sparse file or a header
claiming a huge image costs the host memory and time when read, copied and saved. Only regular files whose
stored blocks cover their size, under the per-image and total caps, with a PNG signature and an IHDR of
plausible dimensions come back; every other `*.png` gets a one-line reason instead.

If the snippet cannot be started (no process left under RLIMIT_NPROC), one line on stderr says so and the
supervisor exits 1 without a report, rather than a traceback.

argv: REPORT_FD AS_BYTES CPU_S NPROC FSIZE_BYTES NOFILE MAX_IMAGES IMAGE_BYTES TOTAL_BYTES FIGURES_DIR CMD...
Report written to REPORT_FD: "<wait status> <cpu seconds>\n", then per image "<size>\n<bytes>" and per
skipped file "-<name>: <reason>\n".
"""

import ctypes
import os
import resource
import stat
import struct
import sys

PR_SET_DUMPABLE = 4
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
IHDR = b"\x00\x00\x00\x0dIHDR"  # the first chunk: length 13, then width and height (big-endian)
MAX_SIDE = 16384
MAX_PIXELS = 2**26
NO_PROCESS_HINT = "raise sandbox.max_procs, or end the processes it left running"


def _limit_self(mem: int, cpu: int, nproc: int, fsize: int, nofile: int) -> None:
    """Rlimits for the supervisor itself; the snippet inherits them across fork and exec. Open files are
    capped because each socket or pipe can queue buffers in kernel memory that RLIMIT_AS does not see
    (9998 socket pairs held 2.2 GB under the inherited limit of 20000 files)."""
    resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    # Soft limit sends SIGXCPU; the hard limit one second later is SIGKILL for code that ignores it.
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
    resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
    resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))


def _not_dumpable() -> None:
    """No core dumps, no ptrace attach, /proc/self/mem unreadable to the snippet (exec resets it there)."""
    if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_DUMPABLE, 0) failed")


def _exec(cmd: list[str]) -> None:
    try:
        os.execv(cmd[0], cmd)
    except OSError as exc:
        _say(f"cannot start the code ({exc.strerror}): {NO_PROCESS_HINT}")
    finally:
        os._exit(127)


def _say(message: str) -> None:
    os.write(2, f"sandbox: {message}\n".encode())


def _mb(size: int) -> str:
    return f"{size / 2**20:.1f} MB"


def _png_problem(head: bytes) -> str | None:
    """Why these first 24 bytes are not a PNG worth returning; None when they are."""
    if len(head) < 24 or not head.startswith(PNG_SIGNATURE) or head[8:16] != IHDR:
        return "not a PNG (no signature and IHDR chunk)"
    width, height = struct.unpack(">II", head[16:24])
    if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE and width * height <= MAX_PIXELS):
        return f"implausible dimensions {width}x{height}"
    return None


def _read_png(path: str, max_bytes: int, budget: int) -> bytes | str:
    """The file's bytes, or why it is skipped. Opened without following links or blocking on a FIFO,
    and judged on the opened file, so a swap after listing changes nothing."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return "not a regular file"
        if info.st_size > max_bytes:
            return f"{_mb(info.st_size)}, over the {_mb(max_bytes)} cap per image"
        if info.st_blocks * 512 < info.st_size:
            return f"sparse file ({_mb(info.st_size)} long, {info.st_blocks * 512} bytes stored)"
        if info.st_size > budget:
            return f"{_mb(info.st_size)}, past what is left of the total cap for images"
        data = os.read(fd, info.st_size)
    finally:
        os.close(fd)
    return _png_problem(data[:24]) or data


def _figures(directory: str, max_images: int, max_bytes: int, total: int) -> tuple[list[bytes], list[str]]:
    images: list[bytes] = []
    skipped: list[str] = []
    try:
        names = sorted(name for name in os.listdir(directory) if name.endswith(".png"))
    except OSError:  # the snippet removed or replaced the directory
        return images, skipped
    for name in names[:max_images]:
        label = ascii(name)[1:-1][:80]
        try:
            outcome = _read_png(os.path.join(directory, name), max_bytes, total)
        except OSError as exc:  # a leftover child deleted it meanwhile, or a link
            outcome = f"unreadable ({exc.strerror})"
        if isinstance(outcome, str):
            skipped.append(f"{label}: {outcome}")
        else:
            images.append(outcome)
            total -= len(outcome)
    if len(names) > max_images:
        skipped.append(f"{len(names) - max_images} more .png files past the first {max_images}")
    return images, skipped


def main() -> None:
    fd, mem, cpu, nproc, fsize, nofile = (int(arg) for arg in sys.argv[1:7])
    max_images, image_bytes, total_bytes = (int(arg) for arg in sys.argv[7:10])
    figures_dir, cmd = sys.argv[10], sys.argv[11:]
    os.set_inheritable(fd, False)  # the snippet must not write into the report
    os.makedirs(figures_dir, exist_ok=True)
    _not_dumpable()
    _limit_self(mem, cpu, nproc, fsize, nofile)
    try:
        pid = os.fork()
    except OSError as exc:
        _say(f"cannot start the code ({exc.strerror}): {NO_PROCESS_HINT}")
        sys.exit(1)
    if pid == 0:
        _exec(cmd)
    _, status, usage = os.wait4(pid, 0)
    images, skipped = _figures(figures_dir, max_images, image_bytes, total_bytes)
    with os.fdopen(fd, "wb") as report:
        report.write(b"%d %.3f\n" % (status, usage.ru_utime + usage.ru_stime))
        for image in images:
            report.write(b"%d\n" % len(image) + image)
        for reason in skipped:
            report.write(b"-%s\n" % reason.encode())


if __name__ == "__main__":
    main()
