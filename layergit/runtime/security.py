"""Capabilities, no_new_privs and the default seccomp filter (child side).

Docker's default capability set is kept in the bounding, permitted and effective
sets of a root process (the inheritable and ambient sets are empty); a non-root user
gets none effective (as with Docker) but setuid programs such as sudo can still gain
the bounded set, unless
``no_new_privileges`` is set. The seccomp filter denies, with EPERM, the calls a
container has no business making (mount, namespaces, kernel modules, keyrings,
reboot, ...), on top of what the missing capabilities already prevent; it is built
with libseccomp through the pyseccomp binding. docs/seccomp.md compares it with
Docker's default profile call by call and gives the reason for each entry.
"""

from __future__ import annotations

import errno
import os

from ..errors import UsageError
from . import syscalls

CAPS = [
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP",
    "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER",
    "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE",
    "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP",
    "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF",
    "CHECKPOINT_RESTORE",
]
CAP_NUMBER = {name: i for i, name in enumerate(CAPS)}

DEFAULT_CAPS = [
    "CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID", "SETUID", "SETFCAP",
    "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE",
]

DENIED_SYSCALLS = [
    "acct", "add_key", "bpf", "clock_settime", "create_module", "delete_module",
    "fanotify_init", "finit_module", "fsconfig", "fsmount", "fsopen", "fspick", "get_kernel_syms",
    "get_mempolicy", "init_module", "ioperm", "io_uring_enter", "io_uring_register", "io_uring_setup", "iopl",
    "kcmp", "kexec_file_load", "kexec_load", "keyctl", "lookup_dcookie", "mbind", "migrate_pages", "mount",
    "mount_setattr", "move_mount", "move_pages", "name_to_handle_at", "nfsservctl", "open_by_handle_at",
    "open_tree", "perf_event_open", "pidfd_getfd", "pivot_root", "process_madvise", "process_vm_readv",
    "process_vm_writev", "query_module", "quotactl", "quotactl_fd", "reboot", "request_key",
    "set_mempolicy", "set_mempolicy_home_node", "setns", "settimeofday", "stime", "swapoff", "swapon",
    "sysfs", "_sysctl", "syslog", "umount", "umount2", "unshare", "uselib", "userfaultfd", "ustat", "vm86",
    "vm86old",
]
# socket(2) families Docker's profile refuses: the kernel's crypto API (AF_ALG, a long line of kernel
# bugs) and host<->guest sockets (AF_VSOCK, a way out to the hypervisor). The kernel reads the family as
# an int, so only the low 32 bits are compared.
DENIED_SOCKET_FAMILIES = (38, 40)
# personality(2) values Docker's profile allows: PER_LINUX, UNAME26, PER_LINUX32, both, and the query.
ALLOWED_PERSONAS = (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF)
_NAMESPACE_FLAGS = (
    syscalls.CLONE_NEWNS, syscalls.CLONE_NEWUTS, syscalls.CLONE_NEWIPC, syscalls.CLONE_NEWUSER,
    syscalls.CLONE_NEWPID, syscalls.CLONE_NEWNET, syscalls.CLONE_NEWCGROUP,
)


def capability_set(add: list[str], drop: list[str]) -> list[str]:
    """Docker's default set with --cap-add/--cap-drop applied (ALL allowed in both)."""

    def norm(name: str) -> str:
        name = name.upper()
        name = name[4:] if name.startswith("CAP_") else name
        if name != "ALL" and name not in CAP_NUMBER:
            raise UsageError(f"unknown capability {name!r}")
        return name

    caps = set(DEFAULT_CAPS)
    dropped = {norm(c) for c in drop}
    caps = set() if "ALL" in dropped else caps - dropped
    added = {norm(c) for c in add}
    caps |= set(CAPS) if "ALL" in added else added
    return sorted(caps, key=CAP_NUMBER.__getitem__)


def _last_cap() -> int:
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except OSError:
        return len(CAPS) - 1


def drop_bounding(keep: list[str]) -> list[str]:
    """Remove every capability not in ``keep`` from the bounding set (needs SETPCAP).

    Returns the capabilities of ``keep`` that the bounding set still holds: lg may
    itself run without some (a confined host, a container), and ``--cap-add ALL``
    means all that lg can give, not a capset the kernel refuses.
    """
    wanted = {CAP_NUMBER[c] for c in keep}
    held = []
    for cap in range(_last_cap() + 1):
        if cap not in wanted:
            syscalls.prctl(syscalls.PR_CAPBSET_DROP, cap)
        elif syscalls.prctl(syscalls.PR_CAPBSET_READ, cap):
            held.append(CAPS[cap])
    return held


