"""lg stats and lg top: what a running container uses, and its processes.

CPU % is podman's: CPU time over wall time, times 100 (so 200% is two busy CPUs).
A first reading (``--no-stream``, the first screen) has no earlier one to compare
with, and so is the average since the container started, as podman's; each later
reading covers the time since the one before.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from datetime import datetime, timezone

from ..errors import Conflict, LgError
from ..runtime.cgroups import of_container, v1_hierarchies
from ..runtime.net import NetworkKind, NetworkMode
from ..runtime.state import Registry
from ..runtime.stats import Sample, memory_total, sample
from .repo import Repo


@dataclass(frozen=True)
class StatsRow:
    id: str
    name: str
    running: bool
    cpu_percent: float
    memory: int
    memory_limit: int
    memory_percent: float
    net_rx: int
    net_tx: int
    block_read: int
    block_write: int
    pids: int


def _started(iso: str) -> float:
    try:  # fromisoformat, not strptime: its first call alone costs 15 ms
        return datetime.fromisoformat(iso).replace(tzinfo=timezone.utc).timestamp()
    except ValueError:
        return 0.0


def stats(repo: Repo, refs: list[str], all_: bool, previous: dict[str, Sample]) -> list[StatsRow]:
    """A row per container (the running ones, or ``refs``, or with ``all_`` every one);
    ``previous`` holds each container's last Sample and is updated for the next call."""
    reg = Registry(repo.root)  # not containers.py: its imports would cost more than reading 100 containers
    cdirs = [reg.find(ref) for ref in refs] if refs else [reg.container(cid) for cid in reg.ids()]
    hierarchies = v1_hierarchies()
    host_memory = memory_total()
    rows = []
    for cdir in cdirs:
        try:
            st = cdir.state()
            if not st.running and not (refs or all_):
                continue
            record = cdir.raw_record()
            name = str(record["name"])
            network = NetworkMode.from_json(record["spec"].get("network", "none")).kind
        except (LgError, KeyError, ValueError):
            continue  # removed while we looked, or not a record
        if not st.running:
            rows.append(StatsRow(cdir.id, name, False, 0.0, 0, 0, 0.0, 0, 0, 0, 0, 0))
            continue
        now = sample(of_container(cdir, hierarchies), st.pid,
                     network not in (NetworkKind.HOST, NetworkKind.CONTAINER))
        before = previous.get(cdir.id)
        if before is None:
            cpu_ns, seconds = now.usage.cpu_ns, now.when - _started(st.started_at)
        else:
            cpu_ns, seconds = now.usage.cpu_ns - before.usage.cpu_ns, now.when - before.when
        previous[cdir.id] = now
        limit = now.usage.memory_limit or host_memory
        cpu = 100.0 * cpu_ns / (seconds * 1e9) if seconds > 0 else 0.0
        rows.append(StatsRow(cdir.id, name, True, max(cpu, 0.0), now.usage.memory, limit,
                             100.0 * now.usage.memory / limit if limit else 0.0, now.net_rx, now.net_tx,
                             now.usage.block_read, now.usage.block_write, now.usage.pids))
    return rows


@dataclass(frozen=True)
class Top:
    titles: list[str]
    processes: list[list[str]]


def top(repo: Repo, ref: str, ps_args: list[str]) -> Top:
    """lg top: the host's ``ps`` with the user's options (``-ef`` by default), keeping the
    lines of the container's processes (found in its cgroup), as Docker does."""
    cdir = Registry(repo.root).find(ref)
    st = cdir.state()
    if not st.running:
        raise Conflict(f"container {ref} is not running")
    pids = {str(p) for p in of_container(cdir).pids()}
    try:
        proc = subprocess.run(["ps", *(ps_args or ["-ef"])], capture_output=True, text=True, errors="replace",
                              timeout=30)
    except FileNotFoundError:
        raise LgError("lg top needs ps (Debian package procps)") from None
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines()
        raise LgError(f"ps {' '.join(ps_args)} failed: {lines[0] if lines else proc.returncode}")
    lines = proc.stdout.splitlines()
    titles = lines[0].split() if lines else []
    if "PID" not in titles:
        raise LgError(f"ps {' '.join(ps_args)} prints no PID column")
    at = titles.index("PID")
    processes = []
    for line in lines[1:]:
        fields = line.split(None, len(titles) - 1)
        if len(fields) > at and fields[at] in pids:
            processes.append(fields)
    return Top(titles, processes)
