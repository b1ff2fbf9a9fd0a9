"""lg waste (and lg diff --waste): what an image's layers ship that its rootfs drops."""

from __future__ import annotations

import click

from layergit.text import printable, quoted

from .output import console, human_size, print_json, repo_from, short, table
from .pager import no_pager_option, paged


def summary(message: str, width: int | None = None) -> str:
    """A message's first line, printable, cut to ``width`` characters."""
    first = printable(message.split("\n", 1)[0])
    return first if width is None or len(first) <= width else first[: width - 1] + "\u2026"


_MEANING = {
    "overwritten": "replaced by a later layer with other content",
    "metadata": "shipped again only to change metadata (chown, chmod, mtime, xattrs)",
    "resent": "shipped again unchanged (a hardlinked file's first name brought along)",
    "deleted": "deleted by a later layer",
}


def print_waste(report, as_json: bool) -> None:
    if as_json:
        print_json(report)
        return
    out = console()
    pct = (lambda n: f"{100 * n / report.shipped:.1f}%") if report.shipped else (lambda n: "0%")
    base = f" above {short(report.base)}" if report.base else ""
    out.print(f"image {short(report.id)}{base}: {len(report.layers)} layers ship {human_size(report.shipped)}"
              f" ({report.shipped} bytes) of file content; {human_size(report.kept)} of it is kept",
              style="bold")
    saves = report.squash_saves
    out.print(f"wasted {human_size(saves)} ({saves} bytes, {pct(saves)}),"
              " all of which squashing would save:")
    for category, meaning in _MEANING.items():
        n = report.wasted[category]
        out.print(f"  {category:12} {human_size(n):>8} {pct(n):>6}  {meaning}")
    out.print(f"duplicate content among kept files: {human_size(report.duplicate)} ({report.duplicate} bytes;"
              " identical files at several paths, which squashing keeps)")
    out.print(f"efficiency {100 * report.efficiency:.2f}% (kept / shipped); dive's score"
              f" {100 * report.dive_efficiency:.2f}%, and dive would report {human_size(report.dive_wasted)}"
              " wasted (it counts the kept copy of a path shipped twice as waste too)")
    out.print()
    table(["LAYER", "SHIPPED", "KEPT", "OVERWRITTEN", "METADATA", "RESENT", "DELETED", "CREATED BY"],
          [[short(layer.id), human_size(layer.shipped), human_size(layer.kept),
            *(human_size(layer.wasted[c]) for c in _MEANING), summary(layer.message, 50)]
           for layer in report.layers])
    if report.paths:
        out.print()
        table(["WASTED", "COPIES", "PATH"],
              [[human_size(p.wasted), str(p.copies), quoted(p.path)] for p in report.paths])


@click.command("waste")
@click.argument("rev")
@click.option("--top", type=click.IntRange(min=0), default=20, show_default=True,
              help="List the N paths that waste most.")
@click.option("--all", "all_paths", is_flag=True, help="List every path that wastes bytes.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON (sizes in bytes).")
@no_pager_option
@click.pass_context
def waste_cmd(ctx, rev, top, all_paths, as_json, no_pager):
    """What REV's layers, as lg export ships them, carry that its final rootfs does not.

    Every file content a layer ships is counted once, in one bucket: kept (what the
    final rootfs is extracted from), or wasted because a later layer overwrote it with
    other content, shipped it again only to change its metadata, shipped it again
    unchanged, or deleted it. Squashing saves exactly the wasted total; "duplicate" is
    the part of kept whose content another kept file already has. Tar headers are not
    counted. dive's efficiency score, computed the way dive computes it, is shown beside.
    """
    from layergit.porcelain.waste import waste

    report = waste(repo_from(ctx), rev, top=None if all_paths else top)
    with paged(not no_pager and not as_json):
        print_waste(report, as_json)
