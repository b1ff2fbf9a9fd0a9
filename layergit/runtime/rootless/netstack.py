"""Container networks without root: the user's network namespace, and the host's side of it.

The pause process (userns.py) also holds a network namespace of the user's own. Bridges,
veths, leases, nftables and the port proxy of lg's networks run in it unchanged, as
root's do on the host: the monitor joins it when it starts, and an lg command joins
it before its first netlink or nftables call (``join``), so containers of one user
network reach each other by name.

Two ways lead out of it. Published ports are bound in the host's network namespace,
by the monitor itself: a thread it leaves there before joining (setns moves only the
calling thread) makes their sockets (``host_socket``), so a port is on the host's
loopback and addresses at once, and each connection is relayed to the container from
the user's namespace, as rootlesskit's built-in port driver does. Outbound traffic
goes through pasta (Debian's passt), chosen over slirp4netns because it needs no NAT
of its own inside the namespace; it is started with the namespace where the host lets
users open /dev/net/tun. (pasta could forward published ports too, but its ``-t auto``
does not pick up ports bound after it starts in the version Debian 12 ships, and it
cannot be told of new ones.) Where pasta cannot run, containers still reach each
other and the host reaches their published ports; they have no way out.
"""

from __future__ import annotations

import os
import queue
import shutil
import signal
import socket
import subprocess
import threading

from ... import procstat
from .. import syscalls
from . import RootlessError
from .idmap import inside, read_small

# Set by userns.enter for every process lg starts: "PAUSE_PID START RUN_DIR".
ENV = "_LG_USERNS"
PASTA_PID = "pasta.pid"
_joined = False


class _Pause:
    def __init__(self, pid: int, run_dir: str):
        self.pid, self.run_dir = pid, run_dir


def _pause() -> _Pause | None:
    fields = os.environ.get(ENV, "").split(" ", 2)
    if len(fields) != 3 or not fields[0].isdigit() or not fields[1].isdigit():
        return None
    pid = int(fields[0])
    if procstat.start_time(pid) != int(fields[1]):
        return None
    return _Pause(pid, fields[2])


class _HostSockets:
    """A thread left in the network namespace the process started in, making sockets there."""

    def __init__(self) -> None:
        self._requests: queue.SimpleQueue = queue.SimpleQueue()
        threading.Thread(target=self._serve, name="host-sockets", daemon=True).start()

    def _serve(self) -> None:
        while True:
            family, kind, reply = self._requests.get()
            try:
                reply.put(socket.socket(family, kind))
            except OSError as exc:
                reply.put(exc)

    def socket(self, family: int, kind: int) -> socket.socket:
        reply: queue.SimpleQueue = queue.SimpleQueue()
        self._requests.put((family, kind, reply))
        made = reply.get()
        if isinstance(made, OSError):
            raise made
        return made


_host: _HostSockets | None = None


def host_socket(family: int, kind: int) -> socket.socket:
    """A socket of the host's network namespace, whichever this thread is in: where the
    monitor of lg without root binds published ports (see the module's docstring)."""
    return _host.socket(family, kind) if _host is not None else socket.socket(family, kind)


def join(keep_host_sockets: bool = False) -> None:
    """Move this process into the user's network namespace (lg without root; once).
    ``keep_host_sockets``: first leave a thread behind for :func:`host_socket`."""
    global _joined, _host
    if _joined or not inside():
        return
    pause = _pause()
    if pause is None:
        raise RootlessError("lg without root lost its user namespace's pause process: run the command again")
    target = f"/proc/{pause.pid}/ns/net"
    if os.readlink(target) != os.readlink("/proc/self/ns/net"):
        if keep_host_sockets:
            _host = _HostSockets()
        fd = os.open(target, os.O_RDONLY | os.O_CLOEXEC)
        try:
            syscalls.setns(fd, syscalls.CLONE_NEWNET)
        finally:
            os.close(fd)
    _joined = True


def pasta_usable() -> bool:
    """Whether pasta can connect a namespace here: installed, and /dev/net/tun open to this user."""
    return shutil.which("pasta") is not None and os.access("/dev/net/tun", os.R_OK | os.W_OK)


def _stop_stale_pasta(pidfile: str) -> None:
    """Kill the pasta of a namespace whose pause process died: it holds that namespace and
    would run for ever (it quits by itself only for a namespace bound in /run/netns)."""
    text = read_small(pidfile)
    if not text or not text.strip().isdigit():
        return
    pid = int(text)
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            program = os.path.basename(f.read(4096).split(b"\0")[0])
        if program == b"pasta" and os.stat(f"/proc/{pid}").st_uid == os.getuid():
            os.kill(pid, signal.SIGTERM)
    except (OSError, ValueError):
        pass


def start_pasta(pid: int, run_dir: str) -> None:
    """Connect the network namespace of ``pid`` (the pause process) to the host for outbound
    traffic: its address and routes copied from the host's, connections made through
    pasta's sockets; nothing forwarded inwards. Run as the user, outside."""
    pidfile = os.path.join(run_dir, PASTA_PID)
    _stop_stale_pasta(pidfile)
    argv = [shutil.which("pasta") or "pasta", "--config-net", "--quiet", "--pid", pidfile,
            "-t", "none", "-u", "none", "-T", "none", "-U", "none",
            "--userns", f"/proc/{pid}/ns/user", "--netns", f"/proc/{pid}/ns/net"]
    # restore_signals: pasta refuses to start with SIGPIPE ignored, as Python leaves it.
    proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, start_new_session=True,
                          restore_signals=True, timeout=30)
    if proc.returncode:
        why = (proc.stderr.decode(errors="replace").strip().splitlines() or ["failed"])[-1]
        raise RootlessError(f"pasta cannot connect lg's network namespace to the host: {why}")


def check_ports(ports) -> None:
    """Refuse, in one line, a port lg without root cannot publish: one below
    net.ipv4.ip_unprivileged_port_start. (A port the host already uses is refused by
    the monitor's bind, as with root.)
    ``ports`` are runtime.net PublishedPort values; called before the container is made."""
    if not ports or not inside():
        return
    start = read_small("/proc/sys/net/ipv4/ip_unprivileged_port_start")
    lowest = int(start) if start and start.isdigit() else 1024
    for port in ports:
        if port.host_port and port.host_port < lowest:
            raise RootlessError(f"cannot publish port {port.host_port} without root: ports below {lowest}"
                                f" are privileged (net.ipv4.ip_unprivileged_port_start={lowest})")
