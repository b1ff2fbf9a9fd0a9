"""The object farm: every file of every materialised rootfs once, ``cache/objects/XX/KEY``.

KEY hashes the file's content id *and* all of its metadata (a hardlink shares its
inode's owner, mode, mtime and xattrs, so those must be part of the identity), so
one object serves every tree that holds that file as it is. Objects come from
walks of a snapshot (:class:`FarmWriter`, a first run's materialising and
``checkout -H``), and from imports and commits as they read files
(:class:`FarmDeposit`); copy checkouts and exports read them back
(:class:`FarmCopies`, :class:`FarmReads`). fs.cache keeps the rootfs trees that link
them and prunes the objects no tree links.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Protocol

from ..errors import LgError
from ..store import meta as M
from ..store.rawobj import OBJ_BLOB, STREAM_FROM, object_id
from ..store.snapshot import Node
from ..store.store import verified_blob
from .checkout import (
    CheckoutPolicy,
    DirectoryWriter,
)
from .content import BlobReader, SparseWriter, file_blob_id, file_chunks, read_whole
from .safeio import DIR_FLAGS

if TYPE_CHECKING:
    from .farmwriter import FarmProcess

def object_key(node: Node) -> str:
    """The farm name for an entry: content id plus every bit of metadata, not the name."""
    return _key(node.oid, node.meta)


def _key(oid: bytes | None, m: M.EntryMeta) -> str:
    if m.link is not None:  # a hardlink's leader is where it sits in a tree, not what it is
        m = M.EntryMeta(m.kind, m.mode, m.uid, m.gid, m.mtime_ns, m.rdev, None, m.xattrs)
    line = M.format_line(b"", m)
    return hashlib.sha256((oid or b"") + line).hexdigest()


def private_dir(path: str) -> None:
    """Make ``path`` (0700), and tighten it to 0700 if it is wider (made by an older lg).

    Every way into the farm's inodes (setuid binaries and device nodes among them)
    passes through cache/rootfs or cache/objects, or through a checkout -H
    directory, which its own policy guards; so no other user may enter these two.
    """
    os.makedirs(path, mode=0o700, exist_ok=True)
    if stat.S_IMODE(os.stat(path).st_mode) != 0o700:
        os.chmod(path, 0o700)


class FarmWriter(DirectoryWriter):
    """A DirectoryWriter whose files are hardlinks to (new or existing) farm objects.

    A walk's two processes (fs.pieces) may make the same farm object at once: each
    makes it under a name with its pid, and the second link finds the first's
    (:meth:`entry`). An import materialises beside its sealing thread, so in one
    process.

    A policy that clears privileges changes the metadata and so the object key:
    such a checkout links to objects of its own, never to the privileged ones.
    """

    def __init__(self, store, objects_dir: str, policy: CheckoutPolicy | None):
        super().__init__(store, policy)
        self._objects = objects_dir
        self._fan_fds: dict[str, int] = {}
        self._making: Node | None = None  # the entry whose farm object is being created

    def close(self) -> None:
        for fd in self._fan_fds.values():
            os.close(fd)
        self._fan_fds.clear()

    def _fan(self, key: str) -> int:
        """The open fan-out directory of ``key`` (cache/objects/XX), made if missing. Something
        else in its place (a file, a symlink) is damage to say, not an object that exists."""
        fd = self._fan_fds.get(key[:2])
        if fd is None:
            path = os.path.join(self._objects, key[:2])
            try:
                try:  # there already, but for a farm's first objects: one call, not makedirs' three
                    fd = os.open(path, DIR_FLAGS)
                except FileNotFoundError:
                    os.makedirs(path, mode=0o700, exist_ok=True)
                    fd = os.open(path, DIR_FLAGS)
            except OSError as exc:
                if not isinstance(exc, (FileExistsError, NotADirectoryError)) and exc.errno != errno.ELOOP:
                    raise
                raise LgError(f"{path} is not a directory; the file cache is damaged"  # a file, a symlink
                              " (remove that path: lg makes it again)") from None
            self._fan_fds[key[:2]] = fd
        return fd

    def entry(self, fd: int, node: Node) -> None:
        self.result.entries += 1
        admitted = self.admit(node)
        if admitted is None:
            return
        node = admitted
        key = object_key(node)
        fan = self._fan(key)
        name = key[2:].encode()
        try:  # the object is there (an import put it there, or an earlier checkout): one call
            self._link(fan, name, fd, node)
        except FileNotFoundError:
            tmp = b"tmp-%d-%s" % (os.getpid(), name)
            try:
                os.unlink(tmp, dir_fd=fan)  # left by a killed process that had our pid
            except FileNotFoundError:
                pass
            self._making = node
            try:
                made = self.create(fan, tmp, node)
            finally:
                self._making = None
            if not made:
                return
            # link, never rename: an object another process made meanwhile is kept (replacing
            # it under a concurrent link() can make that link fail with ENOENT).
            try:
                os.link(tmp, name, src_dir_fd=fan, dst_dir_fd=fan, follow_symlinks=False)
            except FileExistsError:
                pass
            os.unlink(tmp, dir_fd=fan)
            self._link(fan, name, fd, node)
        self.written(node)

    def shown(self, name: bytes) -> str:
        """The image path of the entry whose farm object is being made, not the object's name."""
        if self._making is None:
            return super().shown(name)
        return self._stored_path(self._making).decode(errors="replace")

    def _link(self, fan: int, name: bytes, fd: int, node: Node) -> None:
        try:
            os.link(name, node.name, src_dir_fd=fan, dst_dir_fd=fd, follow_symlinks=False)
        except OSError as exc:
            if exc.errno != errno.EMLINK:
                raise
            self.create(fd, node.name, node)  # too many links to one inode: a private copy


