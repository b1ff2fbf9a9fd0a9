"""Comparing two snapshot trees entry by entry, skipping identical subtrees by id.

A change is Added, Deleted, Modified or Type-changed, as in ``git diff
--name-status``; a Modified entry says which aspects changed (content, mode, owner,
xattrs, mtime, link target, device number, hardlink), so a chmod is reported as a
metadata-only change. mtimes are ignored unless asked for: every write moves them,
and a user reviewing a layer wants to see what changed, not when.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

from .meta import EntryMeta, default_meta
from .rawobj import MODE_TREE
from .snapshot import Node, read_dir, walk


@dataclass(frozen=True)
class Change:
    status: str  # "A", "D", "M" or "T"
    path: bytes  # real path starting with "/"
    old: Node | None
    new: Node | None
    aspects: tuple[str, ...] = ()  # for "M": content, mode, owner, xattrs, mtime, rdev, link


def meta_aspects(a: EntryMeta, b: EntryMeta, include_mtime: bool) -> list[str]:
    out = []
    if a.mode != b.mode:
        out.append("mode")
    if (a.uid, a.gid) != (b.uid, b.gid):
        out.append("owner")
    if a.xattrs != b.xattrs:
        out.append("xattrs")
    if a.rdev != b.rdev:
        out.append("rdev")
    if a.link != b.link:
        out.append("link")
    if include_mtime and a.mtime_ns != b.mtime_ns:
        out.append("mtime")
    return out


def _all(store, node: Node, path: bytes, status: str) -> Iterator[Change]:
    yield Change(status, path, node if status == "D" else None, node if status == "A" else None)
    if node.meta.kind == "d":
        for sub_path, sub in walk(store, node.tree, path):
            yield Change(status, sub_path, sub if status == "D" else None, sub if status == "A" else None)


def _pair(store, path: bytes, a: Node, b: Node, include_mtime: bool) -> Iterator[Change]:
    """The changes of an entry both sides have, except those below a directory on both."""
    if a.meta.kind != b.meta.kind:
        yield Change("T", path, a, b)
        if a.meta.kind == "d":
            for sub_path, sub in walk(store, a.tree, path):
                yield Change("D", sub_path, sub, None)
        if b.meta.kind == "d":
            for sub_path, sub in walk(store, b.tree, path):
                yield Change("A", sub_path, None, sub)
        return
    aspects = meta_aspects(a.meta, b.meta, include_mtime)
    if a.meta.kind != "d" and a.oid != b.oid:
        aspects.insert(0, "content")
    if aspects:
        yield Change("M", path, a, b, tuple(aspects))


def _pairs(
    store, a: bytes | None, b: bytes | None, prefix: bytes
) -> Iterator[tuple[bytes, Node | None, Node | None]]:
    """(path, old, new) for every name in either directory, in byte order."""
    a_nodes = {n.name: n for n in read_dir(store, a)[1]} if a else {}
    b_nodes = {n.name: n for n in read_dir(store, b)[1]} if b else {}
    for name in sorted(set(a_nodes) | set(b_nodes)):
        yield prefix + b"/" + name, a_nodes.get(name), b_nodes.get(name)


def diff_trees(
    store, a: bytes | None, b: bytes | None, include_mtime: bool = False, prefix: bytes = b""
) -> Iterator[Change]:
    """Changes from snapshot tree ``a`` to ``b`` (None: empty), in path order.

    Directories that differ are compared from a stack of our own, not by recursion:
    a tree may nest directories far deeper than Python's recursion limit.
    """
    if a == b:
        return
    stack = [_pairs(store, a, b, prefix)]
    while stack:
        item = next(stack[-1], None)
        if item is None:
            stack.pop()
            continue
        path, old, new = item
        if old is None:
            assert new is not None  # each name comes from one side at least
            yield from _all(store, new, path, "A")
        elif new is None:
            yield from _all(store, old, path, "D")
        else:
            yield from _pair(store, path, old, new, include_mtime)
            if old.meta.kind == new.meta.kind == "d" and old.oid != new.oid:
                stack.append(_pairs(store, old.oid, new.oid, path))


def root_meta_changes(store, a: bytes, b: bytes, include_mtime: bool) -> list[str]:
    """Aspects that changed on the root directory itself ("/")."""
    default = default_meta(MODE_TREE)
    return meta_aspects(read_dir(store, a)[0] or default, read_dir(store, b)[0] or default, include_mtime)
