"""Entry point: the command table (loaded lazily) and the one place errors become exit codes.

``lg --help`` imports click and this table only; each command's module, and with it
rich and pygit2, loads when that command runs. Start-up time is a feature.
"""

from __future__ import annotations

import gc
import importlib
import os
import signal
import sys

import click

from layergit import __version__
from layergit.errors import ExitCode

# command name -> (module under cli/, function name, one-line help for --help)
COMMANDS = {
    "commit": ("images", "commit_cmd", "Snapshot a directory as a new image commit."),
    "tag": ("images", "tag_cmd", "Give an image another name (moves it if taken)."),
    "rmi": ("images", "rmi_cmd", "Remove image names; objects stay until gc."),
    "images": ("images", "images_cmd", "List images."),
    "log": ("history", "log_cmd", "Show an image's history, newest first."),
    "show": ("history", "show_cmd", "Show one image commit and its config."),
    "diff": ("diff", "diff_cmd", "Show what changed between two image versions."),
    "history": ("review", "history_cmd", "Show an image's layers as docker history does."),
    "blame": ("review", "blame_cmd", "Show the version that last changed each line or entry."),
    "cat": ("review", "cat_cmd", "Print a file of an image version."),
    "ls": ("review", "ls_cmd", "List a directory of an image version from its metadata."),
    "grep": ("review", "grep_cmd", "Search the files of one or several image versions."),
    "waste": ("waste", "waste_cmd", "Report the bytes an image's layers ship and its rootfs drops."),
    "bisect": ("bisect", "bisect_cmd", "Find the version that broke an image, by binary search."),
    "rebase": ("rebase", "rebase_cmd", "Replay an image's versions onto a new base (three-way merge)."),
    "squash": ("rebase", "squash_cmd", "Fold an image's versions into one on a base."),
    "checkout": ("checkout", "checkout_cmd", "Write an image version's rootfs into a directory."),
    "build": ("build", "build_cmd", "Build an image from a Dockerfile."),
    "import": ("transfer", "import_cmd", "Import a rootfs tarball, docker-archive or OCI layout."),
    "export": ("transfer", "export_cmd", "Export an image as a rootfs tar, docker-archive or OCI layout."),
    "login": ("registry", "login_cmd", "Log in to a registry."),
    "logout": ("registry", "logout_cmd", "Log out of a registry."),
    "save": ("transfer", "save_cmd", "Save an image as a docker-archive (lg export's Docker name)."),
    "load": ("transfer", "load_cmd", "Load a docker-archive or OCI archive (lg import's Docker name)."),
    "run": ("containers", "run_cmd", "Run a command in a new container."),
    "create": ("containers", "create_cmd", "Create a container without starting it."),
    "start": ("containers", "start_cmd", "Start containers."),
    "stop": ("containers", "stop_cmd", "Stop containers (StopSignal, then SIGKILL)."),
    "restart": ("containers", "restart_cmd", "Restart containers."),
    "kill": ("containers", "kill_cmd", "Send a signal to containers."),
    "rm": ("containers", "rm_cmd", "Remove containers."),
    "ps": ("container_views", "ps_cmd", "List containers."),
    "logs": ("container_views", "logs_cmd", "Show a container's output."),
    "exec": ("containers", "exec_cmd", "Run a command in a running container."),
    "wait": ("containers", "wait_cmd", "Wait for containers to stop; print exit codes."),
    "update": ("containers", "update_cmd", "Change containers' restart policy."),
    "inspect": ("container_views", "inspect_cmd", "Low-level details of containers or images."),
    "cp": ("tools", "cp_cmd", "Copy files between a container and the host."),
    "pause": ("tools", "pause_cmd", "Freeze every process of containers."),
    "unpause": ("tools", "unpause_cmd", "Resume paused containers."),
    "rename": ("tools", "rename_cmd", "Rename a container."),
    "top": ("tools", "top_cmd", "Show a container's processes."),
    "events": ("events", "events_cmd", "Show container events as they happen (create, start, die, ...)."),
    "stats": ("tools", "stats_cmd", "Show containers' CPU, memory, pids, network and block I/O."),
    "network": ("network", "network_cmd", "Manage container networks."),
    "port": ("network", "port_cmd", "List a container's published ports."),
    "compose": ("compose", "compose_cmd", "Run the services of a Compose file."),
    "volume": ("volumes", "volume_cmd", "Manage volumes: create, ls, inspect, rm, prune."),
    "remote": ("remotes", "remote_cmd", "Manage the store's git remotes."),
    "push": ("registry", "push_cmd", "Push images to a git remote (REMOTE, URL or path) or a registry."),
    "pull": ("registry", "pull_cmd", "Pull images from a git remote or a registry (Docker's names)."),
    "fetch": ("remotes", "fetch_cmd", "Fetch images' history from a git remote (origin/NAME:TAG)."),
    "serve": ("remotes", "serve_cmd", "Serve this store over git's smart HTTP protocol."),
    "fsck": ("maintenance", "fsck_cmd", "Verify the store's objects, refs and metadata."),
    "gc": ("maintenance", "gc_cmd", "Remove unreachable objects and repack."),
    "version": ("system", "version_cmd", "Show lg's version and its store's format."),
    "info": ("system", "info_cmd", "Show the root, what it holds and what the host offers."),
    "image": ("groups", "image_cmd", "Docker's image commands: ls, rm, inspect, tag, history, save, load."),
    "container": ("groups", "container_cmd", "Docker's container commands: ls, rm, prune, logs, ..."),
    "system": ("groups", "system_cmd", "Docker's system commands: info, version, df, prune, boot, ..."),
    "completion": ("completion", "completion_cmd", "Print a shell completion script (bash, zsh, fish)."),
    "unshare": ("rootless", "unshare_cmd", "Run a command in lg's user namespace (a shell by default)."),
}


