"""Paging long output as git does: on a terminal, through ``$LG_PAGER``, else ``$PAGER``,
else ``less`` with ``LESS=FRX`` (quit if one screen, pass colours, leave the screen as
it is); plain and unpaged when piped, with ``--no-pager``, with ``LG_PAGER=cat``, on a
dumb terminal or without a /dev/tty to read keys from.

Output goes to the pager's stdin in place of ``sys.stdout``, so rich and click write
there unchanged; rich keeps its colours (``FORCE_COLOR``) and the terminal's width.
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from typing import Iterator

import click


class _Plain:
    """What a rich console does for text printed with ``markup=False``, without importing
    rich (a third of a short command's start-up): output that is piped has no colours."""

    is_terminal = False

    def print(self, text: str = "", *, style: str | None = None, end: str = "\n",
              markup: bool = False) -> None:
        click.echo(text + end, nl=False, color=True)  # (color: click would strip what looks like one)


def printer():
    """A rich console on a terminal (or a pager that shows colours), else plain text."""
    if sys.stdout.isatty() or os.environ.get("FORCE_COLOR"):
        from .output import console

        return console()
    return _Plain()


def no_pager_option(f):
    return click.option("--no-pager", is_flag=True, help="Do not page the output on a terminal.")(f)


def _keyboard() -> bool:
    """Whether a pager could work here: a terminal it can drive (not TERM=dumb, where less
    stops to warn) and a /dev/tty to read the reader's keys from (lg run by another
    program on a pseudo-terminal has none)."""
    if os.environ.get("TERM", "dumb") == "dumb":
        return False
    try:
        os.close(os.open("/dev/tty", os.O_RDONLY | os.O_NOCTTY))
    except OSError:
        return False
    return True


@contextmanager
def paged(enabled: bool = True) -> Iterator[None]:
    command = os.environ.get("LG_PAGER", os.environ.get("PAGER", "less"))
    if not enabled or not sys.stdout.isatty() or command.strip() in ("", "cat") or not _keyboard():
        yield
        return
    import io  # (here: a piped command, the common case, imports none of these)
    import shutil
    import subprocess

    env = dict(os.environ)
    env.setdefault("LESS", "FRX")
    env.setdefault("LV", "-c")
    columns = shutil.get_terminal_size().columns
    try:
        pager = subprocess.Popen(command, shell=True, stdin=subprocess.PIPE, env=env)
    except OSError:
        yield  # no pager to be had: print as if there were none
        return
    assert pager.stdin is not None
    real = sys.stdout
    sys.stdout = io.TextIOWrapper(pager.stdin, encoding=real.encoding, errors=real.errors or "strict")
    saved = {k: os.environ.get(k) for k in ("FORCE_COLOR", "COLUMNS")}
    os.environ.update(FORCE_COLOR="1", COLUMNS=str(columns))
    try:
        yield
        sys.stdout.flush()
    except BrokenPipeError:
        pass  # the reader quit the pager early, as with git
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        try:
            sys.stdout.close()
        except BrokenPipeError:
            pass
        sys.stdout = real
        pager.wait()
