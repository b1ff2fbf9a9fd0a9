"""A container's writable layer: ``lg diff CONTAINER`` and ``lg commit CONTAINER``.

The container's filesystem is the image's snapshot with the overlay upper
directory applied (fs.upper). A running container is frozen (cgroup freezer) while
its upper directory is read, so the commit is a consistent snapshot.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import TYPE_CHECKING

from ..build import changes as config_changes
from ..errors import LgError
from ..runtime.cgroups import NO_FREEZER, of_container
from ..runtime.rootless.idmap import inside
from ..runtime.state import FREEZERS
from ..store import names
from .container_lookup import find, registry
from .diff import DiffResult
from .images import CommitResult, force_tag
from .repo import Image, Repo, store_lock

if TYPE_CHECKING:
    from ..runtime.state import ContainerDir
    from ..store.store import ObjectWriter


@contextmanager
def _frozen(repo: Repo, cdir, live_ok: bool = False):
    """Freeze a running container while we read its upper directory.

    We are recorded as its freezer meanwhile (Registry.own, FREEZERS), so that if we
    are killed before we thaw it, the next sweep does (container_lookup.sweep).
    """
    cgroup = of_container(cdir)
    if cdir.state().running and not cgroup.enabled and not live_ok:
        raise LgError(f"cannot commit running container {cdir.record().name}: {NO_FREEZER}")
    running = cdir.state().status == "running" and cgroup.exists()  # a paused one stays as the user left it
    reg = registry(repo)
    if running:
        reg.own(cdir.id, cdir.record().name, kind=FREEZERS)
        cgroup.freeze(True)
    try:
        yield
    finally:
        if running:
            cgroup.freeze(False)
            reg.disown(cdir.id, os.getpid(), kind=FREEZERS)


def container_rootfs(repo: Repo, cdir: ContainerDir, writer: ObjectWriter,
                     drop_stubs: bool = False, live_ok: bool = False) -> tuple[Image, bytes, int]:
    """(image, new rootfs tree id, entries changed) for the container's current filesystem.

    ``drop_stubs`` (a build step, as BuildKit does) leaves out the empty directories
    the runtime made for mount points the image did not have, and their empty
    parents it made: ``RUN --mount=type=secret`` leaves no ``/run/secrets``.
    ``live_ok``: a running container that cannot be frozen (lg without root) is read as
    it runs, as lg diff may; a commit may not.
    """
    from ..fs.upper import apply_upper
    from ..store.mutable import Dir, MutableTree

    record = cdir.record()
    image = repo.image(bytes.fromhex(record.image_id))
    tree = MutableTree.load(repo.store, image.rootfs)
    targets = ["/etc/hosts", "/etc/hostname", "/etc/resolv.conf", "/proc", "/sys", "/dev"]
    targets += [m.target for m in record.spec.mounts]
    mount_points = {tuple(os.fsencode(p) for p in t.split("/") if p) for t in targets}
    with _frozen(repo, cdir, live_ok):
        changed = apply_upper(tree, cdir.file("upper"), writer, mount_points, userxattr=inside())
    if drop_stubs:
        before = MutableTree.load(repo.store, image.rootfs)
        for point in sorted(mount_points, key=len, reverse=True):
            for depth in range(len(point), 0, -1):
                made = tree.get(list(point[:depth]))
                if made is None:  # the mount point itself, left out above
                    continue
                if before.get(list(point[:depth])) is not None or not isinstance(made, Dir) or made.children:
                    break
                tree.remove(list(point[:depth]))
    return image, tree.write(writer), changed


def diff(repo: Repo, ref: str, paths: list[str] | None = None, include_mtime: bool = False) -> DiffResult:
    """What the container changed relative to its image (same forms as an image diff)."""
    from ..store.treediff import diff_trees
    from .diff import _under

    cdir = find(repo, ref)
    with store_lock(repo):
        with repo.store.writer() as writer:
            image, rootfs, _ = container_rootfs(repo, cdir, writer, live_ok=True)
    prefixes = [b"/" + p.encode("utf-8", "surrogateescape").strip(b"/") for p in paths or []]
    changes = [c for c in diff_trees(repo.store, image.rootfs, rootfs, include_mtime)
               if _under(c.path, prefixes)]
    return DiffResult(image.id.hex(), cdir.id, changes, {})


def commit(repo: Repo, ref: str, tag: str, message: str | None = None, author: str | None = None,
           changes: list[str] | None = None) -> CommitResult:
    """The container's filesystem as a new commit on top of its image, tagged ``tag``."""
    from ..store.image import write_image_tree
    from ..store.rawobj import Signature

    image_name = names.parse(tag)
    cdir = find(repo, ref)
    record = cdir.record()
    who = Signature.parse(author) if author else repo.store.default_author()
    with store_lock(repo):
        with repo.store.writer() as writer:
            image, rootfs, changed = container_rootfs(repo, cdir, writer)
            config = image.config
            for change in changes or []:
                config = config_changes.apply(config, change)
            text = message or f"lg commit {record.name}"
            oid = writer.commit(write_image_tree(writer, config, rootfs), [image.id], who,
                                repo.store.default_author(), text)
        force_tag(repo, image_name, oid, f"commit: container {record.name}")
    return CommitResult(oid.hex(), rootfs.hex(), image.id.hex(), str(image_name), changed, 0)
