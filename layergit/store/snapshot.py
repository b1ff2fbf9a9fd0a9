"""Reading a snapshot tree back: directories as lists of fully described entries.

This joins a git tree with its metadata blob and checks that they agree, so every
consumer (checkout, diff, export, the materialised cache, fsck) sees one validated
view: real (decoded) names in byte order, each with its metadata and object id.
Names that could escape a directory (``/``, ``.``, ``..``, NUL) are refused here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

from ..errors import CorruptStore, TooDeep
from . import meta as M
from . import treenames
from .rawobj import MODE_LINK, MODE_TREE

KIND_FOR_MODE = {MODE_TREE: "d", MODE_LINK: "l", 0o100644: "f", 0o100755: "f"}

# git (2.44+) stops at trees nested deeper than core.maxTreeDepth, counting the tree it
# starts from (a commit's) as depth 0 and each subtree one more. An image's rootfs is
# depth 1, so a directory N levels below / is depth N + 1: N may be at most 2047.
GIT_MAX_TREE_DEPTH = 2048
MAX_DEPTH = GIT_MAX_TREE_DEPTH - 1


def shown(names: list[bytes]) -> str:
    """A path for a message: "/" and its names, a deep one cut to its ends."""
    if len(names) > 6:
        names = names[:3] + [b"\xe2\x80\xa6"] + names[-2:]
    return "/" + b"/".join(names).decode(errors="replace")


def too_deep(names: list[bytes], what: str = "") -> TooDeep:
    """The refusal of a directory at ``names`` (below /, more than MAX_DEPTH of them)."""
    return TooDeep(
        f"{what}{shown(names)} is {len(names)} directories deep; git reads at most {MAX_DEPTH} "
        f"below an image's / (core.maxTreeDepth {GIT_MAX_TREE_DEPTH}), so it is refused"
    )


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
    metas = M.decode_blob(store.read_blob(meta_oid, M.META_BLOB_MAX, "metadata")) if meta_oid else {}
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
        elif KIND_FOR_MODE.get(mode) != meta.kind:
            raise CorruptStore(
                f"entry {stored!r}: git mode {mode:o} disagrees with metadata type {meta.kind}"
            )
        nodes.append(Node(name, stored, meta, oid))
    nodes.sort(key=lambda n: n.name)
    return metas.get(b"."), nodes


def walk(store, tree: bytes, prefix: bytes = b"") -> Iterator[tuple[bytes, Node]]:
    """Every entry below ``tree`` as (path, node), depth-first in byte order.

    Paths start with "/" and use real names. This is the order capture assigned
    hardlink leaders in, so a leader always comes before the links to it. The walk
    keeps its own stack: trees may be nested far deeper than Python recurses.
    """
    stack = [(prefix, iter(read_dir(store, tree)[1]))]
    while stack:
        parent, nodes = stack[-1]
        node = next(nodes, None)
        if node is None:
            stack.pop()
            continue
        path = parent + b"/" + node.name
        yield path, node
        if node.meta.kind == "d":
            stack.append((path, iter(read_dir(store, node.tree)[1])))
