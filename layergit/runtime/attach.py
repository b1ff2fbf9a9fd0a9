"""Running a container in the foreground: lg itself is its parent and its terminal.

Output goes to our stdout/stderr and into the container's log; with ``-i`` our
stdin is the container's; with ``-t`` the container gets a pty whose size follows
our terminal, and our terminal is in raw mode meanwhile. Signals sent to lg
(Ctrl-C, SIGTERM, ...) are forwarded to the container (supervise.forward); one
that interrupts lg outside that relay kills the container and records its end.
"""

from __future__ import annotations

import fcntl
import os
import selectors
import signal
import sys
import termios
import tty

from .cgroups import Cgroup, of_container
from .logfile import LOG_NAME, LogWriter, limits
from .process import Stdio, pty_pair, receive_master, spawn, spawn_in
from .spec import Process, Spec
from .state import ContainerDir, State
from .supervise import FORWARDED, exit_code, forward, pump, record_exit


def _copy_winsize(src: int, dst: int) -> None:
    try:
        size = fcntl.ioctl(src, termios.TIOCGWINSZ, b"\0" * 8)
        fcntl.ioctl(dst, termios.TIOCSWINSZ, size)
    except OSError:
        pass


def _streams(tty: bool, interactive: bool):
    """Child stdio and what we relay: (Stdio, fds to close after fork, reads, echo, pty socket)."""
    if tty:
        ours, stdio = pty_pair()
        return stdio, [stdio.pty_socket], {}, {}, ours
    out_r, out_w = os.pipe2(os.O_CLOEXEC)
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    stdin = os.dup(0) if interactive else os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    reads = {out_r: "stdout", err_r: "stderr"}
    return Stdio(stdin, out_w, err_w), [stdin, out_w, err_w], reads, {out_r: 1, err_r: 2}, None


def run_attached(cdir: ContainerDir, spec: Spec, init_binary: str | None, root: str) -> int:
    """Start the container, relay its stdio until it exits; returns its exit code.

    A container on a bridge network is connected by the monitor (which keeps
    netlink loaded and serves published ports) before its command runs.
    """
    bridged = spec.network.bridged
    if bridged or spec.network.container:
        from .client import joined_netns, request
    netns = joined_netns(root, spec) if spec.network.container else None
    cgroup = of_container(cdir, starting=True)
    cgroup.create(spec.resources.memory, spec.resources.cpus, spec.resources.pids,
                      [d.rule() for d in spec.devices])
    stdio, child_fds, reads, echo, pty = _streams(spec.process.tty, spec.process.stdin)

    def connect(child: int) -> None:
        request(root, {"op": "net-attach", "id": cdir.id, "pid": child})

    pid = 0
    try:
        with cdir.lock():
            pid = spawn(spec, stdio, cgroup, connect if bridged else None, init_binary, netns,
                        die_with_parent=True)
            cdir.save_state(State.started(pid))
    except BaseException:
        # Interrupted (Ctrl-C, SIGTERM) or failed: a child forked before that must not run on.
        _kill_child(pid)
        for fd in child_fds + list(reads):
            os.close(fd)
        if pty is not None:
            pty.close()
        cgroup.kill()
        cgroup.remove()
        if bridged:
            request(root, {"op": "net-detach", "id": cdir.id}, start=False)
        raise
    try:
        for fd in child_fds:
            os.close(fd)
        master = _terminal(pty, reads, echo)
        log = LogWriter(cdir.file(LOG_NAME), *limits(spec.log_opts))
        status = _relay(pid, master, reads, echo, spec.process.stdin, log)
    except BaseException:
        # Interrupted outside the relay's signal forwarding: the container ends with us,
        # and its end is recorded now, not read later as "ended with nobody watching".
        record_exit(cdir, cgroup, _kill_child(pid))
        raise
    finally:
        if bridged:
            request(root, {"op": "net-detach", "id": cdir.id}, start=False)
    return record_exit(cdir, cgroup, status).exit_code


def _kill_child(pid: int) -> int:
    """SIGKILL our child ``pid`` (0: none) unless it was reaped already; its wait status.

    A child we have not reaped keeps its pid, so signalling it is safe; once reaped,
    waitpid says so and nothing is signalled.
    """
    status: int = signal.SIGKILL
    if pid:
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
            if not done:
                os.kill(pid, signal.SIGKILL)
                _, status = os.waitpid(pid, 0)
        except ChildProcessError:
            status = signal.SIGKILL
    return status


