"""lg bisect: start, good, bad, skip, reset, log, run."""

from __future__ import annotations

import sys

import click

from layergit.porcelain import bisect
from layergit.text import printable

from .containers import run_flags, run_options
from .output import message_lines, repo_from, short


def _show(repo, step) -> None:
    """Where the bisect stands, as git says it: the next version, or the first bad one."""
    from layergit.porcelain import diff, history

    if step.next is not None:
        click.echo(f"Bisecting: {step.left - 1} versions left to test after this"
                   f" (roughly {step.steps} steps)")
        click.echo(f"[{step.next}] {message_lines(history.show(repo, step.next).message)[0]}")
        return
    if step.first_bad is None:
        click.echo("There are only skipped versions left to test.\nThe first bad version could be any of:")
        for hexid in step.among:
            click.echo(hexid)
        return
    from .diff import print_stat

    info = history.show(repo, step.first_bad)
    click.echo(f"{step.first_bad} is the first bad version")
    click.echo(f"Author: {message_lines(info.author)[0]}")
    for line in message_lines(info.message):
        click.echo(f"    {line}")
    print_stat(repo, diff.diff(repo, step.first_bad))


@click.group("bisect")
def bisect_cmd():
    """Find the version that broke an image, by binary search (moves no tag)."""


@bisect_cmd.command("start")
@click.option("--reflog", "tag", metavar="NAME[:TAG]",
              help="Bisect the versions this tag pointed to (default BAD: its newest, GOOD: its oldest).")
@click.argument("bad", required=False, metavar="BAD")
@click.argument("good", required=False, metavar="GOOD")
@click.pass_context
def start_cmd(ctx, tag, bad, good):
    """Start bisecting between BAD and GOOD (first-parent chain), or over --reflog TAG."""
    repo = repo_from(ctx)
    _show(repo, bisect.start(repo, bad, good, tag))


def _marker(verdict: str, what: str):
    @click.argument("revs", nargs=-1, metavar="[REV]...")
    @click.pass_context
    def command(ctx, revs):
        repo = repo_from(ctx)
        _show(repo, bisect.mark(repo, verdict, list(revs)))

    command.__doc__ = f"Mark REVs (default: the version proposed) {what}."
    return bisect_cmd.command(verdict)(command)


good_cmd = _marker(bisect.GOOD, "good")
bad_cmd = _marker(bisect.BAD, "bad")
skip_cmd = _marker(bisect.SKIP, "untestable (skipped)")


@bisect_cmd.command("reset")
@click.pass_context
def reset_cmd(ctx):
    """End the bisect (its state and the refs that kept its versions)."""
    if not bisect.reset(repo_from(ctx)):
        click.echo("no bisect in progress", err=True)


@bisect_cmd.command("log")
@click.pass_context
def log_cmd(ctx):
    """Print what was marked so far, as lg bisect commands."""
    for line in bisect.log(repo_from(ctx)):
        click.echo(printable(line))


@bisect_cmd.command("run", context_settings={"allow_interspersed_args": False})
@click.option("--rm", "auto_remove", is_flag=True, help="Remove each candidate's container when it exits.")
@click.option("--signal-is-bad", is_flag=True,
              help="A candidate killed by a signal (an OOM kill) is bad; otherwise the bisect stops.")
@run_flags
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED, metavar="CMD...")
@click.pass_context
def run_cmd(ctx, auto_remove, signal_is_bad, command, **kw):
    """Run CMD in a container of each candidate (lg run's flags) until the first bad
    version is found: exit 0 good, 125 skip, 1-127 bad, a signal stops."""
    repo = repo_from(ctx)
    options = run_options(dict(kw, command=command), auto_remove)

    def heard(trial, step) -> None:
        click.echo(f"lg bisect run: {short(trial.id)} exited {trial.code}: {trial.verdict}", err=True)
        if step.next is not None:
            _show(repo, step)

    _show(repo, bisect.run(repo, options, signal_is_bad, heard)[0])
    sys.stdout.flush()
