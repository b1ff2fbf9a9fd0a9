"""lg rebase, lg squash."""

from __future__ import annotations

import sys

import click

from layergit.errors import ExitCode
from layergit.porcelain import rebase
from layergit.text import printable, quoted

from .output import print_json, repo_from, short


@click.command("rebase")
@click.option("--onto", required=True, metavar="NEWBASE", help="The base to replay the versions onto.")
@click.option("-t", "--tag", metavar="NAME[:TAG]", help="Tag the result (default: IMAGE, when it is a tag).")
@click.option("--prefer", multiple=True, metavar="SIDE|/PATH=SIDE",
              help="Resolve conflicts (at PATH and below) with ours (the new base's side) or theirs"
                   " (the image's versions).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.argument("oldbase", metavar="OLDBASE")
@click.argument("image", metavar="IMAGE")
@click.pass_context
def rebase_cmd(ctx, onto, tag, prefer, as_json, oldbase, image):
    """Replay IMAGE's versions above OLDBASE onto NEWBASE, merging trees path by path.
    Conflicts are listed together and nothing is tagged."""
    result = rebase.rebase(repo_from(ctx), onto, oldbase, image, tag, list(prefer))
    if as_json:
        print_json(result)
    else:
        for version, path, how in result.resolved:
            click.echo(f"{version}: {quoted(path)}: {printable(how)}")
        for old, new in result.replayed:
            click.echo(f"{short(old)} -> {short(new)}")
        for old in result.dropped:
            click.echo(f"{short(old)} dropped: the new base has its changes already")
        if result.stopped_at is not None:
            click.echo(f"lg: rebase stopped at {short(result.stopped_at)}: {len(result.conflicts)}"
                       " conflicting path(s); nothing was tagged", err=True)
            for c in result.conflicts:
                click.echo(f"CONFLICT {quoted(c.path)}: {printable('; '.join(c.what))}", err=True)
        elif result.id:
            click.echo(f"{result.id}" + (f" tagged {result.tag}" if result.tag else ""))
    if result.stopped_at is not None:
        sys.exit(ExitCode.FAILURE)


@click.command("squash")
@click.option("--onto", metavar="BASE", help="The parent of the squashed version (default: none).")
@click.option("-t", "--tag", required=True, metavar="NAME[:TAG]", help="Tag the squashed version.")
@click.option("-m", "--message", help="Its message (default: the versions it folds).")
@click.argument("image", metavar="IMAGE")
@click.pass_context
def squash_cmd(ctx, onto, tag, message, image):
    """One version with IMAGE's tree and config whose parent is BASE."""
    result = rebase.squash(repo_from(ctx), image, tag, onto, message)
    click.echo(f"{result.id} tagged {result.tag} ({result.squashed} versions folded)")
