"""The build cache: which commit a build step made, as refs in the store.

A step's key is the SHA-256 of its parent commit, its instruction text (after ARG
expansion, here-documents included) and whatever else its result depends on (the
digest of COPY/ADD sources, the build args a RUN sees). The entry is the ref
``refs/layergit/build-cache/KEY`` pointing at the commit, so the cache survives
restarts, is shared by every Dockerfile that reaches the same step, is kept by
``lg gc`` like any other ref, and goes away with ``git update-ref -d``. Since the
parent commit is part of the key, changing one step invalidates it and everything
after it, and nothing before.

Entries fetched from a remote (``lg fetch --build-cache``) live apart, under
``refs/layergit/remote-cache/REMOTE/KEY``, and are looked up only while that remote
is trusted (``lg remote set-build-cache REMOTE true``): a shared cache is a channel
for poisoned results, so trust is the user's explicit choice, per remote.
"""

from __future__ import annotations

import hashlib

from ..errors import Conflict
from ..porcelain.remotes import trusted_caches
from ..porcelain.repo import Repo
from ..store import names

_VERSION = b"lg-build-cache 1\0"


def key(parent: bytes | None, text: str, extra: str = "") -> str:
    h = hashlib.sha256(_VERSION)
    for part in ((parent or b"").hex(), text, extra):
        data = part.encode("utf-8", "surrogateescape")
        h.update(b"%d:" % len(data) + data)
    return h.hexdigest()


def lookup(repo: Repo, step_key: str, parent: bytes | None) -> bytes | None:
    """This store's entry for the step, else a trusted remote's (in name order) whose
    commit builds on ``parent``, as the step's result must."""
    hit = repo.store.ref(names.BUILD_CACHE_PREFIX + step_key)
    if hit is not None:
        return hit
    for remote in trusted_caches(repo):
        hit = repo.store.ref(names.remote_cache_ref(remote, step_key))
        if hit is not None and repo.store.has(hit) and \
                repo.store.commit(hit).parents[:1] == ((parent,) if parent else ()):
            return hit
    return None


def remember(repo: Repo, step_key: str, commit: bytes) -> None:
    """Point the step's entry at ``commit`` (a --no-cache build overwrites it)."""
    name = names.BUILD_CACHE_PREFIX + step_key
    old = repo.store.ref(name)
    if old == commit:
        return
    try:
        repo.store.set_ref(name, commit, old, "build: cache step")
    except Conflict:
        pass  # a concurrent build stored the same step first: its commit is as good as ours

