"""lg version and lg info: what lg is, what its root holds, what the host offers."""

from __future__ import annotations

import os
import platform
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .repo import Repo

if TYPE_CHECKING:  # lg version loads no runtime module
    from ..runtime.features import Features


@dataclass(frozen=True)
class VersionInfo:
    version: str
    python: str
    os: str
    arch: str
    store_format: str  # the metadata blob header: the store's format version


def version() -> VersionInfo:
    from .. import __version__
    from ..store.meta import HEADER

    machine = platform.machine()
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)  # Go's names, as Docker shows
    return VersionInfo(__version__, platform.python_version(), sys.platform, arch, HEADER.decode().strip())


@dataclass(frozen=True)
class SystemInfo:
    root: str
    images: int
    containers: int
    running: int
    paused: int
    stopped: int
    networks: int
    store_bytes: int  # store.git: objects and refs, what push and backups carry
    cache_bytes: int  # cache/: materialised rootfs trees, rebuilt on demand
    version: VersionInfo
    host: Features


def _disk_bytes(top: str) -> int:
    """Bytes a directory tree takes on disk, each hardlinked file counted once (the
    cache's object farm links one file into many trees); symlinks are not followed."""
    seen: set[tuple[int, int]] = set()
    total, stack = 0, [top]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except OSError:
            continue
        for entry in entries:
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if entry.is_dir(follow_symlinks=False):
                stack.append(entry.path)
            if st.st_nlink > 1:
                if (st.st_dev, st.st_ino) in seen:
                    continue
                seen.add((st.st_dev, st.st_ino))
            total += st.st_blocks * 512
    return total


def info(repo: Repo) -> SystemInfo:
    from ..runtime import features
    from ..store import names
    from .container_views import ps
    from .networks import ls as networks

    host = features.probe()
    containers = ps(repo, True)
    states = [c.state for c in containers]
    images = sum(1 for ref, _ in repo.store.refs(names.IMAGE_PREFIX) if names.from_ref(ref) is not None)
    return SystemInfo(
        root=repo.root.path, images=images, containers=len(states), running=states.count("running"),
        paused=states.count("paused"), stopped=len(states) - states.count("running") - states.count("paused"),
        networks=len(networks(repo)), store_bytes=_disk_bytes(repo.root.store),
        cache_bytes=_disk_bytes(repo.root.cache), version=version(), host=host,
    )
