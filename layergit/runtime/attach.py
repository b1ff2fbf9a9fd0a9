"""Running a container in the foreground: lg itself is its parent and its terminal.

Output goes to our stdout/stderr and into the container's log; with ``-i`` our
stdin is the container's; with ``-t`` the container gets a pty whose size follows
our terminal, and our terminal is in raw mode meanwhile. Signals sent to lg
(Ctrl-C, SIGTERM, ...) are forwarded to the container (supervise.forward).
"""

from __future__ import annotations

import fcntl
import os
import selectors
import signal
import sys
import termios
import tty

from .cgroups import Cgroup
from .process import Stdio, spawn
from .spec import Spec
from .state import ContainerDir, State, now_iso, pid_start_time
from .supervise import FORWARDED, LOG_NAME, LogWriter, forward, pump, record_exit


def _copy_winsize(src: int, dst: int) -> None:
    try:
        size = fcntl.ioctl(src, termios.TIOCGWINSZ, b"\0" * 8)
        fcntl.ioctl(dst, termios.TIOCSWINSZ, size)
    except OSError:
        pass


def run_attached(cdir: ContainerDir, spec: Spec, init_binary: str | None) -> int:
    """Start the container, relay its stdio until it exits; returns its exit code."""
    cgroup = Cgroup(cdir.id)
    cgroup.create(spec.resources.memory, spec.resources.cpus, spec.resources.pids)
    interactive = spec.process.stdin
    child_fds: list[int] = []
    reads: dict[int, str] = {}
    echo: dict[int, int] = {}
    if spec.process.tty:
        master, slave = os.openpty()
        if os.isatty(0):
            _copy_winsize(0, master)
        stdio = Stdio(slave, slave, slave, tty=True)
        child_fds.append(slave)
        reads[master] = "stdout"
        echo[master] = 1
    else:
        master = None
        out_r, out_w = os.pipe2(os.O_CLOEXEC)
        err_r, err_w = os.pipe2(os.O_CLOEXEC)
        stdin = os.dup(0) if interactive else os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        stdio = Stdio(stdin, out_w, err_w)
        child_fds += [stdin, out_w, err_w]
        reads.update({out_r: "stdout", err_r: "stderr"})
        echo.update({out_r: 1, err_r: 2})
    try:
        with cdir.lock():
            pid = spawn(spec, stdio, cgroup, init_binary)
            cdir.save_state(State("running", pid, pid_start_time(pid) or 0, started_at=now_iso(), monitor_pid=os.getpid()))
    except BaseException:
        for fd in child_fds + list(reads):
            os.close(fd)
        cgroup.remove()
        raise
    for fd in child_fds:
        os.close(fd)
    return _relay(cdir, cgroup, pid, master, reads, echo, interactive)


def _relay(cdir: ContainerDir, cgroup: Cgroup, pid: int, master: int | None, reads: dict, echo: dict, interactive: bool) -> int:
    log = LogWriter(cdir.file(LOG_NAME))
    sel = selectors.DefaultSelector()
    pidfd = os.pidfd_open(pid)
    sel.register(pidfd, selectors.EVENT_READ, "exit")
    for fd, stream in reads.items():
        sel.register(fd, selectors.EVENT_READ, stream)
    raw_terminal = master is not None and interactive and os.isatty(0)
    saved = termios.tcgetattr(0) if raw_terminal else None
    if master is not None and interactive:
        sel.register(0, selectors.EVENT_READ, "stdin")
    previous = {}
    for sig in FORWARDED:
        if sig == signal.SIGWINCH:
            handler = (lambda *_: _copy_winsize(0, master)) if master is not None else signal.SIG_DFL
        else:
            handler = lambda s, _f: forward(pid, s)  # noqa: E731
        previous[sig] = signal.signal(sig, handler)
    try:
        if raw_terminal:
            tty.setraw(0)
        status = None
        while status is None:
            for key, _ in sel.select():
                if key.data == "exit":
                    _, status = os.waitpid(pid, 0)
                elif key.data == "stdin":
                    data = os.read(0, 4096)
                    if not data:
                        sel.unregister(0)
                    else:
                        os.write(master, data)
                else:
                    pump(sel, key, log, echo)
        for fd in list(reads):
            if fd in sel.get_map():
                os.set_blocking(fd, False)
                while pump(sel, sel.get_key(fd), log, echo):
                    pass
    finally:
        if saved is not None:
            termios.tcsetattr(0, termios.TCSADRAIN, saved)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sel.close()
        os.close(pidfd)
        log.close()
        sys.stdout.flush()
    return record_exit(cdir, cgroup, status).exit_code
