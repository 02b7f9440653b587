"""The seccomp filter every snippet runs under, as a classic BPF program handed to `bwrap --seccomp FD`.

Namespaces isolate files and network; the filter closes what namespaces leave open to a process that can
make its own: a nested user namespace would give the snippet full capabilities there, with which it could
mount a tmpfs past the /tmp cap or widen the kernel surface it reaches. So creating namespaces (unshare,
setns, clone with CLONE_NEW*), mounting, tracing or reading other processes' memory, kernel keyrings, eBPF,
io_uring (its operations bypass seccomp) and a few admin calls fail with EPERM. clone3 fails with ENOSYS:
its flags live in memory a filter cannot read, and libc then falls back to clone, whose flags it can.
Memory that RLIMIT_AS does not count is denied too: memfd files (posix_fallocate fills them unmapped) and
SysV shared memory and message queues (a segment outlives its detach). So are calls that widen the
kernel surface for nothing a snippet needs: modify_ldt, fanotify, memfd_secret, landlock, and personality
except its read-only query form (setting it could turn on READ_IMPLIES_EXEC or turn off ASLR for a child).

The program is generated here (no libseccomp needed). Its layout: check the architecture (any other ABI,
e.g. 32-bit calls on x86_64, kills the process), then one compare-and-return per denied call, then the
personality and clone argument tests, then allow.
"""

from __future__ import annotations

import errno
import os
import platform
import struct

from assistant.sandbox.models import SandboxUnavailable

# struct seccomp_data: int nr; u32 arch; u64 instruction_pointer; u64 args[6] (little-endian: low word first)
_NR, _ARCH, _ARG0_LOW = 0, 4, 16
_LD_ABS, _JEQ, _JGE, _JSET, _RET = 0x20, 0x15, 0x35, 0x45, 0x06
_ALLOW, _KILL_PROCESS, _ERRNO = 0x7FFF0000, 0x80000000, 0x00050000
_X32_BIT = 0x40000000
# CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET (NEWTIME's bit is CSIGNAL in clone)
CLONE_NEW_MASK = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000

DENIED = (
    "ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd", "process_madvise", "kcmp",
    "mount", "umount2", "pivot_root", "chroot", "mount_setattr",
    "open_tree", "move_mount", "fsopen", "fsconfig", "fsmount", "fspick",
    "unshare", "setns",
    "keyctl", "add_key", "request_key",
    "bpf", "perf_event_open", "userfaultfd",
    "io_uring_setup", "io_uring_enter", "io_uring_register",
    "name_to_handle_at", "open_by_handle_at",
    "init_module", "finit_module", "delete_module", "kexec_load",
    "quotactl", "swapon", "swapoff", "reboot", "acct", "settimeofday", "clock_settime",
    "memfd_create", "memfd_secret", "shmget", "shmat", "shmctl", "msgget",
    "modify_ldt", "fanotify_init", "landlock_create_ruleset", "landlock_add_rule", "landlock_restrict_self",
)  # fmt: skip
PERSONALITY_QUERY = 0xFFFFFFFF  # personality(0xffffffff) reads the persona without changing it


