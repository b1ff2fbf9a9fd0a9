"""How lg starts its own helper processes (the container monitor, the farm's writer,
the pre-receive hook of ``lg serve``): the interpreter lg runs in, importing lg from
where this lg was imported.

``python -m MODULE`` puts the working directory first on sys.path: root running
``lg pull`` in /tmp, where another user had left a ``dataclasses.py``, would have run
that file as root in the helper. ``-P`` (Python 3.11) leaves the working directory
out, and PYTHONPATH starts with the directory holding the ``layergit`` package, so
a checkout run without installing (``python -m cli``) finds itself as well.
"""

from __future__ import annotations

import os
import sys

PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def module_argv(module: str, *args: str) -> list[str]:
    """``python -P -m MODULE ARGS`` with the interpreter lg runs in."""
    return [sys.executable, "-P", "-m", module, *args]


def module_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """``env`` (the process's by default) with lg's package directory first on PYTHONPATH."""
    env = dict(os.environ if env is None else env)
    rest = env.get("PYTHONPATH")
    env["PYTHONPATH"] = PACKAGE_PARENT + (os.pathsep + rest if rest else "")
    return env