class BlobWriter(Protocol):
    """What a deposit stores blobs through (store.Writer)."""

    def put_blob(self, data: bytes) -> bytes: ...

    def put_blob_stream(self, size: int, chunks: Iterable[bytes | memoryview]) -> bytes: ...


class FarmFile(SparseWriter):
    """One file on its way into the farm: its bytes, then its blob id once the store
    has hashed them (None if that failed: the file is dropped)."""

    oid: bytes | None = None


class FarmDeposit(FarmWriter):
    """Regular files written into the farm while an import or a commit reads and
    hashes them, as podman unpacks at import: materialising the image afterwards finds
    each file's object already there and makes only directories and links, instead of
    reading every blob back from the pack.

    Once a deposit proves big (HAND_OVER_AFTER files), small files (under STREAM_FROM)
    go to a writer process (fs.farmwriter, which says why not a thread) while lg goes
    on parsing and hashing; the first ones are written here, so a commit of a few
    hundred files starts no process (starting one costs about 0.1 s, what 600 small
    files cost written here). A big file is written here as it streams: its blob id is known
    only at its end, and a sparse one would push its holes through the pipe. The two
    writers share nothing but the farm, where an object made twice is linked once.

    An object gets its key from the blob id the store computed over the very bytes
    written here, so it is right by construction. An import or commit that fails
    later leaves the objects it wrote; nothing links to them (one link each), so no
    rootfs uses them and ``prune`` (lg gc) removes them, as it does objects only an
    overwritten file of a lower layer had.
    """

    HAND_OVER_AFTER = 512

    def __init__(self, store, objects_dir: str, hand_over: bool = True):
        private_dir(objects_dir)
        super().__init__(store, objects_dir, None)
        self._dir = os.open(objects_dir, DIR_FLAGS)
        self._count = 0
        self._inline = 0 if hand_over else -1  # files written here so far; -1: never hand over
        self._process: FarmProcess | None = None

    def close(self) -> None:
        """Wait for the files handed over; raise what stopped their writer (a full disk)."""
        self._end(lambda process: process.close())

    def abandon(self) -> None:
        """Stop without waiting for the files handed over: the import or commit failed,
        and its own failure, not a full disk meeting those files, is the one to report."""
        self._end(lambda process: process.abandon())

    def _end(self, end_writer: Callable[[FarmProcess], None]) -> None:
        """End the writer process as ``end_writer`` does (if one was started), then
        release our own fds whatever that raised."""
        try:
            if self._process is not None:
                end_writer(self._process)
        finally:
            super().close()
            os.close(self._dir)

    def put(self, meta: M.EntryMeta, data: bytes, oid: bytes) -> None:
        """A file, whole, with the blob id the store gave its bytes."""
        if self._process is None and self._inline < self.HAND_OVER_AFTER:
            self._inline += self._inline >= 0
            with self._file(meta, len(data)) as out:
                out.write(data)
                out.oid = oid
            return
        if self._process is None:
            from .farmwriter import FarmProcess

            try:
                self._process = FarmProcess(self._objects)
            except OSError:  # the interpreter cannot be started again (reached through a mount namespace)
                self._inline = -1  # so every file is written here
                self.put(meta, data, oid)
                return
        self._process.put(meta, data, oid)

    def blob(
        self, writer: BlobWriter, meta: M.EntryMeta, size: int,
        whole: Callable[[], bytes], pieces: Callable[[], Iterable[bytes | memoryview]],
    ) -> bytes:
        """Store a file's ``size`` bytes through ``writer`` as a blob and deposit them
        here under ``meta``; returns the blob id. The bytes are read once, from
        ``whole()`` below STREAM_FROM, else from ``pieces()`` as they stream (which
        fail if there are not ``size`` of them). A small file that grew while it was
        read is kept as read."""
        if size < STREAM_FROM:
            data = whole()
            oid = writer.put_blob(data)
            self.put(meta, data, oid)
            return oid
        with self._file(meta, size) as out:
            out.oid = writer.put_blob_stream(size, _teed(pieces(), out.write))
            return out.oid

    @contextmanager
    def _file(self, meta: M.EntryMeta, size: int) -> Iterator[FarmFile]:
        fd, tmp = self._create()
        try:
            out = FarmFile(fd, size >= STREAM_FROM)
            yield out
            out.finish()
            if out.oid is not None and self._metadata(tmp, meta, fd):
                key = _key(out.oid, meta)
                fan = self._fan(key)
                try:
                    if tmp is None:  # linkat(2) of an O_TMPFILE file through its /proc link
                        os.link(b"/proc/self/fd/%d" % fd, key[2:].encode(), dst_dir_fd=fan)
                    else:
                        os.link(tmp, key[2:].encode(), src_dir_fd=self._dir, dst_dir_fd=fan,
                                follow_symlinks=False)
                except FileExistsError:  # made by another writer meanwhile: the same bytes
                    pass
        finally:
            os.close(fd)
            if tmp is not None:
                os.unlink(tmp, dir_fd=self._dir)

    def _metadata(self, tmp: bytes | None, meta: M.EntryMeta, fd: int) -> bool:
        """Give the file its metadata; False when this filesystem cannot hold it (an xattr
        too big for ext4): the file stays out of the farm, and the import or commit goes
        on, for the first run to say so (materialising, it meets the same limit)."""
        try:
            self.apply_meta(self._dir, tmp or b"(deposited file)", meta, fd)
        except LgError:
            return False
        return True

    def _create(self) -> tuple[int, bytes | None]:
        """An open, empty file for the farm: nameless (O_TMPFILE, so one that is never
        linked in vanishes when closed, and creating it costs no directory entry: a
        third of the time on ext4), else named tmp-* where the filesystem cannot."""
        try:
            return os.open(b".", os.O_WRONLY | os.O_TMPFILE | os.O_CLOEXEC, 0o600, dir_fd=self._dir), None
        except OSError as exc:
            if exc.errno not in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL):
                raise
        self._count += 1
        tmp = b"tmp-%d-deposit-%d" % (os.getpid(), self._count)
        try:
            os.unlink(tmp, dir_fd=self._dir)  # left by a killed process that had our pid
        except FileNotFoundError:
            pass
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        return os.open(tmp, flags, 0o600, dir_fd=self._dir), tmp


