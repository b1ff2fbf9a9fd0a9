"""Docker's management commands (``lg image ls``, ``lg container prune``, ``lg system
info``) as aliases of lg's own: one command, two spellings, the same flags."""

from __future__ import annotations

import click

# group -> {Docker's subcommand: lg's command (in cli.main.COMMANDS, or PRUNE below)}
ALIASES = {
    "image": {"ls": "images", "list": "images", "rm": "rmi", "remove": "rmi", "inspect": "inspect",
              "tag": "tag", "history": "history", "build": "build", "import": "import", "save": "save",
              "load": "load", "push": "push", "pull": "pull"},
    "container": {"ls": "ps", "list": "ps", "rm": "rm", "remove": "rm", "inspect": "inspect", "logs": "logs",
                  "start": "start", "stop": "stop", "restart": "restart", "kill": "kill", "run": "run",
                  "create": "create", "exec": "exec", "wait": "wait", "port": "port", "commit": "commit",
                  "diff": "diff", "prune": "container_prune", "pause": "pause", "unpause": "unpause",
                  "stats": "stats", "top": "top", "cp": "cp", "rename": "rename", "update": "update"},
    "system": {"info": "info", "version": "version", "df": "system_df", "prune": "system_prune",
               "boot": "services:boot_cmd", "install-service": "services:install_service_cmd"},
}
ALIASES["image"]["prune"] = "image_prune"


class AliasGroup(click.Group):
    """A management group: each subcommand is lg's command of the same meaning, loaded lazily."""

    def list_commands(self, ctx):
        return list(ALIASES[self.name or ""])

    def get_command(self, ctx, name):
        target = ALIASES[self.name or ""].get(name)
        if target in OWN:
            return OWN[target]
        if target is None:
            return None
        if ":" in target:  # lg's own subcommand of the group, not an alias
            import importlib

            module, function = target.split(":")
            return getattr(importlib.import_module(f"cli.{module}"), function)
        from .main import cli

        return cli.get_command(ctx, target)

    def format_commands(self, ctx, formatter):
        aliases = ALIASES[self.name or ""]
        rows = [(name, self._describe(ctx, name, target)) for name, target in aliases.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def _describe(self, ctx, name: str, target: str) -> str:
        if target in OWN:
            return (OWN[target].help or "").split("\n")[0]
        if ":" in target:
            return self.get_command(ctx, name).get_short_help_str(60)
        return f"lg {target}"


@click.group("image", cls=AliasGroup)
def image_cmd():
    """Manage images (Docker's names for lg images, rmi, tag, log, ...)."""


@click.group("container", cls=AliasGroup)
def container_cmd():
    """Manage containers (Docker's names for lg ps, rm, logs, ...)."""


@click.group("system", cls=AliasGroup)
def system_cmd():
    """Manage lg (Docker's names for lg info and version; boot and install-service)."""


@click.command("prune")
@click.option("-f", "--force", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def container_prune_cmd(ctx, force):
    """Remove all stopped containers."""
    from layergit.porcelain import containers

    from .output import repo_from

    if not force and not click.confirm("WARNING! This will remove all stopped containers.\n"
                                       "Are you sure you want to continue?"):
        return  # as Docker: answering no is not a failure
    removed = containers.prune(repo_from(ctx))
    if removed:
        click.echo("Deleted Containers:\n" + "".join(f"{cid}\n" for cid in removed))
    click.echo("Total reclaimed space: 0B")


@click.command("prune")
@click.option("-a", "--all", "all_", is_flag=True, help="Not supported: every lg image has a name.")
@click.option("-f", "--force", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def image_prune_cmd(ctx, all_, force):
    """Remove dangling images: commits that only reflogs of moved tags still keep."""
    from layergit.errors import UsageError
    from layergit.porcelain import maintenance

    from .output import human_size, repo_from

    if all_:
        raise UsageError("lg image prune -a is not supported: remove tags with lg rmi, then prune")
    if not force and not click.confirm("WARNING! This will remove all dangling images.\n"
                                       "Are you sure you want to continue?"):
        return
    removed, freed = maintenance.image_prune(repo_from(ctx))
    if removed:
        click.echo("Deleted Images:\n" + "".join(f"deleted: {cid}\n" for cid in removed))
    click.echo(f"Total reclaimed space: {human_size(freed)}")


@click.command("df")
@click.option("--format", "fmt", metavar="TEMPLATE", help="Go template ({{.Type}}), table ..., or json.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def system_df_cmd(ctx, fmt, as_json):
    """Show what images, containers, volumes and the cache take, and what pruning frees."""
    import dataclasses

    from layergit.porcelain.disk import df

    from .gotemplate import Record, render
    from .output import human_size, print_json, repo_from

    rows = df(repo_from(ctx))
    if as_json:
        print_json([dataclasses.asdict(r) for r in rows])
        return
    headers = {"Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE", "Size": "SIZE",
               "Reclaimable": "RECLAIMABLE"}
    def share(r) -> str:
        return f"{human_size(r.reclaimable)} ({100 * r.reclaimable // r.size if r.size else 0}%)"

    records = [Record(Type=r.kind, TotalCount=str(r.total), Active=str(r.active), Size=human_size(r.size),
                      Reclaimable=share(r)) for r in rows]
    click.echo(render(fmt or "table", records, headers,
                      "{{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}"), nl=False)


@click.command("prune")
@click.option("--volumes", is_flag=True, help="Unused anonymous volumes too.")
@click.option("-f", "--force", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def system_prune_cmd(ctx, volumes, force):
    """Remove stopped containers, unused networks, dangling images, build cache mounts
    (RUN --mount=type=cache; --volumes: volumes too).

    With --volumes, the anonymous volumes no container uses."""
    from layergit.porcelain import containers, maintenance, networks
    from layergit.porcelain import volumes as vols

    from .output import human_size, repo_from

    if not force and not click.confirm("WARNING! This will remove all stopped containers, unused networks"
                                       f"{', anonymous volumes not used by a container' if volumes else ''}"
                                       " and dangling images.\nAre you sure you want to continue?"):
        return
    repo = repo_from(ctx)
    for title, names in (("Containers", containers.prune(repo)), ("Networks", networks.prune(repo))):
        if names:
            click.echo(f"Deleted {title}:\n" + "".join(f"{n}\n" for n in names))
    freed = 0
    if volumes:
        names, freed = vols.prune(repo, False)
        if names:
            click.echo("Deleted Volumes:\n" + "".join(f"{n}\n" for n in names))
    images, image_bytes = maintenance.image_prune(repo)
    if images:
        click.echo("Deleted Images:\n" + "".join(f"deleted: {cid}\n" for cid in images))
    from layergit.build.mounts import prune_cache_mounts

    cache_bytes = prune_cache_mounts(repo.root.cache_dir("build-mounts"))
    if cache_bytes:
        click.echo(f"Deleted build cache mounts: {human_size(cache_bytes)}")
    click.echo(f"Total reclaimed space: {human_size(freed + image_bytes + cache_bytes)}")


OWN = {"container_prune": container_prune_cmd, "image_prune": image_prune_cmd, "system_df": system_df_cmd,
       "system_prune": system_prune_cmd}
