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
    if a.meta.kind != b.meta.kind:
        yield Change("T", path, a, b)
        if a.meta.kind == "d":
            for sub_path, sub in walk(store, a.tree, path):
                yield Change("D", sub_path, sub, None)
        if b.meta.kind == "d":
            for sub_path, sub in walk(store, b.tree, path):
                yield Change("A", sub_path, None, sub)
        return
    if a.meta.kind == "d":
        aspects = meta_aspects(a.meta, b.meta, include_mtime)
        if aspects:
            yield Change("M", path, a, b, tuple(aspects))
        if a.oid != b.oid:
            yield from diff_trees(store, a.oid, b.oid, include_mtime, path)
        return
    aspects = (["content"] if a.oid != b.oid else []) + meta_aspects(a.meta, b.meta, include_mtime)
    if aspects:
        yield Change("M", path, a, b, tuple(aspects))


def diff_trees(
    store, a: bytes | None, b: bytes | None, include_mtime: bool = False, prefix: bytes = b""
) -> Iterator[Change]:
    """Changes from snapshot tree ``a`` to ``b`` (None: empty), in path order."""
    if a == b:
        return
    a_nodes = {n.name: n for n in read_dir(store, a)[1]} if a else {}
    b_nodes = {n.name: n for n in read_dir(store, b)[1]} if b else {}
    for name in sorted(set(a_nodes) | set(b_nodes)):
        path = prefix + b"/" + name
        old, new = a_nodes.get(name), b_nodes.get(name)
        if new is not None and old is None:
            yield from _all(store, new, path, "A")
        elif old is not None and new is None:
            yield from _all(store, old, path, "D")
        elif old is not None and new is not None:
            yield from _pair(store, path, old, new, include_mtime)


def root_meta_changes(store, a: bytes, b: bytes, include_mtime: bool) -> list[str]:
    """Aspects that changed on the root directory itself ("/")."""
    default = default_meta(MODE_TREE)
    return meta_aspects(read_dir(store, a)[0] or default, read_dir(store, b)[0] or default, include_mtime)
