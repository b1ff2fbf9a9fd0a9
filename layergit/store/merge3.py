"""Three-way merge of snapshot trees, path by path and aspect by aspect.

``lg rebase`` replays an image's versions onto a new base: for each version, the
changes its layer made (base → theirs) are merged with what the new base holds
(base → ours). As git merges trees, a subtree whose id is the same on two of the
three sides is decided without being read, so a merge costs what the two sides
changed, not the size of the image.

An entry present on all three sides with one type is merged aspect by aspect:
content (blob id), mode, owner, xattrs and device number each take the side that
changed it; only an aspect both sides changed differently is a conflict. mtimes never
conflict (every write moves a directory's): the side that changed one wins, theirs
when both did. An entry added, deleted or retyped on one side and changed on the
other is a conflict of the whole path. Each conflict goes to the caller's resolver
(preferences, dpkg's status file, ld.so.cache, ...), which returns a
:class:`Resolution` or None to leave it standing; every conflict left standing is
reported, the first does not stop the walk.

Hardlinks: an entry's ``link=`` names its leader by path. A merged entry keeps it only
if the result's entry at that path (decided earlier: leaders come first in the walk)
is the same inode (type, content, mode, owner, xattrs); otherwise it is written as a
file of its own, so a mixed result never makes a checkout link two different files.

Nothing here recurses: trees nest deeper than Python's recursion limit.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable, TypeVar

from . import meta as M
from . import treenames
from .rawobj import MODE_BLOB, MODE_EXEC, MODE_LINK, MODE_TREE, OBJ_BLOB, OBJ_TREE, tree_bytes
from .snapshot import MAX_DEPTH, Node, read_dir, too_deep

T = TypeVar("T")


@dataclass(frozen=True)
class PathConflict:
    """A path both sides changed incompatibly. ``what``: the aspects in conflict
    (content, mode, owner, xattrs, rdev) or one of "added on both sides",
    "deleted by ours, changed by theirs", "changed by ours, deleted by theirs",
    "type changed"."""

    path: bytes  # real path from "/"
    what: tuple[str, ...]
    base: Node | None
    ours: Node | None
    theirs: Node | None
    merged: Node | None = None  # the aspect merge, with ours' value where they conflict
    detail: str = ""  # set by a resolver that looked inside and could not merge


@dataclass(frozen=True)
class Resolution:
    """What a resolver puts at a conflicting path: a node (None: nothing) and how it got it."""

    node: Node | None
    how: str


Resolver = Callable[[PathConflict], "Resolution | PathConflict | None"]


@dataclass
class MergeResult:
    tree: bytes | None  # the merged rootfs; None when conflicts remain
    conflicts: list[PathConflict] = field(default_factory=list)
    resolved: list[tuple[bytes, str]] = field(default_factory=list)  # (path, how)
    changed: bool = True  # whether the result may differ from ours in more than mtimes


def _same(a: Node | None, b: Node | None) -> bool:
    if a is None or b is None:
        return a is b
    return a.oid == b.oid and a.meta == b.meta


def _alike(a: Node | None, b: Node | None, meta_only: bool = False) -> bool:
    """The same entry but for its mtime (and, with ``meta_only``, its content)."""
    if a is None or b is None:
        return a is b
    return _inode(a.meta) == _inode(b.meta) and a.meta.link == b.meta.link and (meta_only or a.oid == b.oid)


def _inode(m: M.EntryMeta) -> tuple:
    """What two names of one inode share (mtime aside: a hardlink reads one mtime anyway)."""
    return (m.kind, m.mode, m.uid, m.gid, m.rdev, m.xattrs)


def _pick(base: T, ours: T, theirs: T, name: str, conflicts: list[str]) -> T:
    """One aspect: the side that changed it; ours (and a conflict) when both did differently."""
    if ours != base and theirs != base and ours != theirs:
        conflicts.append(name)
    return theirs if ours == base else ours


def merge_node(base: Node, ours: Node, theirs: Node) -> tuple[Node, tuple[str, ...]]:
    """One entry of one type on all three sides: each aspect from the side that changed
    it; returns the merged node and the aspects both sides changed differently (where
    the merged node holds ours')."""
    b, o, t = base.meta, ours.meta, theirs.meta
    conflicts: list[str] = []
    oid = ours.oid if o.kind == "d" else _pick(base.oid, ours.oid, theirs.oid, "content", conflicts)
    mode = _pick(b.mode, o.mode, t.mode, "mode", conflicts)
    uid, gid = _pick((b.uid, b.gid), (o.uid, o.gid), (t.uid, t.gid), "owner", conflicts)
    xattrs = _pick(b.xattrs, o.xattrs, t.xattrs, "xattrs", conflicts)
    rdev = _pick(b.rdev, o.rdev, t.rdev, "rdev", conflicts)
    mtime = t.mtime_ns if t.mtime_ns != b.mtime_ns else o.mtime_ns
    link = t.link if t.link != b.link else o.link
    meta = replace(o, mode=mode, uid=uid, gid=gid, xattrs=xattrs, rdev=rdev, mtime_ns=mtime, link=link)
    return Node(ours.name, ours.stored, meta, oid), tuple(conflicts)


def _nodes(store, tree: bytes | None) -> tuple[M.EntryMeta | None, dict[bytes, Node]]:
    if tree is None:
        return None, {}
    own, nodes = read_dir(store, tree)
    return own, {n.name: n for n in nodes}


class _Frame:
    """One directory whose three sides all differ: its names, decided one by one."""

    def __init__(self, store, path: bytes, depth: int, base: bytes | None, ours: bytes | None,
                 theirs: bytes | None):
        self.path = path
        self.depth = depth
        _, self.base = _nodes(store, base)
        _, self.ours = _nodes(store, ours)
        _, self.theirs = _nodes(store, theirs)
        self.names = iter(sorted(set(self.base) | set(self.ours) | set(self.theirs)))
        self.metas: dict[bytes, M.EntryMeta] = {}
        self.entries: list[tuple[bytes, int, bytes]] = []
        self.pending: Node | None = None  # the directory entry whose subtree is being merged

    def add(self, node: Node) -> None:
        self.metas[node.stored] = node.meta
        m = node.meta
        if m.kind in M.META_ONLY:
            return
        assert node.oid is not None
        mode = {"d": MODE_TREE, "l": MODE_LINK}.get(m.kind) or (MODE_EXEC if m.mode & 0o100 else MODE_BLOB)
        self.entries.append((node.stored, mode, node.oid))

    def finish(self, writer) -> bytes:
        meta_blob = writer.put(OBJ_BLOB, M.encode_blob(self.metas))
        self.entries.append((treenames.META_NAME_B, MODE_BLOB, meta_blob))
        return writer.put(OBJ_TREE, tree_bytes(self.entries))


class _Merge:
    def __init__(self, store, writer, resolve: Resolver | None):
        self.store = store
        self.writer = writer
        self.resolve = resolve
        self.result = MergeResult(None)
        self.decided: dict[bytes, Node] = {}  # real path -> node, for entries decided one by one
        self.whole: dict[bytes, bytes] = {}  # real path -> the tree taken for it unread
        self.changed = False  # a decision so far that is not ours' entry (mtimes aside)

    def note(self, node: Node | None, ours: Node | None, meta_only: bool = False) -> None:
        if not _alike(node, ours, meta_only):
            self.changed = True

    def conflict(self, c: PathConflict) -> Node | None:
        """The node a conflict leaves at its path: the resolver's, else ours (the result is void)."""
        answer = self.resolve(c) if self.resolve is not None else None
        if isinstance(answer, Resolution):
            self.result.resolved.append((c.path, answer.how))
            return answer.node
        self.result.conflicts.append(answer if isinstance(answer, PathConflict) else c)
        return c.merged if c.merged is not None else c.ours

    def decide(self, path: bytes, b: Node | None, o: Node | None, t: Node | None
               ) -> tuple[Node | None, tuple[bytes | None, bytes | None, bytes | None] | None]:
        """The node at ``path`` and, for a directory whose three subtrees differ, the
        subtrees to merge below it."""
        if _same(o, t) or _same(b, t):
            return o, None
        if _same(b, o):
            return t, None
        if o is not None and t is not None and o.meta.kind == t.meta.kind:
            if b is not None and b.meta.kind == o.meta.kind:
                merged, clash = merge_node(b, o, t)
                node = self.conflict(PathConflict(path, clash, b, o, t, merged)) if clash else merged
            elif o.meta.kind == "d" or _inode(o.meta) == _inode(t.meta) and o.oid == t.oid:
                # Added on both sides (or both replaced a non-directory) alike but for mtimes,
                # or as directories whose contents merge: theirs' aspects where they differ.
                node = merge_node(o, o, t)[0]
            else:
                return self.conflict(PathConflict(path, ("added on both sides",), b, o, t)), None
            if node is not None and node.meta.kind == "d":  # a directory's own aspects: merge below it
                return node, (b.oid if b is not None and b.meta.kind == "d" else None, o.oid, t.oid)
            return node, None
        what = ("deleted by ours, changed by theirs" if o is None else
                "changed by ours, deleted by theirs" if t is None else
                "added on both sides" if b is None else "type changed")
        return self.conflict(PathConflict(path, (what,), b, o, t)), None

    def lookup(self, real: bytes) -> Node | None:
        """The result's entry at ``real`` (decided already: a leader precedes its links)."""
        if real in self.decided:
            return self.decided[real]
        prefix = real
        while prefix:
            prefix = prefix.rpartition(b"/")[0]
            tree = self.whole.get(prefix)
            if tree is not None:
                names = real[len(prefix) + 1:].split(b"/")
                for name in names[:-1]:
                    node = _nodes(self.store, tree)[1].get(name)
                    if node is None or node.meta.kind != "d":
                        return None
                    tree = node.tree
                return _nodes(self.store, tree)[1].get(names[-1])
        return None

    def checked_link(self, node: Node) -> Node:
        """``node`` without its ``link=`` if the result's leader is another inode."""
        link = node.meta.link
        if link is None:
            return node
        leader = self.lookup(_real(link))
        if leader is not None and leader.meta.link is None and leader.oid == node.oid \
                and _inode(leader.meta) == _inode(node.meta):
            return node
        return Node(node.name, node.stored, replace(node.meta, link=None), node.oid)

    def _links_out(self, base: bytes | None, side: bytes, path: bytes) -> bool:
        """Whether the subtree ``side`` takes at ``path`` may hold a hardlink, new since
        ``base``, to a leader outside it, which the merge may have changed: then the
        subtree is merged entry by entry, so that the link is checked. Reads the raw
        trees the side changed, and each changed metadata blob only to find ``link=``
        in it, so it costs what the side changed there, not the subtree's size."""
        del path  # any new link below counts: one to a leader inside is checked as cheaply
        stack = [(base, side)]
        while stack:
            old, new = stack.pop()
            before = {name: (mode, oid) for name, mode, oid in self.store.tree(old)} if old else {}
            for name, mode, oid in self.store.tree(new):
                if before.get(name) == (mode, oid):
                    continue
                if name == treenames.META_NAME_B:
                    if b" link=" in self.store.read_blob(oid, M.META_BLOB_MAX, "metadata"):
                        return True
                elif mode == MODE_TREE:
                    was = before.get(name)
                    stack.append((was[1] if was and was[0] == MODE_TREE else None, oid))
        return False

    def _below(self, frame: _Frame, path: bytes, node: Node,
               sub: tuple[bytes | None, bytes | None, bytes | None]) -> _Frame:
        if frame.depth + 1 > MAX_DEPTH:
            raise too_deep(path.split(b"/")[1:])
        frame.pending = node
        return _Frame(self.store, path, frame.depth + 1, *sub)

    def run(self, base: bytes | None, ours: bytes, theirs: bytes) -> MergeResult:
        b_own, _ = _nodes(self.store, base)
        o_own, _ = _nodes(self.store, ours)
        t_own, _ = _nodes(self.store, theirs)
        default = M.default_meta(MODE_TREE)
        roots = [Node(b"", b"", own or default, tree) for own, tree in
                 ((b_own, base), (o_own, ours), (t_own, theirs))]
        if base is None:
            roots[0] = roots[1]
        if ours == theirs or base == theirs:
            self.result.tree = ours
            self.result.changed = False
            return self.result
        if base == ours:
            self.result.tree = theirs
            return self.result
        root_meta, clash = merge_node(*roots)
        if clash:
            root_meta = self.conflict(PathConflict(b"/", clash, roots[0], roots[1], roots[2], root_meta)) \
                or roots[1]
        self.note(root_meta, roots[1], meta_only=True)
        stack = [_Frame(self.store, b"", 0, base, ours, theirs)]
        stack[0].metas[b"."] = root_meta.meta
        while True:
            frame = stack[-1]
            sub = self._fill(frame)
            if sub is not None:
                stack.append(sub)
                continue
            tree = frame.finish(self.writer)
            stack.pop()
            if not stack:
                break
            parent = stack[-1]
            assert parent.pending is not None
            parent.add(replace(parent.pending, oid=tree))
            parent.pending = None
        if not self.result.conflicts:
            self.result.tree = tree
            self.result.changed = self.changed
        return self.result

    def _fill(self, frame: _Frame) -> _Frame | None:
        for name in frame.names:
            path = frame.path + b"/" + name
            b, o, t = frame.base.get(name), frame.ours.get(name), frame.theirs.get(name)
            node, sub = self.decide(path, b, o, t)
            if node is None:
                self.note(None, o)
                continue
            if node.meta.kind == "d":
                if sub is not None and len({*sub}) == 3:
                    self.note(node, o, meta_only=True)
                    return self._below(frame, path, node, sub)
                if sub is not None:  # two of the three subtrees agree: the rule above decides
                    sb, so, st = sub
                    node = replace(node, oid=so if (so == st or sb == st) else st)
                assert node.oid is not None
                sides = tuple(n.oid if n is not None and n.meta.kind == "d" else None for n in (b, o, t))
                if node.oid != sides[0] and self._links_out(sides[0], node.oid, path):
                    self.note(node, o, meta_only=True)
                    return self._below(frame, path, node, sides)  # type: ignore[arg-type]
                self.whole[path] = node.oid
            else:
                node = self.checked_link(node)
                self.decided[path] = node
            self.note(node, o)
            frame.add(node)
        return None


def _real(link: bytes) -> bytes:
    """A ``link=`` path (stored names) as a real path."""
    return b"/" + b"/".join(treenames.decode(p) for p in link.split(b"/")[1:])


def merge_trees(store, writer, base: bytes | None, ours: bytes, theirs: bytes,
                resolve: Resolver | None = None) -> MergeResult:
    """Merge snapshot trees ``ours`` and ``theirs`` from their common ``base`` (None: an
    empty tree). New trees go to ``writer``; ``result.tree`` is None if any conflict was
    left standing, and then ``result.conflicts`` lists every one (what was written is
    unreferenced and goes with the next ``lg gc``)."""
    return _Merge(store, writer, resolve).run(base, ours, theirs)
