"""What lg ps, logs, inspect and port show of containers.

Kept apart from the lifecycle (containers.py) so that starting a container loads
none of it: rows and log lines are dataclasses, and each costs ~0.5 ms of an
``lg run`` to define.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass
from datetime import datetime, timezone

from ..errors import NotFound
from ..runtime.logfile import LOG_NAME, files, read_lines
from ..runtime.net import PublishedPort
from ..runtime.spec import Mount, Spec
from ..runtime.state import ContainerDir, Record, State
from .container_lookup import find, registry, sweep
from .repo import Repo


@dataclass(frozen=True)
class ContainerRow:
    id: str
    name: str
    image: str
    image_id: str
    command: str
    created: str
    state: str
    status: str
    exit_code: int
    ports: str
    labels: dict[str, str]
    network: str
    mounts: list[str]
    health: str = "none"  # starting, healthy, unhealthy; none without a check or when not running


def _ago(iso: str) -> str:
    try:
        then = datetime.strptime(iso, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    except ValueError:
        return ""
    seconds = int((datetime.now(timezone.utc) - then).total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = seconds // size
            return f"{n} {unit}{'s' if n > 1 else ''}"
    return f"{max(seconds, 1)} second{'s' if seconds > 1 else ''}"


def _port_bindings(published: list[PublishedPort]) -> dict[str, list[dict[str, str]]]:
    """HostConfig.PortBindings as Docker shows it: what was asked for, by container port
    (a random host port is "", as with -P; the ports given are in NetworkSettings.Ports)."""
    out: dict[str, list[dict[str, str]]] = {}
    for port in published:
        out.setdefault(port.key, []).append({"HostIp": port.host_ip, "HostPort": str(port.host_port or "")})
    return out


def settings(cdir: ContainerDir) -> dict:
    from ..runtime.net.controller import settings as network_settings

    return network_settings(cdir)


def _published(net: dict) -> list[PublishedPort]:
    return [PublishedPort.from_docker(p) for p in net.get("Ports", [])]


def _ports_text(net: dict) -> str:
    return ", ".join(str(p) for p in _published(net))


def port(repo: Repo, ref: str) -> list[PublishedPort]:
    """The container's published ports, with the host ports they got (none when it is not running)."""
    cdir = find(repo, ref)
    return _published(settings(cdir)) if cdir.state().running else []


def _status(st: State, health: str | None = None) -> str:
    if st.status == "running":
        shown = {"starting": " (health: starting)", "healthy": " (healthy)", "unhealthy": " (unhealthy)"}
        return f"Up {_ago(st.started_at)}" + shown.get(health or "", "")
    if st.status == "restarting":
        return f"Restarting ({st.exit_code}) {_ago(st.finished_at)} ago"
    if st.status == "paused":
        return f"Up {_ago(st.started_at)} (Paused)"
    if st.status == "exited":
        return f"Exited ({st.exit_code}) {_ago(st.finished_at)} ago"
    return st.status.capitalize()


def ps(repo: Repo, all_: bool = False) -> list[ContainerRow]:
    """Containers, newest first; what dead owners left (``--rm``, never started) is swept first."""
    sweep(repo)
    rows = []
    for cid in registry(repo).ids():
        cdir = registry(repo).container(cid)
        try:
            rec = cdir.record()
        except NotFound:
            continue  # removed while we listed
        st = cdir.state()
        if not all_ and not st.running and st.status != "restarting":
            continue
        args = rec.spec.process.args
        ports = _ports_text(settings(cdir)) if st.running else ""
        health = health_status(cdir, rec, st)
        rows.append(ContainerRow(cid, rec.name, rec.image, rec.image_id, " ".join(args), rec.created,
                                 st.status, _status(st, health), st.exit_code, ports, labels(rec),
                                 rec.spec.network.to_json(), [m.name or m.source for m in rec.spec.mounts],
                                 health or "none"))
    return sorted(rows, key=lambda r: r.created, reverse=True)


def health_status(cdir: ContainerDir, rec: Record, st: State) -> str | None:
    """starting, healthy or unhealthy for a running container with a health check; else None."""
    if rec.spec.healthcheck is None or not st.running:
        return None
    from ..runtime.checks import read_health

    health = read_health(cdir)
    return health.status if health else "starting"


def labels(rec: Record) -> dict[str, str]:
    """A container's labels: its image's, and over them its own (``--label``), as Docker
    merges them into the container's config."""
    return {**(rec.config.get("Labels") or {}), **rec.labels}


@dataclass(frozen=True)
class LogLine:
    stream: str
    time: str
    text: str


def logs(repo: Repo, ref: str, follow: bool = False, tail: int | None = None,
         since: float | None = None, until: float | None = None):
    """The container's output as LogLines; with ``follow``, until the container stops.
    ``since``/``until`` (seconds since the epoch) keep the lines written in that window;
    ``tail`` counts within it, as Docker's does."""
    cdir = find(repo, ref)
    inside = _window(since, until)
    path = cdir.file(LOG_NAME)
    if not follow:
        lines = [line for line in map(_parse_log, read_lines(path)) if inside(line)]
        yield from (lines[-tail:] if tail else []) if tail is not None else lines
        return
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return
    with contextlib.ExitStack() as stack:
        stack.enter_context(f)
        older = [line for name in files(path)[:-1] for line in _lines_of(name)]
        lines = [line for line in map(_parse_log, older + f.readlines()) if inside(line)]
        if tail is not None:
            lines = lines[-tail:] if tail else []
        yield from lines
        while True:
            raw = f.readline()
            if raw:
                line = _parse_log(raw)
                if inside(line):
                    yield line
                continue
            if _rotated(f, path):  # what is left of the old file was read: go on in the new one
                try:
                    f = stack.enter_context(open(path, "rb"))
                except FileNotFoundError:
                    pass
                continue
            if not cdir.state().running and cdir.raw_state().status != "restarting":
                yield from (line for line in map(_parse_log, f.readlines()) if inside(line))
                return
            time.sleep(0.05)


