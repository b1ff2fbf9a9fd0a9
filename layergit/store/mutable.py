"""An in-memory, editable snapshot: load a rootfs tree, change it, write it back.

Importing a layer, committing a container's writable layer and a build's COPY all
apply changes on top of an existing snapshot. Doing that in memory rather than on a
host directory means no stored name or link target can ever touch the host, and
owners, device nodes and xattrs are kept exactly even without privileges.

Hardlinks are shared :class:`Inode` objects; writing walks the whole tree in byte
order of names (as capture does) and makes the first name of each inode its leader,
so the ``link=`` fields are right whatever was added or deleted.

Paths are lists of real (decoded) names. Symlinks in the *parent* part of a path
are resolved inside the snapshot (absolute targets from its root, ``..`` stopping at
its root, at most 40 hops), like a container runtime resolving a path in a chroot;
the final component is never followed.

Nothing here recurses: loading and writing keep their own stacks, and the chain of
directories last resolved is remembered, so the entries of a tar, which come parent
first, cost what their own name costs however deep they are.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import LgError
from . import meta as M
from . import treenames
from .rawobj import MODE_BLOB, MODE_EXEC, MODE_LINK, MODE_TREE, OBJ_BLOB, OBJ_TREE, tree_bytes
from .snapshot import MAX_DEPTH, read_dir, too_deep

MAX_SYMLINK_HOPS = 40
DEFAULT_DIR = M.EntryMeta("d", 0o755, 0, 0, 0)


class PathError(LgError):
    """A path that cannot be applied inside the snapshot (not a directory, a loop, ...)."""


@dataclass(eq=False, slots=True)  # slots: one per file of an image, a million in some
class Inode:
    """A non-directory entry; hardlinked names share one Inode."""

    meta: M.EntryMeta  # with link=None
    oid: bytes | None  # blob for f and l, None for c b p s
    target: bytes | None = None  # symlink target, read lazily for resolution


@dataclass(eq=False, slots=True)
class Dir:
    meta: M.EntryMeta
    children: dict[bytes, Dir | Inode] = field(default_factory=dict)


class MutableTree:
    def __init__(self, store, root: Dir):
        self.store = store
        self.root = root
        # The directories last reached by plain names, no symlinks: (names, the Dir of each).
        self._chain: tuple[list[bytes], list[Dir]] = ([], [])

    @classmethod
    def empty(cls, store, meta: M.EntryMeta = DEFAULT_DIR) -> MutableTree:
        return cls(store, Dir(meta))

    @classmethod
    def load(cls, store, tree: bytes | None) -> MutableTree:
        """Read a whole snapshot into memory (None: an empty one)."""
        if tree is None:
            return cls.empty(store)
        own, nodes = read_dir(store, tree)
        root = Dir(own or DEFAULT_DIR)
        inodes: dict[bytes, Inode] = {}  # hardlink leaders by stored path
        stack = [(root, b"", iter(nodes))]
        while stack:
            into, stored_path, pending = stack[-1]
            node = next(pending, None)
            if node is None:
                stack.pop()
                continue
            path = stored_path + b"/" + node.stored
            m = node.meta
            if m.kind == "d":
                sub = Dir(m)
                into.children[node.name] = sub
                stack.append((sub, path, iter(read_dir(store, node.tree)[1])))
                continue
            if m.link is not None and m.link in inodes:
                into.children[node.name] = inodes[m.link]
                continue
            inode = Inode(
                M.EntryMeta(m.kind, m.mode, m.uid, m.gid, m.mtime_ns, m.rdev, None, m.xattrs), node.oid
            )
            inodes[path] = inode
            into.children[node.name] = inode
        return cls(store, root)

    # -- lookups -----------------------------------------------------------------

    def _target(self, inode: Inode) -> bytes:
        if inode.target is None:
            inode.target = M.read_link_target(self.store, inode.oid)
        return inode.target

    def resolve_dir(self, parts: list[bytes], create: bool, hops: int = 0) -> Dir | None:
        """The directory at ``parts``, following symlinks inside the snapshot.

        With ``create``, missing directories are made (0755, root-owned), as tar
        extraction does for an entry whose parents are not in the archive.
        """
        names, dirs = self._chain
        known = len(names) if parts[: len(names)] == names else _common(parts, names)
        stack: list[Dir] = [self.root] + dirs[:known]
        pending = parts[known:][::-1]  # a stack: the next name is last
        plain = True  # no symlink, ".", ".." or "" on the way: the chain may remember it
        while pending:
            name = pending.pop()
            if name in (b"", b".", b".."):
                plain = False
                if name == b".." and len(stack) > 1:
                    stack.pop()
                continue
            current = stack[-1]
            child = current.children.get(name)
            if child is None:
                if not create:
                    return None
                child = current.children[name] = Dir(DEFAULT_DIR)
            if isinstance(child, Dir):
                stack.append(child)
                continue
            if child.meta.kind != "l":
                if not create:
                    return None
                where = b"/".join(parts).decode(errors="replace")
                raise PathError(f"/{where}: {name.decode(errors='replace')} is not a directory")
            hops += 1
            if hops > MAX_SYMLINK_HOPS:
                where = b"/".join(parts).decode(errors="replace")
                raise PathError(f"/{where}: too many levels of symbolic links")
            plain = False
            target = self._target(child)
            if target.startswith(b"/"):
                stack = [self.root]
            pending.extend(target.split(b"/")[::-1])
        if plain:
            self._chain = (list(parts), stack[1:])
        return stack[-1]

    def get(self, parts: list[bytes]) -> Dir | Inode | None:
        """The entry at ``parts`` without following a symlink in the last component."""
        if not parts:
            return self.root
        parent = self.resolve_dir(parts[:-1], create=False)
        return parent.children.get(parts[-1]) if parent is not None else None

    # -- changes -----------------------------------------------------------------

    def put(self, parts: list[bytes], entry: Dir | Inode) -> None:
        """Place ``entry`` at ``parts``. A directory put on a directory keeps its children."""
        if not parts:
            if isinstance(entry, Dir):
                self.root.meta = entry.meta
                return
            raise PathError("the root of an image must be a directory")
        parent = self.resolve_dir(parts[:-1], create=True)
        assert parent is not None  # create=True makes what is missing
        existing = parent.children.get(parts[-1])
        if isinstance(entry, Dir) and isinstance(existing, Dir):
            existing.meta = entry.meta
            return
        if existing is not None:
            self._forget()
        parent.children[parts[-1]] = entry

    def remove(self, parts: list[bytes]) -> bool:
        """Delete the entry at ``parts`` (a directory with its contents); False if absent."""
        if not parts:
            raise PathError("cannot delete the root of an image")
        parent = self.resolve_dir(parts[:-1], create=False)
        if parent is None or parts[-1] not in parent.children:
            return False
        self._forget()
        del parent.children[parts[-1]]
        return True

    def clear(self, parts: list[bytes]) -> None:
        """Empty the directory at ``parts`` (an opaque directory in a layer)."""
        target = self.get(parts) if parts else self.root
        if isinstance(target, Dir):
            self._forget()
            target.children.clear()

    def _forget(self) -> None:
        """An entry is replaced or removed: the directories remembered may be gone."""
        self._chain = ([], [])

    # -- writing -----------------------------------------------------------------

    def write(self, writer) -> bytes:
        """Write every new tree and metadata blob; returns the root tree id.

        A directory deeper than git reads (snapshot.MAX_DEPTH) is refused on the way
        down, before any of its trees is written.
        """
        leaders: dict[int, bytes] = {}
        stack = [_Frame(self.root, b"", b"", self.root.meta)]
        while True:
            frame = stack[-1]
            sub = frame.fill(leaders)
            if sub is not None:
                if len(stack) > MAX_DEPTH:
                    raise too_deep([f.name for f in stack[1:]] + [sub.name])
                stack.append(sub)
                continue
            tree = frame.finish(writer)
            stack.pop()
            if not stack:
                return tree
            stack[-1].entries.append((frame.stored, MODE_TREE, tree))


def _common(a: list[bytes], b: list[bytes]) -> int:
    """How many leading names ``a`` and ``b`` share."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


