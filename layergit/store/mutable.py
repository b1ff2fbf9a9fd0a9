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
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import LgError
from . import meta as M
from . import treenames
from .rawobj import MODE_BLOB, MODE_EXEC, MODE_LINK, MODE_TREE, OBJ_BLOB, OBJ_TREE, tree_bytes
from .snapshot import read_dir

MAX_SYMLINK_HOPS = 40
DEFAULT_DIR = M.EntryMeta("d", 0o755, 0, 0, 0)


class PathError(LgError):
    """A path that cannot be applied inside the snapshot (not a directory, a loop, ...)."""


@dataclass(eq=False)
class Inode:
    """A non-directory entry; hardlinked names share one Inode."""

    meta: M.EntryMeta  # with link=None
    oid: bytes | None  # blob for f and l, None for c b p s
    target: bytes | None = None  # symlink target, read lazily for resolution


@dataclass(eq=False)
class Dir:
    meta: M.EntryMeta
    children: dict[bytes, Dir | Inode] = field(default_factory=dict)


class MutableTree:
    def __init__(self, store, root: Dir):
        self.store = store
        self.root = root

    @classmethod
    def empty(cls, store, meta: M.EntryMeta = DEFAULT_DIR) -> MutableTree:
        return cls(store, Dir(meta))

    @classmethod
    def load(cls, store, tree: bytes | None) -> MutableTree:
        """Read a whole snapshot into memory (None: an empty one)."""
        if tree is None:
            return cls.empty(store)
        own, _ = read_dir(store, tree)
        root = Dir(own or DEFAULT_DIR)
        inodes: dict[bytes, Inode] = {}
        cls._load_dir(store, tree, root, b"", inodes)
        return cls(store, root)

    @staticmethod
    def _load_dir(store, tree: bytes, into: Dir, stored_path: bytes, inodes: dict) -> None:
        _, nodes = read_dir(store, tree)
        for node in nodes:
            path = stored_path + b"/" + node.stored
            m = node.meta
            if m.kind == "d":
                sub = Dir(m)
                into.children[node.name] = sub
                MutableTree._load_dir(store, node.tree, sub, path, inodes)
                continue
            if m.link is not None and m.link in inodes:
                into.children[node.name] = inodes[m.link]
                continue
            inode = Inode(
                M.EntryMeta(m.kind, m.mode, m.uid, m.gid, m.mtime_ns, m.rdev, None, m.xattrs), node.oid
            )
            inodes[path] = inode
            into.children[node.name] = inode

    # -- lookups -----------------------------------------------------------------

    def _target(self, inode: Inode) -> bytes:
        if inode.target is None:
            inode.target = self.store.read_blob(inode.oid)
        return inode.target

    def resolve_dir(self, parts: list[bytes], create: bool, hops: int = 0) -> Dir | None:
        """The directory at ``parts``, following symlinks inside the snapshot.

        With ``create``, missing directories are made (0755, root-owned), as tar
        extraction does for an entry whose parents are not in the archive.
        """
        stack: list[Dir] = [self.root]
        pending = list(parts)
        while pending:
            name = pending.pop(0)
            if name in (b"", b"."):
                continue
            if name == b"..":
                if len(stack) > 1:
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
            target = self._target(child)
            if target.startswith(b"/"):
                stack = [self.root]
            pending = target.split(b"/") + pending
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
        parent.children[parts[-1]] = entry

    def remove(self, parts: list[bytes]) -> bool:
        """Delete the entry at ``parts`` (a directory with its contents); False if absent."""
        if not parts:
            raise PathError("cannot delete the root of an image")
        parent = self.resolve_dir(parts[:-1], create=False)
        if parent is None or parts[-1] not in parent.children:
            return False
        del parent.children[parts[-1]]
        return True

    def clear(self, parts: list[bytes]) -> None:
        """Empty the directory at ``parts`` (an opaque directory in a layer)."""
        target = self.get(parts) if parts else self.root
        if isinstance(target, Dir):
            target.children.clear()

    # -- writing -----------------------------------------------------------------

    def write(self, writer) -> bytes:
        """Write every new tree and metadata blob; returns the root tree id."""
        return _WriteState(writer).directory(self.root, b"", self.root.meta)


class _WriteState:
    def __init__(self, writer):
        self.w = writer
        self.leaders: dict[int, bytes] = {}

    def directory(self, d: Dir, stored_path: bytes, own: M.EntryMeta | None) -> bytes:
        metas: dict[bytes, M.EntryMeta] = {b".": own} if own else {}
        entries = []
        for name in sorted(d.children):
            child = d.children[name]
            stored = treenames.encode(name)
            path = stored_path + b"/" + stored
            if isinstance(child, Dir):
                entries.append((stored, MODE_TREE, self.directory(child, path, None)))
                metas[stored] = child.meta
                continue
            m = child.meta
            leader = self.leaders.get(id(child))
            if leader is None:
                self.leaders[id(child)] = path
            else:
                m = M.EntryMeta(m.kind, m.mode, m.uid, m.gid, m.mtime_ns, m.rdev, leader, m.xattrs)
            metas[stored] = m
            if m.kind in M.META_ONLY:
                continue
            assert child.oid is not None  # every f and l has its blob
            if m.kind == "f":
                entries.append((stored, MODE_EXEC if m.mode & 0o100 else MODE_BLOB, child.oid))
            elif m.kind == "l":
                entries.append((stored, MODE_LINK, child.oid))
        entries.append((treenames.META_NAME_B, MODE_BLOB, self.w.put(OBJ_BLOB, M.encode_blob(metas))))
        return self.w.put(OBJ_TREE, tree_bytes(entries))
