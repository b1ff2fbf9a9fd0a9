"""Removing trees we wrote, even where their own modes deny us (0000 dirs, read-only files).

Checkouts, cached rootfs, container upper dirs and test scratch all hold such trees;
one implementation serves them all. Symlinks are removed, never followed.
"""

from __future__ import annotations

import os
import shutil


def remove_tree(path: str) -> None:
    """Remove ``path`` and everything below it; a missing path is fine."""

    def unlock(func, target, _exc):
        parent = os.path.dirname(target)
        try:
            os.chmod(parent, 0o700)
            if not os.path.islink(target) and os.path.isdir(target):
                os.chmod(target, 0o700)
        except OSError:
            pass
        func(target)

    if os.path.lexists(path):
        shutil.rmtree(path, onerror=unlock)
