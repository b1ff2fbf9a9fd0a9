"""lg run, create, start, stop, kill, restart, rm, wait, update and exec.

ps, logs and inspect, which only read, are in container_views.py.
"""

from __future__ import annotations

import sys

import click

from layergit.porcelain import containers
from layergit.porcelain.runopts import RunOptions

from .output import repo_from


def run_flags(f):
    """The flags lg run and lg create share (Docker's names), also lg bisect run's."""
    options = [
        click.option("--name", help="Container name (default: a random adjective_noun)."),
        click.option("-e", "--env", multiple=True, metavar="KEY[=VALUE]",
                     help="Set an environment variable."),
        click.option("--env-file", multiple=True, type=click.Path(dir_okay=False),
                     help="Read KEY=VALUE lines from a file."),
        click.option("-w", "--workdir", help="Working directory inside the container."),
        click.option("-u", "--user", metavar="USER[:GROUP]",
                     help="User (name or id) from the image's /etc/passwd."),
        click.option("-v", "--volume", multiple=True, metavar="SRC:CTR[:ro]",
                     help="Mount a volume (NAME:PATH, or PATH for an anonymous one) or a host path."),
        click.option("--mount", multiple=True, metavar="type=volume|bind|tmpfs,...",
                     help="Docker's --mount: source=, target=, readonly, volume-nocopy, tmpfs-size=, ..."),
        click.option("--tmpfs", multiple=True, metavar="PATH[:OPTS]", help="Mount a tmpfs."),
        click.option("--hostname", help="Container host name (default: the short id)."),
        click.option("--read-only", is_flag=True, help="Mount the root filesystem read-only."),
        click.option("-m", "--memory", help="Memory limit, e.g. 256m."),
        click.option("--cpus", help="CPU quota in CPUs, e.g. 0.5."),
        click.option("--pids-limit", type=int, help="Maximum number of processes."),
        click.option("--entrypoint", help="Override the image's Entrypoint."),
        click.option("-i", "--interactive", is_flag=True, help="Keep stdin attached."),
        click.option("-t", "--tty", is_flag=True, help="Allocate a pseudo-terminal."),
        click.option("--network", "--net", default="bridge", show_default=True,
                     help="bridge, a network's name, none, host or container:ID."),
        click.option("-p", "--publish", multiple=True, metavar="[IP:]HOST:CTR[/proto]",
                     help="Publish a container port on the host."),
        click.option("-P", "--publish-all", is_flag=True,
                     help="Publish every EXPOSEd port on a free host port."),
        click.option("--network-alias", multiple=True, help="Another name for the container on its network."),
        click.option("--init", is_flag=True, help="Run tini as PID 1 to forward signals and reap zombies."),
        click.option("--cap-add", multiple=True, help="Add a capability (or ALL)."),
        click.option("--cap-drop", multiple=True, help="Drop a capability (or ALL)."),
        click.option("--security-opt", multiple=True, help="no-new-privileges, seccomp=unconfined."),
        click.option("-l", "--label", multiple=True, metavar="KEY[=VALUE]", help="Set a label."),
        click.option("--label-file", multiple=True, type=click.Path(dir_okay=False),
                     help="Read KEY=VALUE label lines from a file."),
        click.option("--add-host", multiple=True, metavar="NAME:IP",
                     help="Add a line to /etc/hosts (IP may be host-gateway)."),
        click.option("--dns", multiple=True, metavar="IP", help="Set a DNS server (replaces the host's)."),
        click.option("--dns-search", multiple=True, metavar="DOMAIN", help="Set a DNS search domain."),
        click.option("--dns-option", multiple=True, metavar="OPT", help="Set a resolv.conf option."),
        click.option("--stop-signal", metavar="SIGNAL", help="Signal lg stop sends (default: the image's)."),
        click.option("--stop-timeout", type=int, metavar="SECONDS", help="lg stop's wait before SIGKILL."),
        click.option("--shm-size", metavar="SIZE", help="Size of /dev/shm, e.g. 256m (default 64m)."),
        click.option("--cidfile", type=click.Path(dir_okay=False), help="Write the id to a new file."),
        click.option("--platform", metavar="OS/ARCH", help="Only this machine's (lg runs natively)."),
        click.option("--group-add", multiple=True, metavar="GROUP", help="Another group for the process."),
        click.option("--ulimit", multiple=True, metavar="NAME=SOFT[:HARD]", help="A resource limit."),
        click.option("--device", multiple=True, metavar="HOST[:CTR][:PERMS]",
                     help="Give the container a host device (PERMS: some of rwm, all by default)."),
        click.option("--sysctl", multiple=True, metavar="KEY=VALUE", help="A namespaced kernel setting."),
        click.option("--mac-address", metavar="MAC", help="eth0's address on a bridge network."),
        click.option("--restart", metavar="POLICY",
                     help="no, always, unless-stopped or on-failure[:MAX] (Docker's back-off)."),
        click.option("--health-cmd", metavar="CMD", help="Health check command (run with /bin/sh -c)."),
        click.option("--health-interval", metavar="DURATION", help="Time between checks (default 30s)."),
        click.option("--health-timeout", metavar="DURATION", help="A check's time limit (default 30s)."),
        click.option("--health-retries", type=int, metavar="N", help="Failures in a row for unhealthy (3)."),
        click.option("--health-start-period", metavar="DURATION",
                     help="Failures in this time after the start do not count (0s)."),
        click.option("--health-start-interval", metavar="DURATION",
                     help="Time between checks during the start period (default 5s)."),
        click.option("--no-healthcheck", is_flag=True, help="Disable the image's HEALTHCHECK."),
        click.option("--log-driver", metavar="DRIVER", help="json-file, the only one lg writes."),
        click.option("--log-opt", multiple=True, metavar="KEY=VALUE",
                     help="max-size (default 10m) and max-file (default 3) of the log."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _run_options(f):
    """lg run's and lg create's flags and arguments."""
    f = click.argument("command", nargs=-1, type=click.UNPROCESSED, metavar="[CMD]...")(f)
    f = click.argument("image", metavar="IMAGE|REV")(f)
    return run_flags(f)


def run_options(kw: dict, auto_remove: bool) -> RunOptions:
    """RunOptions from the values of :func:`run_flags` and ``command``."""
    from layergit.runtime.health import HealthFlags

    health = HealthFlags(kw["health_cmd"], kw["health_interval"], kw["health_timeout"], kw["health_retries"],
                         kw["health_start_period"], kw["no_healthcheck"], kw["health_start_interval"])
    return RunOptions(
        name=kw["name"], env=list(kw["env"]), env_files=list(kw["env_file"]), workdir=kw["workdir"],
        user=kw["user"], volumes=list(kw["volume"]), mounts=list(kw["mount"]), tmpfs=list(kw["tmpfs"]),
        hostname=kw["hostname"],
        read_only=kw["read_only"], memory=kw["memory"], cpus=kw["cpus"], pids_limit=kw["pids_limit"],
        entrypoint=kw["entrypoint"], interactive=kw["interactive"], tty=kw["tty"], network=kw["network"],
        publish=list(kw["publish"]), publish_all=kw["publish_all"], aliases=list(kw["network_alias"]),
        init=kw["init"], auto_remove=auto_remove, cap_add=list(kw["cap_add"]), cap_drop=list(kw["cap_drop"]),
        security_opt=list(kw["security_opt"]), labels=list(kw["label"]), label_files=list(kw["label_file"]),
        add_hosts=list(kw["add_host"]), dns=list(kw["dns"]), dns_search=list(kw["dns_search"]),
        dns_options=list(kw["dns_option"]), stop_signal=kw["stop_signal"], stop_timeout=kw["stop_timeout"],
        shm_size=kw["shm_size"], cidfile=kw["cidfile"], platform=kw["platform"],
        group_add=list(kw["group_add"]), ulimits=list(kw["ulimit"]), sysctls=list(kw["sysctl"]),
        mac_address=kw["mac_address"], restart=kw["restart"], health=health, log_driver=kw["log_driver"],
        log_opts=list(kw["log_opt"]), devices=list(kw["device"]),
        command=list(kw["command"]),
    )


_CONTEXT = {"allow_interspersed_args": False}


_PULL = click.option("--pull", "pull_policy", type=click.Choice(["missing", "always", "never"]),
                     default="missing", show_default=True,
                     help="Pull IMAGE from its registry: when missing here, always, or never.")


def _pulled(ctx, image: str, policy: str):
    """The root, with IMAGE pulled first as the policy says; a failure is lg's failure to
    make the container (125), as Docker's."""
    from layergit.errors import ExitCode, LgError
    from layergit.porcelain.pull_policy import ensure

    repo = repo_from(ctx)
    try:
        ensure(repo, image, policy)
    except LgError as exc:
        exc.exit_code = ExitCode.RUN_FAILED
        raise
    return repo


@click.command("run", context_settings=_CONTEXT)
@click.option("-d", "--detach", is_flag=True, help="Run in the background and print the container id.")
@click.option("--rm", "auto_remove", is_flag=True, help="Remove the container when it exits.")
@_PULL
@_run_options
@click.pass_context
def run_cmd(ctx, detach, auto_remove, pull_policy, image, command, **kw):
    """Run a command in a new container from IMAGE (any revision: app:v1~2, an id)."""
    options = run_options(dict(kw, command=command), auto_remove)
    cid, code = containers.run(_pulled(ctx, image, pull_policy), image, options, detach)
    if detach:
        click.echo(cid)
    else:
        sys.exit(code)


@click.command("create", context_settings=_CONTEXT)
@click.option("--rm", "auto_remove", is_flag=True, help="Remove the container when it exits.")
@_PULL
@_run_options
@click.pass_context
def create_cmd(ctx, auto_remove, pull_policy, image, command, **kw):
    """Create a container from IMAGE without starting it; prints its id."""
    from layergit.errors import ExitCode, LgError

    try:
        repo = _pulled(ctx, image, pull_policy)
        click.echo(containers.create(repo, image, run_options(dict(kw, command=command), auto_remove)))
    except LgError as exc:
        exc.exit_code = ExitCode.RUN_FAILED  # as docker create: lg could not make the container
        raise


@click.command("start")
@click.option("-a", "--attach", is_flag=True, help="Attach stdout/stderr and exit with the container's code.")
@click.argument("refs", nargs=-1, required=True, metavar="CONTAINER...")
@click.pass_context
def start_cmd(ctx, attach, refs):
    """Start stopped or created containers."""
    repo = repo_from(ctx)
    for ref in refs:
        code = containers.start(repo, ref, attach=attach)
        if attach:
            sys.exit(code)
        click.echo(ref)


@click.command("stop")
@click.option("-t", "--time", "timeout", type=float,
              help="Seconds to wait before SIGKILL (default: --stop-timeout, else 10).")
@click.option("-s", "--signal", "sig", help="Signal to send (default: the container's StopSignal).")
@click.argument("refs", nargs=-1, required=True, metavar="CONTAINER...")
@click.pass_context
def stop_cmd(ctx, timeout, sig, refs):
    """Stop containers: their StopSignal, then SIGKILL after -t seconds."""
    for ref in containers.stop(repo_from(ctx), list(refs), timeout, sig):
        click.echo(ref)


@click.command("restart")
@click.option("-t", "--time", "timeout", type=float,
              help="Seconds to wait before SIGKILL (default: --stop-timeout, else 10).")
@click.argument("refs", nargs=-1, required=True, metavar="CONTAINER...")
@click.pass_context
def restart_cmd(ctx, timeout, refs):
    """Stop and start containers again."""
    for ref in containers.restart(repo_from(ctx), list(refs), timeout):
        click.echo(ref)


@click.command("kill")
@click.option("-s", "--signal", "sig", default="SIGKILL", show_default=True)
@click.argument("refs", nargs=-1, required=True, metavar="CONTAINER...")
@click.pass_context
def kill_cmd(ctx, sig, refs):
    """Send a signal to containers."""
    for ref in containers.kill(repo_from(ctx), list(refs), sig):
        click.echo(ref)


@click.command("rm")
@click.option("-f", "--force", is_flag=True, help="Kill running containers first.")
@click.option("-v", "--volumes", is_flag=True, help="Remove their anonymous volumes too.")
@click.argument("refs", nargs=-1, required=True, metavar="CONTAINER...")
@click.pass_context
def rm_cmd(ctx, force, volumes, refs):
    """Remove containers and everything they left on disk."""
    for ref in containers.remove(repo_from(ctx), list(refs), force, volumes):
        click.echo(ref)


@click.command("wait")
@click.option("--condition", type=click.Choice(["not-running", "healthy"]), default="not-running",
              show_default=True, help="Wait until stopped (prints exit codes), or until healthy (prints 0).")
@click.argument("refs", nargs=-1, required=True, metavar="CONTAINER...")
@click.pass_context
def wait_cmd(ctx, condition, refs):
    """Wait for containers to stop (or to be healthy); print their exit codes."""
    for code in containers.wait(repo_from(ctx), list(refs), condition):
        click.echo(code)


@click.command("update")
@click.option("--restart", metavar="POLICY", help="no, always, unless-stopped or on-failure[:MAX].")
@click.argument("refs", nargs=-1, required=True, metavar="CONTAINER...")
@click.pass_context
def update_cmd(ctx, restart, refs):
    """Change containers' restart policy."""
    for ref in containers.update(repo_from(ctx), list(refs), restart):
        click.echo(ref)


@click.command("exec", context_settings=_CONTEXT)
@click.option("-i", "--interactive", is_flag=True)
@click.option("-t", "--tty", is_flag=True)
@click.option("-u", "--user", metavar="USER[:GROUP]")
@click.option("-w", "--workdir")
@click.option("-e", "--env", multiple=True, metavar="KEY=VALUE")
@click.argument("ref", metavar="CONTAINER")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED, metavar="CMD...")
@click.pass_context
def exec_cmd(ctx, interactive, tty, user, workdir, env, ref, command):
    """Run a command in a running container."""
    sys.exit(containers.exec_(repo_from(ctx), ref, list(command), interactive, tty, user, workdir, list(env)))
