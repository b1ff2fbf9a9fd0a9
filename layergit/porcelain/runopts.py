"""Turning ``lg run``/``lg create`` flags and an image config into a container spec.

Docker's rules, so muscle memory works: ``--entrypoint`` replaces the image's
Entrypoint and drops its Cmd; arguments after the image replace Cmd; ``-e KEY``
takes KEY from our environment; ``-w`` and ``-u`` override WorkingDir and User;
``-v``, ``--mount`` and ``--tmpfs`` in Docker's grammars (mountspec.py), and an
anonymous volume for each of the image's Volumes that no mount covers.
"""

from __future__ import annotations

import os
import posixpath
import re
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..errors import UsageError
from ..runtime import users
from ..runtime.health import HealthFlags
from ..runtime.net import NetworkKind, NetworkMode, PublishedPort
from ..runtime.rootfs import init_binary
from ..runtime.security import capability_set, seccomp_profile
from ..runtime.spec import Device, Process, Resources
from .mountspec import MountRequest, check_targets, parse_mount, parse_size, parse_tmpfs, parse_volume

# Patterns of flags most runs do not use: compiled on first use (re caches them), not
# at import, where each costs a fraction of a millisecond of every lg run.
MIN_MEMORY = 6 << 20  # Docker's floor: less cannot even start a process


@dataclass
class RunOptions:
    """The flags of ``lg run`` and ``lg create`` as given (compose, build, bisect and
    rebase fill them in too): checked and turned into a runtime.spec.Spec by the
    porcelain, so every way of making a container shares one reading of them."""

    name: str | None = None
    env: list[str] = field(default_factory=list)
    env_files: list[str] = field(default_factory=list)
    workdir: str | None = None
    user: str | None = None
    volumes: list[str] = field(default_factory=list)
    mounts: list[str] = field(default_factory=list)  # --mount
    image_volumes: bool = True  # the image's VOLUMEs as anonymous volumes (not for build steps)
    tmpfs: list[str] = field(default_factory=list)
    hostname: str | None = None
    read_only: bool = False
    memory: str | None = None
    cpus: str | None = None
    pids_limit: int | None = None
    entrypoint: str | None = None
    interactive: bool = False
    tty: bool = False
    network: str = "bridge"  # as given: network_mode() parses it
    publish: list[str] = field(default_factory=list)
    publish_all: bool = False
    aliases: list[str] = field(default_factory=list)
    init: bool = False
    auto_remove: bool = False
    cap_add: list[str] = field(default_factory=list)
    cap_drop: list[str] = field(default_factory=list)
    security_opt: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    add_hosts: list[str] = field(default_factory=list)
    dns: list[str] = field(default_factory=list)
    dns_search: list[str] = field(default_factory=list)
    dns_options: list[str] = field(default_factory=list)
    stop_signal: str | None = None
    stop_timeout: int | None = None
    shm_size: str | None = None
    cidfile: str | None = None
    platform: str | None = None
    group_add: list[str] = field(default_factory=list)
    ulimits: list[str] = field(default_factory=list)
    sysctls: list[str] = field(default_factory=list)
    mac_address: str | None = None
    label_files: list[str] = field(default_factory=list)
    restart: str | None = None  # --restart, parsed by runtime.restart
    health: HealthFlags = field(default_factory=HealthFlags)
    log_driver: str | None = None  # --log-driver: json-file or nothing
    log_opts: list[str] = field(default_factory=list)  # --log-opt KEY=VALUE
    devices: list[str] = field(default_factory=list)  # --device HOST[:CONTAINER][:PERMS]
    command: list[str] = field(default_factory=list)


def parse_memory(text: str) -> int:
    value = parse_size(text, "--memory")
    if value < MIN_MEMORY:
        raise UsageError(f"--memory {text} is below the minimum of 6m")
    return value


