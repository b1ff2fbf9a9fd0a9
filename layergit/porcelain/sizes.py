"""Image and layer sizes, cached forever by object id (objects never change).

An image's size is the bytes of its regular files (hardlinks counted once); a
layer's size is the bytes its commit added or rewrote relative to its parent, the
figure ``docker history`` shows. Both need a tree walk, so ``lg images`` and
``lg log`` read them from a small per-id cache filled at commit time or first use.
"""

from __future__ import annotations

import os

from ..fs.safeio import write_cache
from ..store.snapshot import walk
from ..store.treediff import diff_trees


def _cached(repo, kind: str, key: bytes, compute) -> int:
    path = os.path.join(repo.root.cache_dir("sizes"), f"{kind}-{key.hex()}")
    try:
        with open(path) as f:
            return int(f.read())
    except (OSError, ValueError):
        pass
    value = compute()
    remember(repo, kind, key, value)
    return value


def remember(repo, kind: str, key: bytes, value: int) -> None:
    write_cache(os.path.join(repo.root.cache_dir("sizes"), f"{kind}-{key.hex()}"), b"%d" % value)


def _file_bytes(repo, nodes) -> int:
    store = repo.store
    return sum(store.object_size(n.oid) for n in nodes
               if n is not None and n.meta.kind == "f" and n.meta.link is None)


def tree_size(repo, rootfs: bytes) -> int:
    return _cached(repo, "tree", rootfs,
                   lambda: _file_bytes(repo, (node for _, node in walk(repo.store, rootfs))))


def layer_size(repo, commit_id: bytes, rootfs: bytes, parent_rootfs: bytes | None) -> int:
    def compute() -> int:
        changes = diff_trees(repo.store, parent_rootfs, rootfs)
        grown = (c.new for c in changes if c.status in "AMT" and (c.status != "M" or "content" in c.aspects))
        return _file_bytes(repo, grown)

    return _cached(repo, "layer", commit_id, compute)