def set_process_caps(keep: list[str]) -> None:
    """Restrict effective and permitted to ``keep`` (after the uid switch); inheritable
    and ambient empty.

    An inheritable set would let a file's inheritable capabilities raise a non-root
    program's permitted set at exec (CVE-2022-24769; Docker and podman give none).
    Root loses nothing by it: at exec root gets its bounding set whatever it inherits.
    """
    mask = 0
    for c in keep:
        mask |= 1 << CAP_NUMBER[c]
    syscalls.prctl(syscalls.PR_CAP_AMBIENT, syscalls.PR_CAP_AMBIENT_CLEAR_ALL)
    syscalls.capset(mask, mask, 0)


def no_new_privileges() -> None:
    syscalls.prctl(syscalls.PR_SET_NO_NEW_PRIVS, 1)


def seccomp_profile(cache_dir: str) -> str:
    """A file holding the default filter as a BPF program: allow all but the calls above (EPERM).

    libseccomp compiles it once per architecture and filter version; the program is
    cached under ``cache_dir`` so that starting a container neither imports the
    binding nor runs the two ldconfig lookups that importing it costs. The file name
    carries a CRC of the rules (a new rule set gets a new file); CRC rather than a
    cryptographic hash, whose import alone (OpenSSL) costs ~3 ms of every start.
    """
    import zlib

    rules = (DENIED_SYSCALLS, _NAMESPACE_FLAGS, DENIED_SOCKET_FAMILIES, ALLOWED_PERSONAS)
    version = f"{zlib.crc32(repr(rules).encode()):08x}"
    path = os.path.join(cache_dir, f"seccomp-{os.uname().machine}-{version}.bpf")
    if not os.path.exists(path):
        os.makedirs(cache_dir, exist_ok=True)
        tmp = f"{path}.{os.getpid()}"
        with open(tmp, "wb") as f:
            _build_filter().export_bpf(f)
        os.replace(tmp, path)
    return path


def persona_denials() -> list[tuple[int, int]]:
    """The personality(2) values outside ALLOWED_PERSONAS, as (mask, value) pairs of masked equalities.

    Unusual personas switch off ASLR (ADDR_NO_RANDOMIZE), make data executable (READ_IMPLIES_EXEC) or
    map page zero (MMAP_PAGE_ZERO); Docker allows only the five values. A libseccomp rule compares an
    argument once and a denylist cannot say "none of these", so the refused values are split: with bit 0
    set (no allowed persona has it) by the lowest clear bit k (bits 0..k-1 set, bit k clear: never the
    query, which has none clear); with bit 0 clear, by any bit the allowed personas never set. The kernel
    reads the argument as an unsigned int: the masks cover the low 32 bits only.
    """
    used = 0
    for persona in ALLOWED_PERSONAS[:-1]:
        used |= persona
    rules = [((1 << (k + 1)) - 1, (1 << k) - 1) for k in range(1, 32)]
    return rules + [((1 << bit) | 1, 1 << bit) for bit in range(1, 32) if not used >> bit & 1]


def _build_filter():
    import pyseccomp as seccomp

    f = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
    for name in DENIED_SYSCALLS:
        try:
            f.add_rule(seccomp.ERRNO(errno.EPERM), name)
        except (ValueError, RuntimeError, OSError):
            continue  # not a system call on this architecture
    for flag in _NAMESPACE_FLAGS:
        f.add_rule(seccomp.ERRNO(errno.EPERM), "clone", seccomp.Arg(0, seccomp.MASKED_EQ, flag, flag))
    eperm = seccomp.ERRNO(errno.EPERM)
    for family in DENIED_SOCKET_FAMILIES:
        f.add_rule(eperm, "socket", seccomp.Arg(0, seccomp.MASKED_EQ, 0xFFFFFFFF, family))
    for mask, value in persona_denials():
        f.add_rule(eperm, "personality", seccomp.Arg(0, seccomp.MASKED_EQ, mask, value))
    # clone3 passes its flags in memory a filter cannot read: make libc fall back to clone.
    f.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
    return f


def read_seccomp(path: str) -> bytes:
    """The program, read before pivot_root (the file is on the host)."""
    with open(path, "rb") as f:
        return f.read()


def load_seccomp(program: bytes) -> None:
    syscalls.seccomp_load(program)
