"""Container networking: bridges, veths, addresses, published ports, peer names.

The rest of lg calls ``controller`` (attach, detach, release, a network's bridge),
reads records through ``ipam`` and speaks in this module's values; the other
modules are the controller's steps:

- ``ipam``: networks and address leases as records on disk (no kernel calls);
- ``link``: bridges and veths, the one module that talks netlink (pyroute2);
- ``portproxy``: the host-side listeners of published ports, and the loopback relay;
- ``firewall``: the nftables rules (outbound NAT, isolation, published ports);
- ``sockredirect``: the connect()-time redirect of 127.0.0.1 ports (bpf/sockaddr.py);
- ``hostsfile``: the /etc/hosts of containers, so peers find each other by name.

The values: ``--network`` and ``-p``/``-P`` are parsed where user input enters
(porcelain.runopts) into :class:`NetworkMode` and :class:`PublishedPort`, which
the Spec carries to the runtime and the monitor. On disk they keep the JSON every
lg wrote (the NetworkMode string, the two port shapes below), so records of
containers created before still read and a monitor of the previous lg, still
running after an upgrade, reads ours.

Every ``lg run`` parses them, so they live here, in the package every networking
import loads anyway, and are NamedTuples, not frozen dataclasses: a NamedTuple costs
a sixth of a dataclass to define. Never json.dump one as it is (it would become a
list): to_json says what the records hold.
"""

from __future__ import annotations

import enum
import re
from typing import NamedTuple

from ...errors import UsageError

DEFAULT = "bridge"  # the default network, made on a container's first use
# A network's name: a directory name under ROOT/networks, a Docker-style name for the user.
NETWORK_NAME = r"[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}"  # whole (re.fullmatch): "$" would let "x\n" in


class NetworkKind(enum.Enum):
    NONE = "none"  # a network namespace with only lo
    HOST = "host"  # the host's network namespace
    CONTAINER = "container"  # another running container's network namespace
    BRIDGE = "bridge"  # a namespace of its own with an eth0 on a network's bridge


class NetworkMode(NamedTuple):
    kind: NetworkKind
    name: str = ""  # BRIDGE: the network ("bridge" is the default one); CONTAINER: the container

    @classmethod
    def parse(cls, text: str) -> NetworkMode:
        """``--network`` as the user gives it: none, host, container:NAME|ID, or a network's name."""
        mode = cls.from_json(text)
        if mode.kind is NetworkKind.CONTAINER and not mode.name:
            raise UsageError("--network container: needs the name or id of a running container")
        if mode.kind is NetworkKind.BRIDGE and not re.fullmatch(NETWORK_NAME, text):
            raise UsageError(f"invalid --network {text!r}:"
                             " use bridge, a network's name, none, host or container:NAME")
        return mode

    @classmethod
    def from_json(cls, text: str) -> NetworkMode:
        """A mode as recorded (container.json's spec and HostConfig.NetworkMode)."""
        if text in ("none", "host"):
            return cls(NetworkKind(text))
        kind, colon, ref = text.partition(":")
        if colon and kind == "container":
            return cls(NetworkKind.CONTAINER, ref)
        return cls(NetworkKind.BRIDGE, text)

    def to_json(self) -> str:
        if self.kind is NetworkKind.BRIDGE:
            return self.name
        if self.kind is NetworkKind.CONTAINER:
            return f"container:{self.name}"
        return self.kind.value

    def __str__(self) -> str:
        return self.to_json()

    @property
    def bridged(self) -> bool:
        """On a bridge network: the monitor gives it an address, an eth0 and its published ports."""
        return self.kind is NetworkKind.BRIDGE

    @property
    def is_host(self) -> bool:
        """In the host's network namespace: every other mode gets one of its own or joins one."""
        return self.kind is NetworkKind.HOST

    @property
    def container(self) -> str:
        """The container whose network namespace this one joins, or ""."""
        return self.name if self.kind is NetworkKind.CONTAINER else ""


NONE = NetworkMode(NetworkKind.NONE)
HOST = NetworkMode(NetworkKind.HOST)


# -p [IP:][HOST:]CTR[/tcp|/udp]; HOST and CTR may be ranges A-B.
_PORT = (
    r"(?:(?P<ip>[0-9]{1,3}(?:\.[0-9]{1,3}){3}):)?"  # IP:
    r"(?:(?P<host>[0-9]+(?:-[0-9]+)?)?:)?"  # HOST: or an empty HOST (IP::CTR)
    r"(?P<ctr>[0-9]+(?:-[0-9]+)?)"
    r"(?:/(?P<proto>tcp|udp))?"
)


