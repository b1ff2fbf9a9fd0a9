"""lg compose: a compose Project (layergit.compose) on lg's own containers, networks and
volumes; nothing here runs anything itself.

A service becomes the RunOptions ``lg run`` would get from the same flags
(:func:`run_options`), so a compose file means what the equivalent ``lg run`` lines
mean. What belongs to a project is found by Docker compose's labels
(``com.docker.compose.project`` and the rest), so ``lg ps`` and ``lg network ls`` show
the same things ``docker compose`` would, and ``down`` removes exactly what ``up`` made.
A container is recreated when its configuration hash (the RunOptions and the image
id) changed since it was made, and left running otherwise, as compose does.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

from ..compose import CONFIG_HASH, DEPENDS_ON, NETWORK, NUMBER, PROJECT, SERVICE, VOLUME, ComposeError
from ..compose.model import Project, Service
from ..errors import NotFound
from ..runtime.health import HealthFlags
from . import containers, networks, volumes
from .container_views import ContainerRow, ps
from .repo import Repo
from .runopts import RunOptions

Report = Callable[[str, str], None]  # (what, e.g. "Container shop-web-1", how, e.g. "Started")


@dataclass(frozen=True)
class Member:
    """One of the project's containers as lg ps lists it."""

    service: str
    row: ContainerRow


def image_name(project: Project, service: Service) -> str:
    """The image a service runs: its ``image``, else the one ``build`` makes (compose v2's name)."""
    return service.image or f"{project.name}-{service.name}"


def run_options(project: Project, service: Service) -> RunOptions:
    """The flags of the ``lg run -d`` that starts ``service``."""
    options = RunOptions(
        name=project.container_name(service.name),
        env=[f"{k}={v}" for k, v in service.environment.items()],
        workdir=service.working_dir, user=service.user, hostname=service.hostname,
        read_only=bool(service.read_only), init=bool(service.init), tty=bool(service.tty),
        interactive=bool(service.stdin_open),
        memory=service.limits.memory,
        cpus=None if service.limits.cpus is None else f"{service.limits.cpus:g}",
        pids_limit=service.limits.pids,
        publish=[port.publish_flag() for port in service.ports],
        cap_add=list(service.cap_add), cap_drop=list(service.cap_drop),
        security_opt=list(service.security_opt),
        dns=list(service.dns), dns_search=list(service.dns_search), add_hosts=list(service.extra_hosts),
        sysctls=[f"{k}={v}" for k, v in service.sysctls.items()], stop_signal=service.stop_signal,
        stop_timeout=None if service.stop_grace_period is None else round(service.stop_grace_period),
        shm_size=service.shm_size, platform=service.platform, tmpfs=list(service.tmpfs),
        devices=list(service.devices),
        labels=[f"{k}={v}" for k, v in {**service.labels, PROJECT: project.name, SERVICE: service.name,
                                         NUMBER: "1", **_depends_on(service)}.items()],
    )
    options.restart = service.restart
    options.health = _health(service)
    if service.entrypoint is not None:  # Docker's --entrypoint is one word; the rest leads the command
        options.entrypoint = service.entrypoint[0] if service.entrypoint else ""
        options.command = service.entrypoint[1:] + (service.command or [])
    elif service.command is not None:
        options.command = list(service.command)
    _network(project, service, options)
    for mount in service.volumes:
        if mount.type == "tmpfs":
            options.tmpfs.append(mount.target)
            continue
        source = mount.source
        if mount.type == "volume" and source:
            source = project.volumes[source].name
        text = f"{source}:{mount.target}" if source else mount.target
        options.volumes.append(text + (":ro" if mount.read_only else ""))
    return options


def _depends_on(service: Service) -> dict[str, str]:
    """The depends_on label, as compose writes it: what ``lg system boot`` starts first."""
    if not service.depends_on:
        return {}
    return {DEPENDS_ON: ",".join(f"{d.service}:{d.condition}:false" for d in service.depends_on)}


