"""A compose file as typed values: every key checked, every short form normalised.

Each service key lg supports has one reader below (``_KEYS``), headed by the forms
it takes; a key not in the table is refused by name (``services.web.profiles: not
supported by lg``), never silently dropped. ``x-`` extension keys are allowed where
compose allows them, at the top level and in services, networks and volumes, and
carry no meaning. Names follow compose v2: containers ``PROJECT-SERVICE-1``, networks
``PROJECT_default`` and ``PROJECT_NAME``, volumes ``PROJECT_NAME``.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from ..porcelain.timespec import duration
from ..text import kind_of
from . import ComposeError
from .interpolate import Variables, interpolate, read_env_file

_SERVICE_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9._-]*")
_RESOURCE_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9._-]*")
_DURATIONS = ("interval", "timeout", "start_period")  # healthcheck's
RESTART_POLICIES = ("no", "always", "unless-stopped", "on-failure")
CONDITIONS = ("service_started", "service_healthy", "service_completed_successfully")
PULL_POLICIES = {"always": "always", "never": "never", "missing": "missing", "if_not_present": "missing",
                 "build": "build"}


@dataclass(frozen=True)
class Build:
    context: str  # absolute
    dockerfile: str | None = None
    args: dict[str, str | None] = field(default_factory=dict)
    target: str | None = None


@dataclass(frozen=True)
class Port:
    """One published port; ``published`` and ``target`` as strings, since either may be a range."""
    target: str
    published: str | None = None
    host_ip: str | None = None
    protocol: str = "tcp"

    def publish_flag(self) -> str:
        """The ``lg run -p`` form."""
        host = f"{self.host_ip}:" if self.host_ip else ""
        published = self.published or ""
        container = f"{self.target}/{self.protocol}"
        return f"{host}{published}:{container}" if host or published else container


@dataclass(frozen=True)
class Mount:
    type: str  # volume, bind or tmpfs
    target: str
    source: str | None = None  # a volume's short name (None: anonymous), a bind's absolute path
    read_only: bool = False


@dataclass(frozen=True)
class Dependency:
    service: str
    condition: str = "service_started"
    required: bool = True


@dataclass(frozen=True)
class Healthcheck:
    test: list[str] | None = None  # ["CMD", ...], ["CMD-SHELL", "..."] or ["NONE"]
    interval: float | None = None  # seconds
    timeout: float | None = None
    retries: int | None = None
    start_period: float | None = None
    disable: bool = False


@dataclass(frozen=True)
class Limits:
    cpus: float | None = None
    memory: str | None = None  # as written: lg run's parser reads it
    pids: int | None = None


@dataclass
class Service:
    name: str
    image: str | None = None
    build: Build | None = None
    command: list[str] | None = None
    entrypoint: list[str] | None = None
    environment: dict[str, str] = field(default_factory=dict)
    ports: list[Port] = field(default_factory=list)
    expose: list[str] = field(default_factory=list)
    volumes: list[Mount] = field(default_factory=list)
    networks: dict[str, list[str]] = field(default_factory=dict)  # network key -> aliases
    depends_on: list[Dependency] = field(default_factory=list)
    healthcheck: Healthcheck | None = None
    restart: str | None = None
    user: str | None = None
    working_dir: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    limits: Limits = field(default_factory=Limits)
    container_name: str | None = None
    hostname: str | None = None
    init: bool | None = None
    read_only: bool | None = None
    tty: bool | None = None
    stdin_open: bool | None = None
    tmpfs: list[str] = field(default_factory=list)
    cap_add: list[str] = field(default_factory=list)
    cap_drop: list[str] = field(default_factory=list)
    security_opt: list[str] = field(default_factory=list)
    dns: list[str] = field(default_factory=list)
    dns_search: list[str] = field(default_factory=list)
    devices: list[str] = field(default_factory=list)  # HOST[:CONTAINER][:PERMS], as --device takes them
    extra_hosts: list[str] = field(default_factory=list)  # NAME:IP
    sysctls: dict[str, str] = field(default_factory=dict)
    stop_signal: str | None = None
    stop_grace_period: float | None = None
    shm_size: str | None = None
    pull_policy: str | None = None
    platform: str | None = None
    network_mode: str | None = None


@dataclass(frozen=True)
class Network:
    key: str
    name: str  # the lg network's name
    external: bool = False
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Volume:
    key: str
    name: str  # the lg volume's name
    external: bool = False
    labels: dict[str, str] = field(default_factory=dict)


@dataclass
class Project:
    name: str
    directory: str
    services: dict[str, Service]
    networks: dict[str, Network]
    volumes: dict[str, Volume]
    warnings: list[str] = field(default_factory=list)

    def start_order(self) -> list[str]:
        """Services, each after the ones it depends on, otherwise in file order."""
        done: list[str] = []
        for name in self.services:
            self._visit(name, done, [])
        return done

    def _visit(self, name: str, done: list[str], path: list[str]) -> None:
        if name in done:
            return
        if name in path:
            cycle = " -> ".join(path[path.index(name):] + [name])
            raise ComposeError(f"services depend on each other in a cycle: {cycle}")
        for dep in self.services[name].depends_on:
            self._visit(dep.service, done, path + [name])
        done.append(name)

    def container_name(self, service: str, index: int = 1) -> str:
        return self.services[service].container_name or f"{self.name}-{service}-{index}"


# -- reading -------------------------------------------------------------------------------


def project_name(given: str | None, environ: Mapping[str, str], top: object, directory: str) -> str:
    """compose's order: -p, COMPOSE_PROJECT_NAME, the file's ``name``, the directory's name;
    lower-cased, keeping letters, digits, '-' and '_' (it must start with a letter or digit)."""
    if given:
        raw, normalise = given, False
    elif environ.get("COMPOSE_PROJECT_NAME"):
        raw, normalise = environ["COMPOSE_PROJECT_NAME"], False
    elif isinstance(top, str) and top:
        raw, normalise = top, False
    else:
        raw, normalise = os.path.basename(os.path.abspath(directory)), True
    name = re.sub(r"[^a-z0-9_-]", "", raw.lower()) if normalise else raw
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", name):
        raise ComposeError(f"project name {raw!r} must be lower-case letters, digits, '-' and '_',"
                           " starting with a letter or digit")
    return name


def load(document: dict, directory: str, environ: Mapping[str, str], name: str | None = None,
         env_file: str | None = None) -> Project:
    """The Project a parsed compose document describes, its variables interpolated from
    ``environ`` and the project's .env (or ``env_file``), its relative paths below ``directory``."""
    directory = os.path.abspath(directory)
    dotenv = read_env_file(env_file or os.path.join(directory, ".env"), environ,
                           required=env_file is not None)
    variables = Variables(environ, dotenv)
    document = interpolate(document, variables)
    warnings = [f"the {v} variable is not set; using an empty string" for v in variables.unset]
    for key in document:
        if key not in ("version", "name", "services", "networks", "volumes") and not key.startswith("x-"):
            known = key in ("configs", "secrets", "include", "models")
            raise ComposeError(f"{key}: not supported by lg" if known
                               else f"{key}: not a compose top-level key")
    if "version" in document:
        warnings.append("the top-level 'version' is obsolete and ignored")
    # compose takes COMPOSE_PROJECT_NAME from .env too (the shell's still wins)
    project = project_name(name, {**dotenv, **environ}, document.get("name"), directory)
    networks = _resources(document.get("networks"), "networks", project, Network)
    volumes = _resources(document.get("volumes"), "volumes", project, Volume)
    raw_services = _map(document.get("services") or {}, "services")
    if not raw_services:
        raise ComposeError("services: the file defines no service")
    services = {}
    for service_name, raw in raw_services.items():
        if not _SERVICE_NAME.fullmatch(service_name):
            raise ComposeError(f"services.{service_name}: a service name is letters, digits,"
                               " '.', '_' and '-'")
        services[service_name] = _service(service_name, raw, directory, environ)
    result = Project(project, directory, services, networks, volumes, warnings)
    _check_references(result)
    result.start_order()  # refuses a cycle now, before anything starts
    return result


