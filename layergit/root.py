"""Where layergit keeps its state, and the layout under that root.

The root is ``--root``, else ``$LG_ROOT``, else ``/var/lib/layergit`` for root and
``${XDG_DATA_HOME:-~/.local/share}/layergit`` for everyone else (DESIGN.md). Only the
store is created eagerly; caches and container directories appear when used.

Every path directly under the root, and the shared directories of containers and of
the monitor, is named here and nowhere else, so that the layout docs/format.md
describes has one owner; what is inside one container's or one network's directory
belongs to the module that writes it (runtime/state.py, runtime/net/). The runtime
takes the root as a path and wraps it (``Root(path)``): this module imports nothing
of layergit, so both halves may use it.
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

    def _at(self, *parts: str) -> str:
        return os.path.join(self.path, *parts)

    # -- the store --------------------------------------------------------------

    @property
    def store(self) -> str:
        return self._at("store.git")

    @property
    def gc_lock(self) -> str:
        """Writers of the store hold it shared, ``lg gc`` exclusively."""
        return self._at("gc.lock")

    # -- caches (all rebuilt on demand) -----------------------------------------

    @property
    def cache(self) -> str:
        return self._at("cache")

    def cache_dir(self, kind: str) -> str:
        """``cache/KIND``: ``rootfs`` and ``objects`` (fs/cache.py), ``stat`` and
        ``build-stat`` (fs/statcache.py), ``sizes``, ``layers``, ``seccomp``."""
        return self._at("cache", kind)

    @property
    def tmp(self) -> str:
        return self._at("tmp")

    # -- containers -------------------------------------------------------------

    @property
    def containers(self) -> str:
        return self._at("containers")

    def container(self, container_id: str) -> str:
        """One container's directory (its files: runtime/state.py)."""
        return self._at("containers", container_id)

    @property
    def container_names(self) -> str:
        """``by-name/NAME`` -> ID symlinks: a name is reserved by making its link."""
        return self._at("containers", "by-name")

    @property
    def container_locks(self) -> str:
        """One lock file per container, beside the directories so that it outlives their removal."""
        return self._at("containers", "locks")

    def container_lock(self, container_id: str) -> str:
        return os.path.join(self.container_locks, container_id)

    @property
    def container_owners(self) -> str:
        """``ID.PID.START`` -> NAME markers: who removes a container in flight."""
        return self._at("containers", "owners")

    @property
    def container_freezers(self) -> str:
        """``ID.PID.START`` -> NAME markers: who thaws a container frozen for commit or diff."""
        return self._at("containers", "freezers")

    # -- networks ---------------------------------------------------------------

    @property
    def networks(self) -> str:
        """``NAME/`` per network and the locks (runtime/net/ipam.py)."""
        return self._at("networks")

    # -- the monitor ------------------------------------------------------------

    @property
    def run(self) -> str:
        return self._at("run")

    @property
    def monitor_sock(self) -> str:
        return self._at("run", "monitor.sock")

    @property
    def monitor_lock(self) -> str:
        """Held by the one monitor of the root while it lives."""
        return self._at("run", "monitor.lock")

    @property
    def monitor_log(self) -> str:
        """The monitor's stdout and stderr, appended by every monitor started."""
        return self._at("run", "monitor.log")
