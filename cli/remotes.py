"""lg remote add|ls|rm, lg push, lg pull, lg fetch: images to and from git remotes."""

from __future__ import annotations

import click

from layergit.porcelain import remotes

from .output import human_size, listing, print_json, repo_from, short, transfer_progress

_GRAMMAR = ("REMOTE is a configured remote's name, a URL (file://, ssh://, git://, http(s)://) or a"
            " path (/..., ./..., ../...): that is git's form. Any other first operand names an OCI"
            " registry image (Docker's form, e.g. localhost:5000/app:1): see the registry form.")


@click.group("remote")
def remote_cmd():
    """Manage the store's git remotes (plain `git remote -v` in the store shows them)."""


_TRUST_HELP = ("Trust this remote's build cache: --build-cache moves it, and lg build reuses its"
               " RUN results (a shared cache can carry poisoned results: trust only your own CI).")


@remote_cmd.command("add")
@click.argument("name")
@click.argument("url")
@click.option("--build-cache", is_flag=True, help=_TRUST_HELP)
@click.pass_context
def remote_add_cmd(ctx, name, url, build_cache):
    """Add a remote: URL is a path, file://, ssh://, host:path, git:// or http(s)://."""
    remote = remotes.remote_add(repo_from(ctx), name, url, build_cache)
    click.echo(f"{remote.name}\t{remote.url}")


@remote_cmd.command("set-build-cache")
@click.argument("name")
@click.argument("trust", type=click.BOOL, metavar="true|false")
@click.pass_context
def remote_set_build_cache_cmd(ctx, name, trust):
    """Trust a remote's build cache, or stop (its fetched entries are then removed)."""
    dropped = remotes.set_build_cache(repo_from(ctx), name, trust)
    state = "trusted" if trust else f"not trusted ({dropped} fetched entries removed)"
    click.echo(f"build cache of {name}: {state}")


@remote_cmd.command("ls")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def remote_ls_cmd(ctx, as_json):
    """List remotes."""
    listing(remotes.remote_list(repo_from(ctx)), as_json, False, ["NAME", "URL", "BUILD CACHE"],
            lambda r: [r.name, r.url, "trusted" if r.build_cache else "-"])


@remote_cmd.command("rm")
@click.argument("name")
@click.pass_context
def remote_rm_cmd(ctx, name):
    """Remove a remote and its remote-tracking names (origin/app:1)."""
    dropped = remotes.remote_remove(repo_from(ctx), name)
    click.echo(f"removed {name} and {dropped} remote-tracking name(s)")


def _report(result: remotes.TransferResult, verb: str, as_json: bool) -> None:
    from .main import say

    if as_json:
        print_json(result)
        return
    for warning in result.warnings:
        say(f"warning: {warning}")
    if result.ignored:
        say(f"{result.ignored} ref(s) of the remote are not layergit images; left alone")
    for update in result.updated:
        click.echo(f"{update.image}\t{short(update.old)} -> {short(update.new)}")
    for update in result.tracking:
        click.echo(f"{update.image}\t{short(update.old)} -> {short(update.new)} (remote-tracking)")
    for name in result.pruned:
        click.echo(f"{name}\tgone from the remote (remote-tracking name removed)")
    for name in result.up_to_date:
        click.echo(f"{name}\tup to date")
    if result.cache_entries:
        click.echo(f"build cache: {result.cache_entries} entr{'y' if result.cache_entries == 1 else 'ies'}")
    size = f", {human_size(result.bytes)}" if result.bytes else ""
    pushes = f" in {result.pushes} pushes" if result.pushes > 1 else ""
    click.echo(f"{verb} {result.objects} object(s){size}{pushes}")


_BUILD_CACHE = click.option("--build-cache", is_flag=True,
                            help="Also the build cache (a remote trusted for it: lg remote set-build-cache).")


