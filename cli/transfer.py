"""lg import, lg export."""

from __future__ import annotations

import sys
from contextlib import contextmanager

import click

from layergit.fs.tarlayer import check_limits_flags
from layergit.porcelain import exporter, importer
from layergit.text import printable

from .output import human_size, print_json, repo_from, short


@contextmanager
def layer_progress(label: str):
    """A callback(done, total[, bytes]) drawing a rich bar on a tty; None elsewhere."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[detail]}"), TimeElapsedColumn(), console=Console(stderr=True),
                  transient=True) as bar:
        task = bar.add_task(printable(label), total=None, detail="")  # it names a path or revision

        def update(done: int, total: int, nbytes: int | None = None) -> None:
            bar.update(task, completed=done, total=total,
                       detail=human_size(nbytes) if nbytes is not None else "")

        yield update


@click.command("import")
@click.argument("source", metavar="SOURCE|-")
@click.option("-t", "--tag", metavar="NAME[:TAG]",
              help="Name the imported image (overrides the archive's tags).")
@click.option("--format", "fmt", type=click.Choice(importer.FORMATS), default="auto", show_default=True)
@click.option("-m", "--message", help="Commit message for a rootfs import.")
@click.option("--max-bytes", type=int, help="Refuse archives that unpack to more bytes (default 32 GiB).")
@click.option("--max-entries", type=int, help="Refuse archives with more entries (default 2,000,000).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_context
def import_cmd(ctx, source, tag, fmt, message, max_bytes, max_entries, as_json):
    """Import SOURCE (a file, a directory, or - for stdin): one commit per layer."""
    limits = check_limits_flags(max_bytes, max_entries)
    with layer_progress(f"importing {source}") as cb:
        results = importer.import_archive(repo_from(ctx), source, tag, fmt, message, limits, cb)
    if as_json:
        print_json(results)
        return
    for r in results:
        tags = printable(" ".join(r.tags)) or "(untagged)"
        click.echo(f"{r.id}  {tags}  {r.commits} commits, {r.layers} layers")


@click.command("export")
@click.argument("rev")
@click.option("-o", "--output", metavar="FILE|DIR|-",
              help="Where to write (default: stdout): a FILE is replaced atomically,"
                   " a FIFO or device written into;"
                   " with --format oci a new or empty DIR/ gets a layout directory.")
@click.option("--format", "fmt", type=click.Choice(exporter.FORMATS), default="docker-archive",
              show_default=True)
@click.pass_context
def export_cmd(ctx, rev, output, fmt):
    """Export REV: a rootfs tar, or its history as a docker-archive or OCI image."""
    with layer_progress(f"exporting {rev}") as cb:
        result = exporter.export(repo_from(ctx), rev, output, fmt, cb)
    if result.skipped_sockets:
        click.echo(f"lg: warning: tar cannot hold sockets; skipped {result.skipped_sockets}", err=True)
    if output not in (None, "-"):
        counts = f"{result.layers} layers, {result.history} history entries"
        click.echo(f"{short(result.id)}: {counts} -> {output}", err=True)


@click.command("save")
@click.argument("images", nargs=-1, required=True, metavar="IMAGE")
@click.option("-o", "--output", metavar="FILE", help="Write to FILE (default: stdout, never a terminal).")
@click.pass_context
def save_cmd(ctx, images, output):
    """Docker's name for `lg export --format docker-archive`: IMAGE's history as a docker-archive."""
    from layergit.errors import UsageError

    if len(images) > 1:
        raise UsageError("lg save takes one image: run it once per image (an archive of several is not"
                         " supported yet)")
    if output in (None, "-") and sys.stdout.isatty():
        raise UsageError("cowardly refusing to save to a terminal: use -o FILE or redirect stdout")
    with layer_progress(f"saving {images[0]}") as cb:
        exporter.export(repo_from(ctx), images[0], output, "docker-archive", cb)


@click.command("load")
@click.option("-i", "--input", "source", default="-", metavar="FILE", help="Read from FILE (default: stdin).")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing.")
@click.pass_context
def load_cmd(ctx, source, quiet):
    """Docker's name for `lg import`: load a docker-archive or OCI archive, with its tags."""
    from layergit.errors import UsageError

    if source == "-" and sys.stdin.isatty():
        raise UsageError("requested load from stdin, but stdin is a terminal: use -i FILE or redirect stdin")
    with layer_progress(f"loading {source}") as cb:
        limits = check_limits_flags(None, None)
        results = importer.import_archive(repo_from(ctx), source, None, "auto", None, limits, cb)
    for r in results if not quiet else []:
        for tag in r.tags:
            click.echo(f"Loaded image: {printable(tag)}")
        if not r.tags:
            click.echo(f"Loaded image ID: {r.id}")
