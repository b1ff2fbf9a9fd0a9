"""lg log, lg show."""

from __future__ import annotations

import click

from layergit.porcelain import history
from layergit.text import printable

from .output import console, human_size, message_lines, print_json, repo_from, short, table


@click.command("log")
@click.argument("rev")
@click.option("-n", "--max-count", type=click.IntRange(min=0), help="Show at most N commits.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.option("--oneline", is_flag=True, help="One line per commit.")
@click.pass_context
def log_cmd(ctx, rev, max_count, as_json, oneline):
    """History of image REV, newest first, with the size each layer adds."""
    entries = history.log(repo_from(ctx), rev, max_count)
    if as_json:
        print_json(entries)
        return
    if oneline:
        table(["IMAGE", "CREATED", "SIZE", "CREATED BY"],
              [[short(e.id), e.date.strftime("%Y-%m-%d %H:%M"), human_size(e.size),
                e.message.split("\n", 1)[0]] for e in entries])
        return
    out = console()
    for i, e in enumerate(entries):
        if i:
            out.print()
        out.print(f"[yellow]commit {e.id}[/yellow]", markup=True)
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