class _Frame:
    """One directory being written: its entries so far, and where its listing is."""

    def __init__(self, d: Dir, name: bytes, stored_path: bytes, own: M.EntryMeta | None):
        self.dir = d
        self.name = name
        self.stored = treenames.encode(name) if name else b""
        self.path = stored_path
        self.metas: dict[bytes, M.EntryMeta] = {b".": own} if own else {}
        self.entries: list[tuple[bytes, int, bytes]] = []
        self.names = iter(sorted(d.children))

    def fill(self, leaders: dict[int, bytes]) -> _Frame | None:
        """Add entries up to the next subdirectory, which is returned to be written first.

        Hardlink leaders are assigned in the order capture walks (byte order, depth
        first): the first name of an inode leads, the others name it in ``link=``.
        """
        for name in self.names:
            child = self.dir.children[name]
            stored = treenames.encode(name)
            path = self.path + b"/" + stored
            if isinstance(child, Dir):
                self.metas[stored] = child.meta
                return _Frame(child, name, path, None)
            m = child.meta
            leader = leaders.get(id(child))
            if leader is None:
                leaders[id(child)] = path
            else:
                m = M.EntryMeta(m.kind, m.mode, m.uid, m.gid, m.mtime_ns, m.rdev, leader, m.xattrs)
            self.metas[stored] = m
            if m.kind in M.META_ONLY:
                continue
            assert child.oid is not None  # every f and l has its blob
            if m.kind == "f":
                self.entries.append((stored, MODE_EXEC if m.mode & 0o100 else MODE_BLOB, child.oid))
            elif m.kind == "l":
                self.entries.append((stored, MODE_LINK, child.oid))
        return None

    def finish(self, writer) -> bytes:
        meta = writer.put(OBJ_BLOB, M.encode_blob(self.metas))
        self.entries.append((treenames.META_NAME_B, MODE_BLOB, meta))
        return writer.put(OBJ_TREE, tree_bytes(self.entries))