def parse_cpus(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise UsageError(f"invalid --cpus value {text!r}: use a number such as 0.5") from None
    if not 0.01 <= value <= (os.cpu_count() or 1):
        raise UsageError(f"--cpus must be between 0.01 and {os.cpu_count()} on this machine")
    return value


ENV_FILE_MAX = 1 << 20  # bytes: an environment, not a data file


def _read_env_file(path: str, flag: str = "--env-file") -> str:
    """An --env-file's text, read up to ENV_FILE_MAX: a pipe works (``--env-file <(...)``),
    /dev/zero or a huge file is refused in one line instead of filling memory."""
    data = bytearray()
    try:
        with open(path, "rb") as f:
            while len(data) <= ENV_FILE_MAX and (chunk := f.read(65536)):
                data += chunk
    except OSError as exc:
        raise UsageError(f"cannot read {flag} {path}: {exc.strerror}") from None
    if len(data) > ENV_FILE_MAX:
        raise UsageError(f"{flag} {path} is larger than {ENV_FILE_MAX >> 20} MiB")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"{flag} {path} is not UTF-8 text") from None


_DNS_LABEL = r"[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?"
_DNS_NAME = None


def dns_name(value: str, what: str, longest: int) -> str:
    """``value`` if it is a DNS name (RFC 1123 labels, dot-separated) of at most ``longest``
    characters; it goes into /etc/hosts files and the kernel's hostname, where a newline
    or a space would inject lines or names."""
    global _DNS_NAME
    if _DNS_NAME is None:
        _DNS_NAME = re.compile(rf"{_DNS_LABEL}(\.{_DNS_LABEL})*")
    if len(value) > longest or not _DNS_NAME.fullmatch(value):
        raise UsageError(f"invalid {what} {value[:80]!r}:"
                         f" use letters, digits, '-' and '.', at most {longest} characters")
    return value