def _resources(raw: object, section: str, project: str, kind: type) -> dict:
    out = {}
    for key, spec in _map(raw or {}, section).items():
        where = f"{section}.{key}"
        if not _RESOURCE_NAME.fullmatch(key):
            raise ComposeError(f"{where}: a name is letters, digits, '.', '_' and '-'")
        spec = _map(spec or {}, where)
        driver = "bridge" if kind is Network else "local"
        for k, v in spec.items():
            if k.startswith("x-") or k in ("external", "name", "labels"):
                continue
            if k == "driver" and v == driver:
                continue
            only = f" (only driver: {driver})" if k == "driver" else ""
            raise ComposeError(f"{where}.{k}: not supported by lg{only}")
        external = _bool(spec.get("external", False), f"{where}.external")
        given = _str(spec["name"], f"{where}.name") if "name" in spec else None
        name = given or (key if external else f"{project}_{key}")
        out[key] = kind(key, name, external, _labels(spec.get("labels"), f"{where}.labels"))
    if section == "networks" and "default" not in out:
        out["default"] = Network("default", f"{project}_default")
    return out


def _check_references(project: Project) -> None:
    for service in project.services.values():
        where = f"services.{service.name}"
        for dep in service.depends_on:
            if dep.service not in project.services:
                raise ComposeError(f"{where}.depends_on: no service named {dep.service!r}")
            if dep.service == service.name:
                raise ComposeError(f"{where}.depends_on: a service cannot depend on itself")
        for net in service.networks:
            if net not in project.networks:
                raise ComposeError(f"{where}.networks: network {net!r} is not declared under the"
                                   " top-level networks")
        for mount in service.volumes:
            if mount.type == "volume" and mount.source is not None and mount.source not in project.volumes:
                raise ComposeError(f"{where}.volumes: volume {mount.source!r} is not declared under the"
                                   " top-level volumes")
        if service.image is None and service.build is None:
            raise ComposeError(f"{where}: has neither an image nor a build context")


