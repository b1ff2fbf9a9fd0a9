"""Finding a root's containers: the registry (with their supervision made sure of), a
container by name or id, and the sweep's first look for what dead owners left.

Kept apart from the lifecycle (containers.py) because the commands scripts call in loops
(ps, inspect, logs, port, stats, top) only read: they must not load what creating and
starting a container needs (run options, cgroup limits, the rootless network stack,
volumes), which is most of their start-up otherwise.
"""

from __future__ import annotations

from ..runtime.state import FREEZERS, ContainerDir, Registry
from .repo import Repo

_RESUMED: set[str] = set()  # roots whose monitor this process has made sure of


def registry(repo: Repo) -> Registry:
    """The root's containers; the first use in a command also restores their supervision
    if their monitor died (runtime.client.resume): a listdir, and no more when it lives."""
    if repo.root.path not in _RESUMED:
        _RESUMED.add(repo.root.path)
        if repo.root.supervises():  # else no monitor matters: the client's imports are spared
            from ..runtime.client import resume

            resume(repo.root.path)
    return Registry(repo.root)


def find(repo: Repo, ref: str) -> ContainerDir:
    return registry(repo).find(ref)


def sweep(repo: Repo) -> list[str]:
    """Remove what dead owners left (containers.py's docstring); returns the ids removed.

    The common case, nothing in flight, is two listdirs of the owner markers; only when
    some are there does the removal path (container_removal.clear_abandoned) load.
    """
    reg = registry(repo)
    owned = reg.owned()
    frozen = reg.owned(FREEZERS)
    if not owned and not frozen:
        return []
    from .container_removal import clear_abandoned

    return clear_abandoned(repo, reg, owned, frozen)
