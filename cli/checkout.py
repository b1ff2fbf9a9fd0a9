"""lg checkout."""

from __future__ import annotations

import click

from layergit.porcelain import checkout

from .output import repo_from


@click.command("checkout")
@click.argument("rev")
@click.argument("dest", type=click.Path())
@click.option("-H", "--hardlink", is_flag=True, help="Hardlink files from the materialised cache (fast; treat the result as read-only).")
@click.pass_context
def checkout_cmd(ctx, rev, dest, hardlink):
    """Write the rootfs of REV into DEST (a new or empty directory), exactly."""
    result = checkout.checkout(repo_from(ctx), rev, dest, hardlink=hardlink)
    for warning in result.warnings:
        click.echo(f"lg: warning: {warning}", err=True)
