"""What this host offers the runtime, as ``lg info`` reports it.

Read from /proc and /sys only, nothing loaded or mounted: a probe must be cheap and
harmless, so ``lg info`` can run on a host where lg would not work, and say why.
"""

from __future__ import annotations

import os
import platform
import shutil
from dataclasses import dataclass

from . import cgroups

# The programs lg runs at run time, and what each is for; installed from Debian's packages.
PROGRAMS = {
    "git": "git (fsck, gc, push, fetch, serve)",
    "nft": "nftables (published ports, network isolation)",
    "newuidmap": "uidmap (rootless user namespaces)",
    "tini": "tini (--init)",
}


@dataclass(frozen=True)
class Features:
    kernel: str
    arch: str
    cpus: int
    memory: int
    cgroup_version: int
    overlay: bool
    userns: bool
    seccomp: bool
    bpf: bool
    programs: dict[str, str]  # program -> its path, "" when missing


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def _memory() -> int:
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return 0


def probe() -> Features:
    import importlib.util

    seccomp_line = next((line for line in _read("/proc/self/status").splitlines()
                         if line.startswith("Seccomp:")), "")
    return Features(
        kernel=platform.release(),
        arch=platform.machine(),
        cpus=os.cpu_count() or 1,
        memory=_memory(),
        cgroup_version=2 if cgroups.unified() else 1,
        overlay="overlay" in _read("/proc/filesystems").split(),
        userns=_read("/proc/sys/user/max_user_namespaces").strip() not in ("", "0"),
        seccomp=bool(seccomp_line) and importlib.util.find_spec("pyseccomp") is not None,
        bpf=os.path.exists("/proc/sys/net/core/bpf_jit_enable") or os.path.isdir("/sys/fs/bpf"),
        programs={name: shutil.which(name) or "" for name in PROGRAMS},
    )
