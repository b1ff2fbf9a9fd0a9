"""Volumes: directories under ``ROOT/volumes`` that containers mount and that outlive them.

A volume is ``volumes/NAME/volume.json`` (name, creation time, labels, and for an
anonymous volume the container that made it) and ``volumes/NAME/_data/``, the
directory containers see. It is made under a temporary name and renamed into
place, so a directory under a volume's name is complete. ``lg commit`` never sees
its content: a volume is a bind mount over the container's root, and commit reads
only the overlay's upper directory.

A volume is *in use* while any container record (running or not) mounts it, as
Docker's; the check and every change (create, removal, a container's creation)
hold ``volumes/lock``, so a volume cannot be removed between a container finding
it and that container's record naming it. Anonymous volumes (``-v /path``, the
image's VOLUME) go with their container when it is removed with ``--rm`` or
``lg rm -v``; those of ``--rm`` containers that the monitor removed are dropped by
:func:`drop_orphans` (lg gc, lg volume ls and prune, lg system df).
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable

from ..errors import Conflict, NotFound, UsageError
from ..flock import locked
from ..removal import remove_tree
from ..runtime.spec import Mount
from ..runtime.state import now_iso
from .mountspec import MountRequest, check_volume_name
from .repo import Repo

RECORD = "volume.json"
DATA = "_data"


@dataclass(frozen=True)
class Volume:
    """A named or anonymous volume as its record says (docs/format.md): its directory
    on the host, and for an anonymous one the container it goes with."""

    name: str
    created: str
    mountpoint: str  # the _data directory on the host
    labels: dict[str, str] = field(default_factory=dict)
    anonymous: bool = False
    container: str = ""  # an anonymous volume's container
    auto_remove: bool = False  # that container was --rm

    def to_json(self) -> dict:
        return {"name": self.name, "created": self.created, "labels": self.labels,
                "anonymous": self.anonymous, "container": self.container, "auto_remove": self.auto_remove}


@contextmanager
def lock(repo: Repo):
    """Held by every change to the set of volumes and by a container's creation while it
    names volumes (module docstring)."""
    with locked(os.path.join(repo.root.volumes, "lock")):
        yield


def _path(repo: Repo, name: str) -> str:
    return os.path.join(repo.root.volumes, check_volume_name(name))


def get(repo: Repo, name: str) -> Volume:
    path = _path(repo, name)
    try:
        with open(os.path.join(path, RECORD)) as f:
            raw = json.load(f)
    except FileNotFoundError:
        raise NotFound(f"no such volume: {name}" if not os.path.isdir(path)
                       else f"volume {name}: its volume.json is missing") from None
    except ValueError:
        raise NotFound(f"volume {name}: its volume.json does not read") from None
    return Volume(name, raw.get("created", ""), os.path.join(path, DATA), dict(raw.get("labels") or {}),
                  bool(raw.get("anonymous")), str(raw.get("container") or ""), bool(raw.get("auto_remove")))


def _make(repo: Repo, name: str, labels: dict[str, str], container: str = "",
          auto_remove: bool = False, anonymous: bool = False) -> tuple[Volume, bool]:
    """The volume ``name``, made if missing; (volume, whether this call made it)."""
    final = _path(repo, name)
    if os.path.isdir(final):
        return get(repo, name), False
    os.makedirs(repo.root.volumes, exist_ok=True)
    tmp = os.path.join(repo.root.volumes, f".new-{name}-{os.getpid()}")
    vol = Volume(name, now_iso(), os.path.join(final, DATA), labels, anonymous, container, auto_remove)
    try:
        os.mkdir(tmp, 0o700)
        os.mkdir(os.path.join(tmp, DATA), 0o755)
        with open(os.path.join(tmp, RECORD), "w") as f:
            json.dump(vol.to_json(), f, indent=2, sort_keys=True)
        os.rename(tmp, final)
    except BaseException:
        remove_tree(tmp)
        raise
    return vol, True


def create(repo: Repo, name: str | None, labels: dict[str, str]) -> Volume:
    """lg volume create: a new volume (a random name without one); an existing one is
    returned as it is, as Docker's."""
    with lock(repo):
        return _make(repo, name if name is not None else os.urandom(32).hex(), labels)[0]


def ls(repo: Repo) -> list[Volume]:
    drop_orphans(repo)
    return ls_unlocked(repo)


def users(repo: Repo) -> dict[str, list[str]]:
    """Volume name -> ids of the containers whose records mount it."""
    from ..runtime.state import Registry

    reg = Registry(repo.root)
    out: dict[str, list[str]] = {}
    for cid in reg.ids():
        try:
            mounts = reg.container(cid).record().spec.mounts
        except NotFound:
            continue
        for m in mounts:
            if m.kind == "volume" and m.name:
                out.setdefault(m.name, []).append(cid)
    return out


def _remove(repo: Repo, name: str) -> None:
    """Remove a volume: renamed aside first, so that a half-removed one never reads as a volume."""
    path = _path(repo, name)
    aside = os.path.join(repo.root.volumes, f".rm-{name}-{os.getpid()}")
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return
    remove_tree(aside)


def remove(repo: Repo, names: list[str], force: bool = False) -> list[str]:
    """lg volume rm: refused while a container uses it, as Docker (``-f`` too)."""
    done = []
    with lock(repo):
        using = users(repo)
        for name in names:
            if not os.path.isdir(_path(repo, name)):
                if force:
                    continue
                raise NotFound(f"no such volume: {name}")
            if using.get(name):
                raise Conflict(f"volume {name} is in use by container {using[name][0][:12]}"
                               f"{f' and {len(using[name]) - 1} more' if len(using[name]) > 1 else ''}")
            _remove(repo, name)
            done.append(name)
    return done


