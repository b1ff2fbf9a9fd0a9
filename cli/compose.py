"""lg compose: compose-spec files on lg's own run, network and volume code."""

from __future__ import annotations

import re
import sys

import click

from .output import print_json, repo_from, table


@click.group("compose")
@click.option("-f", "--file", "files", multiple=True, metavar="FILE",
              help="The compose file (default: compose.yaml, compose.yml, docker-compose.yaml"
                   " or docker-compose.yml here).")
@click.option("-p", "--project-name", "name", metavar="NAME",
              help="Project name (default: the directory's name).")
@click.option("--project-directory", metavar="DIR", help="Where .env and relative paths are read from"
              " (default: the file's directory).")
@click.option("--env-file", metavar="FILE", help="Variables for interpolation (default: the project's .env).")
@click.pass_context
def compose_cmd(ctx, files, name, project_directory, env_file):
    """Run the services of a Compose file (compose-spec) as lg containers."""
    from layergit.compose.project import ProjectOptions

    ctx.obj["compose"] = ProjectOptions(tuple(files), name, project_directory, env_file)


def _project(ctx):
    """The project, its warnings said once on stderr."""
    from layergit.compose.project import open_project
    from layergit.text import printable

    project = open_project(ctx.obj["compose"])
    for warning in project.warnings:
        click.echo(f"lg: warning: {printable(warning)}", err=True)
    return project


@compose_cmd.command("config")
@click.option("--services", is_flag=True, help="Print the services' names, one a line.")
@click.option("--volumes", is_flag=True, help="Print the volumes' names, one a line.")
@click.option("-q", "--quiet", is_flag=True, help="Only check the file; print nothing.")
@click.option("--format", "fmt", type=click.Choice(["yaml", "json"]), default="yaml", show_default=True)
@click.pass_context
def config_cmd(ctx, services, volumes, quiet, fmt):
    """Check the file and print it normalised: variables replaced, short forms spelled out."""
    from layergit.compose.model import document

    project = _project(ctx)
    if quiet:
        return
    if services or volumes:
        for name in (project.services if services else project.volumes):
            click.echo(name)
        return
    doc = document(project)
    if fmt == "json":
        print_json(doc)
        return
    from ruamel.yaml import YAML

    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.representer.add_representer(str, _quoted_if_ambiguous)
    yaml.dump(doc, sys.stdout)


_AMBIGUOUS = re.compile(r"(?i)y|yes|n|no|true|false|on|off|null|~|[-+]?[0-9_:.]+(e[-+]?[0-9]+)?|")


def _quoted_if_ambiguous(representer, text: str):
    """Strings a YAML 1.1 reader (PyYAML, older tools) would take for a boolean, a null or
    a number are printed quoted, as docker compose config prints ``restart: "no"``."""
    style = '"' if _AMBIGUOUS.fullmatch(text) else None
    return representer.represent_scalar("tag:yaml.org,2002:str", text, style=style)


def _say(what: str, how: str) -> None:
    from layergit.text import printable

    click.echo(f" {printable(what)}  {how}", err=True)


@compose_cmd.command("up")
@click.option("-d", "--detach", is_flag=True, help="Leave the services running and return.")
@click.option("--build", "rebuild", is_flag=True, help="Build images before starting.")
@click.argument("services", nargs=-1, metavar="[SERVICE]...")
@click.pass_context
def up_cmd(ctx, detach, rebuild, services):
    """Create and start the services (and what they depend on); without -d, follow their
    output until Ctrl-C, which stops them."""
    from layergit.porcelain import compose

    project = _project(ctx)
    repo = repo_from(ctx)
    names = compose.up(repo, project, list(services), rebuild, _say)
    if detach:
        return
    try:
        _follow(repo, names)
    except KeyboardInterrupt:
        click.echo("Stopping...", err=True)
        from layergit.porcelain import containers

        containers.stop(repo, names)


def _follow(repo, names: list[str], follow: bool = True, tail: int | None = None) -> None:
    """Every container's output, each line after its name, as compose prints it; with
    ``follow``, until every container has stopped."""
    import queue
    import threading

    from layergit.porcelain import container_views

    width = max((len(n) for n in names), default=0)
    lines: queue.Queue = queue.Queue(maxsize=1024)

    def reader(name: str) -> None:
        try:
            for line in container_views.logs(repo, name, follow, tail):
                lines.put((name, line))
        finally:
            lines.put((name, None))

    for name in names:
        threading.Thread(target=reader, args=(name,), daemon=True).start()
    open_readers = len(names)
    while open_readers:
        name, line = lines.get()
        if line is None:
            open_readers -= 1
            continue
        out = sys.stderr if line.stream == "stderr" else sys.stdout
        out.write(f"{name:<{width}}  | {line.text}")
        out.flush()


@compose_cmd.command("down")
@click.option("-v", "--volumes", "remove_volumes", is_flag=True,
              help="Remove the named volumes the file declares, and anonymous volumes.")
