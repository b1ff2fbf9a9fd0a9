"""lg blame, cat, ls, grep, waste, history: reviewing images like code."""

from __future__ import annotations

import itertools
import re
import stat
import sys
from datetime import datetime, timezone

import click

from layergit.errors import UsageError
from layergit.porcelain import review
from layergit.text import printable, quoted

from .diff import _split_paths
from .output import human_size, print_json, repo_from, short, table
from .pager import no_pager_option, paged, printer
from .waste import summary


def _content(line: bytes, out) -> str:
    """A line of an image's file: escaped on a terminal (which obeys it), else as it is (as lg diff)."""
    text = line.decode("utf-8", "surrogateescape")
    return printable(text) if out.is_terminal else text


def _echo_raw(text: str) -> None:
    click.echo(text, color=True)  # (else click strips what looks like a colour from the file's own text)


# -- blame --------------------------------------------------------------------------


@click.command("blame")
@click.argument("rev")
@click.argument("path")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@no_pager_option
@click.pass_context
def blame_cmd(ctx, rev, path, as_json, no_pager):
    """The version that last changed each line of file PATH in REV (git blame's way), or,
    for a directory, each entry with the version that last changed it and how
    (added, type, content, mode, owner, xattrs, rdev, link). mtime-only changes do not count."""
    repo = repo_from(ctx)
    kind = review.kind_at(repo, rev, path)
    if kind == "d":
        entries = review.blame_dir(repo, rev, path)
        if as_json:
            print_json(entries)
            return
        with paged(not no_pager):
            table(["VERSION", "DATE", "NAME", "HOW", "CREATED BY"],
                  [[short(e.version.id), e.version.date.strftime("%Y-%m-%d"),
                    quoted(e.name) + ("/" if e.kind == "d" else ""), ",".join(e.how),
                    summary(e.version.message, 60)] for e in entries])
        return
    lines = review.blame_file(repo, rev, path)
    if as_json:
        print_json([{"line": b.number, "text": b.text, "version": b.version} for b in lines])
        return
    width = len(str(len(lines)))
    with paged(not no_pager):
        out = printer()
        for b in lines:
            head = f"{short(b.version.id)} ({b.version.date.strftime('%Y-%m-%d')} " \
                   f"{summary(b.version.message, 24):24} {b.number:>{width}}) "
            if out.is_terminal:
                out.print(head, style="yellow", end="")
                out.print(_content(b.text, out))
            else:
                _echo_raw(head + _content(b.text, out))


# -- cat and ls ---------------------------------------------------------------------


@click.command("cat")
@click.argument("rev")
@click.argument("path")
@click.pass_context
def cat_cmd(ctx, rev, path):
    """The bytes of file PATH in REV, symlinks followed inside the image only (an absolute
    target starts at the image's /). Escaped on a terminal, as they are when piped."""
    _, chunks = review.cat(repo_from(ctx), rev, path)
    if sys.stdout.isatty():
        import codecs

        decoder = codecs.getincrementaldecoder("utf-8")("surrogateescape")
        for chunk in itertools.chain(chunks, [b""]):
            text = decoder.decode(chunk, final=not chunk)
            # newlines and tabs as they are, every other control escaped
            sys.stdout.write("".join(part if part in ("\n", "\t") else printable(part)
                                     for part in re.split("([\n\t])", text)))
        return
    out = sys.stdout.buffer
    for chunk in chunks:
        out.write(chunk)


def _ls_line(e: review.LsEntry, full: bool) -> str:
    name = quoted(e.path if full else e.name)
    if e.target is not None:
        name += " -> " + quoted(e.target)
    return name


def _ls_long(e: review.LsEntry) -> list[str]:
    from layergit.store.meta import CHAR_TYPES

    mode = stat.filemode(CHAR_TYPES[e.kind] | e.mode)
    size = f"{e.rdev[0]}, {e.rdev[1]}" if e.rdev is not None else str(e.size)
    when = datetime.fromtimestamp(e.mtime_ns / 1e9, timezone.utc).strftime("%Y-%m-%d %H:%M")
    return [mode + ("+" if e.xattrs else ""), f"{e.uid}:{e.gid}", size, when]


