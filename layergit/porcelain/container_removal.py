"""Freeing what a container holds: its cgroup, network lease, directory, name, ref and
owner markers, for lg rm and for the sweep of what dead owners left.

Below both containers.py (the lifecycle) and container_lookup.py (whose sweep calls
:func:`clear_abandoned` only when owner markers exist), so that neither imports the other.
"""

from __future__ import annotations

import signal

from ..errors import NotFound
from ..removal import remove_tree
from ..runtime.cgroups import of_container
from ..runtime.state import FREEZERS, ContainerDir, Owner, Record, Registry
from . import volumes
from .repo import Repo

CONTAINER_REFS = "refs/layergit/containers/"  # keeps its image commit (and cached rootfs) through gc
# A container's ref is written only under its lock (ContainerDir.lock), by its creation,
# its removal and gc's prune of refs of gone containers, each for a moment: a ref lock
# (NAME.lock) older than this was left by one of them killed, and is broken, or a
# removal killed at that moment could never be finished by the sweep.
STALE_REF_LOCK = 5.0


def dispose(repo: Repo, reg: Registry, cdir: ContainerDir, record: Record | None, name: str | None) -> None:
    """Free all a stopped container holds: cgroup, network lease, directory, name, ref, owners.

    Each step tolerates what an earlier, interrupted removal already did, and the
    owner markers go last: a removal killed half-way is finished by the next sweep.
    """
    if record is not None:
        cdir.log_event("destroy")
    cgroup = of_container(cdir)
    if cgroup.exists():
        cgroup.kill(signal.SIGKILL)
        cgroup.remove()
    if record is None or record.spec.network.bridged:
        release_network(repo, cdir.id)
    with cdir.lock():  # every lg that writes the container's ref holds it: see STALE_REF_LOCK
        if cdir.exists():
            remove_tree(cdir.path)
        try:
            repo.store.delete_ref(CONTAINER_REFS + cdir.id, stale_lock=STALE_REF_LOCK)
        except NotFound:
            pass
    cdir.forget_lock()
    name = record.name if record else name
    if name:
        reg.release_name(name, cdir.id)
    reg.disown(cdir.id)


def clear_abandoned(repo: Repo, reg: Registry, owned: dict[str, list[Owner]],
                    frozen: dict[str, list[Owner]]) -> list[str]:
    """The sweep's work (module docstring) once container_lookup.sweep found owner markers:
    thaw what dead freezers left, remove what dead owners left; returns the ids removed.

    Best effort: a container that cannot be removed now stays for the next sweep
    (and lg rm says why), since the sweep runs on behalf of other commands.
    """
    alive: dict[tuple[int, int], bool] = {}  # the monitor may own many: one /proc read for it

    def gone(owners: list[Owner]) -> bool:
        for owner in owners:
            key = (owner.pid, owner.start)
            if key not in alive:
                alive[key] = owner.alive()
            if alive[key]:
                return False
        return True

    for cid, freezers in frozen.items():
        if gone(freezers):
            _best_effort(_thaw, reg, cid)
    abandoned = [(cid, owners) for cid, owners in owned.items() if gone(owners)]
    return [cid for cid, owners in abandoned if _best_effort(_abandoned, repo, reg, cid, owners)]


def _best_effort(step, *args) -> bool:
    try:
        return step(*args)
    except Exception:  # noqa: BLE001 - a record we cannot read must not stop lg run; lg rm reports it
        return False


def _thaw(reg: Registry, cid: str) -> bool:
    """Thaw a container that a killed lg commit or lg diff left frozen."""
    cgroup = of_container(reg.container(cid))
    if cgroup.exists():
        cgroup.freeze(False)
    reg.disown(cid, kind=FREEZERS)
    return True


def _abandoned(repo: Repo, reg: Registry, cid: str, owners: list[Owner]) -> bool:
    """Remove a container whose owners are all dead, if it is its owners' to remove."""
    cdir = reg.container(cid)
    try:
        record = cdir.record()
    except NotFound:
        record = None  # half made, or half removed
    st = cdir.state()
    if st.running:
        return False  # dying with its foreground lg, or detached and still running: later
    if record is not None and not record.auto_remove and st.started_at:
        reg.disown(cid)  # it ran, and nobody asked for it to go
        return False
    dispose(repo, reg, cdir, record, owners[0].name())
    if record is not None:
        volumes.release(repo, cid, record.spec.mounts)  # an owned container is --rm or never ran
    return True


def release_network(repo: Repo, cid: str) -> None:
    """Release what networking holds for a container, with or without a live monitor.

    Nothing to do when no network leases the container an address any more (its
    foreground run or the monitor detached it already): a start path worth keeping short.
    """
    from ..runtime.client import request
    from ..runtime.net import controller

    if not controller.holds_lease(repo.root.path, cid):
        return
    request(repo.root.path, {"op": "net-detach", "id": cid}, start=False)
    controller.release(repo.root.path, cid)
