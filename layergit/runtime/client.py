"""Talking to a root's monitor (runtime.monitor) from lg: start it if needed, one request.

Kept apart from the monitor itself so that ``lg run -d`` and ``lg start`` import a
socket and json, not the monitor's event loop, port proxy and netlink code.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from typing import Literal, overload

from ..errors import ExitCode, LgError
from ..pyexec import module_argv, module_env
from ..root import Root
from .spec import Spec


def _connect(sock_path: str) -> socket.socket | None:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(sock_path)
        return s
    except OSError:
        s.close()
        return None


MONITOR_LOG_MAX = 1 << 20  # bytes of monitor.log a new monitor appends to; beyond, it starts afresh


def _rotate(layout: Root) -> None:
    """Move a monitor.log over MONITOR_LOG_MAX aside (replacing the one moved before).

    Every monitor of the root appends to it for as long as the root is used: moved
    aside at a start, it and its predecessor hold at most what one monitor wrote plus
    MONITOR_LOG_MAX. A monitor still writing to the moved file (one that is quitting
    as this one starts) writes to monitor.log.old, where its lines belong.
    """
    try:
        if os.stat(layout.monitor_log).st_size > MONITOR_LOG_MAX:
            os.replace(layout.monitor_log, layout.monitor_log_old)
    except FileNotFoundError:
        pass


def _spawn_monitor(root: str, layout: Root) -> None:
    os.makedirs(layout.run, exist_ok=True)
    _rotate(layout)
    with open(layout.monitor_log, "ab") as log:
        subprocess.Popen(
            module_argv("layergit.runtime.monitor", root), env=module_env(),
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True, close_fds=True,
        )


def resume(root: str) -> bool:
    """Start a monitor if containers are marked as supervised and none runs (the last one
    was killed): it adopts them (runtime/monitor.py). Costs a listdir when nothing is
    marked, and a lock probe otherwise. True if a monitor was started."""
    import fcntl

    layout = Root(root)
    if not layout.supervises():
        return False
    try:
        fd = os.open(layout.monitor_lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False  # a monitor lives
    finally:
        os.close(fd)  # releases the probe's lock: the monitor we start takes it
    _spawn_monitor(root, layout)
    return True


def joined_netns(root: str, spec: Spec) -> str | None:
    """For ``--network container:ID``: the network namespace of that running container."""
    if not spec.network.container:
        return None
    from .state import Registry

    target = Registry(Root(root)).find(spec.network.container)
    st = target.state()
    if not st.running:
        raise LgError(f"cannot join the network of {spec.network.container}: it is not running")
    return f"/proc/{st.pid}/ns/net"


def refused(reply: dict, default: str = "the container monitor refused") -> LgError:
    """The error a refusal (``{"ok": false, "error": MESSAGE, "code": EXIT_CODE}``) stands for:
    the monitor's message, exiting with its code (a reply without one: lg's own failure)."""
    error = LgError(reply.get("error") or default)
    error.exit_code = reply.get("code", ExitCode.RUN_FAILED)
    return error


# A reply always comes when the monitor may be started; without that, None when none runs.
@overload
def request(root: str, message: dict, timeout: float = ..., start: Literal[True] = ...,
            check: bool = ...) -> dict: ...


@overload
def request(root: str, message: dict, timeout: float = ..., *, start: bool,
            check: bool = ...) -> dict | None: ...


def request(root: str, message: dict, timeout: float = 60.0, start: bool = True,
            check: bool = True) -> dict | None:
    """Send one request to the root's monitor, starting the monitor if needed (and allowed).

    A refusal raises (``refused``) unless ``check`` is false: then the caller, which
    has something to undo first, raises ``refused(reply)`` itself.
    """
    layout = Root(root)
    conn = _connect(layout.monitor_sock)
    if conn is None and not start:
        return None
    if conn is None:
        _spawn_monitor(root, layout)
        deadline = time.monotonic() + 10
        while conn is None and time.monotonic() < deadline:
            time.sleep(0.01)
            conn = _connect(layout.monitor_sock)
        if conn is None:
            raise LgError(f"could not start the container monitor (see {layout.monitor_log})")
    with conn:
        conn.settimeout(timeout)
        conn.sendall(json.dumps(message).encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = conn.recv(65536)
            if not chunk:
                raise LgError("the container monitor went away mid-request")
            data += chunk
    reply = json.loads(data)
    if check and not reply.get("ok", False):
        raise refused(reply)
    return reply


