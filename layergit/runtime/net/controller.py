"""The facade of container networking: what the rest of lg calls, and all it calls.

Attaching a container to a network is several steps, each owned by a module of this
package: an address lease (ipam, records on disk), a veth on the network's bridge
(link, the one netlink module), published ports (portproxy's listeners, then
firewall's kernel NAT and sockredirect's loopback redirect), and the peers' hosts
files (hostsfile). This module runs them in order and undoes them in reverse:

- ``Controller``: the monitor's, which keeps pyroute2 loaded and runs the port proxy.
  A container start asks it to ``attach`` the new network namespace before the
  container's command runs, and its end (or ``lg rm``) to ``detach``. What the
  container got is written to its directory as ``network.json`` (NetworkSettings in
  ``lg inspect``, PORTS in ``lg ps``), read back with ``settings``.
- ``release`` undoes everything that outlives a crash (the address lease, peers'
  hosts entries, the kernel NAT of its published ports) and needs neither netlink
  nor the monitor, so ``lg rm`` can always clean up; ``holds_lease`` says whether
  there is anything to release.
- ``create_network`` and ``remove_bridge`` are ``lg network``'s kernel side.

The netlink and nftables modules are imported only where they are needed, so that
``lg rm`` and ``lg ps`` pay for neither.
"""

from __future__ import annotations

import json
import selectors

from ...errors import Conflict, LgError, NotFound
from ...root import Root
from ..spec import Spec
from ..state import ContainerDir
from . import PublishedPort, hostsfile
from .ipam import DEFAULT, Network, Networks, check_name

SETTINGS = "network.json"


def refresh_hosts(root: str, network_name: str) -> None:
    """Rewrite the hosts file of every container on a network from its leases."""
    nets = Networks(root)
    network = nets.get(network_name)
    members = []
    for ip, holder in nets.leases(network_name).items():
        cdir = ContainerDir(Root(root), holder["id"])
        try:
            spec = cdir.record().spec
        except Exception:  # noqa: BLE001 - a container being removed
            continue
        members.append((holder["id"], ip, [holder["name"], spec.hostname] + holder.get("aliases", []), cdir,
                        spec.extra_hosts))
    for cid, ip, names, cdir, extra in members:
        own = [(ip, names)]
        others = [(p_ip, p_names) for p_id, p_ip, p_names, _, _ in members if p_id != cid]
        peers = others if network.internal_dns else []
        hostsfile.rewrite(cdir.file("hosts"), hostsfile.render(names[1], own, peers, extra, network.gateway))


def rename(root: str, container_id: str, name: str) -> None:
    """A renamed container's peers find it by its new name (lg rename), as Docker's DNS does."""
    for network in Networks(root).rename(container_id, name):
        refresh_hosts(root, network)


def release(root: str, container_id: str) -> None:
    """Free a container's addresses, drop it from its peers' hosts files and its
    published ports from the kernel's NAT."""
    nets = Networks(root)
    if any(h["id"] == container_id and h.get("ports") for n in nets.names() for h in nets.leases(n).values()):
        from . import firewall

        try:
            dropped = firewall.sync(root, leaving=container_id, then=lambda: nets.release(container_id))
        except LgError:
            nets.release(container_id)  # its address must come free even when nft cannot run
            raise
    else:
        dropped = nets.release(container_id)
    for name in dropped:
        refresh_hosts(root, name)


class Controller:
    """Attaches and detaches the containers of one root; serves their published ports
    from the monitor's event loop (``sel``)."""

    def __init__(self, root: str, sel: selectors.BaseSelector):
        from .portproxy import PortProxy

        self.root = root
        self.proxy = PortProxy(sel)
        self.nets = Networks(root)

    @property
    def publishing(self) -> bool:
        """Whether some container's ports are being served (the monitor stays up for them)."""
        return bool(self.proxy.listeners)

    def attach(self, cdir: ContainerDir, spec: Spec, pid: int) -> dict:
        """Connect a new container; returns its NetworkSettings (also saved beside it)."""
        from . import firewall, link

        if not spec.network.bridged:
            return {}
        net = self._network(spec.network.name)
        with self.nets.lock():
            if not link.bridge_exists(net.bridge):  # a default network pruned while unused
                link.ensure_bridge(net)
        ip = self.nets.allocate(net, cdir.id, spec.name, spec.aliases)
        try:
            mac = link.attach(pid, cdir.id, net, ip, spec.mac_address)
            ports = self.proxy.publish(cdir.id, spec.ports, ip)
            if ports:
                self.nets.publish(net, ip, ports)
            firewall.sync(self.root)
        except BaseException:
            self.proxy.unpublish(cdir.id)
            link.detach(cdir.id)
            release(self.root, cdir.id)
            raise
        settings = {"Network": net.name, "IPAddress": ip, "IPPrefixLen": net.prefix, "Gateway": net.gateway,
                    "MacAddress": mac, "Ports": [p.to_docker() for p in ports]}
        cdir.write_json(SETTINGS, settings)
        refresh_hosts(self.root, net.name)
        return settings

    def adopt(self, cdir: ContainerDir) -> None:
        """Serve again the published ports of a running container attached by a monitor
        that died: the same host ports it got (network.json), the kernel's share of them
        resynchronised. A port taken meanwhile by someone else is lost (one line in the
        monitor's log), the rest are served."""
        from . import firewall

        net = settings(cdir)
        ports = [PublishedPort.from_docker(p) for p in net.get("Ports", [])]
        if not ports or cdir.id in self.proxy.listeners:
            return
        self.proxy.publish(cdir.id, ports, net["IPAddress"])
        firewall.sync(self.root)

    def _network(self, name: str) -> Network:
        """The network a container joins; the default one is made on first use."""
        try:
            return self.nets.get(name)
        except NotFound:
            if name != DEFAULT:
                raise
        return create_network(self.root, DEFAULT)

    def detach(self, container_id: str) -> None:
        from . import link

        self.proxy.unpublish(container_id)
        link.detach(container_id)
        release(self.root, container_id)


def holds_lease(root: str, container_id: str) -> bool:
    """Whether any network of the root still leases the container an address."""
    nets = Networks(root)
    return any(h["id"] == container_id for name in nets.names() for h in nets.leases(name).values())


def create_network(root: str, name: str, subnet: str | None = None, gateway: str | None = None,
                   labels: dict | None = None) -> Network:
    """A new network, its bridge up (``lg network create``, and the default network on first
    use, which is no error when another lg made it meanwhile)."""
    from . import link

    check_name(name)
    nets = Networks(root)
    with nets.host_lock(), nets.lock():
        if name in nets.names():
            if name == DEFAULT:
                return nets.get(name)
            raise Conflict(f"network {name} already exists")
        network = nets.plan(name, link.host_routes() + link.host_subnets(), subnet, gateway, labels)
        link.ensure_bridge(network)  # its route now reserves the subnet for every root on the host
        nets.add(network)
    return network


def remove_bridge(root: str, network: Network) -> None:
    """Take a network's bridge and its rules off the host; its records stay."""
    from . import firewall, link

    if link.bridge_exists(network.bridge):
        link.delete_bridge(network)
    firewall.sync(root, without=network.name)


def settings(cdir: ContainerDir) -> dict:
    try:
        with open(cdir.file(SETTINGS)) as f:
            return json.load(f)
    except FileNotFoundError:
        return {}
