"""Watching a running container: its output into the log, its end into the state.

The same code serves a foreground ``lg run`` (lg itself is the container's parent:
output also goes to the terminal, signals are forwarded) and the monitor that
parents detached containers. The log itself is runtime/logfile.py's.
"""

from __future__ import annotations

import os
import selectors
import signal
from collections.abc import Callable

from .cgroups import Cgroup
from .logfile import CHUNK, LogWriter
from .state import ContainerDir, State, now_iso

FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT,
             signal.SIGUSR1, signal.SIGUSR2, signal.SIGWINCH)


def exit_code(status: int) -> int:
    """A waitpid status as a shell would report it (128+N for a signal)."""
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


UNKNOWN_EXIT = "the container was adopted by a new monitor after its own died: exit status unknown"


def record_exit(cdir: ContainerDir, cgroup: Cgroup, status: int | None,
                restarting: Callable[[State], bool] | None = None) -> State:
    """Write the final state of a container whose PID 1 ended (``status``: its wait status,
    None when it was not our child to reap); free its cgroup. ``restarting`` (the monitor's
    restart policy) is asked under the same lock, so that a container its policy restarts
    goes straight to "restarting": no reader ever sees it "exited" between two runs."""
    with cdir.lock():
        st = cdir.raw_state()
        st.status = "exited"
        st.exit_code = -1 if status is None else exit_code(status)
        st.error = UNKNOWN_EXIT if status is None else ""
        st.oom_killed = cgroup.oom_killed()
        st.finished_at = now_iso()
        if restarting is not None and cdir.exists() and restarting(st):
            st.status = "restarting"
        if cdir.exists():  # lg rm -f may have removed it already
            cdir.save_state(st)
    cgroup.kill()
    cgroup.remove()
    return st


def pump(sel: selectors.BaseSelector, key, log: LogWriter | None, echo: dict[int, int]) -> bool:
    """Move one chunk from a container stream to the log and/or the terminal; False at EOF."""
    try:
        data = os.read(key.fd, CHUNK)
    except OSError:
        data = b""  # EIO from a pty master once the container side is gone
    if not data:
        sel.unregister(key.fd)
        os.close(key.fd)
        return False
    if log is not None:
        log.write(key.data, data)
    target = echo.get(key.fd)
    if target is not None:
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(target, view):]
            except BlockingIOError:
                continue
            except OSError:
                break
    return True


def _catches(pid: int, sig: int) -> bool:
    """Whether ``pid`` has a handler for ``sig`` (PID 1 ignores signals it does not catch)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("SigCgt:"):
                    return bool(int(line.split()[1], 16) & (1 << (sig - 1)))
    except OSError:
        pass
    return True


def forward(pid: int, sig: int) -> None:
    """Deliver a signal the user sent to lg; one PID 1 would ignore gets its default effect."""
    try:
        if sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT) and not _catches(pid, sig):
            os.kill(pid, signal.SIGKILL)
        else:
            os.kill(pid, sig)
    except ProcessLookupError:
        pass
