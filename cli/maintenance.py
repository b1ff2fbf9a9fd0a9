"""lg fsck, lg gc."""

from __future__ import annotations

import sys

import click

from layergit.porcelain import maintenance
from layergit.text import printable

from .output import human_size, print_json, repo_from


@click.command("fsck")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def fsck_cmd(ctx, as_json):
    """Check objects (git fsck --strict), image trees, metadata blobs and hardlinks."""
    report = maintenance.fsck(repo_from(ctx))
    if as_json:
        print_json({"ok": report.ok, **report.__dict__})
    else:
        for line in report.problems:
            click.echo(f"error: {printable(line)}")
        for line in report.notes:
            click.echo(f"note: {printable(line)}")
        verdict = "ok" if report.ok else f"{len(report.problems)} problem(s)"
        click.echo(f"checked {report.commits} commits, {report.trees} directories: {verdict}")
    if not report.ok:
        sys.exit(1)


@click.command("gc")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def gc_cmd(ctx, as_json):
    """Remove objects that no image name reaches, and repack the rest."""
    report = maintenance.gc(repo_from(ctx))
    if as_json:
        print_json(report)
    else:
        sizes = f"{human_size(report.size_before)} -> {human_size(report.size_after)}"
        click.echo(f"{report.refs} image names kept; store {sizes}")
