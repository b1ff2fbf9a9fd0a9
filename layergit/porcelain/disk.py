"""lg system df: what the root holds on disk, by kind, and what pruning would free.

Each row says how much a command would give back: Images (``lg image prune``: commits
only reflogs keep), Containers (``lg container prune``: stopped containers' writable
layers), Local Volumes (``lg volume prune -a``: volumes no container uses) and
Cache (``lg gc``: materialised trees no image reaches, with the farm objects only
they hold, and exported layers, which are rebuilt on demand).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from .repo import Repo


@dataclass(frozen=True)
class DfRow:
    kind: str
    total: int
    active: int
    size: int
    reclaimable: int


def _tree_bytes(path: str, only_unshared: bool = False) -> int:
    """Bytes of the files below ``path`` (each inode once); ``only_unshared``: only
    those whose farm object no other tree links (link count 2: the farm and this tree)."""
    total = 0
    seen: set[tuple[int, int]] = set()
    for dirpath, dirs, files in os.walk(path):
        for name in files + [d for d in dirs if os.path.islink(os.path.join(dirpath, d))]:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except OSError:
                continue
            key = (st.st_dev, st.st_ino)
            if key in seen or (only_unshared and st.st_nlink > 2):
                continue
            seen.add(key)
            total += st.st_size
    return total


def df(repo: Repo) -> list[DfRow]:
    from ..store.names import IMAGE_PREFIX
    from ..transport.gitcli import objects_bytes
    from . import volumes
    from .container_lookup import registry
    from .maintenance import dangling, reachable_rootfs

    reg = registry(repo)
    containers = []
    for cid in reg.ids():
        cdir = reg.container(cid)
        try:
            containers.append((cdir.record().image_id, cdir.state().running, _tree_bytes(cdir.file("upper"))))
        except Exception:  # noqa: BLE001 - removed while we looked
            continue
    tagged = {tip.hex() for _, tip in repo.store.refs(IMAGE_PREFIX)}
    used = {image for image, _, _ in containers}
    _, freed = dangling(repo)
    images = DfRow("Images", len(tagged), len(tagged & used), objects_bytes(repo.root.store), freed)
    running = [c for c in containers if c[1]]
    container_row = DfRow("Containers", len(containers), len(running), sum(c[2] for c in containers),
                          sum(c[2] for c in containers if not c[1]))
    vols = volumes.ls(repo)
    using = volumes.users(repo)
    sizes = {v.name: volumes.size(v) for v in vols}
    volume_row = DfRow("Local Volumes", len(vols), sum(1 for v in vols if v.name in using),
                       sum(sizes.values()), sum(s for name, s in sizes.items() if name not in using))
    from .checkout import cache as materialised

    keep = {tree.hex() for tree in reachable_rootfs(repo)[0]}
    entries = materialised(repo).entries()
    layers = _tree_bytes(repo.root.cache_dir("layers"))
    unkept = sum(_tree_bytes(e.path, only_unshared=True) for e in entries if e.tree not in keep)
    cache_row = DfRow("Cache", len(entries), sum(1 for e in entries if e.tree in keep),
                      _tree_bytes(repo.root.cache), unkept + layers)
    return [images, container_row, volume_row, cache_row]