def _lines_of(name: str) -> list[bytes]:
    try:
        with open(name, "rb") as f:
            return f.readlines()
    except FileNotFoundError:
        return []


def _rotated(f, path: str) -> bool:
    """Whether the log file open as ``f`` was moved aside (rotated) since we opened it."""
    try:
        return os.stat(path).st_ino != os.fstat(f.fileno()).st_ino
    except FileNotFoundError:
        return False


def _window(since: float | None, until: float | None):
    """Whether a line falls in [since, until]; a line without a time always does."""
    if since is None and until is None:
        return lambda line: True
    from .timespec import stamp

    def inside(line: LogLine) -> bool:
        when = stamp(line.time)
        return when is None or ((since is None or when >= since) and (until is None or when <= until))

    return inside


def _parse_log(raw: bytes) -> LogLine:
    try:
        entry = json.loads(raw)
        return LogLine(entry.get("stream", "stdout"), entry.get("time", ""), entry.get("log", ""))
    except ValueError:
        return LogLine("stdout", "", raw.decode(errors="replace"))


def inspect(repo: Repo, ref: str) -> dict:
    """Docker-style inspect output for a container."""
    cdir = find(repo, ref)
    rec = cdir.record()
    st = cdir.state()
    spec = rec.spec
    proc = spec.process
    return {
        "Id": rec.id,
        "Name": "/" + rec.name,
        "Created": rec.created,
        "Path": proc.args[0],
        "Args": proc.args[1:],
        "State": {
            "Status": st.status,
            "Running": st.running,
            "Paused": st.status == "paused",
            "Restarting": st.status == "restarting",
            "Pid": st.pid if st.running else 0,
            "ExitCode": st.exit_code,
            "OOMKilled": st.oom_killed,
            "Error": st.error,
            "StartedAt": st.started_at,
            "FinishedAt": st.finished_at,
            **_health(cdir, rec),
        },
        "RestartCount": st.restart_count,
        "Image": rec.image_id,
        "Config": {
            "Image": rec.image,
            "Hostname": spec.hostname,
            "Cmd": proc.args,
            "Env": proc.env,
            "WorkingDir": proc.cwd,
            "User": proc.user,
            "Tty": proc.tty,
            "OpenStdin": proc.stdin,
            "StopSignal": spec.stop_signal,
            "Labels": labels(rec),
            **({"Healthcheck": spec.healthcheck.to_docker()} if spec.healthcheck else {}),
        },
        "HostConfig": {**rec.host_config, "PortBindings": _port_bindings(spec.ports),
                       "RestartPolicy": spec.restart.to_json(),
                       "LogConfig": {"Type": "json-file", "Config": _log_config(spec)}},
        "Mounts": [_mount(m) for m in spec.mounts],
        "GraphDriver": {
            "Name": "overlay",
            "Data": {"LowerDir": spec.rootfs_lower, "UpperDir": cdir.file("upper"),
                     "WorkDir": cdir.file("work"), "MergedDir": cdir.file("merged")},
        },
        "LogPath": cdir.file(LOG_NAME),
        "NetworkSettings": _network_settings(spec, settings(cdir) if st.running else {}),
    }


def _mount(m: Mount) -> dict:
    """One of inspect's Mounts, as Docker's: a volume has its Name and Driver."""
    out = {"Type": m.kind, "Source": m.source, "Destination": m.target, "RW": not m.readonly}
    if m.kind == "volume":
        out.update(Name=m.name, Driver="local")
    return out


def _health(cdir: ContainerDir, rec: Record) -> dict:
    """State.Health, for a container with a health check (as Docker leaves it out otherwise)."""
    if rec.spec.healthcheck is None:
        return {}
    from ..runtime.checks import read_health
    from ..runtime.health import Health

    return {"Health": (read_health(cdir) or Health()).to_docker()}


def _log_config(spec: Spec) -> dict[str, str]:
    """The log's limits as Docker shows --log-opt (the defaults lg applies included)."""
    from ..runtime.logfile import limits

    size, count = limits(spec.log_opts)
    return {"max-size": str(size), "max-file": str(count)}


def _network_settings(spec: Spec, net: dict) -> dict:
    ports: dict = {}
    for p in _published(net):
        ports.setdefault(p.key, []).append({"HostIp": p.bind_ip, "HostPort": str(p.host_port)})
    networks = {}
    if net:
        networks[net["Network"]] = {"IPAddress": net["IPAddress"], "IPPrefixLen": net["IPPrefixLen"],
                                    "Gateway": net["Gateway"], "MacAddress": net["MacAddress"],
                                    "Aliases": spec.aliases}
    return {"IPAddress": net.get("IPAddress", ""), "Gateway": net.get("Gateway", ""),
            "MacAddress": net.get("MacAddress", ""), "Ports": ports, "Networks": networks}
