"""What a container asks of networking, as values: parsed once, then only read.

``--network`` is parsed where user input enters (porcelain.runopts) into a
:class:`NetworkMode`, which the Spec carries to the runtime and the monitor.
On disk (container.json) it stays the string Docker shows as NetworkMode, which
is what every lg wrote, so records of containers created before still read and a
monitor of the previous lg still reads ours.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from ...errors import UsageError

DEFAULT = "bridge"  # the default network, made on a container's first use
# A network's name: a directory name under ROOT/networks, a Docker-style name for the user.
NETWORK_NAME = r"[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}"  # whole (re.fullmatch): "$" would let "x\n" in


class NetworkKind(enum.Enum):
    NONE = "none"  # a network namespace with only lo
    HOST = "host"  # the host's network namespace
    CONTAINER = "container"  # another running container's network namespace
    BRIDGE = "bridge"  # a namespace of its own with an eth0 on a network's bridge


@dataclass(frozen=True)
class NetworkMode:
    kind: NetworkKind
    name: str = ""  # BRIDGE: the network ("bridge" is the default one); CONTAINER: the container

    @classmethod
    def parse(cls, text: str) -> NetworkMode:
        """``--network`` as the user gives it: none, host, container:NAME|ID, or a network's name."""
        mode = cls.from_json(text)
        if mode.kind is NetworkKind.CONTAINER and not mode.name:
            raise UsageError("--network container: needs the name or id of a running container")
        if mode.kind is NetworkKind.BRIDGE and not re.fullmatch(NETWORK_NAME, text):
            raise UsageError(f"invalid --network {text!r}: use bridge, a network's name, none, host or container:NAME")
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
