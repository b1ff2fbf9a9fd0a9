"""Connecting containers to networks: address, veth, published ports, peer names.

Used by the monitor, which keeps pyroute2 loaded and runs the port proxy: a
container start asks it to ``attach`` the new network namespace before the
container's command runs, and its end (or ``lg rm``) to ``detach``. What the
container got is written to its directory as ``network.json`` (NetworkSettings in
``lg inspect``, PORTS in ``lg ps``). ``release`` undoes everything that outlives a
crash (the address lease, peers' hosts entries, the kernel NAT of its published
ports) and needs neither netlink nor the monitor, so ``lg rm`` can always clean up.
"""

from __future__ import annotations

import json
import os

from ..errors import LgError
from . import hostsfile
from .netconfig import Networks
from .portproxy import Port, PortProxy
from .spec import Spec
from .state import ContainerDir

SETTINGS = "network.json"


def is_bridged(spec: Spec) -> bool:
    return spec.network not in ("none", "host") and not spec.network.startswith("container:")


def refresh_hosts(root: str, network_name: str) -> None:
    """Rewrite the hosts file of every container on a network from its leases."""
    nets = Networks(root)
    network = nets.get(network_name)
    members = []
    for ip, holder in nets.leases(network_name).items():
        cdir = ContainerDir(os.path.join(root, "containers"), holder["id"])
        try:
            hostname = cdir.record().spec["hostname"]
        except Exception:  # noqa: BLE001 - a container being removed
            continue
        members.append((holder["id"], ip, [holder["name"], hostname] + holder.get("aliases", []), cdir))
    for cid, ip, names, cdir in members:
        own = [(ip, names)]
        peers = [(p_ip, p_names) for p_id, p_ip, p_names, _ in members if p_id != cid] if network.internal_dns else []
        hostsfile.rewrite(cdir.file("hosts"), hostsfile.render(names[1], own, peers))


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
    def __init__(self, root: str, proxy: PortProxy):
        self.root = root
        self.proxy = proxy
        self.nets = Networks(root)

    def attach(self, cdir: ContainerDir, spec: Spec, pid: int) -> dict:
        """Connect a new container; returns its NetworkSettings (also saved beside it)."""
        from . import firewall, network

        if not is_bridged(spec):
            return {}
        net = self.nets.get(spec.network)
        with self.nets.lock():
            if not network.bridge_exists(net.bridge):  # a default network pruned while unused
                network.ensure_bridge(net)
        ip = self.nets.allocate(net, cdir.id, spec.name, spec.aliases)
        try:
            mac = network.attach(pid, cdir.id, net, ip)
            ports = self.proxy.publish(cdir.id, [Port(**p) for p in spec.ports], ip)
            if ports:
                self.nets.publish(net, ip, ports)
            firewall.sync(self.root)
        except BaseException:
            self.proxy.unpublish(cdir.id)
            network.detach(cdir.id)
            release(self.root, cdir.id)
            raise
        settings = {"Network": net.name, "IPAddress": ip, "IPPrefixLen": net.prefix, "Gateway": net.gateway, "MacAddress": mac, "Ports": ports}
        cdir.write_json(SETTINGS, settings)
        refresh_hosts(self.root, net.name)
        return settings

    def detach(self, container_id: str) -> None:
        from . import network

        self.proxy.unpublish(container_id)
        network.detach(container_id)
        release(self.root, container_id)


def settings(cdir: ContainerDir) -> dict:
    try:
        with open(cdir.file(SETTINGS)) as f:
            return json.load(f)
    except FileNotFoundError:
        return {}
