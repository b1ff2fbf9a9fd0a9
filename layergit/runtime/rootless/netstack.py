"""Container networks without root: the user's network namespace, and pasta for the host side.

The pause process (userns.py) also holds a network namespace of the user's own. Bridges,
veths, leases, nftables and the port proxy of lg's networks run in it unchanged, as
root's do on the host: the monitor joins it when it starts, and an lg command joins
it before its first netlink or nftables call (``join``), so containers of one user
network reach each other by name. What connects it to the host is pasta (Debian's
passt), chosen over slirp4netns because it needs no NAT of its own inside the
namespace and forwards the ports bound there (``-t auto``) to the host's addresses,
where a user's published ports must appear; it is started with the namespace when
the host lets users open /dev/net/tun. Where it does not, a container network still
works inside, and publishing a port is refused in one line.
"""

from __future__ import annotations

import errno
import os
import shutil
import socket
import subprocess

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


def join() -> None:
    """Move this process into the user's network namespace (lg without root; once)."""
    global _joined
    if _joined or not inside():
        return
    pause = _pause()
    if pause is None:
        raise RootlessError("lg without root lost its user namespace's pause process: run the command again")
    target = f"/proc/{pause.pid}/ns/net"
    if os.readlink(target) != os.readlink("/proc/self/ns/net"):
        fd = os.open(target, os.O_RDONLY | os.O_CLOEXEC)
        try:
            syscalls.setns(fd, syscalls.CLONE_NEWNET)
        finally:
            os.close(fd)
    _joined = True


def pasta_usable() -> bool:
    """Whether pasta can connect a namespace here: installed, and /dev/net/tun open to this user."""
    return shutil.which("pasta") is not None and os.access("/dev/net/tun", os.R_OK | os.W_OK)


def start_pasta(pid: int, run_dir: str) -> None:
    """Connect the network namespace of ``pid`` (the pause process) to the host: its address
    and routes copied from the host's, outbound traffic through pasta's sockets, and every
    TCP port bound in it forwarded from the host's addresses. Run as the user, outside."""
    pidfile = os.path.join(run_dir, PASTA_PID)
    argv = [shutil.which("pasta") or "pasta", "--config-net", "--quiet", "--pid", pidfile,
            "-t", "auto", "-u", "none", "-T", "none", "-U", "none",
            "--userns", f"/proc/{pid}/ns/user", "--netns", f"/proc/{pid}/ns/net"]
    # restore_signals: pasta refuses to start with SIGPIPE ignored, as Python leaves it.
    proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, start_new_session=True,
                          restore_signals=True, timeout=30)
    if proc.returncode:
        why = (proc.stderr.decode(errors="replace").strip().splitlines() or ["failed"])[-1]
        raise RootlessError(f"pasta cannot connect lg's network namespace to the host: {why}")


def has_pasta() -> bool:
    """Whether the user's network namespace has pasta (so published ports reach the host)."""
    pause = _pause()
    if pause is None:
        return False
    pid = read_small(os.path.join(pause.run_dir, PASTA_PID))
    return bool(pid and pid.isdigit() and procstat.alive(int(pid)))


def check_ports(ports) -> None:
    """Refuse, one line each, what lg without root cannot publish: anything without pasta,
    ports below net.ipv4.ip_unprivileged_port_start, ports the host already uses.
    ``ports`` are runtime.net PublishedPort values; called before the container is made."""
    if not ports or not inside():
        return
    start = read_small("/proc/sys/net/ipv4/ip_unprivileged_port_start")
    lowest = int(start) if start and start.isdigit() else 1024
    for port in ports:
        if port.host_port and port.host_port < lowest:
            raise RootlessError(f"cannot publish port {port.host_port} without root: ports below {lowest}"
                                f" are privileged (net.ipv4.ip_unprivileged_port_start={lowest})")
        if port.host_port and _in_use(port.host_ip, port.host_port, port.proto):
            raise RootlessError(f"cannot publish port {port.host_port}/{port.proto}:"
                                " it is already in use on the host")
    if not has_pasta():
        raise RootlessError("publishing ports without root needs pasta (Debian's passt) and /dev/net/tun"
                            " open to users, which this host does not offer: use --network host instead")


def _in_use(address: str, port: int, proto: str) -> bool:
    """Whether the host (the netns lg started in) has ``port`` taken, by binding it for a moment."""
    kind = socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM
    with socket.socket(socket.AF_INET, kind) as probe:
        try:
            probe.bind((address if address not in ("", "0.0.0.0") else "0.0.0.0", port))
        except OSError as exc:
            return exc.errno == errno.EADDRINUSE
    return False
