"""Writing snapshots and layers as tar archives with exact metadata.

PAX format carries what ustar cannot: nanosecond mtimes (an ``mtime`` record, only
when there is a fraction), xattrs (``SCHILY.xattr.*``, as GNU tar and Go's
archive/tar write them), long and non-UTF-8 names. Owners are numeric only. A
layer is the diff of a commit's rootfs to its parent's, deletions written as OCI
whiteouts (``.wh.NAME``). Sockets cannot be stored in tar and are skipped (GNU tar
does the same); the caller is told.
"""

from __future__ import annotations

import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from ..errors import CorruptStore
from ..store import meta as M
from ..store import treenames
from ..store.rawobj import CHUNK
from ..store.snapshot import Node, read_dir, walk
from ..store.treediff import diff_trees
from .content import BlobReader

if TYPE_CHECKING:
    from .farm import FarmReads

_TYPES = {
    "f": tarfile.REGTYPE,
    "d": tarfile.DIRTYPE,
    "l": tarfile.SYMTYPE,
    "c": tarfile.CHRTYPE,
    "b": tarfile.BLKTYPE,
    "p": tarfile.FIFOTYPE,
}


def _name(path: bytes) -> str:
    return path.lstrip(b"/").decode("utf-8", "surrogateescape")


def pax_time(ns: int) -> str:
    """A PAX time: a decimal number of seconds, so -5 ns is "-0.000000005" (where the
    metadata blob's floored form would say "-1.999999995")."""
    sec, nsec = divmod(abs(ns), 1_000_000_000)
    return f"{'-' if ns < 0 else ''}{sec}.{nsec:09d}"


def leader_path(link: bytes) -> bytes:
    """A ``link=`` field (stored names) as a real path."""
    return b"/" + b"/".join(treenames.decode(p) for p in link.strip(b"/").split(b"/"))


@contextmanager
def pax_stream(fileobj) -> Iterator[tarfile.TarFile]:
    """A PAX tar stream on ``fileobj`` (any writable, even a pipe), ended only on success:
    after a failed write (a full disk, a reader gone) there is no archive worth ending.

    It ends as Go's archive/tar (Docker's) ends an archive: two zero blocks and no
    padding to a 10 KiB record, which tarfile's close would add. A reader that stops at
    the end-of-archive blocks (``tar -t`` on the far side of a FIFO) then leaves no
    write behind it to fail with EPIPE.
    """
    counting = _Counting(fileobj)
    # typeshed wants a file that also reads and seeks; "w" mode only writes and tells.
    tar = tarfile.open(fileobj=counting, mode="w", format=tarfile.PAX_FORMAT)  # type: ignore[call-overload]
    tar.copybufsize = CHUNK  # a big file's content goes through in pieces this big (16 KiB by default)
    yield tar
    counting.write(bytes(2 * tarfile.BLOCKSIZE))
    tar.closed = True  # ended: nothing more may be added, and tarfile adds no padding


class _Counting:
    """``fileobj`` with the ``tell`` tarfile's "w" mode asks for, counted, so a pipe will do.

    Not the "w|" stream mode: its buffer cuts every write into 10 KiB records, copying
    what remains each time, which made a 1 GB file cost seconds of copying. "w" writes
    each piece straight through (the bytes are the same), and has no buffer that a
    collected, failed stream would try to flush.
    """

    def __init__(self, fileobj):
        self._f = fileobj
        self._written = 0

    def write(self, data) -> int:
        self._f.write(data)
        self._written += len(data)
        return len(data)

    def tell(self) -> int:
        return self._written


def append(tar: tarfile.TarFile, info: tarfile.TarInfo, content=None) -> None:
    """``tar.addfile(info, content)``, the same bytes without what addfile keeps: a copy of
    ``info`` per entry, held in ``tar.members`` until the end. A layer of a million
    entries held a million TarInfo objects (about 500 MB) that nothing read."""
    out = tar.fileobj
    assert out is not None  # pax_stream's
    out.write(info.tobuf(tar.format, tar.encoding, tar.errors))
    if content is not None:
        left = info.size
        while left:
            data = content.read(min(CHUNK, left))
            if not data:
                raise CorruptStore(f"the content of {info.name} ends {left} bytes before its size")
            out.write(data)
            left -= len(data)
        remainder = info.size % tarfile.BLOCKSIZE
        if remainder:
            out.write(bytes(tarfile.BLOCKSIZE - remainder))


class TarWriter:
    """Adds snapshot entries to a tar stream (from :func:`pax_stream`); counts what it
    skipped. File content comes from ``farm`` (fs.farm.FarmReads) where it holds the
    file, from the store otherwise."""

    def __init__(self, tar: tarfile.TarFile, store, farm: FarmReads | None = None):
        self.tar = tar
        self.store = store
        self.farm = farm
        self.sockets = 0
        self.entries = 0

    def add(self, path: bytes, m: M.EntryMeta, oid: bytes | None, hardlink_to: bytes | None = None) -> None:
        if m.kind == "s":
            self.sockets += 1
            return
        name = _name(path) if path != b"/" else "."
        info = tarfile.TarInfo(name + "/" if m.kind == "d" and name != "." else name)
        info.mode = m.mode
        info.uid, info.gid = m.uid, m.gid
        info.uname = info.gname = ""
        sec, nsec = divmod(m.mtime_ns, 1_000_000_000)
        info.mtime = sec
        headers = {}
        if nsec:
            headers["mtime"] = pax_time(m.mtime_ns)
        for key, value in m.xattrs:
            headers["SCHILY.xattr." + key] = value.decode("utf-8", "surrogateescape")
        info.pax_headers = headers
        content = None
        if hardlink_to is not None:
            info.type = tarfile.LNKTYPE
            info.linkname = _name(hardlink_to)
        else:
            info.type = _TYPES[m.kind]
            if m.kind == "f":
                assert oid is not None  # every file has its blob
                content = self.farm.open(oid, m) if self.farm is not None else None
                if content is None:
                    content = BlobReader(*self.store.open_blob(oid))
                info.size = content.size
            elif m.kind == "l":
                target = M.read_link_target(self.store, oid)
                info.linkname = target.decode("utf-8", "surrogateescape")
            elif m.kind in "cb":
                info.devmajor, info.devminor = m.rdev or (0, 0)
        append(self.tar, info, content)
        if content is not None:
            content.finish()
        self.entries += 1

    def whiteout(self, path: bytes) -> None:
        parent, _, name = path.rpartition(b"/")
        info = tarfile.TarInfo(_name(parent + b"/.wh." + name))
        info.uname = info.gname = ""
        append(self.tar, info)
        self.entries += 1


