"""lg checkout."""

from __future__ import annotations

import click

from layergit.fs.checkout import CheckoutPolicy, RootOwner, Specials
from layergit.porcelain import checkout
from layergit.text import printable

from .output import repo_from


def _octal_mode(ctx, param, value: str | None) -> int | None:
    if value is None:
        return None
    try:
        mode = int(value, 8)
    except ValueError:
        mode = -1
    if not 0 <= mode <= 0o7777:
        raise click.BadParameter(f"{value!r} is not an octal mode such as 0755", ctx=ctx, param=param)
    return mode


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'s' if n != 1 else ''}"


@click.command("checkout")
@click.argument("rev")
@click.argument("dest", type=click.Path())
@click.option("-H", "--hardlink", is_flag=True,
              help="Hardlink files from the materialised cache (fast; treat the result as read-only).")
@click.option("--mode", callback=_octal_mode, metavar="MODE",
              help="Mode of DEST, octal (default: 0700 when the checkout creates it;"
                   " an existing DEST keeps its own).")
@click.option("--no-special", is_flag=True,
              help="Write no device nodes, and files without setuid/setgid bits or capabilities.")
@click.option("--root-owner", type=click.Choice([o.value for o in RootOwner]),
              default=RootOwner.CALLER.value, show_default=True,
              help="Owner and ACLs of DEST: yours (an existing DEST keeps its own), or the image root's.")
@click.pass_context
def checkout_cmd(ctx, rev, dest, hardlink, mode, no_special, root_owner):
    """Write the rootfs of REV into DEST (a new or empty directory), exactly.

    DEST itself is the host's: yours, 0700 when the checkout creates it (see --mode
    and --root-owner); everything below it is the image's.
    """
    policy = CheckoutPolicy(mode, Specials.DROP if no_special else Specials.KEEP, RootOwner(root_owner))
    result = checkout.checkout(repo_from(ctx), rev, dest, hardlink=hardlink, policy=policy)
    for warning in result.warnings:
        click.echo(f"lg: warning: {printable(warning)}", err=True)
    if result.devices_left_out or result.privileges_cleared:
        devices = _count(result.devices_left_out, "device node")
        files = _count(result.privileges_cleared, "file")
        click.echo(f"lg: --no-special: left out {devices},"
                   f" cleared setuid/setgid bits or capabilities on {files}", err=True)
