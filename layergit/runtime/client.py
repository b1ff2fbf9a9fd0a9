"""Talking to a root's monitor (runtime.monitor) from lg: start it if needed, one request.

Kept apart from the monitor itself so that ``lg run -d`` and ``lg start`` import a
socket and json, not the monitor's event loop, port proxy and netlink code.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

from ..errors import LgError
from .spec import Spec


def paths(root: str) -> tuple[str, str, str]:
    run = os.path.join(root, "run")
    return run, os.path.join(run, "monitor.sock"), os.path.join(run, "monitor.lock")

def _connect(sock_path: str) -> socket.socket | None:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(sock_path)
        return s
    except OSError:
        s.close()
        return None


def joined_netns(containers_dir: str, spec: Spec) -> str | None:
    """For ``--network container:ID``: the network namespace of that running container."""
    if not spec.network.container:
        return None
    from .state import Registry

    target = Registry(containers_dir).find(spec.network.container)
    st = target.state()
    if not st.running:
        raise LgError(f"cannot join the network of {spec.network.container}: it is not running")
    return f"/proc/{st.pid}/ns/net"


def request(root: str, message: dict, timeout: float = 60.0, start: bool = True) -> dict | None:
    """Send one request to the root's monitor, starting the monitor if needed (and allowed)."""
    run, sock_path, _ = paths(root)
    conn = _connect(sock_path)
    if conn is None and not start:
        return None
    if conn is None:
        os.makedirs(run, exist_ok=True)
        with open(os.path.join(run, "monitor.log"), "ab") as log:
            subprocess.Popen(
                [sys.executable, "-m", "layergit.runtime.monitor", root],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True, close_fds=True,
            )
        deadline = time.monotonic() + 10
        while conn is None and time.monotonic() < deadline:
            time.sleep(0.01)
            conn = _connect(sock_path)
        if conn is None:
            raise LgError(f"could not start the container monitor (see {run}/monitor.log)")
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
    if not reply.get("ok", False) and message.get("op") != "start":
        error = LgError(reply.get("error", "the container monitor refused"))
        error.exit_code = reply.get("code", 125)
        raise error
    return reply


