"""An object store in a dict, with the methods the pure modules call on a store and
on a writer (``tree``, ``read_blob``, ``open_blob``, ``put``, ``put_blob``,
``put_blob_stream``, ``has``), and helpers that build snapshots through store.mutable,
as import and build do."""

from __future__ import annotations

from collections.abc import Iterable

from layergit.errors import CorruptStore
from layergit.store import meta as M
from layergit.store.mutable import Dir, Inode, MutableTree
from layergit.store.rawobj import OBJ_BLOB, OBJ_TREE, object_id, parse_tree

T0 = 1_600_000_000 * 1_000_000_000


class MemStore:
    def __init__(self) -> None:
        self.objects: dict[bytes, tuple[int, bytes]] = {}

    def put(self, obj_type: int, data: bytes) -> bytes:
        oid = object_id(obj_type, data)
        self.objects.setdefault(oid, (obj_type, data))
        return oid

    def put_blob(self, data: bytes) -> bytes:
        return self.put(OBJ_BLOB, data)

    def put_blob_stream(self, size: int, chunks: Iterable[bytes]) -> bytes:
        """Store.put_blob_stream's contract: the pieces must add up to ``size``, or the
        object is refused with the ValueError PackWriter.add_stream raises."""
        data = b"".join(chunks)
        if len(data) != size:
            raise ValueError(f"object content was {len(data)} bytes, not the {size} announced")
        return self.put_blob(data)

    def has(self, oid: bytes) -> bool:
        return oid in self.objects

    def _typed(self, oid: bytes, want: int) -> bytes:
        obj_type, data = self.objects[oid]
        assert obj_type == want, f"{oid.hex()} is a {obj_type}, not a {want}"
        return data

    def read_blob(self, oid: bytes, limit: int | None = None, what: str = "blob") -> bytes:
        data = self._typed(oid, OBJ_BLOB)
        if limit is not None and len(data) > limit:  # Store checks the size before reading
            raise CorruptStore(f"{what} {oid.hex()} is {len(data)} bytes; lg reads at most {limit}")
        return data

    def open_blob(self, oid: bytes):
        """(size, pieces) as Store.open_blob gives a blob: here always one piece."""
        data = self.read_blob(oid)
        return len(data), iter((data,))

    def object_size(self, oid: bytes) -> int:
        return len(self.objects[oid][1])

    def tree(self, oid: bytes) -> list[tuple[bytes, int, bytes]]:
        return parse_tree(self._typed(oid, OBJ_TREE))


def meta(kind: str = "f", mode: int | None = None, **kw) -> M.EntryMeta:
    default_mode = {"d": 0o755, "l": 0o777}.get(kind, 0o644)
    return M.EntryMeta(kind, default_mode if mode is None else mode, kw.pop("uid", 0), kw.pop("gid", 0),
                       kw.pop("mtime_ns", T0), **kw)


def file(store: MemStore, content: bytes = b"", **kw) -> Inode:
    return Inode(meta("f", **kw), store.put_blob(content))


def symlink(store: MemStore, target: bytes, **kw) -> Inode:
    return Inode(meta("l", **kw), store.put_blob(target), target)


def directory(**kw) -> Dir:
    return Dir(meta("d", **kw))


def snapshot(store: MemStore, entries: dict[str, Dir | Inode], root: M.EntryMeta | None = None) -> bytes:
    """A rootfs tree from {"/path": entry}, parents made as needed (0755 root:root)."""
    tree = MutableTree.empty(store, root or meta("d"))
    for path, entry in entries.items():
        tree.put(parts(path), entry)
    return tree.write(store)


def parts(path: str) -> list[bytes]:
    return [p.encode("utf-8", "surrogateescape") for p in path.strip("/").split("/") if p]
