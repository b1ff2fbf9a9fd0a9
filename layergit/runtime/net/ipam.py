"""Networks as records on disk: subnets, gateways, bridges and address leases.

Each network is ``ROOT/networks/NAME/network.json`` plus ``leases.json`` (address ->
container, its names and the ports it publishes), changed only under the network's
lock, so an address is never handed out twice and is released when its container
goes. ``bridge`` is the default network, which the controller creates on first use;
its subnet and those of new networks are picked from private ranges that overlap
neither the host's routes (which the caller reads) nor other networks, unless the
user gives one. Nothing here calls the kernel: the controller brings up what these
records describe (link.py), under the locks they provide.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import re
from dataclasses import asdict, dataclass, field

from ...errors import Conflict, NotFound, UsageError
from ...flock import locked
from ...root import Root
from ..rootless.idmap import inside
from ..state import now_iso
from . import DEFAULT, NETWORK_NAME, NetworkMode, PublishedPort

# Every layergit root on a host picks subnets under this lock, and creates the bridge
# (whose route then shows in /proc/net/route) before letting go of it.
HOST_LOCK = "/run/lock/layergit-networks.lock"
# Where subnets come from when the user names none (private, rarely used by LANs).
_POOLS = [ipaddress.ip_network(n) for n in ("10.89.0.0/16", "10.90.0.0/16", "172.29.0.0/16")]
# What IPv4 itself or the kernel gives a meaning: a bridge there would shadow the host's
# loopback, answer for link-local services (cloud metadata at 169.254.169.254) or hold
# addresses no host may have.
RESERVED = {
    ipaddress.ip_network("0.0.0.0/8"): "this-network addresses",
    ipaddress.ip_network("127.0.0.0/8"): "loopback",
    ipaddress.ip_network("169.254.0.0/16"): "link-local",
    ipaddress.ip_network("224.0.0.0/4"): "multicast",
    ipaddress.ip_network("240.0.0.0/4"): "reserved addresses and broadcast",
}


def check_subnet(subnet: str) -> ipaddress.IPv4Network:
    """``--subnet`` as a network a bridge may hold: IPv4, /30 or larger, clear of RESERVED
    (whose overlap with the host's subnets and other networks plan() checks)."""
    try:
        net = ipaddress.ip_network(subnet)
    except ValueError as exc:
        raise UsageError(f"invalid --subnet {subnet!r}: {exc}") from None
    if not isinstance(net, ipaddress.IPv4Network) or net.prefixlen > 30:
        raise UsageError("--subnet must be an IPv4 network of /30 or larger")
    for reserved, what in RESERVED.items():
        if net.overlaps(reserved):
            raise UsageError(f"--subnet {net} overlaps {reserved}: {what}, not for a container network")
    return net


@dataclass
class Network:
    name: str
    id: str
    subnet: str
    gateway: str
    bridge: str  # interface name on the host
    created: str
    internal_dns: bool = True  # names resolve between members (not on the default bridge)
    labels: dict = field(default_factory=dict)

    @property
    def prefix(self) -> int:
        return ipaddress.ip_network(self.subnet).prefixlen


def check_name(name: str) -> None:
    """A name for a new network: not one of the modes that name no network."""
    if not re.fullmatch(NETWORK_NAME, name):
        raise UsageError(f"invalid network name {name[:80]!r}:"
                         " use [a-zA-Z0-9][a-zA-Z0-9_.-]*, at most 64 characters")
    if not NetworkMode.from_json(name).bridged:
        raise UsageError(f"{name!r} is a network mode, not a network name")


class Networks:
    def __init__(self, root: str):
        self.root = root
        self.dir = Root(root).networks

    def _path(self, name: str, leaf: str = "") -> str:
        return os.path.join(self.dir, name, leaf)

    def host_lock(self):
        """Held while a subnet is picked and its bridge made, by every root of the host."""
        # lg without root picks subnets in a network namespace of its own: its root's lock will do
        shared = not inside() and os.access(os.path.dirname(HOST_LOCK), os.W_OK)
        return locked(HOST_LOCK if shared else os.path.join(self.dir, "host.lock"))

    def lock(self, name: str = ""):
        """One lock per network (and one for the set of networks, name "")."""
        return locked(self._path(name, "lock") if name else os.path.join(self.dir, "lock"))

    def names(self) -> list[str]:
        try:
            return sorted(n for n in os.listdir(self.dir) if os.path.isfile(self._path(n, "network.json")))
        except FileNotFoundError:
            return []

    def get(self, name: str) -> Network:
        try:
            with open(self._path(name, "network.json")) as f:
                return Network(**json.load(f))
        except FileNotFoundError:
            raise NotFound(f"no such network: {name}") from None

    def all(self) -> list[Network]:
        return [self.get(n) for n in self.names()]

    def _free_subnet(self, taken: list) -> str:
        for pool in _POOLS:
            for candidate in pool.subnets(new_prefix=24):
                if not any(candidate.overlaps(t) for t in taken):
                    return str(candidate)
        raise Conflict("no free private subnet left for a new network; give one with --subnet")

    def plan(self, name: str, routes: list[ipaddress.IPv4Network], subnet: str | None = None,
             gateway: str | None = None, labels: dict | None = None) -> Network:
        """A new network, not recorded yet: the given subnet and gateway checked, or the first
        free private /24 and its first address. ``name`` passed check_name; ``routes`` are what
        the host uses (link.host_routes, link.host_subnets). Call under host_lock() and lock(),
        and ``add`` it under the same locks once its bridge exists, so that no other root picks
        the same subnet meanwhile."""
        networks = {n: ipaddress.ip_network(self.get(n).subnet) for n in self.names()}
        taken = routes + list(networks.values())
        if subnet:
            net = check_subnet(subnet)
            clash = next((f"{s} of network {n}" for n, s in networks.items() if net.overlaps(s)), None)
            clash = clash or next((f"{t}, in use on this host" for t in routes if net.overlaps(t)), None)
            if clash is not None:
                raise Conflict(f"subnet {net} overlaps {clash}")
        else:
            net = ipaddress.IPv4Network(self._free_subnet(taken))
        try:
            gw = ipaddress.ip_address(gateway) if gateway else next(net.hosts())
        except ValueError as exc:
            raise UsageError(f"invalid --gateway: {exc}") from None
        if gw not in net or gw in (net.network_address, net.broadcast_address):
            raise UsageError(f"gateway {gw} is not a usable address of {net}")
        nid = hashlib.sha256(f"{self.root}\0{name}\0{now_iso()}\0{os.getpid()}".encode()).hexdigest()
        return Network(name, nid, str(net), str(gw), "lg-" + nid[:12], now_iso(), name != DEFAULT,
                       labels or {})

    def add(self, network: Network) -> None:
        """Record a network that ``plan`` made (under the same locks)."""
        os.makedirs(self._path(network.name), exist_ok=True)
        tmp = self._path(network.name, "network.json.tmp")
        with open(tmp, "w") as f:
            json.dump(asdict(network), f, indent=2, sort_keys=True)
        os.replace(tmp, self._path(network.name, "network.json"))

    def remove(self, name: str) -> None:
        with self.lock(name):
            if self.leases(name):
                raise Conflict(f"network {name} has containers attached; remove them first")
            for leaf in ("network.json", "leases.json", "lock"):
                try:
                    os.unlink(self._path(name, leaf))
                except FileNotFoundError:
                    pass
            os.rmdir(self._path(name))

    # -- leases -------------------------------------------------------------------

    def leases(self, name: str) -> dict[str, dict]:
        """address -> {"id", "name", "aliases", "ports"} for the network's containers
        ("ports": what ``published`` reads, only once the holder publishes some)."""
        try:
            with open(self._path(name, "leases.json")) as f:
                return json.load(f)
        except FileNotFoundError:
            return {}

    def _save_leases(self, name: str, leases: dict) -> None:
        tmp = self._path(name, "leases.json.tmp")
        with open(tmp, "w") as f:
            json.dump(leases, f, indent=2, sort_keys=True)
        os.replace(tmp, self._path(name, "leases.json"))

    def allocate(self, network: Network, container_id: str, name: str, aliases: list[str]) -> str:
        """Lease the lowest free address of the network to a container."""
        with self.lock(network.name):
            leases = self.leases(network.name)
            for ip, holder in leases.items():
                if holder["id"] == container_id:
                    return ip
            used = set(leases) | {network.gateway}
            for host in ipaddress.ip_network(network.subnet).hosts():
                if str(host) not in used:
                    leases[str(host)] = {"id": container_id, "name": name, "aliases": aliases}
                    self._save_leases(network.name, leases)
                    return str(host)
        raise Conflict(f"network {network.name} has no free address left")

    def publish(self, network: Network, address: str, ports: list[PublishedPort]) -> None:
        """Record the ports a lease's holder publishes, so the kernel's share of them
        (firewall.sync) survives with the lease and goes with it, whoever releases it."""
        with self.lock(network.name):
            leases = self.leases(network.name)
            leases[address]["ports"] = [p.to_docker() for p in ports]
            self._save_leases(network.name, leases)

    def published(self, name: str, leaving: str | None = None) -> list[tuple[str, list[PublishedPort]]]:
        """(address, the ports its holder publishes) of a network's leases, but container ``leaving``'s."""
        return [(ip, [PublishedPort.from_docker(p) for p in holder.get("ports", [])])
                for ip, holder in sorted(self.leases(name).items()) if holder["id"] != leaving]

    def rename(self, container_id: str, name: str) -> list[str]:
        """Give a container's leases its new name (lg rename); returns the networks it is on."""
        renamed = []
        for network in self.names():
            with self.lock(network):
                leases = self.leases(network)
                held = [ip for ip, h in leases.items() if h["id"] == container_id]
                for ip in held:
                    leases[ip] = dict(leases[ip], name=name)
                if held:
                    self._save_leases(network, leases)
                    renamed.append(network)
        return renamed

    def release(self, container_id: str) -> list[str]:
        """Drop every lease a container holds; returns the networks it was on."""
        left = []
        for name in self.names():
            with self.lock(name):
                leases = self.leases(name)
                kept = {ip: h for ip, h in leases.items() if h["id"] != container_id}
                if len(kept) != len(leases):
                    self._save_leases(name, kept)
                    left.append(name)
        return left