def _kv_lines(path: str, flag: str) -> list[str]:
    """An --env-file's or --label-file's KEY=VALUE lines, by Docker's rules: a leading
    BOM and each line's leading whitespace dropped, blank and # lines skipped, the value
    taken as written (quotes are part of it)."""
    text = _read_env_file(path, flag).removeprefix("\ufeff")
    return [line.lstrip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def labels(items: list[str], files: Sequence[str] = ()) -> dict[str, str]:
    """``--label-file`` lines, then ``--label``s, as Docker reads them: KEY=VALUE or a bare
    KEY (an empty value); blank lines and ``#`` comments skipped; a later KEY wins."""
    lines = []
    for path in files:
        lines += _kv_lines(path, "--label-file")
    out: dict[str, str] = {}
    for item in lines + items:
        key, _, value = item.partition("=")
        if not key:
            raise UsageError(f"invalid label {item!r}: a label needs a name (KEY=VALUE)")
        out[key] = value
    return out


_HOST_NAME = r"[A-Za-z0-9_]([A-Za-z0-9_.-]{0,253})"


def extra_hosts(options: RunOptions, network: NetworkKind) -> list[str]:
    """``--add-host NAME:IP`` (or NAME=IP, an IPv6 address bracketed or not) as NAME:IP;
    IP may be ``host-gateway``: the network's gateway, or the host's loopback with
    ``--network host``. A name or address that could break the hosts file is refused."""
    out: list[str] = []
    if not options.add_hosts:
        return out
    import ipaddress  # only when asked: every lg run comes through here

    for item in options.add_hosts:
        sep = min((i for i in (item.find(":"), item.find("=")) if i >= 0), default=-1)
        name, ip = (item[:sep], item[sep + 1:]) if sep > 0 else (item, "")
        ip = ip[1:-1] if ip.startswith("[") and ip.endswith("]") else ip
        if not re.fullmatch(_HOST_NAME, name):
            raise UsageError(f"invalid --add-host {item!r}: expected NAME:IP with a host name")
        if ip == "host-gateway":
            if network is NetworkKind.HOST:
                ip = "127.0.0.1"
            elif network is not NetworkKind.BRIDGE:
                raise UsageError(f"--add-host {item}: host-gateway needs a bridge network or --network host")
        else:
            try:
                ip = str(ipaddress.ip_address(ip))
            except ValueError:
                raise UsageError(f"invalid --add-host {item!r}: {ip!r} is not an IP address") from None
        out.append(f"{name}:{ip}")
    return out


def resolv_conf(options: RunOptions, host_lines: list[str]) -> list[str]:
    """The container's resolv.conf lines: the host's, with ``--dns`` replacing its
    nameservers, ``--dns-search`` its search list, ``--dns-option`` its options, as Docker."""
    for server in options.dns:
        import ipaddress  # only when asked: every lg run comes through here

        try:
            ipaddress.ip_address(server)
        except ValueError:
            raise UsageError(f"invalid --dns {server!r}: not an IP address") from None
    for value in options.dns_search + options.dns_options:
        if not value or any(c.isspace() or not c.isprintable() for c in value):
            raise UsageError(f"invalid DNS search domain or option {value!r}")
    replaced = {"nameserver": options.dns, "search": options.dns_search, "options": options.dns_options}
    lines = [line for line in host_lines if not (line.split() and replaced.get(line.split()[0]))]
    lines += [f"nameserver {s}" for s in options.dns]
    if options.dns_search:
        lines.append("search " + " ".join(options.dns_search))
    if options.dns_options:
        lines.append("options " + " ".join(options.dns_options))
    return lines


_RLIMITS = ("core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile", "nproc", "rss",
            "rtprio", "rttime", "sigpending", "stack")


def ulimit(text: str) -> list[int]:
    """``--ulimit NAME=SOFT[:HARD]`` as [resource, soft, hard]; -1 is unlimited, which
    is also the kernel's RLIM_INFINITY as Python's resource module spells it."""
    import resource

    name, eq, values = text.partition("=")
    soft_text, _, hard_text = values.partition(":")
    if name not in _RLIMITS or not eq:
        raise UsageError(f"invalid --ulimit {text!r}: use NAME=SOFT[:HARD] (NAME: {', '.join(_RLIMITS)})")
    try:
        soft, hard = int(soft_text), int(hard_text or soft_text)
    except ValueError:
        raise UsageError(f"invalid --ulimit {text!r}: limits are integers (-1: unlimited)") from None
    unlimited = float("inf")
    if min(soft, hard) < -1 or (unlimited if soft == -1 else soft) > (unlimited if hard == -1 else hard):
        raise UsageError(f"invalid --ulimit {text!r}: the soft limit must not exceed the hard one")
    return [getattr(resource, f"RLIMIT_{name.upper()}"), soft, hard]


_DEV_MOUNTS = ("pts", "shm", "mqueue")  # runtime/rootfs.py mounts these in the container's /dev


def device(text: str) -> Device:
    """``--device HOST[:CONTAINER][:PERMS]`` as Docker reads it (a second field made only of
    r, w and m is the permissions), for a device node of the host; its place in the
    container is below /dev, where lg makes the container's nodes."""
    fields = text.split(":")
    if len(fields) == 2 and fields[1] and set(fields[1]) <= set("rwm"):
        fields = [fields[0], fields[0], fields[1]]
    if not 1 <= len(fields) <= 3 or not fields[0]:
        raise UsageError(f"invalid --device {text!r}: use HOST[:CONTAINER][:PERMS]")
    host = fields[0]
    path = posixpath.normpath(fields[1] if len(fields) > 1 and fields[1] else host)
    access = fields[2] if len(fields) > 2 else "rwm"
    try:
        st = os.stat(host)
    except (OSError, ValueError) as exc:
        raise UsageError(f"--device {host}: {getattr(exc, 'strerror', None) or exc}") from None
    if not (stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)):
        raise UsageError(f"--device {host}: not a device node (lg gives devices one by one)")
    if not access or not set(access) <= set("rwm"):
        raise UsageError(f"invalid --device {text!r}: permissions are some of r, w and m")
    if not path.startswith("/dev/") or "\0" in path:
        raise UsageError(f"invalid --device {text!r}: its place in the container must be below /dev")
    if path.split("/")[2] in _DEV_MOUNTS:  # mounted over after the nodes are made
        raise UsageError(f"invalid --device {text!r}: /dev/{path.split('/')[2]} is a filesystem of its own")
    kind = "c" if stat.S_ISCHR(st.st_mode) else "b"
    return Device(path, kind, os.major(st.st_rdev), os.minor(st.st_rdev), stat.S_IMODE(st.st_mode),
                  st.st_uid, st.st_gid, "".join(c for c in "rwm" if c in access), os.path.realpath(host))


