"""Host memory a hostile snippet can hold through the sandbox (issue 25, case 3): memfd files, SysV shared
memory, a full /tmp, socket buffers and heap, together or apart.

    python -m eval.bench.sandbox_memory [--parts memfd,shm,tmp,sock,heap] [--out docs/bench/sandbox_memory.json]

Samples /proc/meminfo and the snippet's RSS every 50 ms during one `run_python` with the default limits.
`held_mb_peak` is the snippet's RSS plus the rise in shared memory (tmpfs and memfd/SysV pages), the precise
figure; the drop in MemAvailable is printed too but is noisy on a shared machine. Socket buffers appear in
neither: the snippet prints how much it queued. Goal: held <= memory_mb + 64 MB.
"""

from __future__ import annotations

import argparse
import os
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

from eval.bench import write_result
from eval.bench.containment_probes import PROBES


def _probe(prefix: str) -> str:
    """The containment battery's snippet for an attack (one copy of each attack's code)."""
    return textwrap.dedent(next(p for p in PROBES if p.name.startswith(prefix)).code)


PARTS = {  # each part prints what it got before the limit stopped it
    "memfd": _probe("memfd_create"),
    "shm": _probe("SysV shared memory"),
    "tmp": """
n = 0
try:
    for i in range(20):
        with open(f"/tmp/fill{i}", "wb", buffering=0) as fh:
            for _ in range(15): n += fh.write(b"\\1" * 2**20)
except OSError: pass
print("tmp MB", n >> 20)
""",
    "sock": _probe("socket buffers"),
    "heap": """
blocks = []
try:
    while True: blocks.append(bytearray(b"\\1" * (16 * 2**20)))
except MemoryError: pass
print("heap MB", 16 * len(blocks))
""",
}


def _meminfo() -> dict[str, int]:
    info = {}
    for line in Path("/proc/meminfo").read_text().splitlines():
        key, value = line.split(":")
        info[key] = int(value.split()[0]) // 1024
    return info


def _snippet_rss_mb() -> int:
    total = 0
    for pid in os.listdir("/proc"):
        try:
            if pid.isdigit() and b"/sandbox/main.py" in Path(f"/proc/{pid}/cmdline").read_bytes():
                status = Path(f"/proc/{pid}/status").read_text().splitlines()
                total += int(next(x for x in status if x.startswith("VmRSS")).split()[1]) // 1024
        except (OSError, StopIteration):
            pass
    return total


def measure(parts: list[str]) -> dict[str, Any]:
    from assistant.sandbox import SandboxLimits, run_python

    code = "\n".join(PARTS[p] for p in parts) + "\nimport time; time.sleep(3)\nprint('done')\n"
    limits = SandboxLimits(timeout_s=60, cpu_s=60)
    samples: list[tuple[int, int, int]] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            m = _meminfo()
            samples.append((m["MemAvailable"], m["Shmem"], _snippet_rss_mb()))
            time.sleep(0.05)

    base = [_meminfo() for _ in range(5)]
    available = sorted(x["MemAvailable"] for x in base)[2]
    shmem = sorted(x["Shmem"] for x in base)[2]
    sampler = threading.Thread(target=sample)
    sampler.start()
    result = run_python(code, limits)
    stop.set()
    sampler.join()
    held = max(rss + sh - shmem for _, sh, rss in samples)
    return {
        "parts": parts,
        "memory_mb": limits.memory_mb,
        "tmp_mb": limits.tmp_mb,
        "snippet_said": result.stdout.strip().splitlines(),
        "held_mb_peak": held,
        "memavailable_drop_mb_peak": available - min(av for av, _, _ in samples),
        "goal_mb": limits.memory_mb + 64,
        "met": held <= limits.memory_mb + 64,
        "seconds": round(result.duration_s, 1),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parts", default=",".join(PARTS))
    ap.add_argument("--out", type=Path, default=Path("docs/bench/sandbox_memory.json"))
    args = ap.parse_args(argv)
    return write_result(measure(args.parts.split(",")), args.out)


if __name__ == "__main__":
    main()