def _service(name: str, raw: object, directory: str, environ: Mapping[str, str]) -> Service:
    where = f"services.{name}"
    spec = _map(raw, where)
    service = Service(name)
    env_files = spec.get("env_file")
    if env_files is not None:
        for path, required in _env_files(env_files, f"{where}.env_file"):
            # top down, a later file's value winning (compose-spec); ``environment`` wins over all
            service.environment.update(read_env_file(os.path.join(directory, path), environ, required))
    for key, value in spec.items():
        if key.startswith("x-") or key == "env_file":
            continue
        reader = _KEYS.get(key)
        if reader is None:
            raise ComposeError(f"{where}.{key}: not supported by lg")
        reader(service, value, f"{where}.{key}", directory, environ)
    if service.networks == {} and service.network_mode is None:
        service.networks = {"default": []}
    return service


# -- one reader per service key ---------------------------------------------------------------

Reader = Callable[[Service, object, str, str, Mapping[str, str]], None]


def _image(s: Service, v: object, where: str, _d: str, _e: Mapping[str, str]) -> None:
    """image: NAME[:TAG]"""
    s.image = _str(v, where)


def _build(s: Service, v: object, where: str, directory: str, _e: Mapping[str, str]) -> None:
    """build: CONTEXT | {context, dockerfile, args, target}"""
    if isinstance(v, str):
        s.build = Build(os.path.normpath(os.path.join(directory, v)))
        return
    spec = _map(v, where)
    for k in spec:
        if k not in ("context", "dockerfile", "args", "target") and not k.startswith("x-"):
            raise ComposeError(f"{where}.{k}: not supported by lg")
    context = _str(spec.get("context", "."), f"{where}.context")
    s.build = Build(os.path.normpath(os.path.join(directory, context)),
                    _str(spec["dockerfile"], f"{where}.dockerfile") if "dockerfile" in spec else None,
                    _pairs(spec.get("args"), f"{where}.args", keep_unset=True),
                    _str(spec["target"], f"{where}.target") if "target" in spec else None)


def _command(s: Service, v: object, where: str, _d: str, _e: Mapping[str, str]) -> None:
    """command: STRING (split as a shell would, without one) | [ARG, ...]"""
    s.command = _words(v, where)


def _entrypoint(s: Service, v: object, where: str, _d: str, _e: Mapping[str, str]) -> None:
    """entrypoint: STRING | [ARG, ...]"""
    s.entrypoint = _words(v, where)


