"""lg cp, pause, unpause, rename, top, stats: the small commands people reach for."""

from __future__ import annotations

import sys
import time

import click

from .output import human_size, print_json, repo_from


@click.command("cp")
@click.option("-a", "--archive", is_flag=True, help="Keep owners (lg always does).")
@click.argument("source", metavar="SRC")
@click.argument("dest", metavar="DEST")
@click.pass_context
def cp_cmd(ctx, archive, source, dest):
    """Copy files between a container and the host: CONTAINER:PATH HOSTPATH or back.

    Owners, modes and times are kept; a symbolic link is copied as a link, and paths in
    the container are resolved inside it, never on the host."""
    from layergit.porcelain.container_copy import copy

    copy(repo_from(ctx), source, dest)


@click.command("pause")
@click.argument("refs", nargs=-1, required=True, metavar="CONTAINER...")
@click.pass_context
def pause_cmd(ctx, refs):
    """Freeze every process of containers (cgroup freezer)."""
    from layergit.porcelain import containers

    for ref in containers.pause(repo_from(ctx), list(refs)):
        click.echo(ref)


@click.command("unpause")
@click.argument("refs", nargs=-1, required=True, metavar="CONTAINER...")
@click.pass_context
def unpause_cmd(ctx, refs):
    """Resume the processes of paused containers."""
    from layergit.porcelain import containers

    for ref in containers.pause(repo_from(ctx), list(refs), frozen=False):
        click.echo(ref)


@click.command("rename")
@click.argument("ref", metavar="CONTAINER")
@click.argument("new", metavar="NEW_NAME")
@click.pass_context
def rename_cmd(ctx, ref, new):
    """Rename a container."""
    from layergit.porcelain import containers

    containers.rename(repo_from(ctx), ref, new)


@click.command("top", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.argument("ref", metavar="CONTAINER")
@click.argument("ps_args", nargs=-1, type=click.UNPROCESSED, metavar="[ps OPTIONS]")
@click.pass_context
def top_cmd(ctx, ref, ps_args):
    """Show a container's processes (ps -ef, or the ps options given)."""
    from layergit.porcelain.stats import top
    from layergit.text import printable

    result = top(repo_from(ctx), ref, list(ps_args))
    rows = [result.titles] + result.processes
    widths = [max(len(printable(r[i])) for r in rows if i < len(r)) for i in range(len(result.titles))]
    for row in rows:
        cells = [printable(c) for c in row]
        aligned = [c.ljust(w) for c, w in zip(cells[:-1], widths, strict=False)]
        click.echo("   ".join(aligned + cells[-1:]))


STATS_HEADERS = {"Container": "CONTAINER", "ID": "CONTAINER ID", "Name": "NAME", "CPUPerc": "CPU %",
                 "MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %", "NetIO": "NET I/O",
                 "BlockIO": "BLOCK I/O", "PIDs": "PIDS"}
STATS_TABLE = ("{{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}"
               "\t{{.PIDs}}")


def _record(row, no_trunc: bool):
    from .gotemplate import Record

    dash = not row.running
    return Record(
        Container=row.id if no_trunc else row.id[:12], ID=row.id if no_trunc else row.id[:12], Name=row.name,
        CPUPerc="--" if dash else f"{row.cpu_percent:.2f}%",
        MemUsage="-- / --" if dash else " / ".join(human_size(n, binary=True) for n in (row.memory,
                                                                                      row.memory_limit)),
        MemPerc="--" if dash else f"{row.memory_percent:.2f}%",
        NetIO="-- / --" if dash else f"{human_size(row.net_rx)} / {human_size(row.net_tx)}",
        BlockIO="-- / --" if dash else f"{human_size(row.block_read)} / {human_size(row.block_write)}",
        PIDs="--" if dash else str(row.pids),
    )


@click.command("stats")
@click.option("-a", "--all", "all_", is_flag=True, help="Show stopped containers too.")
@click.option("--no-stream", is_flag=True, help="Print one reading and exit.")
@click.option("--no-trunc", is_flag=True, help="Do not truncate ids.")
@click.option("--format", "fmt", metavar="TEMPLATE", help="Go template ({{.CPUPerc}}), table ..., or json.")
@click.option("--json", "as_json", is_flag=True)
@click.option("-i", "--interval", type=float, default=1.0, show_default=True,
              help="Seconds between readings.")
@click.argument("refs", nargs=-1, metavar="[CONTAINER]...")
@click.pass_context
def stats_cmd(ctx, all_, no_stream, no_trunc, fmt, as_json, interval, refs):
    """CPU, memory, processes, network and block I/O of containers, from their cgroups."""
    import dataclasses

    from layergit.porcelain.stats import stats

    from .gotemplate import render

    repo = repo_from(ctx)
    previous: dict = {}
    while True:
        rows = stats(repo, list(refs), all_, previous)
        if as_json:
            print_json([dataclasses.asdict(r) for r in rows])
        else:
            text = render(fmt or "table", [_record(r, no_trunc) for r in rows], STATS_HEADERS, STATS_TABLE)
            if not no_stream and sys.stdout.isatty():
                text = "\033[2J\033[H" + text  # redraw in place, as docker stats does
            click.echo(text, nl=False)
        if no_stream:
            return
        sys.stdout.flush()
        time.sleep(max(interval, 0.1))
