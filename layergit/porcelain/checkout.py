"""Materialising any image version into a directory, or into the cache."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from ..errors import CorruptStore, LgError, NotFound
from .repo import Image, Repo, damaged, store_lock

if TYPE_CHECKING:  # fs.checkout loads with the first checkout: lg run imports this module
    from ..fs.checkout import CheckoutPolicy, CheckoutResult
    from ..fs.farm import FarmDeposit


def cache(repo: Repo):
    from ..fs.cache import MaterialisedCache

    return MaterialisedCache(repo.root.cache)


@contextmanager
def deposit(repo: Repo) -> Iterator[FarmDeposit]:
    """Where the files an import or a commit reads go as well: the materialised cache's
    farm (fs.farm.FarmDeposit), so that the first run of the image costs what a later
    one does, as podman's, which unpacks at import. Objects no rootfs comes to link
    stay until lg gc prunes them."""
    farm = cache(repo).deposit(repo.store)
    try:
        yield farm
    except BaseException:
        farm.abandon()
        raise
    farm.close()


@contextmanager
def _verified_store(repo: Repo, img: Image, name: str):
    """The store as a checkout or the cache reads it: every object checked against its
    id (Store.verifying), and damage reported with the image it was found in, the one
    name a user can act on, rather than an object id alone."""
    try:
        yield repo.store.verifying()
    except (CorruptStore, NotFound) as exc:  # an object of an image that exists: the store is damaged
        raise damaged(name, img.id, exc) from None


def cached_rootfs(repo: Repo, img: Image, name: str) -> str:
    """The cached rootfs directory of ``img`` (``name``, as the user gave it), what a
    container mounts, materialised first if it is not there: lg run's way in."""
    lower = os.path.join(repo.root.cache_dir("rootfs"), img.rootfs.hex())
    if os.path.isdir(lower):  # the common case is a commit already materialised: no work at all
        return lower
    return _materialised(repo, img, name)


def _materialised(repo: Repo, img: Image, name: str) -> str:
    with store_lock(repo), _verified_store(repo, img, name) as store:
        return cache(repo).materialise(store, img.rootfs)


def checkout(repo: Repo, rev: str, dest: str, hardlink: bool = False, policy: CheckoutPolicy | None = None):
    """Write the rootfs of ``rev`` into ``dest`` (new or empty); returns fs.checkout.CheckoutResult.

    With ``hardlink`` the files are hardlinks into the materialised cache, like
    ``ostree checkout -H``: fast and free of space, but editing them in place would
    edit the cache (``lg fsck`` notices), so use it for read-only work.

    A checkout holding setuid/setgid files, file capabilities or device nodes in a
    directory other users can reach hands them local root, so that is warned about
    (``policy``, from layergit.fs.checkout, decides the directory's mode and owner
    and whether such entries are written; None is the default policy, ``lg
    checkout``'s), naming what lets the others in: what was just done is never the
    advice.
    """
    from ..fs.checkout import CheckoutPolicy, occupied
    from ..fs.checkout import checkout as materialise

    policy = policy or CheckoutPolicy()
    img = repo.image_at(rev)
    if os.path.lexists(dest) and not os.path.isdir(dest):
        raise LgError(f"checkout destination {dest} exists and is not a directory")
    if hardlink:
        if os.path.isdir(dest) and os.listdir(dest):  # said before the image is materialised for it
            raise occupied(dest)
        with store_lock(repo), _verified_store(repo, img, rev) as store:
            result = cache(repo).hardlink_checkout(store, img.rootfs, dest, policy)
            _warn_if_reachable(result, store, img.rootfs, dest, policy)
        return result
    # Files the farm holds (an imported or run image's) are copied from it: no inflating.
    with _verified_store(repo, img, rev) as store:
        copies = cache(repo).copies(store)
        try:
            result = materialise(store, img.rootfs, dest, policy, copies)
        finally:
            if copies is not None:
                copies.close()
        _warn_if_reachable(result, store, img.rootfs, dest, policy)
    return result


def _warn_if_reachable(result: CheckoutResult, store, tree: bytes, dest: str, policy: CheckoutPolicy) -> None:
    """Warn if other users can enter ``dest`` and it holds privileged entries."""
    from ..fs.checkout import privileged_entries
    from ..fs.hostpath import reachable_by_others

    if not reachable_by_others(dest):
        return
    count = result.privileged if result.privileged is not None else privileged_entries(store, tree)
    if count:
        result.warnings.append(
            f"{dest} holds {count} privileged entries (setuid/setgid files, file capabilities,"
            f" device nodes) and other users can enter it: {_way_in(dest, policy)}"
        )


def _way_in(dest: str, policy: CheckoutPolicy) -> str:
    """What lets other users into ``dest``, and how to shut them out (for the warning)."""
    from ..fs.checkout import RootOwner

    st = os.stat(dest)
    if st.st_uid not in (0, os.geteuid()):
        if policy.root_owner is RootOwner.IMAGE:
            return f"--root-owner image made it uid {st.st_uid}'s; leave that out, or use --no-special"
        return f"it is uid {st.st_uid}'s; check out into a directory of yours, or use --no-special"
    how = (f"--mode {policy.mode:04o}" if policy.mode is not None
           else f"its mode {stat.S_IMODE(st.st_mode):04o}")
    if not st.st_mode & stat.S_IXOTH:
        how += f" with group {st.st_gid} or an ACL"
    return f"{how}; use --mode 700, or --no-special"


def materialise(repo: Repo, rev: str) -> str:
    """The read-only cached rootfs directory of ``rev`` (what a container mounts)."""
    return _materialised(repo, repo.image_at(rev), rev)
