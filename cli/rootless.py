"""``lg unshare``: a command (or a shell) in the user namespace lg runs in without root."""

from __future__ import annotations

import click


@click.command("unshare", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def unshare_cmd(command):
    """Run COMMAND (default: $SHELL) as root of lg's user namespace, where files of the
    root owned by subordinate ids show their owners as containers see them."""
    from layergit.porcelain.rootless import unshare

    unshare(list(command))
