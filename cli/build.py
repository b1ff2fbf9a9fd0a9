"""lg build: the build's progress, rendered like BuildKit's.

``--progress plain`` (and anything not a terminal) prints every event as a line,
as ``docker build --progress plain`` does: ``#N [2/5] RUN ...``, the command's output
prefixed with the step number and the seconds since it started, ``#N CACHED`` or
``#N DONE 1.2s``. On a terminal each finished step folds into one line and only the
running step's last lines of output are shown; a failed step's output is printed
in full. Progress goes to stdout; the error that ends a failed build is the one
line lg prints on stderr.
"""

from __future__ import annotations

import os
import sys
import time
from collections import deque
from typing import TYPE_CHECKING

import click

from layergit.build import events as ev
from layergit.build.builder import build
from layergit.build.mounts import parse_secret
from layergit.build.options import NETWORKS, BuildOptions
from layergit.errors import UsageError
from layergit.text import printable

from .output import repo_from

if TYPE_CHECKING:  # rich loads with the first terminal build, never for --help
    from rich.live import Live

_FOLDED_LINES = 6
_KEPT_LINES = 200


def _emit(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


class Plain:
    def __init__(self):
        self.started: dict[int, float] = {}

    def __call__(self, event) -> None:
        if isinstance(event, ev.BuildWarning):
            _emit(f"WARNING: {printable(event.text)}")
            return
        n = event.step.number
        if isinstance(event, ev.StepStarted):
            self.started[n] = time.monotonic()
            _emit(f"\n#{n} {event.step.label} {printable(event.step.text)}")
        elif isinstance(event, ev.StepOutput):
            _emit(f"#{n} {time.monotonic() - self.started[n]:.3f} {event.line.decode('utf-8', 'replace')}")
        elif isinstance(event, ev.StepCached):
            _emit(f"#{n} CACHED")
        elif isinstance(event, ev.StepDone):
            _emit(f"#{n} DONE {event.seconds:.1f}s")
        elif isinstance(event, ev.StepFailed):
            _emit(f"#{n} ERROR: {printable(str(event.error))}")

    def close(self) -> None:
        pass


class Quiet:
    """Nothing but the failing step's output (and the id at the end)."""

    def __init__(self):
        self.lines: deque = deque(maxlen=_KEPT_LINES)

    def __call__(self, event) -> None:
        if isinstance(event, ev.StepStarted):
            self.lines.clear()
        elif isinstance(event, ev.StepOutput):
            self.lines.append(event.line.decode("utf-8", "replace"))
        elif isinstance(event, ev.StepFailed):
            for line in self.lines:
                _emit(line)

    def close(self) -> None:
        pass


class Folded:
    """A terminal view: finished steps on one line each, the running one live below."""

    def __init__(self):
        from rich.console import Console

        self.console = Console(highlight=False, emoji=False)
        self.live: Live | None = None
        self.lines: deque = deque(maxlen=_KEPT_LINES)
        self.started = 0.0

    def _render(self, step: ev.Step):
        from rich.text import Text

        elapsed = time.monotonic() - self.started
        text = Text(f"=> {step.label} {printable(step.text)}  {elapsed:.1f}s", style="bold")
        for line in list(self.lines)[-_FOLDED_LINES:]:
            text.append("\n   " + line, style="dim")
        return text

    def _finish(self, step: ev.Step, status: str, style: str) -> None:
        self.close()
        line = f"=> {step.label} {printable(step.text)}"
        self.console.print(line, style=style, end="", markup=False)
        self.console.print(f"  {status}", style=style, markup=False)

    def __call__(self, event) -> None:
        if isinstance(event, ev.BuildWarning):
            self.console.print(f"WARNING: {printable(event.text)}", style="yellow", markup=False)
            return
        if isinstance(event, ev.StepStarted):
            from rich.live import Live

            self.started = time.monotonic()
            self.lines.clear()
            self.live = Live(self._render(event.step), console=self.console, auto_refresh=False,
                             transient=True)
            self.live.start()
            return
        elif isinstance(event, ev.StepOutput):
            self.lines.append(printable(event.line))  # shown live: the terminal must obey none of it
        elif isinstance(event, ev.StepCached):
            self._finish(event.step, "CACHED", "blue")
            return
        elif isinstance(event, ev.StepDone):
            self._finish(event.step, f"{event.seconds:.1f}s", "green")
            return
        elif isinstance(event, ev.StepFailed):
            self._finish(event.step, "ERROR", "red")
            for line in self.lines:
                self.console.print("   " + line, markup=False)
            self.console.print(f"   {printable(str(event.error))}", style="red", markup=False)
            return
        if self.live is not None:  # output of the running step
            self.live.update(self._render(event.step), refresh=True)

    def close(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None


def _build_args(values) -> dict[str, str]:
    """KEY=VALUE, or KEY alone to take the value from our environment (as Docker does)."""
    out = {}
    for item in values:
        key, eq, value = item.partition("=")
        if not key:
            raise UsageError(f"invalid --build-arg {item!r}: use KEY=VALUE")
        if eq:
            out[key] = value
        elif key in os.environ:
            out[key] = os.environ[key]
    return out


@click.command("build")
@click.argument("context", metavar="CONTEXT")
@click.option("-f", "--file", "dockerfile", metavar="FILE",
              help="The Dockerfile (default: CONTEXT/Dockerfile, else CONTEXT/Containerfile; - reads stdin).")
@click.option("-t", "--tag", "tags", multiple=True, metavar="NAME[:TAG]",
              help="Name the result (repeatable); tags move only when the build succeeds.")
@click.option("--build-arg", "build_args", multiple=True, metavar="KEY[=VALUE]",
              help="Set a build-time variable declared with ARG.")
@click.option("--target", metavar="STAGE", help="Build up to this stage (and only the stages it needs).")
@click.option("--no-cache", is_flag=True, help="Run every step again (the cache is still updated).")
@click.option("--pull", type=click.Choice(["missing", "always", "never"]), default="missing",
              show_default=True, help="Pull FROM images from their registry: when missing, always, or never.")
@click.option("-q", "--quiet", is_flag=True, help="Print only the image id (and a failing step's output).")
@click.option("--network", type=click.Choice(NETWORKS), default="bridge", show_default=True,
              help="Network of RUN steps (RUN --network overrides it).")
@click.option("--progress", type=click.Choice(["auto", "plain"]), default="auto", show_default=True,
              help="plain: every line of output; auto: folded on a terminal.")
@click.option("--secret", "secrets", multiple=True, metavar="id=ID[,src=PATH|,env=VAR]",
              help="A secret for RUN --mount=type=secret (repeatable); never stored in the image or cache.")
@click.pass_context
def build_cmd(ctx, context, dockerfile, tags, build_args, target, no_cache, pull, quiet, network, progress,
              secrets):
    """Build an image from a Dockerfile: every instruction becomes a commit.

    Steps whose parent, instruction, sources and build args are unchanged come from
    the build cache (refs in the store, kept by lg gc). Prints the image id.
    """
    if context == "-":
        raise UsageError("a build context on stdin is not supported: give a directory")
    text = None
    if dockerfile == "-":
        text, dockerfile = sys.stdin.read(), None
    options = BuildOptions(dockerfile, text, list(tags), _build_args(build_args), target, no_cache, network,
                           pull)
    for spec in secrets:
        source = parse_secret(spec, os.environ)
        options.secrets[source.id] = source.read(os.environ)
    render: Quiet | Plain | Folded
    if quiet:
        render = Quiet()
    elif progress == "plain" or not sys.stdout.isatty():
        render = Plain()
    else:
        render = Folded()
    try:
        result = build(repo_from(ctx), context, options, render)
    finally:
        render.close()
    if quiet:
        click.echo(result.id)
        return
    _emit(f"\nwriting image {result.id} ({result.steps} steps, {result.cached} cached)")
    for tag in result.tags:
        _emit(f"naming to {tag}")