@click.command("push", epilog=_GRAMMAR)
@click.argument("remote", metavar="REMOTE")
@click.argument("images", nargs=-1, metavar="[NAME[:TAG]]...")
@click.option("--all", "all_images", is_flag=True, help="Push every local image.")
@click.option("-f", "--force", is_flag=True, help="Replace the remote's history where it diverged.")
@click.option("--max-pack", metavar="SIZE",
              help="Split a long history into pushes of at most SIZE each (e.g. 1g).")
@_BUILD_CACHE
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def push_cmd(ctx, remote, images, all_images, force, max_pack, build_cache, as_json):
    """Send images' history to a git remote: only what it lacks."""
    repo = repo_from(ctx)
    with transfer_progress(as_json) as progress:  # bytes and speed, on a terminal
        result = remotes.push(repo, remote, list(images), all_images, force, _size(max_pack), build_cache,
                              progress)
    _report(result, "sent", as_json)


def _size(text: str | None) -> int | None:
    if not text:
        return None
    from layergit.porcelain.runopts import parse_size  # with the run options' imports: only when asked

    return parse_size(text, "--max-pack")


def _receiving(command):
    """What pull and fetch share: REMOTE, the images, --max-pack, --build-cache, --json."""
    for decorate in reversed((
        click.argument("remote", metavar="REMOTE"),
        click.argument("images", nargs=-1, metavar="[NAME[:TAG]]..."),
        click.option("--max-pack", metavar="SIZE",
                     help="Stop, keeping nothing, if the remote sends more than SIZE (e.g. 2g; default:"
                          " git config layergit.maxPack in the store, else 32g)."),
        _BUILD_CACHE,
        click.option("--json", "as_json", is_flag=True),
        click.pass_context,
    )):
        command = decorate(command)
    return command


@click.command("pull", epilog=_GRAMMAR)
@_receiving
def pull_cmd(ctx, remote, images, max_pack, build_cache, as_json):
    """Fetch images from a git remote and fast-forward their local tags (none named:
    every local image the remote also holds)."""
    repo = repo_from(ctx)
    with transfer_progress(as_json) as progress:
        result = remotes.pull(repo, remote, list(images), _size(max_pack), build_cache, progress)
    _report(result, "received", as_json)


@click.command("fetch", epilog=_GRAMMAR)
@_receiving
def fetch_cmd(ctx, remote, images, max_pack, build_cache, as_json):
    """Fetch images' history from a git remote into remote-tracking names (origin/app:1)."""
    repo = repo_from(ctx)
    with transfer_progress(as_json) as progress:
        result = remotes.fetch(repo, remote, list(images), _size(max_pack), build_cache, progress)
    _report(result, "received", as_json)


@click.command("serve")
@click.option("--listen", default="127.0.0.1:8787", show_default=True, metavar="HOST:PORT")
@click.option("--allow-push", is_flag=True,
              help="Accept pushes (checked as lg pull checks; they take the store's lock).")
@click.option("--max-pack", metavar="SIZE",
              help="With --allow-push: refuse pushes larger than SIZE (default: git config"
                   " layergit.maxPack in the store, else 32g).")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=None, metavar="SECONDS",
              help="Drop a client silent this long (default 60).")
@click.pass_context
def serve_cmd(ctx, listen, allow_push, max_pack, timeout):
    """Serve this store over git's smart HTTP protocol: `lg pull http://HOST:PORT app:1`
    and `git clone http://HOST:PORT/` read it. Read-only unless --allow-push; stops on
    Ctrl-C or SIGTERM."""
    from layergit.porcelain import images

    from .main import say

    repo = repo_from(ctx)
    served = images.list_images(repo)

    def ready(url: str) -> None:
        mode = "accepting pushes" if allow_push else "read-only"
        say(f"serving {repo.root.store} at {url} ({mode}): {len(served)} image(s)")
        for row in served:
            say(f"  {row.name}:{row.tag} {short(row.id)}")

    remotes.serve(repo, listen, allow_push, say, ready, _size(max_pack), timeout)