def _environment(s: Service, v: object, where: str, _d: str, environ: Mapping[str, str]) -> None:
    """environment: {NAME: VALUE} | [NAME=VALUE | NAME]; a NAME alone takes lg's environment's value"""
    for k, value in _pairs(v, where, keep_unset=True).items():
        if value is None:
            if k in environ:
                s.environment[k] = environ[k]
        else:
            s.environment[k] = value


def _ports(s: Service, v: object, where: str, _d: str, _e: Mapping[str, str]) -> None:
    """ports: [[IP:][HOST:]CONTAINER[/PROTO] | PORT | {target, published, host_ip, protocol}]"""
    for i, item in enumerate(_list(v, where)):
        s.ports.append(_port(item, f"{where}[{i}]"))


_PORT = re.compile(r"(?:(?P<ip>\[[0-9a-fA-F:.]+\]|\d+\.\d+\.\d+\.\d+):)?(?:(?P<published>\d+(?:-\d+)?)?:)?"
                   r"(?P<target>\d+(?:-\d+)?)(?:/(?P<proto>tcp|udp|sctp))?")


def _port(item: object, where: str) -> Port:
    if isinstance(item, int) and not isinstance(item, bool):
        return Port(str(item))
    if isinstance(item, str):
        m = _PORT.fullmatch(item)
        if not m:
            raise ComposeError(f"{where}: {item!r} is not [IP:][HOST:]CONTAINER[/PROTOCOL]")
        return Port(m["target"], m["published"], m["ip"], m["proto"] or "tcp")
    spec = _map(item, where)
    for k in spec:
        if k not in ("target", "published", "host_ip", "protocol", "mode", "name", "app_protocol"):
            raise ComposeError(f"{where}.{k}: not supported by lg")
    if spec.get("mode", "ingress") not in ("ingress", "host"):
        raise ComposeError(f"{where}.mode: must be ingress or host")
    try:
        target = _int(spec.get("target"), f"{where}.target")
    except ComposeError:
        target = None
    if target is None:
        raise ComposeError(f"{where}.target: must be a port number")
    published = spec.get("published")
    protocol = _str(spec.get("protocol", "tcp"), f"{where}.protocol")
    if protocol not in ("tcp", "udp", "sctp"):
        raise ComposeError(f"{where}.protocol: must be tcp, udp or sctp")
    return Port(str(target), None if published is None else _scalar(published, f"{where}.published"),
                _str(spec["host_ip"], f"{where}.host_ip") if "host_ip" in spec else None, protocol)


def _expose(s: Service, v: object, where: str, _d: str, _e: Mapping[str, str]) -> None:
    """expose: [PORT[/PROTO]] (a note, as in Docker: every port is reachable on the network)"""
    s.expose = [_scalar(p, f"{where}[{i}]") for i, p in enumerate(_list(v, where))]


def _volumes(s: Service, v: object, where: str, directory: str, _e: Mapping[str, str]) -> None:
    """volumes: [SOURCE:TARGET[:ro|rw] | TARGET | {type, source, target, read_only}]"""
    for i, item in enumerate(_list(v, where)):
        s.volumes.append(_mount(item, f"{where}[{i}]", directory))


# A short volume's access modes, comma-separated (compose-spec): ro or rw; z and Z (SELinux
# relabelling, which lg does not do) and Docker Desktop's cached, delegated and consistent
# are accepted and mean nothing here, as on Linux docker.
_VOLUME_MODES = {"ro", "rw", "z", "Z", "cached", "delegated", "consistent"}


