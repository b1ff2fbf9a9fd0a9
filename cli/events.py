"""lg events: Docker's ``events`` for a root's containers."""

from __future__ import annotations

import sys
from datetime import datetime, timezone

import click

from .output import repo_from


def _line(event) -> str:
    """As Docker prints an event: time (RFC 3339, nanoseconds), type, action, id, attributes."""
    from layergit.text import printable

    seconds, nanos = divmod(event.time_ns, 1_000_000_000)
    stamp = datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos:09d}Z"
    attrs = ", ".join(f"{k}={v}" for k, v in sorted(event.attributes.items()))
    return printable(f"{stamp} {event.type} {event.action} {event.id} ({attrs})")


@click.command("events")
@click.option("--since", metavar="TIME",
              help="Events since TIME (RFC 3339, Unix time, or 10m ago), then new ones.")
@click.option("--until", metavar="TIME",
              help="Stop at TIME (same forms); without it, follow until interrupted.")
@click.option("-f", "--filter", "words", multiple=True, metavar="KEY=VALUE",
              help="container=ID|NAME, event=ACTION, image=IMAGE, type=container.")
@click.option("--format", "fmt", metavar="TEMPLATE", help="A Go template per event, e.g. '{{json .}}'.")
@click.pass_context
def events_cmd(ctx, since, until, words, fmt):
    """Show container events (create, start, die, kill, stop, pause, rename, destroy, ...), as
    they happen; with --since the logged ones first."""
    from layergit.porcelain import events, timespec

    since_t = timespec.parse(since, "--since") if since else None
    until_t = timespec.parse(until, "--until") if until else None
    template = None
    if fmt:
        from .gotemplate import parse, safe

        template = parse(fmt)
    for event in events.events(repo_from(ctx), since_t, until_t, list(words)):
        text = safe(template.execute(event.to_json())) if template else _line(event)
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