def _range(text: str) -> list[int]:
    first, _, last = text.partition("-")
    lo, hi = int(first), int(last or first)
    if not 0 < lo <= hi <= 65535:
        raise UsageError(f"invalid port range {text!r}")
    return list(range(lo, hi + 1))


class PublishedPort(NamedTuple):
    """A container port published on the host: HOST_IP:HOST_PORT -> CONTAINER_PORT/PROTO.

    Parsed from -p/-P where user input enters (porcelain.runopts), carried by the Spec,
    given its actual host port by the port proxy, recorded with the address lease.
    Two JSON shapes stay on disk as every lg wrote them, so that old records read and
    a monitor of the previous lg reads ours: the spec's (container.json, ``to_json``)
    and Docker's (leases.json, network.json, inspect, ``to_docker``).
    """

    host_ip: str  # "" or "0.0.0.0" for every address
    host_port: int  # 0: any free port, until published
    container_port: int
    proto: str = "tcp"

    @classmethod
    def parse(cls, text: str) -> list[PublishedPort]:
        """-p [IP:][HOST:]CTR[/tcp|/udp], a port each of a HOST range and a CTR range of one size."""
        m = re.fullmatch(_PORT, text)
        if not m or (m["ip"] and any(int(octet) > 255 for octet in m["ip"].split("."))):
            raise UsageError(f"invalid -p {text!r}: use [IP:]HOST:CONTAINER[/tcp|/udp]")
        ctr = _range(m["ctr"])
        host = _range(m["host"]) if m["host"] else [0] * len(ctr)
        if len(host) != len(ctr):
            raise UsageError(f"invalid -p {text!r}: the host and container ranges differ in size")
        return [cls(m["ip"] or "", h, c, m["proto"] or "tcp") for h, c in zip(host, ctr, strict=True)]

    @classmethod
    def exposed(cls, key: str) -> PublishedPort:
        """-P: an ExposedPorts key of the image ("80/tcp", "53/udp", "8080"), on any free host port.

        The image wrote the key: checked here, where it is used, since an image that
        exposes "abc/tcp" still runs without -P (Docker's load takes it too)."""
        m = re.fullmatch(r"([0-9]{1,5})(?:/(tcp|udp))?", key)
        if not m or not 0 < int(m[1]) <= 65535:
            raise UsageError(f"-P: the image exposes {key!r}, not PORT[/tcp|/udp] with PORT from 1 to 65535")
        return cls("", 0, int(m[1]), m[2] or "tcp")

    @classmethod
    def from_json(cls, raw: dict) -> PublishedPort:
        return cls(raw["host_ip"], raw["host_port"], raw["container_port"], raw["proto"])

    def to_json(self) -> dict:
        """As the spec and HostConfig.PortBindings in container.json hold it."""
        return {"host_ip": self.host_ip, "host_port": self.host_port, "container_port": self.container_port,
                "proto": self.proto}

    @classmethod
    def from_docker(cls, raw: dict) -> PublishedPort:
        port, _, proto = raw["ContainerPort"].partition("/")
        return cls(raw["HostIp"], int(raw["HostPort"]), int(port), proto or "tcp")

    def to_docker(self) -> dict:
        """Docker's description, as leases.json and network.json hold it and inspect shows it."""
        return {"HostIp": self.bind_ip, "HostPort": str(self.host_port), "ContainerPort": self.key}

    @property
    def bind_ip(self) -> str:
        return self.host_ip or "0.0.0.0"

    @property
    def any_address(self) -> bool:
        return self.bind_ip == "0.0.0.0"

    @property
    def key(self) -> str:
        """Docker's name of the container side ("80/tcp"): ExposedPorts' and NetworkSettings.Ports' keys."""
        return f"{self.container_port}/{self.proto}"

    def __str__(self) -> str:
        return f"{self.bind_ip}:{self.host_port}->{self.key}"


def initial_hosts(hostname: str, extra_hosts: list[str], host_network: bool) -> str:
    """A new container's /etc/hosts, before it has an address (on a bridge, attach
    rewrites it with the lease); with the host's network, the host's name is left to
    resolve as the host resolves it."""
    from . import hostsfile  # light: the start path of every lg run comes here

    text = hostsfile.render(hostname, [], [], extra_hosts, "127.0.0.1" if host_network else None)
    return text.replace(f"127.0.1.1\t{hostname}\n", "") if host_network else text