def _mount(item: object, where: str, directory: str) -> Mount:
    if isinstance(item, str):
        parts = item.split(":")
        if len(parts) == 1:
            return Mount("volume", _target(parts[0], where))
        modes = parts[2].split(",") if len(parts) == 3 else []
        if len(parts) > 3 or not set(modes) <= _VOLUME_MODES or len(set(modes) & {"ro", "rw"}) > 1:
            raise ComposeError(f"{where}: {item!r} is not SOURCE:TARGET[:ro|rw][,z|Z]")
        named, target = parts[0], _target(parts[1], where)
        read_only = "ro" in modes
        kind = "bind" if named.startswith((".", "/", "~")) else "volume"
        return Mount(kind, target, _source(kind, named, directory, where), read_only)
    spec = _map(item, where)
    for k in spec:
        if k not in ("type", "source", "target", "read_only") and not k.startswith("x-"):
            raise ComposeError(f"{where}.{k}: not supported by lg")
    kind = _str(spec.get("type", ""), f"{where}.type")
    if kind not in ("volume", "bind", "tmpfs"):
        raise ComposeError(f"{where}.type: must be volume, bind or tmpfs")
    given = spec.get("source")
    source = None if given is None else _source(kind, _str(given, f"{where}.source"), directory, where)
    if source is None and kind == "bind":
        raise ComposeError(f"{where}.source: a bind mount needs a source")
    return Mount(kind, _target(_str(spec.get("target", ""), f"{where}.target"), where), source,
                 _bool(spec.get("read_only", False), f"{where}.read_only"))


def _target(path: str, where: str) -> str:
    if not path.startswith("/"):
        raise ComposeError(f"{where}: the path in the container must be absolute, not {path!r}")
    return path


def _source(kind: str, source: str, directory: str, where: str) -> str:
    if kind != "bind":
        if not _RESOURCE_NAME.fullmatch(source):
            raise ComposeError(f"{where}: {source!r} is not a volume name")
        return source
    if source.startswith("~"):
        source = os.path.expanduser(source)
    return os.path.normpath(os.path.join(directory, source))


def _networks(s: Service, v: object, where: str, _d: str, _e: Mapping[str, str]) -> None:
    """networks: [NAME] | {NAME: null | {aliases: [ALIAS]}}"""
    if isinstance(v, list):
        s.networks = {_str(n, f"{where}[{i}]"): [] for i, n in enumerate(v)}
        return
    for net, spec in _map(v, where).items():
        spec = _map(spec or {}, f"{where}.{net}")
        for k in spec:
            if k != "aliases":
                raise ComposeError(f"{where}.{net}.{k}: not supported by lg")
        s.networks[net] = [_str(a, f"{where}.{net}.aliases") for a in _list(spec.get("aliases") or [], where)]


def _depends_on(s: Service, v: object, where: str, _d: str, _e: Mapping[str, str]) -> None:
    """depends_on: [SERVICE] | {SERVICE: {condition, required, restart}}"""
    if isinstance(v, list):
        s.depends_on = [Dependency(_str(n, f"{where}[{i}]")) for i, n in enumerate(v)]
        return
    for dep, spec in _map(v, where).items():
        spec = _map(spec or {}, f"{where}.{dep}")
        for k in spec:
            if k not in ("condition", "required", "restart"):
                raise ComposeError(f"{where}.{dep}.{k}: not supported by lg")
        condition = _str(spec.get("condition", "service_started"), f"{where}.{dep}.condition")
        if condition not in CONDITIONS:
            raise ComposeError(f"{where}.{dep}.condition: must be one of {', '.join(CONDITIONS)}")
        required = _bool(spec.get("required", True), f"{where}.{dep}.required")
        s.depends_on.append(Dependency(dep, condition, required))


def _healthcheck(s: Service, v: object, where: str, _d: str, _e: Mapping[str, str]) -> None:
    """healthcheck: {test: STRING | [CMD|CMD-SHELL|NONE, ...], interval, timeout, retries,
    start_period, disable}"""
    spec = _map(v, where)
    for k in spec:
        if k not in ("test", "interval", "timeout", "retries", "start_period", "start_interval", "disable"):
            raise ComposeError(f"{where}.{k}: not supported by lg")
    test = spec.get("test")
    if isinstance(test, str):
        test = ["CMD-SHELL", test]
    elif test is not None:
        test = [_str(t, f"{where}.test") for t in _list(test, f"{where}.test")]
        if not test or test[0] not in ("CMD", "CMD-SHELL", "NONE"):
            raise ComposeError(f"{where}.test: a list starts with CMD, CMD-SHELL or NONE")
    retries = _int(spec.get("retries"), f"{where}.retries")
    if retries is not None and retries < 0:
        raise ComposeError(f"{where}.retries: must be a whole number")
    interval, timeout, start_period = (_duration(spec.get(k), f"{where}.{k}") for k in _DURATIONS)
    s.healthcheck = Healthcheck(test, interval, timeout, retries, start_period,
                                _bool(spec.get("disable", False), f"{where}.disable"))


