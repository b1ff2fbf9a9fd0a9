"""Where layergit keeps its state, and the layout under that root.

The root is ``--root``, else ``$LG_ROOT``, else ``/var/lib/layergit`` for root and
``${XDG_DATA_HOME:-~/.local/share}/layergit`` for everyone else (DESIGN.md). Only the
store is created eagerly; caches and container directories appear when used.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


def default_root() -> str:
    env = os.environ.get("LG_ROOT")
    if env:
        return env
    if os.geteuid() == 0:
        return "/var/lib/layergit"
    data = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(data, "layergit")


@dataclass(frozen=True)
class Root:
    path: str

    @classmethod
    def resolve(cls, path: str | None = None) -> Root:
        return cls(os.path.abspath(path or default_root()))

    @property
    def store(self) -> str:
        return os.path.join(self.path, "store.git")

    @property
    def cache(self) -> str:
        return os.path.join(self.path, "cache")

    def cache_dir(self, kind: str) -> str:
        return os.path.join(self.path, "cache", kind)

    @property
    def tmp(self) -> str:
        return os.path.join(self.path, "tmp")
