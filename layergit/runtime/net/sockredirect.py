"""What the loopback redirect is: socket-level load balancing for 127.0.0.1-published ports.

A port published on 127.0.0.1 cannot be DNATed (that needs route_localnet, which
would let other network namespaces reach 127.0.0.1), so the monitor's proxy relays
it, and the second TCP connection costs a third of the throughput whatever relays
it. Cilium's answer, used here: rewrite the address of the connect() itself, before
any packet exists. BPF_PROG_TYPE_CGROUP_SOCK_ADDR programs attached (ALLOW_MULTI)
to the cgroup2 root see every connect()/sendmsg() of every process; one whose
destination is a published (127.x.x.x, port, protocol) gets the container's
address instead, so the kernel makes one connection straight to the container
(from the bridge's gateway address, which the container already saw through the
proxy). The reverse programs (getpeername, UDP recvmsg) show the client the
address it asked for, from a per-socket record keyed by the socket's cookie (a
plain reverse map would also rewrite clients that connect to the container's
address on purpose). The programs, with the C they stand for, are in bpf/sockaddr.py.

Only the host's network namespace is redirected: the programs compare the
socket's netns cookie with the one of the process that loaded them, so a
container connecting to its own 127.0.0.1:PORT reaches its own loopback, never
the published port. The proxy keeps listening: it holds the port and serves what
the hook does not see (another namespace of the host, a kernel that refused).

Lifecycle: one program set and map pair per layergit root, named after the root
(``lgsr_<hash>``), so any later lg process finds them in the kernel itself
(BPF_PROG_QUERY on the cgroup2 root, then the program's maps) without a record
that a crash could leave stale. ``sync`` makes the map equal to what the leases
publish on 127.0.0.1 and detaches everything when nothing is; firewall.sync calls
it under the networks lock, so rm, --rm, network prune and cleanup after a
crashed monitor all go through it.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import socket
import struct
import sys

from .. import cgroups, syscalls
from . import PublishedPort

# enum bpf_attach_type
CONNECT4, UDP4_SENDMSG, UDP4_RECVMSG, GETPEERNAME4 = 10, 14, 19, 29
FORWARD, REVERSE = (CONNECT4, UDP4_SENDMSG), (GETPEERNAME4, UDP4_RECVMSG)
_MAP_HASH, _MAP_LRU_HASH = 1, 9
_PROTOS = {"tcp": socket.IPPROTO_TCP, "udp": socket.IPPROTO_UDP}
_SO_NETNS_COOKIE = 71
_REVNAT_ENTRIES = 65536  # sockets redirected at once; the least recently used record goes first

def _address(ip: str, port: int, proto: int = 0) -> bytes:
    return ipaddress.IPv4Address(ip).packed + struct.pack(">HBB", port, proto, 0)


def entries(target_ip: str, ports: list[PublishedPort]) -> dict[bytes, bytes]:
    """The services map's share of a lease's published ports: those bound to 127.0.0.1
    or every address, as 127.0.0.1:HOST -> container ip:port."""
    out = {}
    for p in ports:
        if p.any_address or p.host_ip == "127.0.0.1":
            out[_address("127.0.0.1", p.host_port, _PROTOS[p.proto])] = _address(target_ip, p.container_port)
    return out


def _names(root: str) -> tuple[str, str, str]:
    tag = hashlib.sha256(root.encode()).hexdigest()[:10]
    return f"lgsr_{tag}", f"lgsv_{tag}", f"lgrn_{tag}"


def _name_of(info: bytes, offset: int) -> str:
    return info[offset:offset + 16].split(b"\0")[0].decode()


def attached(root: str, cgroup_fd: int) -> dict[int, list[int]]:
    """attach type -> ids of this root's programs attached there, as the kernel reports them."""
    name = _names(root)[0]
    out: dict[int, list[int]] = {}
    for atype in FORWARD + REVERSE:
        for pid in syscalls.bpf_prog_query(cgroup_fd, atype):
            try:
                fd = syscalls.bpf_prog_get_fd_by_id(pid)
            except OSError:  # detached and freed meanwhile
                continue
            try:
                if _name_of(syscalls.bpf_obj_info(fd), 64) == name:  # bpf_prog_info.name
                    out.setdefault(atype, []).append(pid)
            finally:
                os.close(fd)
    return out


