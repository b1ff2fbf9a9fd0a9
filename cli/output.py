"""Shared rendering: JSON for machines, rich for people (colour only on a tty)."""

from __future__ import annotations

import dataclasses
import functools
import sys
import threading
from contextlib import contextmanager
from datetime import datetime

import click

from layergit.porcelain.repo import Repo, open_repo
from layergit.text import printable


def repo_from(ctx: click.Context) -> Repo:
    """The root the command line names, opened. What lg then says of its own accord, a
    root it tightens or a lock it waits for, goes to stderr; the hooks are set here, not
    at start-up, so that ``lg --help`` imports neither module."""
    from layergit import flock, root

    from .main import say

    root.on_notice = flock.on_wait = say
    return open_repo(ctx.find_root().obj.get("root"))


def _default(value):
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    raise TypeError(f"cannot serialise {type(value).__name__}")


@functools.cache
def _json_escapes() -> dict[int, str]:
    """JSON may escape any character; json.dumps without ensure_ascii leaves DEL, C1
    controls and lone surrogates raw. Escaped, the output parses to the very same
    strings, and a terminal it reaches obeys none of them (they can only occur inside
    JSON strings). Built on first use: most commands print no JSON."""
    return {c: f"\\u{c:04x}" for c in (0x7F, *range(0x80, 0xA0), *range(0xD800, 0xE000))}


def print_json(value) -> None:
    import json  # not on the start-up of commands that print no JSON

    click.echo(json.dumps(value, default=_default, indent=2, ensure_ascii=False).translate(_json_escapes()))


def console():
    """A rich console that interprets nothing in what it prints (no markup, no :emoji:
    codes): names and messages are the image's. Callers pass markup=True for their own."""
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True, markup=False, emoji=False)


def message_lines(text: str) -> list[str]:
    """A message (a commit's, a command line) as printable lines: split at newlines
    only, as git does, so that a carriage return or form feed shows as an escape."""
    return [printable(line) for line in text.rstrip("\n").split("\n")]


def human_size(n: float, binary: bool = False) -> str:
    """Docker's go-units sizes: decimal (``kB``, ``MB``), or ``binary`` (``KiB``, ``MiB``:
    memory in lg stats)."""
    base, units = (1000, ("B", "kB", "MB", "GB", "TB"))
    if binary:
        base, units = 1024, ("B", "KiB", "MiB", "GiB", "TiB")
    for unit in units:
        if abs(n) < base or unit == units[-1]:
            return f"{n:.0f}{unit}" if unit == "B" else f"{n:.{4 if binary else 3}g}{unit}"
        n /= base
    return str(n)


def short(hex_id: str | None) -> str:
    return hex_id[:12] if hex_id else "-"


def table(columns: list[str], rows: list[list[str]]) -> None:
    """A plain aligned table when piped, a rich one on a terminal. Cells are escaped
    (:func:`printable`) and never read as rich markup: they hold names, tags and
    commands an image chose."""
    rows = [[printable(cell) for cell in row] for row in rows]
    if not sys.stdout.isatty():
        widths = [max(len(c), *(len(r[i]) for r in rows)) if rows else len(c) for i, c in enumerate(columns)]
        for row in [columns] + rows:
            click.echo("   ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)).rstrip())
        return
    from rich import box
    from rich.table import Table
    from rich.text import Text

    t = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for c in columns:
        t.add_column(c)
    for r in rows:
        t.add_row(*map(Text, r))
    console().print(t)


def listing(rows: list, as_json: bool, quiet: bool, columns: list[str], cells) -> None:
    """The three forms of every list command: JSON, ids only (-q), or a table."""
    if as_json:
        print_json(rows)
    elif quiet:
        for r in rows:
            click.echo(short(r.id))
    else:
        table(columns, [cells(r) for r in rows])


@contextmanager
def transfer_progress(quiet: bool):
    """A callback(item, done, total) drawing one line per item on a tty (bytes, speed;
    total None when not known yet): a registry's blobs, a git remote's pack. None when
    quiet or not on a tty, where the one summary line is all lg says."""
    if quiet or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    with Progress(TextColumn("{task.description}", markup=False), BarColumn(), DownloadColumn(),
                  TransferSpeedColumn(), console=Console(stderr=True), transient=True) as bar:
        tasks: dict = {}
        lock = threading.Lock()

        def update(item: str, done: int, total: int) -> None:
            with lock:  # blobs move on several threads
                if item not in tasks:
                    tasks[item] = bar.add_task(printable(item), total=total)
                bar.update(tasks[item], completed=done, total=total)

        yield update

@contextmanager
def progress(label: str):
    """A callback(entries, bytes) drawing a rich progress line on a tty; None elsewhere."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(SpinnerColumn(), TextColumn("{task.description}", markup=False),
                  TextColumn("{task.fields[detail]}"), TimeElapsedColumn(), console=Console(stderr=True),
                  transient=True) as bar:
        task = bar.add_task(printable(label), detail="")  # it names a path the user gave

        def update(entries: int, nbytes: int) -> None:
            bar.update(task, detail=f"{entries} entries, {human_size(nbytes)}")

        yield update
