"""What ``lg stats`` reads of a running container: its cgroup's counters (runtime/cgroups.py,
v1 or v2) and its network namespace's interface counters (/proc/PID/net/dev, which
shows the namespace of that process: no setns needed)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from .cgroups import Cgroup, Usage


@dataclass(frozen=True)
class Sample:
    usage: Usage
    net_rx: int
    net_tx: int
    when: float  # time.time() of the reading


def net_io(pid: int) -> tuple[int, int]:
    """Bytes received and sent by every interface of the process's network namespace but
    its loopback (Docker counts the container's own interfaces only)."""
    rx = tx = 0
    try:
        with open(f"/proc/{pid}/net/dev") as f:
            lines = f.read().splitlines()[2:]
    except OSError:
        return 0, 0
    for line in lines:
        name, _, counters = line.partition(":")
        fields = counters.split()
        if name.strip() != "lo" and len(fields) >= 9:
            rx += int(fields[0])
            tx += int(fields[8])
    return rx, tx


def sample(cgroup: Cgroup, pid: int, own_network: bool) -> Sample:
    """One reading; ``own_network`` false (``--network host``, ``container:``) counts no
    network, as the namespace is not the container's."""
    rx, tx = net_io(pid) if own_network else (0, 0)
    return Sample(cgroup.usage(), rx, tx, time.time())


def memory_total() -> int:
    """The host's memory, the limit of a container without one (as Docker shows it)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0
