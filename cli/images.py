"""lg commit, tag, rmi, images."""

from __future__ import annotations

import click

from layergit.porcelain import images
from layergit.text import printable

from .output import human_size, listing, print_json, progress, repo_from, short


@click.command("commit")
@click.argument("source", metavar="DIR|CONTAINER")
@click.option("-t", "--tag", "tag", required=True, metavar="NAME[:TAG]",
              help="Image name to commit to (moves like a branch).")
@click.option("-c", "--change", multiple=True, metavar="INSTRUCTION",
              help="For a container: apply a Dockerfile config instruction (CMD, ENV, ...).")
@click.option("-m", "--message", help="Commit message (default: 'lg commit DIR').")
@click.option("--author", metavar='"Name <mail>"', help="Author (default: git's user.name/user.email).")
@click.option("--parent", metavar="REV", help="Parent commit (default: the tag's current commit).")
@click.option("--allow-empty", is_flag=True, help="Commit even if nothing changed.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_context
def commit_cmd(ctx, source, tag, change, message, author, parent, allow_empty, as_json):
    """Snapshot a directory, or a container's filesystem, as a new commit on NAME[:TAG].

    A directory's commit goes on top of the tag's current commit (or --parent); a
    container's goes on top of the image it was created from. Prints the image id.
    """
    import os

    from layergit.errors import UsageError

    repo = repo_from(ctx)
    if os.path.isdir(source):
        if change:
            raise UsageError("-c/--change applies to containers;"
                             " edit config with a Dockerfile or lg commit CONTAINER -c")
        with progress(f"committing {source}") as cb:
            result = images.commit_dir(repo, source, tag, message=message, author=author, parent=parent,
                                       allow_empty=allow_empty, progress=cb)
    else:
        from layergit.errors import NotFound
        from layergit.porcelain import container_layer, container_lookup

        try:
            container_lookup.find(repo, source)
        except NotFound:
            raise NotFound(f"no such directory or container: {source}") from None
        if parent or allow_empty:
            raise UsageError("--parent and --allow-empty apply to directories;"
                             " a container commits on top of its image")
        result = container_layer.commit(repo, source, tag, message, author, list(change))
    if as_json:
        print_json(result)
    else:
        click.echo(result.id)


@click.command("tag")
@click.argument("source", metavar="SRC")
@click.argument("target", metavar="TARGET")
@click.pass_context
def tag_cmd(ctx, source, target):
    """Name the image SRC also TARGET (NAME[:TAG]), moving TARGET if it exists."""
    images.tag(repo_from(ctx), source, target)


@click.command("rmi")
@click.option("-f", "--force", is_flag=True, help="Remove every name of an image given by id.")
@click.option("--no-prune", is_flag=True, help="Accepted: lg never removes commits here (lg gc does).")
@click.argument("targets", nargs=-1, required=True, metavar="NAME[:TAG]|ID...")
@click.pass_context
def rmi_cmd(ctx, force, no_prune, targets):
    """Remove image names. The commits stay until `lg gc` finds them unreachable."""
    for name, oid in images.rmi(repo_from(ctx), list(targets), force):
        click.echo(f"Untagged: {printable(name)} ({short(oid)})")


@click.command("images")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.option("-q", "--quiet", is_flag=True, help="Only image ids.")
@click.option("--remote", is_flag=True, help="List remote-tracking names (origin/app:1) instead.")
@click.option("--digests", is_flag=True,
              help="Show the registry digests the images were pushed or pulled as.")
@click.option("-f", "--filter", "filters", multiple=True, metavar="KEY=VALUE",
              help="dangling, label, reference, before, since.")
@click.option("--format", "fmt", metavar="TEMPLATE",
              help="Go template ({{.Repository}}), table ..., or json.")
@click.option("--no-trunc", is_flag=True, help="Do not truncate image ids.")
@click.option("-a", "--all", "all_", is_flag=True, help="Accepted: lg lists every named image anyway.")
@click.argument("reference", required=False, metavar="[NAME[:TAG]]")
@click.pass_context
def images_cmd(ctx, as_json, quiet, remote, digests, filters, fmt, no_trunc, all_, reference):
    """List images: name, tag, id, created, size."""
    from layergit.porcelain import filters as filtering

    words = [*filters, *([f"reference={reference}"] if reference else [])]
    rows = filtering.list_images(repo_from(ctx), words, remote)
    if fmt and not quiet and not as_json:
        from .formats import IMAGE_HEADERS, IMAGE_TABLE, image_record, print_rows

        print_rows(fmt, [image_record(r, no_trunc, human_size(r.size)) for r in rows], IMAGE_HEADERS,
                   IMAGE_TABLE)
        return
    listing(rows, as_json, quiet,
            ["REPOSITORY", "TAG", *(["DIGEST"] if digests else []), "IMAGE ID", "CREATED", "SIZE"],
            lambda r: [r.name, r.tag, *([_digest(r)] if digests else []), r.id if no_trunc else short(r.id),
                       r.created.strftime("%Y-%m-%d %H:%M:%S %z"), human_size(r.size)])


def _digest(row) -> str:
    return ", ".join(d.partition("@")[2] for d in row.digests) or "<none>"
