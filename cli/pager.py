"""Paging long output as git does: on a terminal, through ``$LG_PAGER``, else ``$PAGER``,
else ``less`` with ``LESS=FRX`` (quit if one screen, pass colours, leave the screen as
it is); plain and unpaged when piped, or with ``--no-pager``.

Output goes to the pager's stdin in place of ``sys.stdout``, so rich and click write
there unchanged; rich keeps its colours (``FORCE_COLOR``) and the terminal's width.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from contextlib import contextmanager
from typing import Iterator

import click


def no_pager_option(f):
    return click.option("--no-pager", is_flag=True, help="Do not page the output on a terminal.")(f)


@contextmanager
def paged(enabled: bool = True) -> Iterator[None]:
    command = os.environ.get("LG_PAGER", os.environ.get("PAGER", "less"))
    if not enabled or not sys.stdout.isatty() or command.strip() in ("", "cat"):
        yield
        return
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