@click.command("ls")
@click.argument("rev")
@click.argument("path", default="/")
@click.option("-l", "long", is_flag=True, help="Type, mode, owner, size, mtime (UTC) and link target.")
@click.option("-R", "recursive", is_flag=True, help="Every entry below PATH, one full path a line.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@no_pager_option
@click.pass_context
def ls_cmd(ctx, rev, path, long, recursive, as_json, no_pager):
    """The entries of directory PATH in REV (default /) from the stored metadata, without
    a checkout; PATH itself when it is not a directory. A "+" after the mode marks xattrs."""
    entries = review.ls(repo_from(ctx), rev, path, recursive)
    if as_json:
        print_json(list(entries))
        return
    with paged(not no_pager):
        if not long:
            for e in entries:
                click.echo(_ls_line(e, recursive))
            return
        for e in entries:
            mode, owner, size, when = _ls_long(e)
            extra = f"  (hardlink of {quoted(e.hardlink)})" if e.hardlink else ""
            click.echo(f"{mode:11} {owner:>11} {size:>12} {when} {_ls_line(e, recursive)}{extra}")


# -- grep ---------------------------------------------------------------------------


@click.command("grep")
@click.argument("args", nargs=-1, required=True, metavar="[PATTERN] REV... [-- PATH...]")
@click.option("-e", "patterns", multiple=True, metavar="PATTERN",
              help="A pattern (repeatable: a line matching any is selected);"
                   " then every argument is a REV.")
@click.option("-i", "--ignore-case", is_flag=True, help="Match case-insensitively.")
@click.option("-w", "--word-regexp", "word", is_flag=True, help="Match only whole words.")
@click.option("-v", "--invert-match", "invert", is_flag=True, help="Select the lines that do not match.")
@click.option("-l", "--files-with-matches", "files_only", is_flag=True, help="Print only the names of files.")
@click.option("-c", "--count", is_flag=True,
              help="Print the number of selected lines of each file that has some.")
@click.option("-a", "--text", is_flag=True, help="Search binary files too.")
@click.option("-n", "--line-number", is_flag=True, help="Print line numbers.")
@click.option("-F", "--fixed-strings", is_flag=True, help="PATTERN is a string, not a regular expression.")
@click.option("--first", is_flag=True,
              help="With each line, the version it first appeared in (at that path, back from REV).")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@no_pager_option
@click.pass_context
def grep_cmd(ctx, args, patterns, ignore_case, word, invert, files_only, count, text, line_number,
             fixed_strings, first, as_json, no_pager):
    """Lines matching PATTERN (a Python regular expression, like git grep -P) in the files
    of one or several versions, as REV:PATH:LINE. Binary files (a NUL in the first 8000
    bytes) are skipped unless -a; exit status 1 when nothing matched, as git grep."""
    words, paths = _split_paths(ctx, args)
    if not patterns:
        patterns, words = words[:1], words[1:]
    if not patterns or not words:
        raise UsageError("lg grep takes a pattern and at least one revision")
    if count and (files_only or first):
        raise UsageError("lg grep: -c cannot be combined with -l or --first")
    pattern = review.compile_pattern(list(patterns), ignore_case, fixed_strings, word, invert)
    repo = repo_from(ctx)
    matches = review.grep(repo, words, pattern, paths, text=text, files_only=files_only, first=first)
    if count:
        _grep_counts(ctx, matches, as_json)
    if as_json:
        found = list(matches)
        print_json(found)
        ctx.exit(0 if found else 1)
    any_match = False
    with paged(not no_pager):
        out = printer()
        for m in matches:
            any_match = True
            where = f"{printable(m.rev)}:{quoted(m.path)}"
            if files_only:
                click.echo(where)
                continue
            if line_number:
                where += f":{m.number}"
            if m.first is not None:
                where = f"{short(m.first.id)} {m.first.date.strftime('%Y-%m-%d')} {where}"
            if out.is_terminal:
                out.print(where + ":", style="magenta", end="")
                out.print(_content(m.line, out))
            else:
                _echo_raw(f"{where}:{_content(m.line, out)}")
    ctx.exit(0 if any_match else 1)


def _grep_counts(ctx, matches, as_json: bool) -> None:
    """-c: REV:PATH:N for each file with selected lines (as git grep -c), then exit."""
    import itertools

    counts = [(rev, path, sum(1 for _ in group))
              for (rev, path), group in itertools.groupby(matches, key=lambda m: (m.rev, m.path))]
    if as_json:
        print_json([{"rev": rev, "path": path, "count": n} for rev, path, n in counts])
    else:
        for rev, path, n in counts:
            click.echo(f"{printable(rev)}:{quoted(path)}:{n}")
    ctx.exit(0 if counts else 1)


# -- history ------------------------------------------------------------------------


def _ago(when: datetime) -> str:
    seconds = (datetime.now(timezone.utc) - when).total_seconds()
    for unit, size in (("years", 365 * 86400), ("months", 30 * 86400), ("weeks", 7 * 86400),
                       ("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= 2 * size:
            return f"{int(seconds // size)} {unit} ago"
    return "About a minute ago" if seconds >= 60 else "Less than a second ago" if seconds < 1 \
        else f"{int(seconds)} seconds ago"


@click.command("history")
@click.argument("args", nargs=-1, required=True, metavar="REV [-- PATH...]")
@click.option("--no-trunc", is_flag=True, help="Do not truncate ids and commands.")
@click.option("-H", "--human", type=bool, default=True, show_default=True,
              help="Sizes and dates in human-readable form.")
@click.option("-q", "--quiet", is_flag=True, help="Only ids.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_context
def history_cmd(ctx, args, no_trunc, human, quiet, as_json):
    """REV's layers as docker history shows them: id, created, created by, size; with
    ``-- PATH...``, only the versions that changed those paths."""
    from layergit.porcelain import history

    revs, paths = _split_paths(ctx, args)
    if len(revs) != 1:
        raise UsageError("lg history takes one revision, then optionally -- PATH...")
    repo = repo_from(ctx)
    if paths:
        entries = [e.entry for e in review.path_log(repo, revs[0], paths)]
    else:
        entries = history.log(repo, revs[0])
    if as_json:
        print_json(entries)
        return
    if quiet:
        for e in entries:
            click.echo(e.id if no_trunc else short(e.id))
        return
    rows = []
    for e in entries:
        created = _ago(e.date) if human else e.date.isoformat()
        command = printable(e.message.replace("\n", " "))
        if not no_trunc and len(command) > 45:
            command = command[:44] + "\u2026"
        rows.append([e.id if no_trunc else short(e.id), created, command,
                     human_size(e.size) if human else str(e.size), ""])
    table(["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"], rows)
