"""lg checkout."""

from __future__ import annotations

import click

from layergit.porcelain import checkout

from .output import repo_from


@click.command("checkout")
@click.argument("rev")
@click.argument("dest", type=click.Path())
@click.pass_context
def checkout_cmd(ctx, rev, dest):
    """Write the rootfs of REV into DEST (a new or empty directory), exactly."""
    result = checkout.checkout(repo_from(ctx), rev, dest)
    for warning in result.warnings:
        click.echo(f"lg: warning: {warning}", err=True)
