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
                  "diff": "diff", "prune": "container_prune", "update": "update"},
    "system": {"info": "info", "version": "version", "boot": "services:boot_cmd",
               "install-service": "services:install_service_cmd"},
}


class AliasGroup(click.Group):
    """A management group: each subcommand is lg's command of the same meaning, loaded lazily."""

    def list_commands(self, ctx):
        return list(ALIASES[self.name or ""])

    def get_command(self, ctx, name):
        target = ALIASES[self.name or ""].get(name)
        if target == "container_prune":
            return container_prune_cmd
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
        if target == "container_prune":
            return "Remove stopped containers."
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