def _teed(
    pieces: Iterable[bytes | memoryview], tee: Callable[[bytes | memoryview], None]
) -> Iterator[bytes | memoryview]:
    for piece in pieces:
        tee(piece)
        yield piece


class _FarmObjects:
    """The farm's objects, opened by the entry they hold (content id and metadata)."""

    def __init__(self, objects_dir: str):
        self._dir = os.open(objects_dir, DIR_FLAGS)

    def close(self) -> None:
        os.close(self._dir)

    def _open(self, oid: bytes, meta: M.EntryMeta) -> tuple[int, os.stat_result] | None:
        """The object's open fd and stat, if there is one and it is a regular file."""
        key = _key(oid, meta)
        try:
            src = os.open(f"{key[:2]}/{key[2:]}", os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC,
                          dir_fd=self._dir)
        except OSError:
            return None
        st = os.fstat(src)
        if not stat.S_ISREG(st.st_mode):
            os.close(src)
            return None
        return src, st


class FarmCopies(_FarmObjects):
    """A copy checkout's source of file bytes: the farm's object for an entry, copied
    by the kernel (copy_file_range, sendfile across filesystems) instead of inflated
    from a pack and hashed, as ``ostree checkout -C`` copies its repository's files.

    The farm is trusted as ``lg run`` trusts it (its rootfs directories are what
    containers mount); its object must still be a regular file of the blob's size.
    A big file's holes are kept (see copy_object), as writing it from the store keeps them.
    Big files come from here too (they were streamed from the store and hashed): the
    size check is the same for all, and a farm object edited in place through a ``-H``
    checkout is what ``lg fsck`` reports, for a big file as for a small one.
    """

    def __init__(self, store, objects_dir: str):
        super().__init__(objects_dir)
        self._store = store

    def __call__(self, node: Node, out: int) -> int | None:
        assert node.oid is not None  # a file's node has its blob
        opened = self._open(node.oid, node.meta)
        if opened is None:
            return None
        src, st = opened
        try:
            if st.st_size != self._store.object_size(node.oid):
                return None
            return copy_object(src, out, st.st_size)
        finally:
            os.close(src)