def _detach(cgroup_fd: int, progs: dict[int, list[int]]) -> None:
    for atype, ids in progs.items():
        for pid in ids:
            try:
                fd = syscalls.bpf_prog_get_fd_by_id(pid)
            except OSError:
                continue
            try:
                syscalls.bpf_prog_detach(cgroup_fd, fd, atype)
            except FileNotFoundError:  # someone else detached it first
                pass
            finally:
                os.close(fd)


def _services_map(root: str, prog_id: int) -> int:
    """An fd of the services map that this root's attached connect4 program uses."""
    fd = syscalls.bpf_prog_get_fd_by_id(prog_id)
    try:
        map_ids = struct.unpack("<4I", syscalls.bpf_obj_info(fd, map_ids=4)[-16:])
    finally:
        os.close(fd)
    for mid in filter(None, map_ids):
        mfd = syscalls.bpf_map_get_fd_by_id(mid)
        if _name_of(syscalls.bpf_obj_info(mfd), 24) == _names(root)[1]:  # bpf_map_info.name
            return mfd
        os.close(mfd)
    raise FileNotFoundError(2, "the redirect's services map is gone")


def _install(root: str, cgroup_fd: int) -> int:
    """Load and attach a fresh program set; returns an fd of its services map."""
    from ..bpf import sockaddr  # built only when no complete set is attached yet

    prog_name, services_name, revnat_name = _names(root)
    with socket.socket() as s:
        cookie = struct.unpack("<Q", s.getsockopt(socket.SOL_SOCKET, _SO_NETNS_COOKIE, 8))[0]
    services = syscalls.bpf_map_create(_MAP_HASH, 8, 8, 4096, services_name)
    revnat = syscalls.bpf_map_create(_MAP_LRU_HASH, 16, 8, _REVNAT_ENTRIES, revnat_name)
    progs = []
    try:
        for atype in FORWARD + REVERSE:
            if atype in FORWARD:
                code = sockaddr.forward_program(services, revnat, cookie)
            else:
                code = sockaddr.reverse_program(revnat)
            prog = syscalls.bpf_prog_load(syscalls.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, code, prog_name, atype)
            progs.append((atype, prog))
        done = []
        try:
            for atype, fd in progs:
                syscalls.bpf_prog_attach(cgroup_fd, fd, atype, syscalls.BPF_F_ALLOW_MULTI)
                done.append((atype, fd))
        except BaseException:
            for atype, fd in done:
                syscalls.bpf_prog_detach(cgroup_fd, fd, atype)
            raise
    except BaseException:
        os.close(services)
        raise
    finally:
        for _, fd in progs:
            os.close(fd)
        os.close(revnat)
    return services


def sync(root: str, wanted: dict[bytes, bytes]) -> None:
    """Make the kernel redirect exactly ``wanted`` (entries() of every lease) for this root:
    attach on the first entry, detach and free everything with the last. A kernel that
    refuses (no cgroup2, no BPF, an old verifier) only costs the speed-up: the proxy
    still serves 127.0.0.1, so the refusal is logged, never raised."""
    try:
        path = cgroups.v2_mount()
        if path is None:
            if wanted:
                raise FileNotFoundError(2, "no cgroup2 hierarchy is mounted")
            return
        cgroup_fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            progs = attached(root, cgroup_fd)
            complete = sorted(progs) == sorted(FORWARD + REVERSE)
            complete = complete and all(len(ids) == 1 for ids in progs.values())
            if not wanted or not complete:  # none needed, or a set a crash left half attached
                _detach(cgroup_fd, progs)
                if not wanted:
                    return
            services = _services_map(root, progs[CONNECT4][0]) if complete else _install(root, cgroup_fd)
        finally:
            os.close(cgroup_fd)
        try:
            for key in syscalls.bpf_map_keys(services, 8):
                if key not in wanted:
                    syscalls.bpf_map_delete(services, key)
            for key, value in wanted.items():
                syscalls.bpf_map_update(services, key, value)
        finally:
            os.close(services)
    except OSError as exc:
        if wanted:
            print(
                f"lg: 127.0.0.1 ports stay with the proxy (socket redirect unavailable: {exc})",
                file=sys.stderr,
                flush=True,
            )
