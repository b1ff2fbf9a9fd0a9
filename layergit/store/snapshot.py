"""Reading a snapshot tree back: directories as lists of fully described entries.

This joins a git tree with its metadata blob and checks that they agree, so every
consumer (checkout, diff, export, the materialised cache, fsck) sees one validated
view: real (decoded) names in byte order, each with its metadata and object id.
Names that could escape a directory (``/``, ``.``, ``..``, NUL) are refused here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

from ..errors import CorruptStore
from . import meta as M
from . import treenames
from .rawobj import MODE_LINK, MODE_TREE

_KIND_FOR_MODE = {MODE_TREE: "d", MODE_LINK: "l", 0o100644: "f", 0o100755: "f"}


@dataclass(frozen=True)
class Node:
    name: bytes  # the real file name
    stored: bytes  # the tree entry name
    meta: M.EntryMeta
    oid: bytes | None  # blob for f and l, tree for d, None for c b p s

    @property
    def tree(self) -> bytes:
        """The subtree of a directory entry (read_dir only makes ``d`` nodes that have one)."""
        if self.meta.kind != "d" or self.oid is None:
            raise CorruptStore(f"entry {self.stored!r} is not a directory with a tree")
        return self.oid


def _check_name(name: bytes, stored: bytes) -> None:
    if not name or name in (b".", b"..") or b"/" in name or b"\0" in name:
        raise CorruptStore(f"unsafe file name {stored!r} in snapshot")


def read_dir(store, tree: bytes) -> tuple[M.EntryMeta | None, list[Node]]:
    """The directory's own metadata (the root's ``.`` line, else None) and its entries,
    sorted by real name."""
    entries = store.tree(tree)
    git = {stored: (mode, oid) for stored, mode, oid in entries if stored != treenames.META_NAME_B}
    meta_oid = next((oid for stored, _, oid in entries if stored == treenames.META_NAME_B), None)
    metas = M.decode_blob(store.read_blob(meta_oid)) if meta_oid else {}
    nodes = []
    for stored in set(git) | (set(metas) - {b"."}):
        name = treenames.decode(stored)
        _check_name(name, stored)
        mode, oid = git.get(stored, (None, None))
        meta = metas.get(stored) or (M.default_meta(mode) if mode is not None else None)
        if meta is None:
            raise CorruptStore(f"entry {stored!r} has neither content nor metadata")
        if mode is None:
            if meta.kind not in M.META_ONLY:
                raise CorruptStore(
                    f"entry {stored!r} is a {meta.kind} without content in tree {tree.hex()[:12]}"
                )
        elif _KIND_FOR_MODE.get(mode) != meta.kind:
            raise CorruptStore(
                f"entry {stored!r}: git mode {mode:o} disagrees with metadata type {meta.kind}"
            )
        nodes.append(Node(name, stored, meta, oid))
    nodes.sort(key=lambda n: n.name)
    return metas.get(b"."), nodes


def walk(store, tree: bytes, prefix: bytes = b"") -> Iterator[tuple[bytes, Node]]:
    """Every entry below ``tree`` as (path, node), depth-first in byte order.

    Paths start with "/" and use real names. This is the order capture assigned
    hardlink leaders in, so a leader always comes before the links to it.
    """
    _, nodes = read_dir(store, tree)
    for node in nodes:
        path = prefix + b"/" + node.name
        yield path, node
        if node.meta.kind == "d":
            yield from walk(store, node.tree, path)