class LazyGroup(click.Group):
    """A group that imports a command's module only when that command runs."""

    def list_commands(self, ctx):
        return list(COMMANDS)

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        module, attr, _ = COMMANDS[name]
        command = getattr(importlib.import_module(f"cli.{module}"), attr)
        if "--help" in sys.argv or "-h" in sys.argv:  # say which of Docker's flags lg lacks
            from .dockerflags import epilog

            names = {opt for param in command.params for opt in getattr(param, "opts", ())}
            command.epilog = command.epilog or epilog(name, names) or None
        if "_LG_COMPLETE" in os.environ:  # the shell asks what to offer
            from .completion import attach

            attach(name, command)
        return command

    def format_commands(self, ctx, formatter):
        rows = [(name, short) for name, (_, _, short) in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--root", envvar="LG_ROOT", type=click.Path(file_okay=False),
              help="layergit root (default: $LG_ROOT, /var/lib/layergit as root,"
                   " else ~/.local/share/layergit).")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.version_option(__version__, prog_name="lg")  # not package_name: importlib.metadata costs ~13 ms
@click.pass_context
def cli(ctx, root, debug):
    """layergit: version container images the way git versions code."""
    ctx.obj.update(root=root, debug=debug)
    command = ctx.invoked_subcommand
    if os.geteuid() != 0 and not ctx.resilient_parsing and not _asks_help(ctx.obj["argv"], command):
        from layergit.porcelain.rootless import enter

        for notice in enter(command, root).notices:
            say(f"warning: {notice}")


def _asks_help(argv: list[str], command: str | None) -> bool:
    """Whether lg only prints help (no user namespace needed): --help among the options
    before the command's first operand, so ``lg run IMG cmd --help`` still runs."""
    rest = argv[argv.index(command) + 1:] if command in argv else argv
    for arg in rest:
        if arg in ("--help", "-h"):
            return True
        if not arg.startswith("-"):
            return False
    return False


class Terminated(BaseException):
    """SIGTERM or SIGHUP, raised where lg was, so that cleanups run (``finally``,
    ``--rm``) as they do for Ctrl-C; a BaseException, so ``except Exception`` lets it pass."""

    def __init__(self, signum: int):
        super().__init__(f"terminated by signal {signum}")
        self.signum = signum


def _terminate(signum, _frame):
    raise Terminated(signum)


def say(text: str) -> None:
    """One line on stderr. What lg says may quote anything a user, an image or another
    process wrote (names, paths, command lines): its control characters are escaped,
    so that it stays one line and can rewrite nothing on the terminal."""
    from layergit.text import printable

    click.echo(f"lg: {printable(text)}", err=True)


def _help_hint(exc: click.ClickException) -> str:
    """Where to read about a usage error: the failing subcommand's --help, else lg's."""
    if not isinstance(exc, click.UsageError):
        return ""
    ctx = getattr(exc, "ctx", None)
    sub = ctx.command_path.partition(" ")[2] + " " if ctx and " " in ctx.command_path else ""
    return f" (see lg {sub}--help)"


def main(argv=None) -> None:
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args or bool(os.environ.get("LG_DEBUG"))
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    try:
        # The raw argv lets commands tell "A B" from "A -- PATH" (click drops "--").
        code = cli.main(args, prog_name="lg", standalone_mode=False, obj={"argv": list(args)})
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except click.ClickException as exc:  # usage errors too: one line, like every other error
        say(f"{exc.format_message()}{_help_hint(exc)}")
        code = exc.exit_code
    except click.Abort:
        say("aborted")
        code = ExitCode.INTERRUPTED
    except KeyboardInterrupt:
        code = ExitCode.INTERRUPTED
    except Terminated as exc:
        code = ExitCode.SIGNALLED + exc.signum
    except Exception as exc:  # one line for the user, the traceback with --debug
        from layergit.errors import LgError

        if debug:
            raise
        if isinstance(exc, LgError):
            message, code = str(exc), exc.exit_code
        elif isinstance(exc, OSError):
            where = f": {exc.filename}" if exc.filename else ""
            message, code = f"{exc.strerror or exc}{where}", ExitCode.FAILURE
        else:
            message = f"internal error: {type(exc).__name__}: {exc} (run with --debug for details)"
            code = ExitCode.FAILURE
        say(message)
    sys.exit(code if isinstance(code, int) else 0)


def entry() -> None:
    """The ``lg`` command: :func:`main`, then leave without the interpreter's teardown.

    Tearing down every imported module costs ~10 ms per command, for nothing: our
    files are closed by their ``with`` blocks, and only stdout and stderr hold
    buffered output, which is flushed here. :func:`main` itself keeps ``sys.exit``
    for callers in the same process.

    The cyclic garbage collector runs 1/70th as often: with its default threshold it
    collects ~18 times while a command's modules load (~2 ms of an ``lg run``), for
    almost no garbage; long commands (import, build) still collect, just in bigger steps.
    """
    gc.set_threshold(50_000, 10, 10)
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed or broken pipe: nothing more to say
            code = code or 1
    os._exit(code)