class FarmReads(_FarmObjects):
    """An export's or a push's source of file bytes: the farm's object for an entry,
    read instead of inflated from a pack (inflating was a third of a cold push).

    Unlike a checkout's copy, what is read here is published under the commit's id
    (the manifest's revision annotation, a layer cache entry), so it is checked against
    the blob id before its first byte is used: an object edited in place through a
    ``-H`` checkout is passed over and the pack read instead. A small object is read
    once, whole; a big one is hashed in a first pass and hashed again as it streams in a
    second, both from the page cache: one changed in between (by the owner of a ``-H``
    checkout racing the export) fails the export, CorruptStore, rather than be published.
    """

    def __init__(self, objects_dir: str):
        super().__init__(objects_dir)
        self._held: int | None = None  # the big object being streamed: one at a time

    def close(self) -> None:
        self._release()
        super().close()

    def _release(self) -> None:
        if self._held is not None:
            os.close(self._held)
            self._held = None

    def open(self, oid: bytes, meta: M.EntryMeta) -> BlobReader | None:
        """The verified content of the file ``oid``/``meta``, or None to read the pack.
        A big object stays open until the next ``open`` (a tar takes one file at a time)."""
        self._release()
        opened = self._open(oid, meta)
        if opened is None:
            return None
        src, st = opened
        name = f"cache object {oid.hex()}".encode()
        try:
            if st.st_size < STREAM_FROM:
                data = read_whole(src, st.st_size, name)
                return BlobReader(st.st_size, iter((data,))) if object_id(OBJ_BLOB, data) == oid else None
            if file_blob_id(src, name) != oid:
                return None
            self._held, src = src, -1
            pieces = file_chunks(self._held, st.st_size, name)
            return BlobReader(st.st_size, verified_blob(oid, st.st_size, pieces))
        finally:
            if src >= 0:
                os.close(src)


_SHORTER = "a cache object is shorter than it was a moment ago"


def copy_object(src: int, out: int, size: int) -> int:
    """Copy the farm object ``src`` (``size`` bytes, read from its start) into the empty
    file ``out`` by the kernel. A big one (STREAM_FROM and over) may have holes, as the
    store writes them (SparseWriter): only its data is copied, extent by extent, and
    ``out`` gets its size from ftruncate, so it has the same holes."""
    if size < STREAM_FROM:
        _copy_range(src, out, 0, size)
        return size
    pos = 0
    while pos < size:
        try:
            start = os.lseek(src, pos, os.SEEK_DATA)
            end = min(os.lseek(src, start, os.SEEK_HOLE), size)
        except OSError as exc:
            if exc.errno == errno.ENXIO:  # a hole up to the end, or an object cut short
                break
            if exc.errno != errno.EINVAL:  # EINVAL: no SEEK_DATA here, so copy it all
                raise
            start, end = pos, size
        if start >= size:
            break
        if end <= start:  # a filesystem that answers nonsense: copy the rest as data
            end = size
        _copy_range(src, out, start, end)
        pos = end
    if os.fstat(src).st_size < size:  # the holes at its end would be zeros it never had
        raise LgError(_SHORTER)
    os.ftruncate(out, size)
    return size


def _copy_range(src: int, out: int, start: int, end: int) -> None:
    """Bytes ``start`` to ``end`` of ``src`` to the same place in ``out``: copy_file_range,
    or sendfile across filesystems (or on a kernel without it)."""
    pos = start
    kernel_copy = _copy_file_range
    while pos < end:
        try:
            n = kernel_copy(src, out, pos, end - pos)
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL) \
                    or kernel_copy is _sendfile:
                raise
            kernel_copy = _sendfile  # another filesystem, or a kernel without it
            continue
        if n == 0:
            raise LgError(_SHORTER)
        pos += n


def _copy_file_range(src: int, out: int, pos: int, count: int) -> int:
    return os.copy_file_range(src, out, count, pos, pos)


def _sendfile(src: int, out: int, pos: int, count: int) -> int:
    os.lseek(out, pos, os.SEEK_SET)
    return os.sendfile(out, src, pos, count)