# Audit architecture, the x32 flag (x86_64 only), and syscall numbers per machine; a denied call a
# machine lacks (modify_ldt on aarch64) has no number there and needs no rule.
_ARCHES: dict[str, tuple[int, bool, dict[str, int]]] = {
    "x86_64": (
        0xC000003E,
        True,
        {
            "ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311, "pidfd_getfd": 438,
            "process_madvise": 440, "kcmp": 312, "mount": 165, "umount2": 166, "pivot_root": 155,
            "chroot": 161, "mount_setattr": 442, "open_tree": 428, "move_mount": 429, "fsopen": 430,
            "fsconfig": 431, "fsmount": 432, "fspick": 433, "unshare": 272, "setns": 308, "keyctl": 250,
            "add_key": 248, "request_key": 249, "bpf": 321, "perf_event_open": 298, "userfaultfd": 323,
            "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
            "name_to_handle_at": 303, "open_by_handle_at": 304, "init_module": 175, "finit_module": 313,
            "delete_module": 176, "kexec_load": 246, "quotactl": 179, "swapon": 167, "swapoff": 168,
            "reboot": 169, "acct": 163, "settimeofday": 164, "clock_settime": 227,
            "memfd_create": 319, "memfd_secret": 447, "shmget": 29, "shmat": 30, "shmctl": 31,
            "msgget": 68, "modify_ldt": 154, "fanotify_init": 300, "landlock_create_ruleset": 444,
            "landlock_add_rule": 445, "landlock_restrict_self": 446,
            "personality": 135, "clone": 56, "clone3": 435,
        },
    ),
    "aarch64": (
        0xC00000B7,
        False,
        {
            "ptrace": 117, "process_vm_readv": 270, "process_vm_writev": 271, "pidfd_getfd": 438,
            "process_madvise": 440, "kcmp": 272, "mount": 40, "umount2": 39, "pivot_root": 41,
            "chroot": 51, "mount_setattr": 442, "open_tree": 428, "move_mount": 429, "fsopen": 430,
            "fsconfig": 431, "fsmount": 432, "fspick": 433, "unshare": 97, "setns": 268, "keyctl": 219,
            "add_key": 217, "request_key": 218, "bpf": 280, "perf_event_open": 241, "userfaultfd": 282,
            "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
            "name_to_handle_at": 264, "open_by_handle_at": 265, "init_module": 105, "finit_module": 273,
            "delete_module": 106, "kexec_load": 104, "quotactl": 60, "swapon": 224, "swapoff": 225,
            "reboot": 142, "acct": 89, "settimeofday": 170, "clock_settime": 112,
            "memfd_create": 279, "memfd_secret": 447, "shmget": 194, "shmat": 196, "shmctl": 195,
            "msgget": 186, "fanotify_init": 262, "landlock_create_ruleset": 444,
            "landlock_add_rule": 445, "landlock_restrict_self": 446,
            "personality": 92, "clone": 220, "clone3": 435,
        },
    ),
}  # fmt: skip


def _insn(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


def filter_program(machine: str | None = None) -> bytes:
    """The compiled filter (struct sock_filter[]) for this machine; SandboxUnavailable where we have none,
    since a snippet never runs with less than the full set of limits."""
    machine = machine or platform.machine()
    if machine not in _ARCHES:
        raise SandboxUnavailable(
            f"no seccomp filter for the {machine} architecture: the sandbox supports x86_64 and aarch64"
        )
    arch, has_x32, numbers = _ARCHES[machine]
    eperm, enosys = _ERRNO | errno.EPERM, _ERRNO | errno.ENOSYS
    prog = [
        _insn(_LD_ABS, _ARCH),
        _insn(_JEQ, arch, jt=1),
        _insn(_RET, _KILL_PROCESS),
        _insn(_LD_ABS, _NR),
    ]
    if has_x32:
        prog += [_insn(_JGE, _X32_BIT, jf=1), _insn(_RET, enosys)]
    for name in DENIED:
        if name in numbers:
            prog += [_insn(_JEQ, numbers[name], jf=1), _insn(_RET, eperm)]
    prog += [
        _insn(_JEQ, numbers["clone3"], jf=1),
        _insn(_RET, enosys),
        _insn(_JEQ, numbers["personality"], jf=4),
        _insn(_LD_ABS, _ARG0_LOW),  # personality takes an unsigned int: the low word is all of it
        _insn(_JEQ, PERSONALITY_QUERY, jt=1),
        _insn(_RET, eperm),
        _insn(_RET, _ALLOW),
        _insn(_JEQ, numbers["clone"], jf=3),
        _insn(_LD_ABS, _ARG0_LOW),
        _insn(_JSET, CLONE_NEW_MASK, jf=1),
        _insn(_RET, eperm),
        _insn(_RET, _ALLOW),
    ]
    return b"".join(prog)


def filter_fd() -> int:
    """The program in an anonymous memory file, positioned at its start, for `bwrap --seccomp FD`."""
    fd = os.memfd_create("seccomp")
    os.write(fd, filter_program())
    os.lseek(fd, 0, os.SEEK_SET)
    return fd