def _restart(s: Service, v: object, where: str, _d: str, _e: Mapping[str, str]) -> None:
    """restart: no | always | unless-stopped | on-failure[:MAX]"""
    policy = _str(v, where)
    base, _, count = policy.partition(":")
    if base not in RESTART_POLICIES or (count and (base != "on-failure" or not count.isdigit())):
        raise ComposeError(f"{where}: {policy!r} is not no, always, unless-stopped or on-failure[:MAX]")
    s.restart = policy


def _deploy(s: Service, v: object, where: str, _d: str, _e: Mapping[str, str]) -> None:
    """deploy: {resources: {limits: {cpus, memory, pids}}}"""
    spec = _map(v, where)
    for k in spec:
        if k != "resources":
            raise ComposeError(f"{where}.{k}: not supported by lg")
    resources = _map(spec.get("resources") or {}, f"{where}.resources")
    for k in resources:
        if k != "limits":
            raise ComposeError(f"{where}.resources.{k}: not supported by lg")
    limits = _map(resources.get("limits") or {}, f"{where}.resources.limits")
    for k in limits:
        if k not in ("cpus", "memory", "pids"):
            raise ComposeError(f"{where}.resources.limits.{k}: not supported by lg")
    s.limits = Limits(_cpus(limits.get("cpus"), f"{where}.resources.limits.cpus"),
                      _scalar(limits["memory"], f"{where}.resources.limits.memory")
                      if "memory" in limits else None,
                      _int(limits.get("pids"), f"{where}.resources.limits.pids"))


def _legacy_limit(key: str) -> Reader:
    """mem_limit, cpus, pids_limit: the older spellings of deploy's limits."""
    def read(s: Service, v: object, where: str, _d: str, _e: Mapping[str, str]) -> None:
        if key == "memory":
            s.limits = Limits(s.limits.cpus, _scalar(v, where), s.limits.pids)
        elif key == "cpus":
            s.limits = Limits(_cpus(v, where), s.limits.memory, s.limits.pids)
        else:
            s.limits = Limits(s.limits.cpus, s.limits.memory, _int(v, where))
    return read


def _string(attr: str) -> Reader:
    """Keys whose value is one string: user, working_dir, hostname, ..."""
    def read(s: Service, v: object, where: str, _d: str, _e: Mapping[str, str]) -> None:
        setattr(s, attr, _scalar(v, where))
    return read


def _flag(attr: str) -> Reader:
    """Keys whose value is a boolean: init, read_only, tty, stdin_open."""
    def read(s: Service, v: object, where: str, _d: str, _e: Mapping[str, str]) -> None:
        setattr(s, attr, _bool(v, where))
    return read


def _strings(attr: str) -> Reader:
    """Keys whose value is a string or a list of them: tmpfs, cap_add, dns, ..."""
    def read(s: Service, v: object, where: str, _d: str, _e: Mapping[str, str]) -> None:
        items = [v] if isinstance(v, str) else _list(v, where)
        setattr(s, attr, [_str(x, f"{where}[{i}]") for i, x in enumerate(items)])
    return read


def _labels_key(s: Service, v: object, where: str, _d: str, _e: Mapping[str, str]) -> None:
    """labels: {KEY: VALUE} | [KEY=VALUE]"""
    s.labels = _labels(v, where)


def _sysctls(s: Service, v: object, where: str, _d: str, _e: Mapping[str, str]) -> None:
    """sysctls: {KEY: VALUE} | [KEY=VALUE]"""
    s.sysctls = _labels(v, where)


def _extra_hosts(s: Service, v: object, where: str, _d: str, _e: Mapping[str, str]) -> None:
    """extra_hosts: [NAME:IP | NAME=IP] | {NAME: IP}"""
    if isinstance(v, dict):
        s.extra_hosts = [f"{k}:{_scalar(ip, f'{where}.{k}')}" for k, ip in v.items()]
        return
    for i, item in enumerate(_list(v, where)):
        text = _str(item, f"{where}[{i}]")
        name, sep, ip = text.partition("=") if "=" in text else text.partition(":")
        if not sep or not name or not ip:
            raise ComposeError(f"{where}[{i}]: {text!r} is not NAME:IP")
        s.extra_hosts.append(f"{name}:{ip}")


