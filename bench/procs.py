"""Processes: finding lg's monitor, stopping it, and the memory helper processes use.

The container scenarios (7-15) leave long-lived processes behind by design: lg's
per-root monitor (`python3 -m layergit.runtime.monitor ROOT`, which exits 30 s after
its last container) and podman's conmon (one per container). The harness finds them
by their command line naming *this run's* root (never by a broad name) and stops them
by pid at the end of a scenario.

Memory is PSS (proportional set size, /proc/PID/smaps_rollup): a page shared by k
processes counts 1/k to each, so 100 conmons that share their code are not billed 100
times for it, and the sum of PSS over processes is what they add to the host. PSS
depends on what else runs (lg's monitor shares the Python interpreter's pages with
every other Python process on the machine), so RSS is recorded beside it.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass

MONITOR_MODULE = "layergit.runtime.monitor"


@dataclass
class Proc:
    pid: int
    ppid: int
    argv: list[str]
    pidns: str      # the pid namespace (readlink of /proc/PID/ns/pid)

    @property
    def name(self) -> str:
        return os.path.basename(self.argv[0]) if self.argv else f"[{self.pid}]"


def processes() -> list[Proc]:
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            pidns = os.readlink(f"/proc/{pid}/ns/pid")
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile, or a kernel thread
        out.append(Proc(pid, ppid, argv, pidns))
    return out


def host_pidns() -> str:
    """Our own pid namespace: the "host" one the containers' namespaces differ from.
    (Not /proc/1/ns/pid: inside a sandbox even root may not read pid 1's.)"""
    return os.readlink("/proc/self/ns/pid")


def monitors(root: str) -> list[int]:
    """Pids of lg monitors serving ROOT (argv: python -m layergit.runtime.monitor ROOT)."""
    root = os.path.realpath(root)
    found = []
    for p in processes():
        if MONITOR_MODULE in p.argv and p.argv[-1] and os.path.realpath(p.argv[-1]) == root:
            found.append(p.pid)
    return found


def stop(pids: list[int], grace: float = 5.0) -> None:
    """SIGTERM, then SIGKILL what is still there after `grace` seconds."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace
    alive = list(pids)
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = [pid for pid in alive if _alive(pid)]
    for pid in alive:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def memory_kb(pid: int) -> tuple[int, int]:
    """(PSS, RSS) in kB, from /proc/PID/smaps_rollup; (0, 0) if the process is gone."""
    pss = rss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    pss = int(line.split()[1])
                elif line.startswith("Rss:"):
                    rss = int(line.split()[1])
    except OSError:
        pass
    return pss, rss


def helpers_of(marks: list[str]) -> tuple[list[Proc], list[Proc]]:
    """Processes a tool left running, split into (helpers, container processes).

    Helpers: processes in the host's pid namespace whose command line mentions one of
    `marks` (a root directory: lg's monitor names its root, conmon names podman's root
    and run root), and their descendants in the host's pid namespace. Container
    processes: their descendants in other pid namespaces (the containers' own, which
    the density figure leaves out).
    """
    procs = processes()
    host = host_pidns()
    children: dict[int, list[Proc]] = {}
    for p in procs:
        children.setdefault(p.ppid, []).append(p)
    me = os.getpid()
    seeds = [p for p in procs if p.pidns == host and p.pid != me
             and any(m in arg for arg in p.argv for m in marks)
             and not _is_harness(p)]
    helpers: dict[int, Proc] = {}
    contained: dict[int, Proc] = {}
    todo = list(seeds)
    while todo:
        p = todo.pop()
        if p.pid in helpers or p.pid in contained:
            continue
        (helpers if p.pidns == host else contained)[p.pid] = p
        todo.extend(children.get(p.pid, []))
    return list(helpers.values()), list(contained.values())


def _is_harness(p: Proc) -> bool:
    """The harness's own helper processes (bench/helper.py, the shell running a prepare)
    mention the roots too; they are not the tool's."""
    return any(a.endswith("bench/helper.py") for a in p.argv) or (p.name in ("sh", "bash", "hyperfine"))