@click.pass_context
def down_cmd(ctx, remove_volumes):
    """Stop and remove the project's containers and the networks it made."""
    from layergit.porcelain import compose

    compose.down(repo_from(ctx), _project(ctx), remove_volumes, _say)


@compose_cmd.command("ps")
@click.option("-a", "--all", "all_", is_flag=True, help="Accepted: stopped containers are always listed.")
@click.option("-q", "--quiet", is_flag=True, help="Only ids.")
@click.option("--services", is_flag=True, help="Only the services' names.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def ps_cmd(ctx, all_, quiet, services, as_json):
    """List the project's containers."""
    from layergit.porcelain import compose

    found = compose.members(repo_from(ctx), _project(ctx))
    if as_json:
        print_json([{"Name": m.row.name, "Service": m.service, "ID": m.row.id, "Image": m.row.image,
                     "State": m.row.state, "Status": m.row.status, "Ports": m.row.ports} for m in found])
    elif quiet or services:
        for m in found:
            click.echo(m.row.id if quiet else m.service)
    else:
        table(["NAME", "SERVICE", "IMAGE", "STATUS", "PORTS"],
              [[m.row.name, m.service, m.row.image, m.row.status, m.row.ports] for m in found])


def _names(ctx, services: tuple[str, ...]) -> list[str]:
    """The project's containers, all or those of ``services``."""
    from layergit.errors import NotFound
    from layergit.porcelain import compose

    project = _project(ctx)
    for name in services:
        if name not in project.services:
            raise NotFound(f"no service {name!r} in project {project.name}")
    return [m.row.name for m in compose.members(repo_from(ctx), project)
            if not services or m.service in services]


@compose_cmd.command("logs")
@click.option("-f", "--follow", is_flag=True, help="Keep printing until the containers stop.")
@click.option("-n", "--tail", type=int, metavar="N", help="Only the last N lines of each.")
@click.argument("services", nargs=-1, metavar="[SERVICE]...")
@click.pass_context
def logs_cmd(ctx, follow, tail, services):
    """Show the services' output, each line after its container's name."""
    _follow(repo_from(ctx), _names(ctx, services), follow, tail)


@compose_cmd.command("exec", context_settings={"ignore_unknown_options": True,
                                               "allow_interspersed_args": False})
@click.option("-T", "no_tty", is_flag=True, help="Accepted: lg exec allocates no terminal unless -t.")
@click.option("-u", "--user", help="User (name or id) inside the container.")
@click.option("-w", "--workdir", help="Working directory inside the container.")
@click.option("-e", "--env", multiple=True, metavar="KEY=VALUE", help="Set an environment variable.")
@click.argument("service")
@click.argument("command", nargs=-1, required=True)
@click.pass_context
def exec_cmd(ctx, no_tty, user, workdir, env, service, command):
    """Run a command in a service's running container."""
    from layergit.porcelain import containers

    project = _project(ctx)
    if service not in project.services:
        from layergit.errors import NotFound

        raise NotFound(f"no service {service!r} in project {project.name}")
    code = containers.exec_(repo_from(ctx), project.container_name(service), list(command), interactive=False,
                            tty=False, user=user, workdir=workdir, env=list(env))
    ctx.exit(code)


@compose_cmd.command("build")
@click.option("--no-cache", is_flag=True, help="Run every step again.")
@click.argument("services", nargs=-1, metavar="[SERVICE]...")
@click.pass_context
def build_cmd(ctx, no_cache, services):
    """Build the images of the services that have a build section."""
    from layergit.porcelain import compose

    compose.build(repo_from(ctx), _project(ctx), list(services), _say, no_cache)


@compose_cmd.command("pull")
@click.argument("services", nargs=-1, metavar="[SERVICE]...")
@click.pass_context
def pull_cmd(ctx, services):
    """Pull the images the services name."""
    from layergit.porcelain import compose

    compose.pull(repo_from(ctx), _project(ctx), list(services), _say)


def _timed(verb: str, past: str):
    """``stop`` and ``restart``: lg's command of the same name over the services' containers."""

    @compose_cmd.command(verb, help=f"{verb.capitalize()} the services' containers.")
    @click.option("-t", "--timeout", type=float, help="Seconds before SIGKILL.")
    @click.argument("services", nargs=-1, metavar="[SERVICE]...")
    @click.pass_context
    def command(ctx, timeout, services):
        from layergit.porcelain import containers

        for name in getattr(containers, verb)(repo_from(ctx), _names(ctx, services), timeout):
            _say(f"Container {name}", past)

    return command


stop_cmd = _timed("stop", "Stopped")
restart_cmd = _timed("restart", "Restarted")


@compose_cmd.command("start")
@click.argument("services", nargs=-1, metavar="[SERVICE]...")
@click.pass_context
def start_cmd(ctx, services):
    """Start the services' existing containers."""
    from layergit.porcelain import containers

    repo = repo_from(ctx)
    for name in _names(ctx, services):
        containers.start(repo, name)
        _say(f"Container {name}", "Started")