def _stop_grace_period(s: Service, v: object, where: str, _d: str, _e: Mapping[str, str]) -> None:
    """stop_grace_period: DURATION (10s, 1m30s)"""
    s.stop_grace_period = _duration(v, where)


def _pull_policy(s: Service, v: object, where: str, _d: str, _e: Mapping[str, str]) -> None:
    """pull_policy: always | never | missing | if_not_present | build"""
    policy = _str(v, where)
    if policy not in PULL_POLICIES:
        raise ComposeError(f"{where}: must be one of {', '.join(PULL_POLICIES)}")
    s.pull_policy = PULL_POLICIES[policy]


def _network_mode(s: Service, v: object, where: str, _d: str, _e: Mapping[str, str]) -> None:
    """network_mode: none | host | bridge"""
    mode = _str(v, where)
    if mode not in ("none", "host", "bridge"):
        raise ComposeError(f"{where}: lg supports none, host and bridge")
    s.network_mode = mode


_KEYS: dict[str, Reader] = {
    "image": _image, "build": _build, "command": _command, "entrypoint": _entrypoint,
    "environment": _environment, "ports": _ports, "expose": _expose, "volumes": _volumes,
    "networks": _networks, "depends_on": _depends_on, "healthcheck": _healthcheck, "restart": _restart,
    "deploy": _deploy, "mem_limit": _legacy_limit("memory"), "cpus": _legacy_limit("cpus"),
    "pids_limit": _legacy_limit("pids"), "labels": _labels_key, "sysctls": _sysctls,
    "extra_hosts": _extra_hosts, "stop_grace_period": _stop_grace_period, "pull_policy": _pull_policy,
    "network_mode": _network_mode,
    **{k: _string(k) for k in ("user", "working_dir", "container_name", "hostname", "stop_signal", "shm_size",
                               "platform")},
    **{k: _flag(k) for k in ("init", "read_only", "tty", "stdin_open")},
    **{k: _strings(k) for k in ("tmpfs", "cap_add", "cap_drop", "security_opt", "dns", "dns_search",
                                "devices")},
}


# -- types ---------------------------------------------------------------------------------


def _map(v: object, where: str) -> dict:
    if not isinstance(v, dict):
        raise ComposeError(f"{where}: must be a map, not {kind_of(v)}")
    return v


def _list(v: object, where: str) -> list:
    if not isinstance(v, list):
        raise ComposeError(f"{where}: must be a list, not {kind_of(v)}")
    return v


def _str(v: object, where: str) -> str:
    if not isinstance(v, str):
        raise ComposeError(f"{where}: must be a string, not {kind_of(v)}")
    if "\0" in v:
        raise ComposeError(f"{where}: contains a NUL character")
    return v