def size(vol: Volume) -> int:
    """Bytes of the files and links in the volume (links not followed)."""
    total = 0
    for dirpath, dirs, files in os.walk(vol.mountpoint):
        for name in files + [d for d in dirs if os.path.islink(os.path.join(dirpath, d))]:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                continue
    return total


Selection = Callable[[list["Volume"], dict[str, list[str]]], list["Volume"]]


def prune(repo: Repo, all_: bool, select: Selection | None = None) -> tuple[list[str], int]:
    """lg volume prune: unused anonymous volumes (``all_``: unused named ones too, as Docker
    since 23.0) that ``select`` keeps (--filter: filters.volumes); returns the names removed
    and the bytes freed."""
    drop_orphans(repo)
    removed, freed = [], 0
    with lock(repo):
        using = users(repo)
        listed = ls_unlocked(repo)
        candidates = [v for v in (select(listed, using) if select else listed) if v.name not in using]
        for vol in candidates:
            if vol.anonymous or all_:
                freed += size(vol)
                _remove(repo, vol.name)
                removed.append(vol.name)
    return removed, freed


def ls_unlocked(repo: Repo) -> list[Volume]:
    out = []
    for name in sorted(_listing(repo.root.volumes)):
        if not name.startswith(".") and name != "lock":
            try:
                out.append(get(repo, name))
            except (NotFound, UsageError):
                continue
    return out


def inspect(repo: Repo, name: str) -> dict:
    """Docker's fields for a volume."""
    vol = get(repo, name)
    return {"CreatedAt": vol.created, "Driver": "local", "Labels": vol.labels, "Mountpoint": vol.mountpoint,
            "Name": vol.name, "Options": {}, "Scope": "local"}


def drop_orphans(repo: Repo) -> list[str]:
    """Remove anonymous volumes of ``--rm`` containers that are gone (the monitor removed
    them, or a removal was killed before their turn)."""
    if not os.path.isdir(repo.root.volumes):
        return []
    dropped = []
    with lock(repo):
        for vol in ls_unlocked(repo):
            if vol.anonymous and vol.auto_remove and not os.path.isdir(repo.root.container(vol.container)):
                _remove(repo, vol.name)
                dropped.append(vol.name)
        for name in _listing(repo.root.volumes):  # killed creations and removals
            if name.startswith((".new-", ".rm-")) and not _alive(name.rsplit("-", 1)[-1]):
                remove_tree(os.path.join(repo.root.volumes, name))
    return dropped


def _alive(pid: str) -> bool:
    from ..procstat import start_time

    return pid.isdigit() and start_time(int(pid)) is not None


def attach(repo: Repo, requests: list[MountRequest], lower: str, cid: str, auto_remove: bool,
           made: list[str]) -> list[Mount]:
    """The runtime mounts for a new container's requests: volumes found or made (each new
    one's name appended to ``made``, for the caller to undo), and a volume that is empty
    filled from the image's content at its path, owners and modes kept, unless nocopy.
    The caller holds :func:`lock`."""
    mounts = []
    for req in requests:
        if req.kind != "volume":
            mounts.append(Mount(req.kind, req.target, req.source, req.readonly, req.tmpfs_options))
            continue
        anonymous = not req.source
        name = req.source or os.urandom(32).hex()
        vol, new = _make(repo, name, dict(req.labels), cid if anonymous else "", auto_remove, anonymous)
        if new:
            made.append(name)
        if not req.nocopy:
            _populate(vol, lower, req.target)
        mounts.append(Mount("volume", req.target, vol.mountpoint, req.readonly, name=name))
    return mounts


def _populate(vol: Volume, lower: str, target: str) -> None:
    """Docker's copy-up: an empty volume takes the image's directory at ``target`` (its
    content, owner and mode). The path is resolved inside the image's root, so an image's
    symlink there cannot make us copy a host directory."""
    from ..fs.copy import copy_contents, copy_dir_meta, is_empty
    from ..runtime.syscalls import RESOLVE_IN_ROOT, RESOLVE_NO_MAGICLINKS, openat2

    data = os.open(vol.mountpoint, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        if not is_empty(data):
            return
        root = os.open(lower, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            flags = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
            source = openat2(root, target.lstrip("/"), flags, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)
        except (FileNotFoundError, NotADirectoryError):
            return  # nothing there in the image: the volume starts empty
        finally:
            os.close(root)
        try:
            copy_contents(source, data, True, target)
            copy_dir_meta(source, data)
        finally:
            os.close(source)
    finally:
        os.close(data)


def release(repo: Repo, cid: str, mounts: list[Mount]) -> list[str]:
    """Remove the anonymous volumes container ``cid`` made (its --rm, lg rm -v); named ones stay."""
    removed = []
    with lock(repo):
        for m in mounts:
            if m.kind != "volume" or not m.name:
                continue
            try:
                vol = get(repo, m.name)
            except NotFound:
                continue
            if vol.anonymous and vol.container == cid:
                _remove(repo, m.name)
                removed.append(m.name)
    return removed


def undo(repo: Repo, names: list[str]) -> None:
    """Remove volumes a failed creation made."""
    for name in names:
        _remove(repo, name)


def _listing(directory: str) -> list[str]:
    try:
        return os.listdir(directory)
    except FileNotFoundError:
        return []