def write_snapshot(out: TarWriter, tree: bytes) -> None:
    """The whole rootfs, root directory first, hardlinks as tar hardlinks."""
    own, _ = read_dir(out.store, tree)
    out.add(b"/", own or M.EntryMeta("d", 0o755, 0, 0, 0), None)
    for path, node in walk(out.store, tree):
        link = leader_path(node.meta.link) if node.meta.link else None
        out.add(path, node.meta, node.oid, link)


def _chain(store, tree: bytes, path: bytes) -> list[Node]:
    """The entries from / down to ``path`` (a real path), as far as they exist."""
    nodes: list[Node] = []
    for part in path.strip(b"/").split(b"/"):
        if nodes:
            if nodes[-1].meta.kind != "d":
                break
            tree = nodes[-1].tree
        node = next((n for n in read_dir(store, tree)[1] if n.name == part), None)
        if node is None:
            break
        nodes.append(node)
    return nodes


def _lookup(store, tree: bytes, path: bytes) -> Node | None:
    nodes = _chain(store, tree, path)
    return nodes[-1] if len(nodes) == path.strip(b"/").count(b"/") + 1 else None


def _leader(store, tree: bytes, link: bytes) -> Node:
    """The entry a hardlink's leader path (real names) names in ``tree``."""
    node = _lookup(store, tree, link)
    if node is None:
        raise CorruptStore(f"hardlink target {_name(link)} is missing from the snapshot")
    return node


def _ensure_parents(out: TarWriter, new: bytes, written: set[bytes], path: bytes) -> None:
    """Write the parents of ``path`` not written yet, outermost first, from one walk
    down the ``new`` tree (a deep path may lack thousands of them)."""
    missing = []
    parent = path.rpartition(b"/")[0]
    while parent and parent not in written:
        missing.append(parent)
        parent = parent.rpartition(b"/")[0]
    if not missing:
        return
    nodes = _chain(out.store, new, missing[0])
    for parent in reversed(missing):
        level = parent.count(b"/")  # "/a" is nodes[0]
        if level <= len(nodes):
            out.add(parent, nodes[level - 1].meta, None)
            written.add(parent)


def _groups(store, tree: bytes) -> dict[bytes, list[tuple[bytes, Node]]]:
    """Each hardlink leader of ``tree`` (a real path) -> the other members of its group."""
    groups: dict[bytes, list[tuple[bytes, Node]]] = {}
    for path, node in walk(store, tree):
        if node.meta.link:
            groups.setdefault(leader_path(node.meta.link), []).append((path, node))
    return groups


def write_layer(out: TarWriter, old: bytes | None, new: bytes) -> int:
    """The changes from rootfs ``old`` to ``new`` as an OCI layer; returns entries written.

    Parent directories of changed entries are included with their metadata (as
    docker does) so extractors never invent them; a hardlink whose leader is not in
    the layer brings its leader along, so every link resolves inside the layer, and
    with it the rest of its group: an extractor makes the leader a new file, and a
    member left out would stay linked to the old one.
    """
    written: set[bytes] = set()
    gone: list[bytes] = []
    groups: dict[bytes, list[tuple[bytes, Node]]] | None = None  # leader -> members, when first needed
    store = out.store
    own = read_dir(store, new)[0]
    if own is not None and (old is None or read_dir(store, old)[0] != own):
        out.add(b"/", own, None)

    for change in diff_trees(store, old, new, include_mtime=True):
        path = change.path
        if any(path.startswith(g + b"/") for g in gone):
            continue  # below a deleted or replaced directory: covered already
        if change.status == "D":
            _ensure_parents(out, new, written, path)
            out.whiteout(path)
            gone.append(path)
            continue
        if change.status == "T" and change.old is not None and change.old.meta.kind == "d":
            gone.append(path)
        _ensure_parents(out, new, written, path)
        node = change.new
        assert node is not None  # A, M and T have a new side
        link = None
        if node.meta.link:
            link = leader_path(node.meta.link)
            if link not in written:
                leader = _leader(store, new, link)
                _ensure_parents(out, new, written, link)
                out.add(link, leader.meta, leader.oid)
                written.add(link)
                if groups is None:
                    groups = _groups(store, new)
                for member, member_node in groups.get(link, []):
                    if member != path and member not in written:
                        _ensure_parents(out, new, written, member)
                        out.add(member, member_node.meta, member_node.oid, link)
                        written.add(member)
        if path not in written:
            out.add(path, node.meta, node.oid, link)
            written.add(path)
    return out.entries