def _scalar(v: object, where: str) -> str:
    """A string, or a number or boolean written without quotes, as a string (compose's way)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    return _str(v, where)


# Interpolation makes strings, so compose casts them back where a key wants a boolean or a
# number (compose-go's type-cast paths): ``read_only: ${RO:-false}`` and ``target: ${PORT}``.
_TRUE, _FALSE = ("y", "yes", "true", "on"), ("n", "no", "false", "off")


def _bool(v: object, where: str) -> bool:
    if isinstance(v, str) and v.lower() in _TRUE + _FALSE:
        return v.lower() in _TRUE
    if not isinstance(v, bool):
        raise ComposeError(f"{where}: must be true or false, not {kind_of(v)}")
    return v


def _int(v: object, where: str) -> int | None:
    if v is None:
        return None
    if isinstance(v, str) and re.fullmatch(r"-?[0-9]{1,18}", v):
        return int(v)
    if not isinstance(v, int) or isinstance(v, bool):
        raise ComposeError(f"{where}: must be a whole number, not {kind_of(v)}")
    return v


def _cpus(v: object, where: str) -> float | None:
    if v is None:
        return None
    try:
        value = float(_scalar(v, where))
    except ValueError:
        raise ComposeError(f"{where}: must be a number of CPUs such as 0.5") from None
    if value <= 0:
        raise ComposeError(f"{where}: must be more than 0")
    return value


def _duration(v: object, where: str) -> float | None:
    if v is None:
        return None
    seconds = duration(_str(v, where))
    if seconds is None:
        raise ComposeError(f"{where}: {v!r} is not a duration such as 30s or 1m30s")
    return seconds


def _words(v: object, where: str) -> list[str] | None:
    if v is None:
        return None
    if isinstance(v, str):
        try:
            return shlex.split(v)
        except ValueError as exc:
            raise ComposeError(f"{where}: {exc}") from None
    return [_scalar(w, f"{where}[{i}]") for i, w in enumerate(_list(v, where))]


def _pairs(v: object, where: str, keep_unset: bool = False) -> dict:
    """A map of NAME to value, from a map or a list of NAME=VALUE (NAME alone: None)."""
    if v is None:
        return {}
    if isinstance(v, dict):
        return {k: None if x is None else _scalar(x, f"{where}.{k}") for k, x in v.items()}
    out: dict[str, str | None] = {}
    for i, item in enumerate(_list(v, where)):
        text = _str(item, f"{where}[{i}]")
        key, sep, value = text.partition("=")
        if not key:
            raise ComposeError(f"{where}[{i}]: {text!r} has no name")
        if sep or not keep_unset:
            out[key] = value
        else:
            out[key] = None
    return out


def _labels(v: object, where: str) -> dict[str, str]:
    return {k: "" if x is None else x for k, x in _pairs(v, where).items()}


def _env_files(v: object, where: str) -> list[tuple[str, bool]]:
    """env_file: PATH | [PATH | {path, required}] as (path, required) pairs."""
    items = [v] if isinstance(v, str) else _list(v, where)
    out = []
    for i, item in enumerate(items):
        if isinstance(item, dict):
            out.append((_str(item.get("path"), f"{where}[{i}].path"),
                        _bool(item.get("required", True), f"{where}[{i}].required")))
        else:
            out.append((_str(item, f"{where}[{i}]"), True))
    return out


# -- the normalised form (lg compose config) ------------------------------------------------


def document(project: Project) -> dict:
    """The project as plain data, every short form spelled out, absent keys left out:
    what ``lg compose config`` prints (as ``docker compose config`` does)."""
    used = {net for s in project.services.values() for net in s.networks}
    doc: dict = {"name": project.name, "services": {n: _service_doc(s) for n, s in project.services.items()}}
    networks = {k: _resource_doc(n) for k, n in project.networks.items() if k in used or k != "default"}
    if networks:
        doc["networks"] = networks
    if project.volumes:
        doc["volumes"] = {k: _resource_doc(v) for k, v in project.volumes.items()}
    return doc


def _service_doc(s: Service) -> dict:
    out: dict = {}
    for key, value in vars(s).items():
        if key == "name" or value in (None, [], {}, Limits()):
            continue
        if key == "limits":
            out["deploy"] = {"resources": {"limits": {k: v for k, v in vars(value).items() if v is not None}}}
        elif key == "build":
            out[key] = {k: v for k, v in vars(value).items() if v not in (None, {})}
        elif key == "healthcheck":
            out[key] = {k: _go_duration(v) if k in _DURATIONS else v
                        for k, v in vars(value).items() if v not in (None, False)}
        elif key == "stop_grace_period":
            out[key] = _go_duration(value)
        elif key in ("ports", "volumes"):
            out[key] = [{k: int(v) if k == "target" and v.isdigit() else v
                         for k, v in vars(item).items() if v not in (None, False)} for item in value]
        elif key == "depends_on":
            out[key] = {d.service: {"condition": d.condition, "required": d.required} for d in value}
        elif key == "networks":
            out[key] = {net: ({"aliases": aliases} if aliases else None) for net, aliases in value.items()}
        else:
            out[key] = value
    return out


def _go_duration(seconds: float) -> str:
    return f"{seconds:g}s"


def _resource_doc(resource: Network | Volume) -> dict:
    out: dict = {"name": resource.name}
    if resource.external:
        out["external"] = True
    if resource.labels:
        out["labels"] = resource.labels
    return out
