"""The handle every porcelain function takes: a layergit root and its store."""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from ..errors import CorruptStore, NotFound, UsageError
from ..flock import locked
from ..root import Root

if TYPE_CHECKING:  # the store module loads with the first command that opens the store
    from ..store.rawobj import Signature
    from ..store.store import CommitInfo, Store


@dataclass(frozen=True)
class Image:
    """A resolved image commit: its commit record, config and rootfs tree."""

    id: bytes
    commit: CommitInfo
    config: dict
    rootfs: bytes


class Repo:
    def __init__(self, root: Root, store: Store | None = None):
        """``store``: another object store to read through (a quarantine), else the root's."""
        self.root = root
        self._store: Store | None = store

    @property
    def store(self) -> Store:
        """The object store, opened (and created) on first use: pygit2 loads only here."""
        if self._store is None:
            from ..store.store import Store

            self._store = Store.open(self.root.store)
        return self._store

    def resolve(self, rev: str) -> bytes:
        from .. import root
        from ..store.revisions import resolve, shadowed

        oid = resolve(self.store, rev)
        if root.on_notice is not None and "/" in rev and shadowed(self.store, rev):
            root.on_notice(f"warning: {rev.strip()} is a local image and a remote-tracking name;"
                           " the local image is used")
        return oid

    def image(self, commit_id: bytes) -> Image:
        from ..store.image import read_image_tree

        info = self.store.commit(commit_id)
        config, rootfs = read_image_tree(self.store, info.tree)
        return Image(commit_id, info, config, rootfs)

    def image_at(self, rev: str) -> Image:
        commit = self.resolve(rev)
        try:
            return self.image(commit)
        except (NotFound, CorruptStore) as exc:  # the commit is there: the store is damaged
            raise damaged(rev, commit, exc) from None


def damaged(name: str, commit: bytes, exc: Exception) -> CorruptStore:
    """The error for an image whose objects do not read: named as the user named it, the
    one thing they can act on, with the object the store reported."""
    return CorruptStore(f"image {name} ({commit.hex()[:12]}) is damaged: {exc} (see lg fsck)")


def open_repo(root: str | None = None) -> Repo:
    """Open the layergit root ``root`` (default: --root / $LG_ROOT / per-user default),
    made private first (``Root.secure``): every command, the store's or not, starts here."""
    layout = Root.resolve(root)
    layout.secure()
    return Repo(layout)


def signature_time(sig: Signature) -> datetime:
    """A commit signature's time as an aware datetime in its own UTC offset."""
    return local_time(sig.time, sig.offset_minutes)


def local_time(seconds: int, offset_minutes: int) -> datetime:
    """A time as an aware datetime in the UTC offset it was recorded with."""
    return datetime.fromtimestamp(seconds, timezone(timedelta(minutes=offset_minutes)))


GC_LOCK_TIMEOUT = 30.0  # seconds; $LG_LOCK_TIMEOUT overrides


@contextmanager
def store_lock(repo: Repo, exclusive: bool = False):
    """Writers share this lock; ``lg gc`` takes it alone, so it never prunes objects
    that a commit has written but not yet pointed a ref at. Yields the lock's fd.

    A writer waits as long as gc runs (saying so once); gc waits at most
    $LG_LOCK_TIMEOUT seconds (30 by default) for the writers, then fails naming them:
    a build can hold the lock for an hour, and gc can run later.
    """
    if exclusive:
        try:
            timeout = float(os.environ.get("LG_LOCK_TIMEOUT") or GC_LOCK_TIMEOUT)
        except ValueError:
            value = os.environ["LG_LOCK_TIMEOUT"]
            raise UsageError(f"LG_LOCK_TIMEOUT={value!r} is not a number of seconds") from None
        with locked(repo.root.gc_lock, timeout=timeout, purpose="the store",
                    hint="set LG_LOCK_TIMEOUT=SECONDS to wait longer") as fd:
            yield fd
    else:
        with locked(repo.root.gc_lock, shared=True, purpose="with the store") as fd:
            yield fd