def _group(text: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*\$?", text):
        raise UsageError(f"invalid --group-add {text!r}: a group name or id")
    return text


_IPC_SYSCTLS = ("kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall",
                "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced")


def sysctls(options: RunOptions, network: NetworkKind) -> dict[str, str]:
    """``--sysctl KEY=VALUE`` for the kernel settings a container's own namespaces hold,
    as Docker allows them: IPC (kernel.msg*, kernel.sem, kernel.shm*, fs.mqueue.*) and,
    with a network namespace of its own, net.*. Anything else would change the host."""
    out = {}
    for item in options.sysctls:
        key, eq, value = item.partition("=")
        if not eq or not re.fullmatch(r"[a-z0-9_]+(\.[a-z0-9_-]+)+", key) or "\n" in value or "\0" in value:
            raise UsageError(f"invalid --sysctl {item!r}: expected KEY=VALUE, e.g. net.ipv4.ip_forward=1")
        if key.startswith("net."):
            if network in (NetworkKind.HOST, NetworkKind.CONTAINER):
                raise UsageError(f"--sysctl {key}: not with --network host or container:, whose namespace"
                                 " is not the container's own")
        elif not (key in _IPC_SYSCTLS or key.startswith("fs.mqueue.")):
            raise UsageError(f"--sysctl {key}: not a namespaced setting (net.*, kernel.msg*, kernel.sem,"
                             " kernel.shm*, fs.mqueue.*): it would change the host")
        out[key] = value
    return out


def mac_address(options: RunOptions, network: NetworkKind) -> str:
    """``--mac-address``: a unicast Ethernet address, for a bridge network's eth0."""
    mac = (options.mac_address or "").lower()
    if not mac:
        return ""
    if not re.fullmatch(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}", mac) or int(mac[:2], 16) & 1:
        raise UsageError(f"invalid --mac-address {options.mac_address!r}: a unicast one (02:42:ac:11:00:02)")
    if network is not NetworkKind.BRIDGE:
        raise UsageError("--mac-address needs a bridge network (not none, host or container:)")
    return mac


def check_platform(platform: str | None) -> None:
    """``--platform``: lg runs images natively, so only this machine's is accepted."""
    if not platform:
        return
    machine = os.uname().machine
    native = {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)
    os_name, _, arch = platform.lower().partition("/")
    if os_name != "linux" or arch.split("/")[0] not in ("", native, machine):
        raise UsageError(f"--platform {platform}: lg runs images natively; this machine is linux/{native}")


def _env(options: RunOptions, image_env: list[str]) -> list[str]:
    merged: dict[str, str] = {}
    for item in image_env:
        key, _, value = item.partition("=")
        merged[key] = value
    lines = []
    for path in options.env_files:
        lines += _kv_lines(path, "--env-file")
    for item in lines + options.env:
        key, eq, value = item.partition("=")
        if not key or any(c.isspace() for c in key) or "\0" in item:
            raise UsageError(f"invalid environment variable {item[:80]!r}")
        if eq:
            merged[key] = value
        elif key in os.environ:
            merged[key] = os.environ[key]
    return [f"{k}={v}" for k, v in merged.items()]


def mounts(options: RunOptions, config: dict) -> list[MountRequest]:
    """What -v, --mount and --tmpfs ask for, then an anonymous volume for each path of the
    image's Volumes that none of them covers (Docker's VOLUME). A bind's host path must exist."""
    requests = [parse_volume(text) for text in options.volumes]
    requests += [parse_mount(text) for text in options.mounts]
    requests += [parse_tmpfs(text) for text in options.tmpfs]
    check_targets(requests)
    for req in requests:
        if req.kind == "bind" and not os.path.exists(req.source):
            raise UsageError(f"bind source {req.source} does not exist")
    if options.image_volumes:
        taken = {req.target for req in requests}
        for path in sorted(config.get("Volumes") or {}):
            target = parse_volume(path).target if path.startswith("/") else None
            if target and target not in taken:
                requests.append(MountRequest("volume", target))
                taken.add(target)
    return [MountRequest(r.kind, r.target, os.path.realpath(r.source), r.readonly, r.nocopy, r.tmpfs_options,
                         r.labels) if r.kind == "bind" else r for r in requests]


def command(options: RunOptions, config: dict) -> list[str]:
    """Docker's Entrypoint/Cmd rule; UsageError when the result is empty."""
    if options.entrypoint is not None:
        entry = [options.entrypoint] if options.entrypoint else []
        cmd = list(options.command)
    else:
        entry = list(config.get("Entrypoint") or [])
        cmd = list(options.command) or list(config.get("Cmd") or [])
    args = entry + cmd
    if not args:
        raise UsageError("no command specified: the image has no Cmd or Entrypoint;"
                         " give one after the image name")
    return args


def security(options: RunOptions) -> tuple[bool, bool]:
    """(no_new_privileges, seccomp) from --security-opt values."""
    nnp, seccomp = False, True
    for opt in options.security_opt:
        key, _, value = opt.replace("=", ":", 1).partition(":")
        if key == "no-new-privileges":
            nnp = value in ("", "true")
        elif key == "seccomp" and value == "unconfined":
            seccomp = False
        else:
            raise UsageError(f"unsupported --security-opt {opt!r}")
    return nnp, seccomp


def build(options: RunOptions, config: dict,
          seccomp_dir: str) -> tuple[Process, Resources, list[MountRequest]]:
    """The process, resources and mounts of a container for ``config`` (config.json)."""
    workdir = options.workdir or config.get("WorkingDir") or "/"
    if not os.path.isabs(workdir):
        raise UsageError(f"the working directory {workdir!r} must be absolute")
    if options.init and not init_binary():
        raise UsageError("--init needs tini (Debian package tini); bootstrap.sh installs it")
    nnp, seccomp = security(options)
    if options.user is not None:
        users.check(options.user)  # (the image's User is checked where it is resolved)
    process = Process(
        args=command(options, config),
        env=_env(options, list(config.get("Env") or [])),
        cwd=workdir,
        user=options.user if options.user is not None else config.get("User") or "",
        tty=options.tty,
        stdin=options.interactive,
        caps=capability_set(options.cap_add, options.cap_drop),
        no_new_privileges=nnp,
        seccomp=seccomp_profile(seccomp_dir) if seccomp else "",
        groups_add=[_group(g) for g in options.group_add],
        rlimits=[ulimit(u) for u in options.ulimits],
    )
    resources = Resources(
        parse_memory(options.memory) if options.memory else None,
        parse_cpus(options.cpus) if options.cpus else None,
        options.pids_limit,
    )
    if options.pids_limit is not None and options.pids_limit < 1:
        raise UsageError("--pids-limit must be at least 1")
    return process, resources, mounts(options, config)


def network_mode(options: RunOptions) -> NetworkMode:
    """--network: none, host, container:NAME|ID or a network's name (bridge, the default one)."""
    return NetworkMode.parse(options.network)


def ports(options: RunOptions, config: dict, network: NetworkMode) -> list[PublishedPort]:
    """-p [IP:][HOST:]CTR[/proto] (ranges allowed) and -P (the image's ExposedPorts)."""
    if network.kind in (NetworkKind.NONE, NetworkKind.HOST) and (options.publish or options.publish_all):
        raise UsageError(f"publishing ports needs a bridge network, not --network {network}")
    out = [port for text in options.publish for port in PublishedPort.parse(text)]
    if options.publish_all:
        out += [PublishedPort.exposed(key) for key in config.get("ExposedPorts") or {}]
    return out
