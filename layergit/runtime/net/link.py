"""Container networking: the one module that talks netlink (through pyroute2).

A bridge per network on the host, holding the network's gateway address; a veth
pair per container, the host end enslaved to the bridge, the other end created
directly in the container's network namespace, renamed eth0, given its leased
address and a default route through the gateway. When the container's namespace
dies the kernel deletes the pair, so teardown needs no netlink at all.

pyroute2 costs 150-250 ms to import here, so only the monitor (long-lived) imports
this module's netlink parts; a container start asks the monitor. Bringing up ``lo``
of a new namespace is a single ioctl, which the container's child side does itself
(process.py).
"""

from __future__ import annotations

import errno
import os
from typing import TYPE_CHECKING

from ...errors import LgError
from .. import syscalls as sc
from ..rootless import netstack
from ..rootless.idmap import inside

if TYPE_CHECKING:
    import ipaddress

    from .ipam import Network


def _iproute(netns: str | None = None):
    from pyroute2 import IPRoute

    netstack.join()  # lg without root: its bridges live in the user's network namespace
    if netns and inside():  # pyroute2's netns helper wants /var/run/netns: a socket made there instead
        return IPRoute(fileno=_socket_in(netns))
    return IPRoute(netns=netns) if netns else IPRoute()


def _socket_in(netns: str) -> int:
    """A route netlink socket of the network namespace at ``netns``, made by this thread
    there and back (a socket stays with the namespace it was made in). Going back needs the
    namespace we left to be ours, as lg without root's is; setns moves the calling thread alone."""
    import socket

    back = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    target = os.open(netns, os.O_RDONLY | os.O_CLOEXEC)
    try:
        sc.setns(target, sc.CLONE_NEWNET)
        try:
            return socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, socket.NETLINK_ROUTE).detach()
        finally:
            sc.setns(back, sc.CLONE_NEWNET)
    finally:
        os.close(target)
        os.close(back)


def _index(ipr, name: str) -> int | None:
    found = ipr.link_lookup(ifname=name)
    return found[0] if found else None


def ensure_bridge(network: Network) -> None:
    """Create (if missing) the network's bridge with its gateway address, up."""
    with _iproute() as ipr:
        idx = _index(ipr, network.bridge)
        if idx is None:
            ipr.link("add", ifname=network.bridge, kind="bridge")
            idx = _index(ipr, network.bridge)
        _without_ipv6(network.bridge)
        have = {a.get_attr("IFA_ADDRESS") for a in ipr.get_addr(index=idx, family=sc.AF_INET)}
        if network.gateway not in have:
            ipr.addr("add", index=idx, address=network.gateway, prefixlen=network.prefix)
        ipr.link("set", index=idx, state="up")
    with open("/proc/sys/net/ipv4/ip_forward", "w") as f:
        f.write("1")


def _without_ipv6(ifname: str) -> None:
    """No IPv6 on the host's side of a network: containers have CAP_NET_RAW, and a router
    advertisement one of them sends would otherwise give the host addresses and routes
    (the CVE-2020-13401 pattern). lg networks are IPv4 until IPv6 networks exist."""
    try:
        with open(f"/proc/sys/net/ipv6/conf/{ifname}/disable_ipv6", "w") as f:
            f.write("1")
    except FileNotFoundError:
        pass  # no IPv6 on this host at all


def delete_bridge(network: Network) -> None:
    with _iproute() as ipr:
        idx = _index(ipr, network.bridge)
        if idx is not None:
            ipr.link("del", index=idx)


def host_end(container_id: str) -> str:
    return "lgv" + container_id[:12]


def attach(pid: int, container_id: str, network: Network, address: str, mac: str = "") -> str:
    """Give the container (its PID 1 is ``pid``) an eth0 on ``network``, with ``mac`` when
    given; returns its MAC."""
    host_if, peer = host_end(container_id), "lgp" + container_id[:12]
    netns = f"/proc/{pid}/ns/net"
    try:
        with _iproute() as ipr:
            ipr.link("add", ifname=host_if, kind="veth", peer={"ifname": peer, "net_ns_pid": pid})
            _without_ipv6(host_if)
            idx = _index(ipr, host_if)
            ipr.link("set", index=idx, master=_index(ipr, network.bridge), state="up")
            # Hairpin: a container reaching its own published port through a host address
            # is DNATed back to itself, and br_netfilter bridges such DNAT straight back
            # out of the port it came in on, which a bridge refuses without this.
            ipr.link("set", index=idx, kind="bridge_slave", mode=1)
        with _iproute(netns) as ipr:
            idx = _index(ipr, peer)
            ipr.link("set", index=idx, ifname="eth0")
            if mac:
                ipr.link("set", index=idx, address=mac)
            ipr.addr("add", index=idx, address=address, prefixlen=network.prefix)
            ipr.link("set", index=idx, state="up")
            ipr.route("add", dst="default", gateway=network.gateway)
            return ipr.get_links(idx)[0].get_attr("IFLA_ADDRESS")
    except Exception as exc:  # pyroute2's NetlinkError and friends: one clear line
        detach(container_id)
        raise LgError(f"cannot connect the container to network {network.name}: {exc}") from None


def detach(container_id: str) -> None:
    """Delete the host end of a container's veth (if the kernel has not already)."""
    from pyroute2 import NetlinkError

    with _iproute() as ipr:
        idx = _index(ipr, host_end(container_id))
        if idx is not None:
            try:
                ipr.link("del", index=idx)
            except NetlinkError as exc:
                if exc.code != errno.ENODEV:  # gone with its namespace meanwhile
                    raise


def host_routes() -> list[ipaddress.IPv4Network]:
    """Destinations the host already routes (IPv4), from /proc/net/route."""
    import ipaddress

    out = []
    try:
        with open("/proc/net/route") as f:
            next(f)
            for line in f:
                fields = line.split()
                dest = ipaddress.IPv4Address(bytes.fromhex(fields[1])[::-1])
                mask = ipaddress.IPv4Address(bytes.fromhex(fields[7])[::-1])
                if int(mask):
                    out.append(ipaddress.IPv4Network(f"{dest}/{mask}", strict=False))
    except OSError:
        pass
    return out


def host_subnets() -> list[ipaddress.IPv4Network]:
    """The subnets of the host's own IPv4 addresses, on every interface: routes miss some
    (an address whose subnet is routed elsewhere, a /32, 127/8 which lives in the local
    table), and a network on one of them would shadow the host's own address."""
    import ipaddress

    with _iproute() as ipr:
        addresses = [(a.get_attr("IFA_LOCAL") or a.get_attr("IFA_ADDRESS"), a["prefixlen"])
                     for a in ipr.get_addr(family=sc.AF_INET)]
    return [ipaddress.IPv4Network(f"{address}/{prefix}", strict=False) for address, prefix in addresses]


def bridge_exists(name: str) -> bool:
    with open("/proc/net/dev") as f:
        return any(line.split(":")[0].strip() == name for line in f)
