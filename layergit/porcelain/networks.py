"""lg network: create, ls, inspect, rm, prune."""

from __future__ import annotations

import os
from dataclasses import asdict

from ..errors import Conflict
from ..runtime.net import controller
from ..runtime.net.ipam import DEFAULT, Network, Networks
from .repo import Repo


def _nets(repo: Repo) -> Networks:
    return Networks(repo.root.path)


def create(repo: Repo, name: str, subnet: str | None = None, gateway: str | None = None,
           labels: dict | None = None) -> Network:
    return controller.create_network(repo.root.path, name, subnet, gateway, labels)


def ls(repo: Repo) -> list[dict]:
    nets = _nets(repo)  # the default network appears once a container has used it
    return [dict(asdict(n), containers=len(nets.leases(n.name))) for n in nets.all()]


def inspect(repo: Repo, name: str) -> dict:
    nets = _nets(repo)
    n = nets.get(name)
    containers = {h["id"]: {"Name": h["name"], "IPv4Address": f"{ip}/{n.prefix}",
                            "Aliases": h.get("aliases", [])}
                  for ip, h in nets.leases(name).items()}
    return {"Name": n.name, "Id": n.id, "Created": n.created, "Driver": "bridge", "Bridge": n.bridge,
            "IPAM": {"Config": [{"Subnet": n.subnet, "Gateway": n.gateway}]}, "Containers": containers,
            "Labels": n.labels}


def rm(repo: Repo, names: list[str]) -> list[str]:
    nets = _nets(repo)
    for name in names:
        if name == DEFAULT:
            raise Conflict("the default network cannot be removed")
        network = nets.get(name)
        _forget_gone(repo)
        if nets.leases(name):
            raise Conflict(f"network {name} has containers attached; remove them first")
        controller.remove_bridge(repo.root.path, network)
        nets.remove(name)
    return names


def _forget_gone(repo: Repo) -> None:
    """Drop leases of containers that no longer exist (a crash mid-setup, a lost monitor)."""
    nets = _nets(repo)
    for name in nets.names():
        for holder in list(nets.leases(name).values()):
            if not os.path.isdir(repo.root.container(holder["id"])):
                controller.release(repo.root.path, holder["id"])


def prune(repo: Repo) -> list[str]:
    """Remove user networks nobody uses, and whatever crashed containers left.

    The default network stays defined, but its bridge goes while no container uses
    it (it comes back with the next container), so nothing lingers on the host.
    """
    _forget_gone(repo)
    nets = _nets(repo)
    removed = []
    for name in nets.names():
        network = nets.get(name)
        if nets.leases(name):
            continue
        controller.remove_bridge(repo.root.path, network)
        if name != DEFAULT:
            nets.remove(name)
            removed.append(name)
    return removed
