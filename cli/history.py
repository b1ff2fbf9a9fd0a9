"""lg log, lg show."""

from __future__ import annotations

import dataclasses

import click

from layergit.errors import UsageError
from layergit.porcelain import history
from layergit.text import printable

from .output import console, human_size, message_lines, print_json, repo_from, short, table
from .pager import no_pager_option, paged, printer


@click.command("log")
@click.argument("args", nargs=-1, required=True, metavar="REV [-- PATH...]")
@click.option("-n", "--max-count", type=click.IntRange(min=0), help="Show at most N commits.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.option("--oneline", is_flag=True, help="One line per commit.")
@click.option("-p", "--patch", is_flag=True, help="With each version, its diff (of the PATHs, if named).")
@click.option("--follow", is_flag=True, help="Follow one file through exact renames (same content).")
@click.option("--mtime", is_flag=True, help="With paths: an mtime-only change counts too.")
@no_pager_option
@click.pass_context
def log_cmd(ctx, args, max_count, as_json, oneline, patch, follow, mtime, no_pager):
    """History of image REV, newest first, with the size each layer adds; with
    ``-- PATH...``, only the versions that changed those paths (content, type or
    metadata; mtime alone does not count)."""
    from .diff import _split_paths

    revs, paths = _split_paths(ctx, args)
    if len(revs) != 1:
        raise UsageError("lg log takes one revision, then optionally -- PATH...")
    repo = repo_from(ctx)
    if paths or follow:
        from layergit.porcelain import review

        found = review.path_log(repo, revs[0], paths, max_count, follow, include_mtime=mtime)
        if as_json:  # each version with what it did to each path it changed
            print_json([{**dataclasses.asdict(f.entry), "changes": dict(f.changes)} for f in found])
            return
        entries, limits = [f.entry for f in found], [list(f.paths) for f in found]
    else:
        entries = history.log(repo, revs[0], max_count)
        limits = [[] for _ in entries]
    if as_json:
        print_json(entries)
        return
    with paged(not no_pager):
        _print_log(repo, entries, limits, oneline, patch)


def _print_log(repo, entries, limits, oneline: bool, patch: bool) -> None:
    if oneline and not patch:
        table(["IMAGE", "CREATED", "SIZE", "CREATED BY"],
              [[short(e.id), e.date.strftime("%Y-%m-%d %H:%M"), human_size(e.size),
                e.message.split("\n", 1)[0]] for e in entries])
        return
    out = printer()
    for i, (e, paths) in enumerate(zip(entries, limits, strict=True)):
        if i:
            out.print()
        if oneline:
            out.print(short(e.id), style="yellow", end=" ")
            out.print(printable(e.message.split("\n", 1)[0]))
        else:
            _print_entry(out, e)
        if patch:
            from layergit.porcelain import diff as porcelain_diff

            from .diff import _print_report

            out.print()
            _print_report(repo, porcelain_diff.diff(repo, e.id, None, paths))


def _print_entry(out, e) -> None:
    out.print(f"commit {e.id}", style="yellow")
    out.print(f"Author: {printable(e.author)}")
    out.print(f"Date:   {e.date.strftime('%a %b %d %H:%M:%S %Y %z')}", markup=False)
    out.print(f"Size:   {human_size(e.size)}", markup=False)
    out.print()
    for line in message_lines(e.message):
        out.print("    " + line)


@click.command("show")
@click.argument("rev")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_context
def show_cmd(ctx, rev, as_json):
    """Details of one image commit: ids, author, dates, message, config."""
    info = history.show(repo_from(ctx), rev)
    if as_json:
        print_json(info)
        return
    import json

    out = console()
    out.print(f"[yellow]commit {info.id}[/yellow]", markup=True)
    for label, value in (
        ("Parents", " ".join(short(p) for p in info.parents) or "(none)"),
        ("Author", printable(info.author)),
        ("Date", info.author_date.strftime("%a %b %d %H:%M:%S %Y %z")),
        ("Rootfs", info.rootfs),
        ("Size", human_size(info.size)),
    ):
        out.print(f"{label + ':':9}{value}", markup=False)
    out.print()
    for line in message_lines(info.message):
        out.print("    " + line)
    out.print()
    out.print("config.json:", markup=False)
    out.print(json.dumps(info.config, indent=2, sort_keys=True), markup=False)