def _health(service: Service) -> HealthFlags:
    """healthcheck: as --health-* flags, the test whole (CMD or CMD-SHELL, as the file says)."""
    check = service.healthcheck
    if check is None:
        return HealthFlags()
    if check.disable or (check.test or [""])[0] == "NONE":
        return HealthFlags(disabled=True)

    def duration(seconds: float | None) -> str | None:
        return None if seconds is None else f"{seconds:g}s"

    return HealthFlags(interval=duration(check.interval), timeout=duration(check.timeout),
                       retries=check.retries, start_period=duration(check.start_period), test=check.test)


def _network(project: Project, service: Service, options: RunOptions) -> None:
    if service.network_mode is not None:
        options.network = service.network_mode
        return
    if len(service.networks) > 1:
        raise ComposeError(f"services.{service.name}.networks: lg connects a container to one network,"
                           f" not {len(service.networks)}")
    (key, aliases), = service.networks.items()
    options.network = project.networks[key].name
    options.aliases = [service.name, *aliases]


def config_hash(options: RunOptions, image_id: str) -> str:
    """What decides whether a running container is still what the file asks for."""
    doc = json.dumps([asdict(options), image_id], sort_keys=True, default=str)
    return hashlib.sha256(doc.encode()).hexdigest()


def members(repo: Repo, project: Project) -> list[Member]:
    """The project's containers, running or not, in the file's service order."""
    order = {name: i for i, name in enumerate(project.services)}
    found = [Member(row.labels.get(SERVICE, ""), row) for row in ps(repo, all_=True)
             if row.labels.get(PROJECT) == project.name]
    return sorted(found, key=lambda m: (order.get(m.service, len(order)), m.row.name))


def _ensure_networks(repo: Repo, project: Project, report: Report) -> None:
    existing = {n["name"] for n in networks.ls(repo)}
    used = {key for s in project.services.values() if s.network_mode is None for key in s.networks}
    for key in sorted(used):
        net = project.networks[key]
        if net.name in existing:
            continue
        if net.external:
            raise NotFound(f"network {net.name} is declared external but does not exist:"
                           f" lg network create {net.name}")
        networks.create(repo, net.name, labels={**net.labels, PROJECT: project.name, NETWORK: key})
        report(f"Network {net.name}", "Created")


def _ensure_volumes(repo: Repo, project: Project, report: Report) -> None:
    existing = {v.name for v in volumes.ls(repo)}
    for key, vol in project.volumes.items():
        if vol.name in existing:
            continue
        if vol.external:
            raise NotFound(f"volume {vol.name} is declared external but does not exist:"
                           f" lg volume create {vol.name}")
        volumes.create(repo, vol.name, {**vol.labels, PROJECT: project.name, VOLUME: key})
        report(f"Volume {vol.name}", "Created")


def build(repo: Repo, project: Project, services: list[str] | None = None, report: Report | None = None,
          no_cache: bool = False) -> list[str]:
    """lg compose build: each service with a ``build`` section, as ``lg build -t IMAGE``."""
    from ..build.builder import build as build_image
    from ..build.options import BuildOptions

    built = []
    for name in services or list(project.services):
        service = _service(project, name)
        if service.build is None:
            continue
        spec = service.build
        dockerfile = None if spec.dockerfile is None else _in(spec.context, spec.dockerfile)
        options = BuildOptions(dockerfile=dockerfile,
                               tags=[image_name(project, service)], target=spec.target, no_cache=no_cache,
                               build_args={k: v for k, v in spec.args.items() if v is not None})
        build_image(repo, spec.context, options)
        built.append(name)
        if report:
            report(f"Image {image_name(project, service)}", "Built")
    return built


def _in(context: str, path: str) -> str:
    return path if os.path.isabs(path) else os.path.join(context, path)


def pull(repo: Repo, project: Project, services: list[str] | None = None,
         report: Report | None = None) -> None:
    """lg compose pull: the images of the services that name one (never the ones they build)."""
    from .registry import pull as pull_image

    for name in services or list(project.services):
        service = _service(project, name)
        if service.image is None or service.pull_policy == "build":
            continue
        pull_image(repo, service.image)
        if report:
            report(f"Image {service.image}", "Pulled")