def exec_attached(container_pid: int, cgroup: Cgroup, process: Process, hostname: str) -> int:
    """Run ``process`` inside a running container (lg exec); returns its exit code."""
    stdio, child_fds, reads, echo, pty = _streams(process.tty, process.stdin)
    try:
        pid = spawn_in(container_pid, process, hostname, stdio, cgroup)
    except BaseException:
        for fd in list(reads):
            os.close(fd)
        raise
    finally:
        for fd in child_fds:
            os.close(fd)
    master = _terminal(pty, reads, echo)
    return exit_code(_relay(pid, master, reads, echo, process.stdin, None))


def _terminal(pty, reads: dict, echo: dict) -> int | None:
    """Take the pty master the container sent, sized like our terminal."""
    if pty is None:
        return None
    master = receive_master(pty)
    reads[master] = "stdout"
    echo[master] = 1
    return master


def _relay(pid: int, master: int | None, reads: dict[int, str], echo: dict[int, int], interactive: bool,
           log: LogWriter | None) -> int:
    """Copy output (and tty input) until ``pid`` exits; returns its wait status."""
    sel = selectors.DefaultSelector()
    pidfd = os.pidfd_open(pid)
    tty_input = master if interactive else None
    _watch(sel, pidfd, reads, tty_input is not None)
    raw_terminal = tty_input is not None and os.isatty(0)
    saved = termios.tcgetattr(0) if raw_terminal else None
    previous = _forward_signals(pid, master)
    try:
        if raw_terminal:
            tty.setraw(0)
        status = _copy_until_exit(sel, pid, tty_input, log, echo)
        _drain(sel, reads, log, echo)
    finally:
        if saved is not None:
            termios.tcsetattr(0, termios.TCSADRAIN, saved)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sel.close()
        os.close(pidfd)
        if log is not None:
            log.close()
        sys.stdout.flush()
    return status


def _watch(sel: selectors.BaseSelector, pidfd: int, reads: dict[int, str], stdin: bool) -> None:
    """Register what the relay waits on: the child's exit, its output, and our stdin for a tty."""
    sel.register(pidfd, selectors.EVENT_READ, "exit")
    for fd, stream in reads.items():
        sel.register(fd, selectors.EVENT_READ, stream)
    if stdin:
        sel.register(0, selectors.EVENT_READ, "stdin")


def _forward_signals(pid: int, master: int | None) -> dict:
    """Pass the signals lg gets on to ``pid`` (a resized terminal resizes its pty); the handlers replaced."""
    previous = {}
    for sig in FORWARDED:
        if sig == signal.SIGWINCH:
            handler = (lambda *_: _copy_winsize(0, master)) if master is not None else signal.SIG_DFL
        else:
            handler = lambda s, _f: forward(pid, s)  # noqa: E731
        previous[sig] = signal.signal(sig, handler)
    return previous


def _copy_until_exit(sel: selectors.BaseSelector, pid: int, tty_input: int | None, log: LogWriter | None,
                     echo: dict[int, int]) -> int:
    """Pump output, and our stdin into the pty master ``tty_input``, until ``pid`` exits; its wait status.

    The pidfd says when: every event of the batch that saw the exit is still served.
    """
    status = None
    while status is None:
        for key, _ in sel.select():
            if key.data == "exit":
                _, status = os.waitpid(pid, 0)
            elif key.data == "stdin":
                data = os.read(0, 4096)
                if not data:
                    sel.unregister(0)
                elif tty_input is not None:
                    os.write(tty_input, data)
            else:
                pump(sel, key, log, echo)
    return status


def _drain(sel: selectors.BaseSelector, reads: dict[int, str], log: LogWriter | None,
           echo: dict[int, int]) -> None:
    """Copy what the container wrote before it exited and is still in the pipes, without blocking:
    its descendants may hold the pipes open."""
    for fd in list(reads):
        if fd in sel.get_map():
            os.set_blocking(fd, False)
            while pump(sel, sel.get_key(fd), log, echo):
                pass
