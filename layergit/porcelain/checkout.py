"""Materialising any image version into a directory."""

from __future__ import annotations

import os

from ..errors import LgError
from .repo import Repo


def checkout(repo: Repo, rev: str, dest: str):
    """Write the rootfs of ``rev`` into ``dest`` (new or empty); returns fs.checkout.CheckoutResult."""
    from ..fs.checkout import checkout as materialise

    img = repo.image_at(rev)
    if os.path.lexists(dest) and not os.path.isdir(dest):
        raise LgError(f"checkout destination {dest} exists and is not a directory")
    return materialise(repo.store, img.rootfs, dest)
