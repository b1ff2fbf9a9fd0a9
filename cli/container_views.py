"""lg ps, logs and inspect: the container commands that only read.

Apart from the lifecycle commands (containers.py) so that they load none of what
creating and starting a container needs: scripts call them in loops, and their
start-up is most of what such a loop costs.
"""

from __future__ import annotations

import sys

import click

from .output import listing, print_json, repo_from, short


@click.command("ps")
@click.option("-a", "--all", "all_", is_flag=True, help="Show stopped containers too.")
@click.option("-q", "--quiet", is_flag=True, help="Only ids.")
@click.option("-f", "--filter", "filters", multiple=True, metavar="KEY=VALUE",
              help="id, name, label, status, exited, ancestor, network, volume, health, before, since.")
@click.option("--format", "fmt", metavar="TEMPLATE", help="Go template ({{.Names}}), table ..., or json.")
@click.option("--no-trunc", is_flag=True, help="Do not truncate ids and commands.")
@click.option("-n", "--last", type=int, default=0, help="Only the N newest containers (all states).")
@click.option("-l", "--latest", is_flag=True, help="Only the newest container (all states).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def ps_cmd(ctx, all_, quiet, filters, fmt, no_trunc, last, latest, as_json):
    """List containers."""
    from layergit.porcelain import filters as filtering

    rows = filtering.ps(repo_from(ctx), all_ or bool(last) or latest, filters)
    rows = rows[:1 if latest else last] if latest or last else rows
    if fmt and not quiet and not as_json:
        from .formats import PS_HEADERS, PS_TABLE, print_rows, ps_record

        print_rows(fmt, [ps_record(r, no_trunc) for r in rows], PS_HEADERS, PS_TABLE)
        return
    listing(rows, as_json, quiet,
            ["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"],
            lambda r: [r.id if no_trunc else short(r.id), r.image, r.command if no_trunc else r.command[:30],
                       r.created[:19].replace("T", " "), r.status, r.ports, r.name])


@click.command("logs")
@click.option("-f", "--follow", is_flag=True)
@click.option("--tail", type=int, help="Only the last N lines.")
@click.option("-t", "--timestamps", is_flag=True)
@click.option("--since", metavar="TIME", help="Only lines since TIME (RFC 3339, Unix time, or 10m ago).")
@click.option("--until", metavar="TIME", help="Only lines before TIME (same forms).")
@click.argument("ref", metavar="CONTAINER")
@click.pass_context
def logs_cmd(ctx, follow, tail, timestamps, since, until, ref):
    """Show a container's output."""
    from layergit.porcelain import container_views, timespec

    since_t = timespec.parse(since, "--since") if since else None
    until_t = timespec.parse(until, "--until") if until else None
    for line in container_views.logs(repo_from(ctx), ref, follow, tail, since_t, until_t):
        out = sys.stderr if line.stream == "stderr" else sys.stdout
        out.write((line.time + " " if timestamps else "") + line.text)
        out.flush()


@click.command("inspect")
@click.option("-f", "--format", "fmt", metavar="TEMPLATE", help="Go template, e.g. '{{.State.Pid}}'.")
@click.option("--type", "kind", type=click.Choice(["container", "image"]), help="Only look for this kind.")
@click.option("--json", "as_json", is_flag=True, help="Accepted for symmetry: output is JSON without -f.")
@click.argument("refs", nargs=-1, required=True, metavar="CONTAINER|IMAGE...")
@click.pass_context
def inspect_cmd(ctx, fmt, kind, as_json, refs):
    """Low-level details of containers or images, with Docker's field names."""
    from layergit.errors import NotFound
    from layergit.porcelain import container_views

    repo = repo_from(ctx)
    out = []
    for ref in refs:
        try:
            if kind == "image":
                raise NotFound(ref)
            out.append(container_views.inspect(repo, ref))
        except NotFound:
            if kind == "container":
                raise
            from layergit.porcelain import history  # images only: a container's inspect skips its ~30 ms

            out.append(history.inspect_image(repo, ref))
    if fmt:
        from .formats import print_each

        print_each(fmt, out)
    else:
        print_json(out)
