"""lg completion bash|zsh|fish: click's completion scripts, completing lg's commands and
flags, and image, container and network names read from the root when asked."""

from __future__ import annotations

import os

import click

COMPLETE_VAR = "_LG_COMPLETE"


@click.command("completion")
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
@click.pass_context
def completion_cmd(ctx, shell):
    """Print the completion script for SHELL: eval "$(lg completion bash)"."""
    from click.shell_completion import get_completion_class

    cls = get_completion_class(shell)
    assert cls is not None  # the choice admits only shells click knows
    click.echo(cls(ctx.find_root().command, {}, "lg", COMPLETE_VAR).source())


def _names(ctx: click.Context, kind: str) -> list[str]:
    """What the root holds of ``kind``; nothing when it cannot be read (a completion
    never fails, it just offers less)."""
    try:
        root = ctx.find_root().params.get("root") or os.environ.get("LG_ROOT")
        if kind == "network":
            from layergit.porcelain import networks
            from layergit.porcelain.repo import open_repo

            return [n["name"] for n in networks.ls(open_repo(root))]
        from layergit.porcelain.repo import open_repo

        repo = open_repo(root)
        if kind == "image":
            from layergit.porcelain.images import list_images

            return [f"{r.name}:{r.tag}" for r in list_images(repo)]
        from layergit.porcelain.container_views import ps

        return [r.name for r in ps(repo, True)]
    except Exception:  # noqa: BLE001 - see the docstring
        return []


def _completer(kind: str):
    def complete(ctx, param, incomplete):
        return [name for name in _names(ctx, kind) if name.startswith(incomplete)]
    return complete


def attach(name: str, command: click.Command) -> None:
    """Give the command's operands completions by what they name (their metavar)."""
    for param in command.params:
        if not isinstance(param, click.Argument) or getattr(param, "_custom_shell_complete", None):
            continue
        metavar = (param.metavar or param.name or "").upper()
        kind = ("container" if "CONTAINER" in metavar or metavar in ("REFS", "REF") else
                "image" if "IMAGE" in metavar or "NAME[:TAG]" in metavar or metavar in ("REV", "SRC") else
                "network" if name == "network" else None)
        if kind:
            param._custom_shell_complete = _completer(kind)
    for sub in getattr(command, "commands", {}).values():
        attach(name, sub)