def _service(project: Project, name: str) -> Service:
    if name not in project.services:
        raise NotFound(f"no service {name!r} in project {project.name}")
    return project.services[name]


def _image_for(repo: Repo, project: Project, service: Service, rebuild: bool,
               report: Report) -> tuple[str, str]:
    """The image ``service`` runs now, by name and id: built when it must be, pulled as its
    policy says."""
    from .pull_policy import ensure

    image = image_name(project, service)
    if service.build is not None:
        present = True
        try:
            repo.resolve(image)
        except NotFound:
            present = False
        if rebuild or not present or service.pull_policy == "build":
            build(repo, project, [service.name], report)
    else:
        ensure(repo, image, service.pull_policy or "missing")
    return image, repo.image_at(image).id.hex()


def up(repo: Repo, project: Project, services: list[str] | None = None, rebuild: bool = False,
       report: Report | None = None) -> list[str]:
    """lg compose up -d: networks, volumes, then each service in dependency order, created,
    recreated (its configuration changed) or left running; returns the containers' names."""
    say = report or (lambda what, how: None)
    wanted = _with_dependencies(project, services)
    _ensure_networks(repo, project, say)
    _ensure_volumes(repo, project, say)
    current = {m.row.name: m.row for m in members(repo, project)}
    started = []
    for name in project.start_order():
        if name not in wanted:
            continue
        service = project.services[name]
        _wait_for_dependencies(repo, project, service, say)
        image, image_id = _image_for(repo, project, service, rebuild, say)
        options = run_options(project, service)
        digest = config_hash(options, image_id)
        options = replace(options, labels=[*options.labels, f"{CONFIG_HASH}={digest}"])
        row = current.get(options.name or "")
        if row is not None and row.labels.get(CONFIG_HASH) == digest:
            if row.state != "running":
                containers.start(repo, row.id)
                say(f"Container {row.name}", "Started")
            else:
                say(f"Container {row.name}", "Running")
        else:
            if row is not None:
                containers.remove(repo, [row.id], force=True)
                say(f"Container {row.name}", "Recreated")
            containers.run(repo, image, options, detach=True)
            say(f"Container {options.name}", "Started")
        started.append(options.name or "")
    return started


def _with_dependencies(project: Project, services: list[str] | None) -> set[str]:
    if not services:
        return set(project.services)
    wanted: set[str] = set()
    pending = list(services)
    while pending:
        name = pending.pop()
        if name not in wanted:
            wanted.add(name)
            pending.extend(d.service for d in _service(project, name).depends_on)
    return wanted


def _wait_for_dependencies(repo: Repo, project: Project, service: Service, say: Report) -> None:
    for dep in service.depends_on:
        name = project.container_name(dep.service)
        if dep.condition == "service_healthy":
            containers.wait(repo, [name], condition="healthy")
            say(f"Container {name}", "Healthy")
        elif dep.condition == "service_completed_successfully":
            code = containers.wait(repo, [name])[0]
            if code != 0:
                raise ComposeError(f"service {dep.service} (a dependency of {service.name}) exited {code}")
            say(f"Container {name}", "Exited")


def down(repo: Repo, project: Project, remove_volumes: bool = False, report: Report | None = None) -> None:
    """lg compose down: the project's containers stopped and removed (with their anonymous
    volumes only under ``-v``), then the networks it made; under ``-v`` its named volumes too.
    External networks and volumes are never touched."""
    say = report or (lambda what, how: None)
    for member in reversed(members(repo, project)):
        containers.remove(repo, [member.row.id], force=True, anonymous_volumes=remove_volumes)
        say(f"Container {member.row.name}", "Removed")
    for net in networks.ls(repo):
        if (net.get("labels") or {}).get(PROJECT) == project.name:
            networks.rm(repo, [net["name"]])
            say(f"Network {net['name']}", "Removed")
    if remove_volumes:
        for vol in volumes.ls(repo):
            if vol.labels.get(PROJECT) == project.name:
                volumes.remove(repo, [vol.name])
                say(f"Volume {vol.name}", "Removed")
