"""lg pull, lg push (registry forms, and which form a command line is), lg login, lg logout.

``lg push`` and ``lg pull`` are git's when the first operand is a configured remote,
a URL with a scheme or a path (``cli/remotes.py``), and a registry's otherwise (the
commands here): :func:`_two_forms` decides and hands the command line to that form.
The bodies only parse flags and call ``porcelain.registry`` / ``registry.auth``.
"""

from __future__ import annotations

import sys

import click

from layergit.fs.tarlayer import check_limits_flags
from layergit.text import printable, quoted

from .output import human_size, print_json, repo_from, short, transfer_progress

_TLS = click.option("--tls-verify/--no-tls-verify", "tls_verify", default=None,
                    help="Check TLS certificates (default: yes; plain HTTP only for loopback registries "
                         "or with --tls-verify=false).")


class _PodmanSpelling(click.Command):
    """A command that also takes podman's ``--tls-verify=false`` / ``=true`` for the
    ``--tls-verify/--no-tls-verify`` flag (click flags take no ``=VALUE``)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        out: list[str] = []
        for i, arg in enumerate(args):
            if arg == "--":
                out.extend(args[i:])
                break
            flag, eq, value = arg.partition("=")
            if flag == "--tls-verify" and eq:
                try:
                    verify = click.BOOL.convert(value, None, ctx)
                except click.BadParameter:
                    raise click.UsageError(f"--tls-verify takes true or false, not {value!r}", ctx) from None
                arg = "--tls-verify" if verify else "--no-tls-verify"
            out.append(arg)
        return super().parse_args(ctx, out)


_TIMEOUT = click.option("--timeout", type=click.FloatRange(min=0.1), default=None, metavar="SECONDS",
                        help="Give up on a registry silent this long (default 60).")


@click.command("pull", cls=_PodmanSpelling)
@click.argument("reference", metavar="[REGISTRY/]NAME[:TAG|@DIGEST]")
@click.option("--platform", metavar="OS/ARCH[/VARIANT]",
              help="Platform to pick from an index (default: this host's).")
@click.option("-a", "--all-tags", is_flag=True, help="Pull every tag of the repository.")
@click.option("-q", "--quiet", is_flag=True, help="Print only image ids.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--max-bytes", type=int, help="Refuse images that unpack to more bytes (default 32 GiB).")
@click.option("--max-entries", type=int, help="Refuse images with more entries (default 2,000,000).")
@_TLS
@_TIMEOUT
@click.pass_context
def registry_pull_cmd(ctx, reference, platform, all_tags, quiet, as_json, max_bytes, max_entries, tls_verify,
                      timeout):
    """Pull an image from a registry (Docker's names: debian is docker.io/library/debian:latest)."""
    from layergit.porcelain import registry

    repo = repo_from(ctx)
    with transfer_progress(quiet or as_json) as progress:
        options = registry.RegistryOptions(platform=platform, tls_verify=tls_verify, timeout=timeout,
                                           all_tags=all_tags, progress=progress,
                                           limits=check_limits_flags(max_bytes, max_entries))
        results = registry.pull(repo, reference, options)
    if as_json:
        print_json(results)
        return
    for r in results:
        if quiet:
            click.echo(r.id)
            continue
        fetched = f"{human_size(r.downloaded)} downloaded" if r.downloaded else "already present"
        tags = printable(" ".join(r.tags)) or "(untagged)"
        click.echo(f"{short(r.id)}  {tags}  {r.digest}  {r.commits} commits, {r.layers} layers, {fetched}")


@click.command("push", cls=_PodmanSpelling)
@click.argument("reference", metavar="[REGISTRY/]NAME[:TAG]")
@click.option("--compression", type=click.Choice(["gzip", "zstd"]), default="gzip", show_default=True,
              help="How layers are compressed.")
@click.option("-q", "--quiet", is_flag=True, help="Print only the manifest digest.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@_TLS
@_TIMEOUT
@click.pass_context
def registry_push_cmd(ctx, reference, compression, quiet, as_json, tls_verify, timeout):
    """Push an image to the registry its name holds (lg tag app localhost:5000/app first)."""
    from layergit.porcelain import registry

    repo = repo_from(ctx)
    with transfer_progress(quiet or as_json) as progress:
        options = registry.RegistryOptions(tls_verify=tls_verify, timeout=timeout, compression=compression,
                                           progress=progress)
        r = registry.push(repo, reference, options)
    if r.skipped_sockets:
        click.echo(f"lg: warning: tar cannot hold sockets; skipped {r.skipped_sockets}", err=True)
    if as_json:
        print_json(r)
    elif quiet:
        click.echo(r.digest)
    else:
        click.echo(f"{short(r.id)} -> {printable(r.reference)}@{r.digest}: {r.uploaded} uploaded "
                   f"({human_size(r.bytes)}), {r.skipped} present, {r.mounted} mounted")


def _host(server: str) -> str:
    from layergit.registry.client import check_host
    from layergit.registry.reference import _HUB_ALIASES, DOCKER_HUB

    server = server.removeprefix("https://").removeprefix("http://").rstrip("/")
    server = server.split("/")[0]
    check_host(server)
    return DOCKER_HUB if server in _HUB_ALIASES else server


@click.command("login", cls=_PodmanSpelling)
@click.argument("server", metavar="REGISTRY", required=False, default="docker.io")
@click.option("-u", "--username", help="User name (asked for on a tty when missing).")
@click.option("-p", "--password", help="Password (visible to other users in ps: prefer --password-stdin).")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin.")
@_TLS
@_TIMEOUT
def login_cmd(server, username, password, password_stdin, tls_verify, timeout):
    """Log in to a registry; credentials go where podman keeps them."""
    from layergit.errors import UsageError
    from layergit.porcelain.registry import RegistryOptions, login

    host = _host(server)
    if password_stdin:
        if password:
            raise UsageError("--password and --password-stdin exclude each other")
        password = sys.stdin.readline().rstrip("\r\n")
    if not username:
        if not sys.stdin.isatty():
            raise UsageError("give -u USER (stdin is not a terminal to ask on)")
        username = click.prompt("Username")
    if password is None:
        if not sys.stdin.isatty():
            raise UsageError("give --password-stdin (stdin is not a terminal to ask on)")
        password = click.prompt("Password", hide_input=True)
    path = login(host, username, password, RegistryOptions(tls_verify=tls_verify, timeout=timeout))
    click.echo(f"Login Succeeded ({quoted(path)})")


@click.command("logout")
@click.argument("server", metavar="REGISTRY", required=False, default="docker.io")
def logout_cmd(server):
    """Forget the credentials of a registry."""
    from layergit.registry import auth

    host = _host(server)
    auth.remove(host)
    click.echo(f"Removed login credentials for {host}")


def _operands(args: list[str], commands: list[click.Command]) -> list[str]:
    """The operands of a command line either form could take: options that take a
    value (``--platform X``, ``--max-pack N``) are skipped with their value."""
    valued = {opt for command in commands for param in command.params
              if isinstance(param, click.Option) and not param.is_flag for opt in param.opts}
    out: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg == "--":
            continue
        elif arg.startswith("-"):
            skip = arg in valued
        else:
            out.append(arg)
    return out


def _two_forms(name: str, registry_form: click.Command, summary: str) -> click.Command:
    @click.command(name, help=summary, add_help_option=False,
                   context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    @click.pass_context
    def command(ctx, args):
        from layergit.porcelain import remotes

        from . import remotes as git_forms

        git_form = getattr(git_forms, f"{name}_cmd")
        argv = list(args)
        operands = _operands(argv, [git_form, registry_form])
        operand = operands[0] if operands else None
        if operand is None and any(a in ("-h", "--help") for a in argv):
            for form in (git_form, registry_form):
                click.echo(form.get_help(click.Context(form, info_name=name, parent=ctx.parent)))
                click.echo()
            return
        git = operand is not None and remotes.is_git_operand(
            operand, repo_from(ctx).store.remotes() if remotes.could_name_remote(operand) else ())
        if operand is not None and not git and len(operands) > 1:
            from layergit.errors import UsageError

            raise UsageError(f"{quoted(operand)} is not a configured remote, a URL or a path; a registry "
                             f"{name} takes one image, [REGISTRY/]NAME[:TAG] (see lg {name} --help)")
        form = git_form if git else registry_form
        form.main(argv, prog_name=f"lg {name}", standalone_mode=False, obj=ctx.find_root().obj)

    return command


pull_cmd = _two_forms("pull", registry_pull_cmd,
                      "Pull from a git remote (REMOTE, URL or path: see the first form) or from a registry "
                      "(Docker's names: debian is docker.io/library/debian:latest).")
push_cmd = _two_forms("push", registry_push_cmd,
                      "Push to a git remote (REMOTE, URL or path: see the first form) or to the registry an "
                      "image's name holds (localhost:5000/app:1).")
