"""Materialising any image version into a directory, or into the cache."""

from __future__ import annotations

import os

from ..errors import LgError
from .repo import Repo, store_lock


def cache(repo: Repo):
    from ..fs.cache import MaterialisedCache

    return MaterialisedCache(repo.root.cache)


def checkout(repo: Repo, rev: str, dest: str, hardlink: bool = False):
    """Write the rootfs of ``rev`` into ``dest`` (new or empty); returns fs.checkout.CheckoutResult.

    With ``hardlink`` the files are hardlinks into the materialised cache, like
    ``ostree checkout -H``: fast and free of space, but editing them in place would
    edit the cache (``lg fsck`` notices), so use it for read-only work.
    """
    from ..fs.checkout import checkout as materialise

    img = repo.image_at(rev)
    if os.path.lexists(dest) and not os.path.isdir(dest):
        raise LgError(f"checkout destination {dest} exists and is not a directory")
    if hardlink:
        with store_lock(repo):
            return cache(repo).hardlink_checkout(repo.store, img.rootfs, dest)
    return materialise(repo.store, img.rootfs, dest)


def materialise(repo: Repo, rev: str) -> str:
    """The read-only cached rootfs directory of ``rev`` (what a container mounts)."""
    img = repo.image_at(rev)
    with store_lock(repo):
        return cache(repo).materialise(repo.store, img.rootfs)
