"""lg diff: name-status, stat, JSON, or a readable report with unified diffs."""

from __future__ import annotations

import click

from layergit.errors import UsageError
from layergit.porcelain import diff as porcelain_diff
from layergit.text import printable, quoted

from .output import console, human_size, print_json, repo_from, short


def _split_paths(ctx, args: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """Revisions before ``--`` and paths after it, as git reads them."""
    argv = ctx.find_root().obj.get("argv", [])
    if "--" in argv:
        n_paths = len(argv) - argv.index("--") - 1
        return list(args[: len(args) - n_paths]), list(args[len(args) - n_paths:])
    return list(args), []


def _lines(text: str) -> list[str]:
    """A file's lines as git diffs them: split at newlines only (a carriage return is content)."""
    lines = text.split("\n")
    return lines[:-1] if lines[-1] == "" else lines


def _describe(change) -> str:
    old, new = change.old, change.new
    details = []
    for aspect in change.aspects:
        if aspect == "mode":
            details.append(f"mode {old.meta.mode:04o} -> {new.meta.mode:04o}")
        elif aspect == "owner":
            details.append(f"owner {old.meta.uid}:{old.meta.gid} -> {new.meta.uid}:{new.meta.gid}")
        elif old is not None and new is not None and aspect == "rdev":
            details.append(f"device {old.meta.rdev} -> {new.meta.rdev}")
        else:
            details.append(aspect)
    return ", ".join(details)


def _json(result) -> dict:
    def node(n):
        if n is None:
            return None
        m = n.meta
        return {"type": m.kind, "mode": f"{m.mode:04o}", "uid": m.uid, "gid": m.gid, "mtime_ns": m.mtime_ns,
                "id": n.oid.hex() if n.oid else None, "xattrs": sorted(k for k, _ in m.xattrs)}

    return {
        "old": result.old,
        "new": result.new,
        "changes": [{"status": c.status, "path": c.path, "aspects": list(c.aspects),
                     "old": node(c.old), "new": node(c.new)} for c in result.changes],
        "config": {k: {"old": o, "new": n} for k, (o, n) in result.config_changes.items()},
    }


@click.command("diff")
@click.argument("args", nargs=-1, required=True, metavar="A [B] [-- PATH...]")
@click.option("--name-status", is_flag=True, help="Print STATUS<TAB>/path lines (A, M, D, T).")
@click.option("--stat", "stat_", is_flag=True, help="Summarise changes and bytes.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.option("--mtime", is_flag=True, help="Report mtime-only changes too.")
@click.option("--waste", is_flag=True, help="The waste report (lg waste) of the layers from A to B.")
@click.pass_context
def diff_cmd(ctx, args, name_status, stat_, as_json, mtime, waste):
    """What changed from A to B (from A's parent to A when B is absent).

    With a single argument that names a container: what the container changed
    relative to its image.
    """
    revs, paths = _split_paths(ctx, args)
    if not 1 <= len(revs) <= 2:
        raise UsageError("lg diff takes one or two revisions, then optionally -- PATH...")
    repo = repo_from(ctx)
    if waste:
        _print_waste(repo, revs, paths, as_json)
        return
    result = _container_diff(repo, revs, paths, mtime) or porcelain_diff.diff(
        repo, revs[0], revs[1] if len(revs) > 1 else None, paths, include_mtime=mtime)
    if as_json:
        print_json(_json(result))
    elif name_status:
        for c in result.changes:
            click.echo(f"{c.status}\t{quoted(c.path)}")
    elif stat_:
        print_stat(repo, result)
    else:
        _print_report(repo, result)


def _print_waste(repo, revs: list[str], paths: list[str], as_json: bool) -> None:
    """What the layers above A up to B (A's own layer with one revision) ship that B drops."""
    from layergit.porcelain.waste import waste

    from .waste import print_waste

    if paths:
        raise UsageError("lg diff --waste takes no paths")
    if len(revs) == 1:
        report = waste(repo, revs[0], base=f"{revs[0]}^" if repo.image_at(revs[0]).commit.parents else None)
    else:
        report = waste(repo, revs[1], base=revs[0])
    print_waste(report, as_json)


def _container_diff(repo, revs: list[str], paths: list[str], mtime: bool):
    """With one argument naming a container, its writable layer against its image (as docker diff)."""
    if len(revs) != 1:
        return None
    from layergit.errors import NotFound
    from layergit.porcelain import container_layer, container_lookup

    try:
        container_lookup.find(repo, revs[0])
    except NotFound:
        return None
    return container_layer.diff(repo, revs[0], paths, mtime)


def _size(repo, node) -> int:
    return repo.store.object_size(node.oid) if node is not None and node.meta.kind == "f" else 0


def print_stat(repo, result) -> None:
    counts = {"A": 0, "D": 0, "M": 0, "T": 0}
    added = removed = 0
    for c in result.changes:
        counts[c.status] += 1
        added += _size(repo, c.new)
        removed += _size(repo, c.old)
        click.echo(f" {c.status} {quoted(c.path)}")
    click.echo(f" {len(result.changes)} paths changed: {counts['A']} added, {counts['M']} modified,"
               f" {counts['D']} deleted, {counts['T']} type changed;"
               f" +{human_size(added)} -{human_size(removed)}")
    if result.config_changes:
        click.echo(f" config: {printable(', '.join(result.config_changes))} changed")


def _print_report(repo, result) -> None:
    """Paths quoted, config values as Python literals; the content of a changed file is
    printed as it is when piped (as git does), escaped on a terminal, which obeys it."""
    import difflib  # (here: lg log -- PATH imports this module for _split_paths)

    out = console()
    out.print(f"diff {short(result.old)} {short(result.new)}", markup=False, style="bold")
    for key, (old, new) in result.config_changes.items():
        out.print(printable(f"config {key}: {old!r} -> {new!r}"), style="cyan")
    for c in result.changes:
        style = {"A": "green", "D": "red", "M": "yellow", "T": "magenta"}[c.status]
        detail = f" ({_describe(c)})" if c.aspects else ""
        out.print(f"{c.status} {quoted(c.path)}{detail}", style=style)
        if c.status == "M" and "content" in c.aspects and c.old.meta.kind == "f":
            before = porcelain_diff.blob_text(repo, c.old.oid)
            after = porcelain_diff.blob_text(repo, c.new.oid)
            if before is None or after is None:
                sizes = f"{human_size(_size(repo, c.old))} -> {human_size(_size(repo, c.new))}"
                out.print(f"    binary content differs ({sizes})", markup=False)
                continue
            for line in difflib.unified_diff(_lines(before), _lines(after), quoted(b"a" + c.path),
                                             quoted(b"b" + c.path), lineterm=""):
                if not out.is_terminal:
                    click.echo("    " + line, color=True)  # (else click strips what looks like a colour)
                    continue
                colour = ("green" if line.startswith("+") else "red" if line.startswith("-")
                          else "cyan" if line.startswith("@@") else None)
                out.print("    " + printable(line), style=colour)
