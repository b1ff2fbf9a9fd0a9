"""What a container is made of, as plain data saved with the container.

The porcelain builds a :class:`Spec` from the image config and the user's flags;
the runtime needs nothing else to start, stop, exec into or clean up a container.
Networking is three fields (``network``, ``ports``, ``aliases``) that only the
network controller (runtime.net.controller) interprets; ``network`` and ``ports``
are parsed values (runtime.net), written to container.json as they always were.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from .health import HealthConfig
from .net import NONE, NetworkMode, PublishedPort
from .restart import RestartPolicy


@dataclass
class Mount:
    """Something mounted into the container besides its rootfs: a bind, a volume or a
    tmpfs, checked before it is saved here (porcelain.mountspec)."""

    kind: str  # "bind", "volume" (a bind of a volume's directory) or "tmpfs"
    target: str  # path inside the container
    source: str = ""  # host path for binds and volumes
    readonly: bool = False
    options: str = ""  # tmpfs mount data
    name: str = ""  # a volume's name (written only for volumes)


@dataclass
class Process:
    """The container's first process: what runs, as whom, where, and with what it may
    do (capabilities, seccomp); exec'd processes are given their own."""

    args: list[str]
    env: list[str]
    cwd: str = "/"
    user: str = ""  # "uid[:gid]" or "name[:group]", resolved inside the container
    tty: bool = False
    stdin: bool = False
    caps: list[str] = field(default_factory=list)
    no_new_privileges: bool = False
    seccomp: str = ""  # BPF program file (security.seccomp_profile); "" for unconfined
    groups_add: list[str] = field(default_factory=list)  # --group-add: names (the image's /etc/group) or ids
    rlimits: list[list[int]] = field(default_factory=list)  # --ulimit: [resource, soft, hard], -1 unlimited


@dataclass(frozen=True)
class Device:
    """A host device node given to the container (``--device``): made at ``path`` in its
    /dev with the host node's type, numbers, mode and owner, and let through its device
    cgroup for ``access``. lg without root cannot make nodes and binds ``host`` instead."""

    path: str  # in the container, below /dev
    kind: str  # "c" or "b"
    major: int
    minor: int
    mode: int  # permission bits of the host's node
    uid: int
    gid: int
    access: str  # some of "rwm"
    host: str  # the host's node, symlinks resolved

    def rule(self) -> str:
        """As devices.allow takes it (cgroups.DEVICE_RULES)."""
        return f"{self.kind} {self.major}:{self.minor} {self.access}"


@dataclass
class Resources:
    """The cgroup limits a container runs under; None is no limit."""

    memory: int | None = None  # bytes
    cpus: float | None = None
    pids: int | None = None


@dataclass
class Spec:
    """All a container is (container.json): the runtime starts, stops, execs into and
    cleans up a container from this alone, whichever lg command made it."""

    id: str
    name: str
    rootfs_lower: str  # the materialised image rootfs (read-only)
    state_dir: str  # holds upper/, work/, merged/, hosts, hostname, resolv.conf
    process: Process
    hostname: str = ""
    readonly: bool = False
    mounts: list[Mount] = field(default_factory=list)
    resources: Resources = field(default_factory=Resources)
    network: NetworkMode = NONE
    init: bool = False
    stop_signal: str = "SIGTERM"
    ports: list[PublishedPort] = field(default_factory=list)
    aliases: list[str] = field(default_factory=list)  # extra names on a user-defined network
    extra_hosts: list[str] = field(default_factory=list)  # --add-host NAME:IP; IP may be "host-gateway"
    stop_timeout: int | None = None  # --stop-timeout: lg stop's default wait for this container
    shm_size: int | None = None  # --shm-size in bytes (default 64 MiB, as Docker)
    sysctls: dict[str, str] = field(default_factory=dict)  # --sysctl, namespaced keys only (runopts checks)
    mac_address: str = ""  # --mac-address of eth0 on a bridge network; "" for the kernel's random one
    restart: RestartPolicy = field(default_factory=RestartPolicy)  # --restart; lg update changes it
    healthcheck: HealthConfig | None = None  # the image's HEALTHCHECK under the --health-* flags
    log_opts: dict[str, int] = field(default_factory=dict)  # --log-opt max-size/max-file (runtime.logfile)
    devices: list[Device] = field(default_factory=list)  # --device
    volatile: bool = False  # --rm: the upper dir goes with the container (rootfs._overlay)

    def to_dict(self) -> dict:
        """As container.json holds it (Record.to_json)."""
        raw = dataclasses.asdict(self)
        raw["network"] = self.network.to_json()
        raw["ports"] = [p.to_json() for p in self.ports]
        raw["restart"] = self.restart.to_json() if self.restart != RestartPolicy() else None
        raw["healthcheck"] = self.healthcheck.to_json() if self.healthcheck else None
        names = ("extra_hosts", "stop_timeout", "shm_size", "sysctls", "mac_address", "restart",
                 "healthcheck", "log_opts", "devices", "volatile")
        optional = [(raw, name) for name in names] + [(m, "name") for m in raw["mounts"]]
        for fields_of, name in optional + [(raw["process"], "groups_add"), (raw["process"], "rlimits")]:
            if not fields_of[name]:  # written only when used: a record stays what the previous lg wrote
                del fields_of[name]
        return raw

    @classmethod
    def from_dict(cls, raw: dict) -> Spec:
        """From container.json; the fields with defaults may be absent."""
        raw = dict(raw)
        raw["process"] = Process(**raw["process"])
        raw["resources"] = Resources(**raw.get("resources", {}))
        raw["mounts"] = [Mount(**m) for m in raw.get("mounts", [])]
        raw["network"] = NetworkMode.from_json(raw["network"]) if "network" in raw else NONE
        raw["ports"] = [PublishedPort.from_json(p) for p in raw.get("ports", [])]
        raw["restart"] = RestartPolicy.from_json(raw.get("restart"))
        raw["healthcheck"] = HealthConfig.from_json(raw.get("healthcheck"))
        raw["devices"] = [Device(**d) for d in raw.get("devices", [])]
        return cls(**raw)
