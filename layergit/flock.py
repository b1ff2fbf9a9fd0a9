"""File locks (flock) that every layer uses: the store, containers, networks, the monitor.

flock locks die with their process, so a killed lg never leaves a lock held, as
long as no child outlives it with a copy of the lock's fd: a forked child shares
the lock (the open file description), whatever its pid. lg's forked children
(a container's first process, a build step's runner) die with lg until they exec,
and exec closes every lock fd (all are close-on-exec), but where a child is meant
to hold the lock on: the git gc that lg gc runs (porcelain.maintenance).

Nobody waits long without knowing why: a wait with a ``timeout`` gives up with one
line naming who holds the lock; one without, on a lock that can be held for long
(the store's), says once through ``on_wait`` (the CLI prints it) whom it waits
for. Holders are found in /proc/locks by the lock file's inode, and, where the
process that took the lock has died and a child holds it on, in /proc/PID/fdinfo.
"""

from __future__ import annotations

import fcntl
import os
import time
from contextlib import contextmanager
from typing import Callable

from .errors import LgError

on_wait: Callable[[str], None] | None = None  # told once when a lock must be waited for


class LockTimeout(LgError):
    """A lock still held by someone else after the time we were willing to wait."""


@contextmanager
def locked(path: str, shared: bool = False, timeout: float | None = None, purpose: str = "", hint: str = ""):
    """Hold an flock on ``path`` (created if needed) for the block; yields its fd.

    Uncontended, this costs one non-blocking flock. Contended: with ``timeout``
    (seconds), poll until then and raise LockTimeout naming the holders; without,
    block, having told ``on_wait`` whom we wait for if the lock has a ``purpose``
    (locks held for milliseconds, a container's or the networks', have none: their
    waits are not worth a line). ``hint`` ends the timeout's message.
    """
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
        except BlockingIOError:
            _wait(fd, path, mode, timeout, purpose, hint)
        yield fd
    finally:
        os.close(fd)


def _wait(fd: int, path: str, mode: int, timeout: float | None, purpose: str, hint: str) -> None:
    if timeout is None:
        if on_wait is not None and purpose:
            on_wait(f"waiting for {_names(holders(fd)) or 'another process'} to finish {purpose}")
        fcntl.flock(fd, mode)
        return
    deadline = time.monotonic() + timeout
    pause = 0.01
    while True:
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                break
        time.sleep(min(pause, max(deadline - time.monotonic(), 0)))
        pause = min(pause * 2, 0.1)
    who = _names(holders(fd)) or "another process"
    tail = f"; {hint}" if hint else ""
    raise LockTimeout(f"{purpose or path} is busy: {who} still holds {path} after {timeout:g} s{tail}")


def holders(fd: int) -> list[int]:
    """Live pids holding a lock on the file open at ``fd`` (other than us)."""
    from . import procstat  # only a contended lock asks who holds it: not every command's start-up

    st = os.fstat(fd)
    key = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    lockers = set()
    try:
        with open("/proc/locks") as f:
            for line in f:
                fields = line.split()
                if len(fields) > 5 and fields[1] != "->" and fields[5] == key:  # "->" marks a waiter
                    lockers.add(int(fields[4]))
    except (OSError, ValueError):
        pass
    me = os.getpid()
    alive = sorted(p for p in lockers if p != me and procstat.alive(p))
    if alive or not lockers - {me}:
        return alive
    return _sharing(st, me)  # the locker died; a child it forked holds the lock on


def _sharing(st: os.stat_result, me: int) -> list[int]:
    """Processes with an fd on the file of ``st`` whose open file description holds a lock."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            for fdname in os.listdir(f"/proc/{entry}/fd"):
                s = os.stat(f"/proc/{entry}/fd/{fdname}")
                if (s.st_dev, s.st_ino) != (st.st_dev, st.st_ino):
                    continue
                with open(f"/proc/{entry}/fdinfo/{fdname}") as f:
                    if any(line.startswith("lock:") for line in f):
                        found.append(int(entry))
                        break
        except OSError:
            continue
    return found


def describe(pid: int) -> str:
    """``lg gc (pid 123)``: a process as a user would recognise it.

    Any user's process may hold a lock lg waits for, and its command line is
    whatever that user chose, escape sequences included: it is printed through
    :func:`layergit.text.printable`.
    """
    from .text import printable

    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = [a.decode("utf-8", "surrogateescape") for a in f.read().split(b"\0")[:-1]]
    except OSError:
        argv = []
    python = bool(argv) and os.path.basename(argv[0]).startswith("python")
    if python and argv[1:3] == ["-m", "cli"]:
        argv = ["lg", *argv[3:]]
    elif python and len(argv) >= 2 and os.path.basename(argv[1]) == "lg":
        argv = ["lg", *argv[2:]]
    elif argv:
        argv[0] = os.path.basename(argv[0])
    text = printable(" ".join(" ".join(argv).split())) or "?"  # one line, whatever the arguments hold
    if len(text) > 60:
        text = text[:57]
        escape = text.rfind("\\")
        if escape >= len(text) - 3:  # never end inside an escape (\x1b cut to \x1)
            text = text[:escape]
        text += "..."
    return f"{text} (pid {pid})"


def _names(pids: list[int]) -> str:
    shown = ", ".join(describe(p) for p in pids[:3])
    return shown + (f" and {len(pids) - 3} more" if len(pids) > 3 else "")
