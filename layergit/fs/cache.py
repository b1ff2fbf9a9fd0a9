"""The materialised cache: rootfs directories that overlayfs (and checkout -H) can use.

Mounting needs directories, not git objects. Like OSTree's bare repositories, we
keep every file once in an object farm, ``cache/objects/XX/KEY``, where KEY hashes
the file's content id *and* all of its metadata (a hardlink shares its inode's
owner, mode, mtime and xattrs, so those must be part of the identity). A
materialised rootfs, ``cache/rootfs/TREE``, is a directory tree whose files are
hardlinks into the farm: a commit seen before costs nothing, a new one costs its
directories, a link per entry and the files that are new.

Trees are built under a temporary name and renamed into place, so a directory at
``cache/rootfs/TREE`` is always complete. Nothing there is modified afterwards;
``verify`` (lg fsck) checks that, and ``prune`` (lg gc) drops what no image needs
(farm objects whose link count fell to one). Measured on the Debian minbase
(6,768 entries): a hardlink farm checkout costs about as much as ``cp -al``; the
alternative, one overlay lower per layer, makes every lookup walk the layer stack.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypeVar

from ..errors import LgError
from ..removal import remove_tree
from ..store import meta as M
from ..store.rawobj import OBJ_BLOB, STREAM_FROM, object_id
from ..store.snapshot import Node, read_dir
from ..store.store import verified_blob
from .capture import entry_meta
from .checkout import (
    NEW_FILE,
    CheckoutPolicy,
    CheckoutResult,
    DirectoryWriter,
    Specials,
    TreeWriter,
    materialise_into,
)
from .content import BlobReader, SparseWriter, file_blob_id, file_chunks, read_whole
from .pieces import Piece, plan, write_pieces
from .safeio import DIR_FLAGS, WINDOW, DirStack, open_below, open_dir, open_file, read_xattrs

if TYPE_CHECKING:
    from .farmwriter import FarmProcess

_T = TypeVar("_T")


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
        try:
            if self._process is not None:
                self._process.close()
        finally:
            self._release()

    def abandon(self) -> None:
        """Stop without waiting for the files handed over: the import or commit failed,
        and its own failure, not a full disk meeting those files, is the one to report."""
        try:
            if self._process is not None:
                self._process.abandon()
        finally:
            self._release()

    def _release(self) -> None:
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
    A big file's holes are kept (see _copy), as writing it from the store keeps them.
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
            return _copy(src, out, st.st_size)
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


def _copy(src: int, out: int, size: int) -> int:
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


class RootfsClone(TreeWriter):
    """A hardlink checkout made from a materialised rootfs, as ``cp -al`` makes one.

    A checkout that keeps every entry as the image has it (no policy, or
    Specials.KEEP) links exactly the farm objects the cached rootfs links, so walking
    that directory gives the same tree as walking the snapshot's git trees, without
    reading, parsing and hashing a metadata line per entry: what ``ostree checkout -H``
    costs. The cached rootfs is lg's own and trusted as lg run trusts it (its
    directories are what containers mount); nothing is followed out of it, and its
    directories' metadata is copied as read from them.

    Only for root of the host's user namespace, and a cached tree built without
    warnings (see MaterialisedCache.hardlink_checkout). An entry whose inode has all the
    links its filesystem allows gets a private copy. Privileged entries are not counted
    here (CheckoutResult.privileged is None).
    """

    def __init__(self, store, source: str, policy: CheckoutPolicy | None):
        super().__init__(store, policy)
        self._source = source
        self._src = -1  # the source tree's root while cloning
        self._pieces: list[Piece[tuple[bytes, ...], tuple[bytes, bool]]] = []
        self.result.privileged = None

    def directory(self, fd: int, tree: bytes) -> M.EntryMeta | None:
        """Clone the cached tree in pieces, by two processes when it is big enough
        (fs.pieces): linking is half system calls, half Python."""
        self._src = os.open(self._source, DIR_FLAGS)
        try:
            own = entry_meta(os.fstat(self._src), read_xattrs(self._src, b".", self._src))
            top: tuple[bytes, ...] = ()
            planned = plan(top, _listing(self._src), _listed_dir, self._expand)
            self._pieces = planned.pieces
            write_pieces(self, planned)
            for parts in sorted(planned.opened, key=len, reverse=True):
                self._at(parts, self._copy_dir_meta)
            return own
        finally:
            os.close(self._src)

    def _at(self, parts: tuple[bytes, ...], work: Callable[[int, int], _T]) -> _T:
        """``work(source, destination)`` on the directory ``parts`` of both trees."""
        src = open_below(self._src, list(parts))
        try:
            dest = self._open_path(list(parts))
            try:
                return work(src, dest)
            finally:
                os.close(dest)
        finally:
            os.close(src)

    def _expand(self, parts: tuple[bytes, ...], entries: list[_Listed], budget: int) -> list[_Below]:
        def make(src: int, dest: int) -> list[_Below]:
            made: list[_Below] = []
            left = budget
            for i, (name, is_dir) in enumerate(entries):
                if is_dir:
                    self.result.entries += 1
                    os.mkdir(name, 0o700, dir_fd=dest)
                    listed = None
                    if left > 0:
                        below = open_dir(src, name)
                        try:
                            listed = _listing(below)
                        finally:
                            os.close(below)
                        left -= len(listed)
                    made.append((i, parts + (name,), listed))
            return made

        return self._at(parts, make)

    def take(self, number: int) -> None:
        piece = self._pieces[number]

        def write(src: int, dest: int) -> None:
            entries = piece.entries if piece.entries is not None else _listing(src)  # None: unread
            if piece.whole:
                self._clone_below(src, dest, entries)
                self._copy_dir_meta(src, dest)
            else:
                for name, _ in entries:
                    self._clone_entry(src, dest, name)

        self._at(piece.place, write)

    def _clone_below(self, src: int, dest: int, entries: list[tuple[bytes, bool]]) -> None:
        """Clone ``entries`` of the source directory ``src`` and everything below them."""
        with DirStack(src, WINDOW // 2) as sources, DirStack(dest, WINDOW // 2) as dests:
            pending = [iter(entries)]
            while True:
                item = next(pending[-1], None)
                if item is None:
                    pending.pop()
                    if not pending:
                        return
                    self._copy_dir_meta(sources.fd, dests.fd)
                    sources.pop()
                    dests.pop()
                    continue
                name, is_dir = item
                if is_dir:
                    self.result.entries += 1
                    os.mkdir(name, 0o700, dir_fd=dests.fd)
                    sources.push(open_dir(sources.fd, name), name)
                    dests.push(open_dir(dests.fd, name), name)
                    pending.append(iter(_listing(sources.fd)))
                else:
                    self._clone_entry(sources.fd, dests.fd, name)

    def _clone_entry(self, src: int, dest: int, name: bytes) -> None:
        self.result.entries += 1
        try:
            os.link(name, name, src_dir_fd=src, dst_dir_fd=dest, follow_symlinks=False)
        except OSError as exc:
            if exc.errno != errno.EMLINK:
                raise
            self._private_copy(src, dest, name)

    def forked(self) -> None:
        self.result = CheckoutResult(privileged=None)

    def ledger(self) -> CheckoutResult:
        return self.result

    def merge(self, ledger: CheckoutResult) -> None:
        self.result.add(ledger)

    def answer(self, question: None) -> None:
        return None

    def join(self, answer: None) -> None:
        """Nothing waits for the end: every name links the cached inode itself."""

    def _copy_dir_meta(self, src: int, dest: int) -> None:
        self.apply_meta(dest, b".", entry_meta(os.fstat(src), read_xattrs(src, b".", src)), dest)

    def _private_copy(self, src: int, dest: int, name: bytes) -> None:
        """A copy of its own for an entry whose cached inode has all the links its
        filesystem allows (ext4: 65,000; an image can hold that many alike files), made
        from that inode with its metadata, as FarmWriter makes one from the store."""
        st = os.stat(name, dir_fd=src, follow_symlinks=False)
        meta = entry_meta(st, read_xattrs(src, name))
        if stat.S_ISREG(st.st_mode):
            fd, st = open_file(src, name, st)
            try:
                out = os.open(name, NEW_FILE, 0o600, dir_fd=dest)
                try:
                    _copy(fd, out, st.st_size)
                    self.apply_meta(dest, name, meta, out)
                finally:
                    os.close(out)
            finally:
                os.close(fd)
            return
        if stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(name, dir_fd=src), name, dir_fd=dest)
        else:  # a device node, fifo or socket: made as the cache has it (root only comes here)
            os.mknod(name, stat.S_IFMT(st.st_mode) | 0o600, st.st_rdev, dir_fd=dest)
        self.apply_meta(dest, name, meta, None)


_WARNINGS_MAX = 64 << 10  # a marker longer than this is not lg's: read as one warning


def _read_warnings(path: str) -> list[str]:
    try:
        with open(path, "rb") as f:
            text = f.read(_WARNINGS_MAX + 1)
    except FileNotFoundError:
        return []
    lines = text[:_WARNINGS_MAX].decode(errors="replace").splitlines()
    return lines or ["the cached tree's build warned"]


def _write_warnings(path: str, warnings: list[str]) -> None:
    tmp = f"{path}.{os.getpid()}"
    with open(tmp, "w") as f:
        f.write("\n".join(w.replace("\n", " ") for w in warnings) + "\n")
    os.replace(tmp, path)


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _fully_privileged() -> bool:
    """Root of the host's user namespace: whatever a cached tree could not be given (a
    device node, an owner outside a user namespace's map) is then never missing."""
    if os.geteuid() != 0:
        return False
    try:
        with open("/proc/self/uid_map") as f:
            return f.read().split() == ["0", "0", "4294967295"]
    except OSError:
        return False


def _listing(fd: int) -> list[tuple[bytes, bool]]:
    """A directory's entries as (name, is a directory), read whole so no fd stays open."""
    with os.scandir(fd) as it:
        return [(os.fsencode(e.name), e.is_dir(follow_symlinks=False)) for e in it]


def _listed_dir(entry: tuple[bytes, bool]) -> bool:
    return entry[1]


# A subdirectory made while planning (fs.pieces.plan): its index, its names from the root, its listing.
_Listed = tuple[bytes, bool]  # (name, is a directory)
_Below = tuple[int, tuple[bytes, ...], list[_Listed] | None]


@dataclass(frozen=True)
class CacheEntry:
    tree: str
    path: str


class MaterialisedCache:
    def __init__(self, cache_dir: str):
        self.rootfs_dir = os.path.join(cache_dir, "rootfs")
        self.objects_dir = os.path.join(cache_dir, "objects")

    def path(self, tree: bytes) -> str:
        return os.path.join(self.rootfs_dir, tree.hex())

    def has(self, tree: bytes) -> bool:
        return os.path.isdir(self.path(tree))

    def materialise(self, store, tree: bytes) -> str:
        """The cached rootfs directory for snapshot ``tree``, built if missing."""
        final = self.path(tree)
        return final if os.path.isdir(final) else self._materialised(store, tree)[0]

    def _materialised(self, store, tree: bytes) -> tuple[str, list[str]]:
        """materialise(), and what building the tree had to leave out (device nodes,
        owners, xattrs this host or filesystem refused), whichever command built it: the
        warnings are kept beside the tree (``.warned-TREE``), written before the tree
        takes its name, so a tree is never there without them."""
        private_dir(self.rootfs_dir)
        final = self.path(tree)
        marker = os.path.join(self.rootfs_dir, f".warned-{tree.hex()}")
        if os.path.isdir(final):
            return final, _read_warnings(marker)
        tmp = os.path.join(self.rootfs_dir, f".tmp-{tree.hex()}-{os.getpid()}")
        built = self._farm_checkout(store, tree, tmp, None)  # exact: the root's own mode is the container's /
        if built.warnings:
            _write_warnings(marker, built.warnings)
        else:
            _unlink_quietly(marker)  # left by a pruned tree built elsewhere
        try:
            os.rename(tmp, final)
        except OSError as exc:  # another process finished the same tree first
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
            remove_tree(tmp)
        return final, _read_warnings(marker)

    def copies(self, store) -> FarmCopies | None:
        """The farm as a copy checkout's source of file bytes (None when there is none)."""
        try:
            return FarmCopies(store, self.objects_dir)
        except FileNotFoundError:
            return None

    @contextmanager
    def reads(self) -> Iterator[FarmReads | None]:
        """The farm as an export's source of file bytes (None when there is none)."""
        try:
            farm = FarmReads(self.objects_dir)
        except FileNotFoundError:
            yield None
            return
        try:
            yield farm
        finally:
            farm.close()

    def deposit(self, store) -> FarmDeposit:
        """A FarmDeposit into this cache's farm, for an import or a commit."""
        return FarmDeposit(store, self.objects_dir)

    def hardlink_checkout(
        self, store, tree: bytes, dest: str, policy: CheckoutPolicy | None
    ) -> CheckoutResult:
        """Check ``tree`` out into ``dest`` with every file a hardlink into the farm.

        A user's checkout that keeps every entry is cloned from the cached rootfs
        (RootfsClone), which it materialises first if this is the tree's first use:
        the first checkout costs a materialisation more, every later one a ``cp -al``.
        Not when building the cached tree had to leave something out (it then says what,
        as the walk does), nor for root of a user namespace, whose cached trees may lack
        what it could not make.
        """
        private_dir(self.objects_dir)  # tightened if an older lg left it wider, as below
        if policy is not None and policy.specials is Specials.KEEP and _fully_privileged():
            source, warnings = self._materialised(store, tree)
            if not warnings:  # else the walk below says what it could not make, as the build did
                return materialise_into(RootfsClone(store, source, policy), tree, dest)
        return self._farm_checkout(store, tree, dest, policy)

    def _farm_checkout(
        self, store, tree: bytes, dest: str, policy: CheckoutPolicy | None
    ) -> CheckoutResult:
        """Walk the snapshot's trees, linking each file to its farm object (made if missing)."""
        private_dir(self.objects_dir)
        writer = FarmWriter(store, self.objects_dir, policy)
        try:
            return materialise_into(writer, tree, dest)
        finally:
            writer.close()

    def entries(self) -> list[CacheEntry]:
        try:
            names = os.listdir(self.rootfs_dir)
        except FileNotFoundError:
            return []
        return [
            CacheEntry(n, os.path.join(self.rootfs_dir, n)) for n in sorted(names) if not n.startswith(".")
        ]

    def verify(self, store, entry: CacheEntry) -> list[str]:
        """Differences between a cached rootfs and its snapshot (empty when intact)."""
        problems: list[str] = []
        fd = os.open(entry.path, DIR_FLAGS)
        try:
            with DirStack(fd) as dirs:  # depth first without recursion: trees nest deep
                pending = [self._verify_dir(store, bytes.fromhex(entry.tree), dirs, b"", problems)]
                while pending:
                    below = next(pending[-1], None)
                    if below is None:
                        pending.pop()
                        if pending:
                            dirs.pop()
                        continue
                    node, child = below
                    dirs.push(os.open(node.name, DIR_FLAGS, dir_fd=dirs.fd), node.name)
                    pending.append(self._verify_dir(store, node.tree, dirs, child, problems))
        finally:
            os.close(fd)
        return problems

    def _verify_dir(
        self, store, tree: bytes, dirs: DirStack, path: bytes, problems: list[str]
    ) -> Iterator[tuple[Node, bytes]]:
        """Check the entries of the directory ``dirs`` is at; yields each subdirectory
        (node, path) for the caller to check, with ``dirs`` moved down and back up."""
        fd = dirs.fd
        _, nodes = read_dir(store, tree)
        on_disk = {os.fsencode(n) for n in os.listdir(fd)}
        expected = {n.name for n in nodes}
        for extra in sorted(on_disk - expected):
            problems.append(f"{(path + b'/' + extra).decode(errors='replace')}: not in the snapshot")
        for node in nodes:
            child = path + b"/" + node.name
            where = child.decode(errors="replace")
            if node.name not in on_disk:
                problems.append(f"{where}: missing")
                continue
            st = os.stat(node.name, dir_fd=fd, follow_symlinks=False)
            m = node.meta
            if (
                M.TYPE_CHARS.get(stat.S_IFMT(st.st_mode)) != m.kind
                or (m.kind != "l" and stat.S_IMODE(st.st_mode) != m.mode)
                or (st.st_uid, st.st_gid) != (m.uid, m.gid)
                or st.st_mtime_ns != m.mtime_ns
            ):
                problems.append(f"{where}: metadata differs from the snapshot")
                continue
            if m.kind == "d":
                yield node, child
                fd = dirs.fd  # the same directory, perhaps reopened (DirStack)
            elif m.kind == "f":
                content = os.open(node.name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
                try:
                    if file_blob_id(content, node.name) != node.oid:
                        problems.append(f"{where}: content differs from the snapshot")
                finally:
                    os.close(content)
            elif m.kind == "l" and object_id(OBJ_BLOB, os.readlink(node.name, dir_fd=fd)) != node.oid:
                problems.append(f"{where}: link target differs from the snapshot")

    def discard(self, tree: bytes) -> None:
        """Remove the cached tree ``tree`` if it is there (its farm objects stay until a
        prune)."""
        import secrets  # gc and a failed import come here: not on every command's start-up

        # Out of its name first: a removal killed half-way must not leave a partial tree
        # where materialise (and a checkout -H clone of it) takes it as complete.
        unique = f"{tree.hex()}-gc{secrets.token_hex(4)}-{os.getpid()}"  # the sweep reads the pid
        going = os.path.join(self.rootfs_dir, f".tmp-{unique}")
        try:
            os.rename(self.path(tree), going)
        except FileNotFoundError:  # another command's failed import removed it first
            return
        remove_tree(going)

    def prune(self, keep: set[bytes]) -> tuple[int, int]:
        """Remove cached trees not in ``keep`` and farm objects nothing links to.

        Returns (trees removed, objects removed).
        """
        trees = 0
        for entry in self.entries():
            if bytes.fromhex(entry.tree) not in keep:
                self.discard(bytes.fromhex(entry.tree))
                trees += 1
        for name in os.listdir(self.rootfs_dir) if os.path.isdir(self.rootfs_dir) else []:
            if name.startswith(".tmp-") and not _pid_alive(name.rsplit("-", 1)[-1]):
                remove_tree(os.path.join(self.rootfs_dir, name))
            elif name.startswith(".warned-") and not os.path.isdir(os.path.join(self.rootfs_dir, name[8:])):
                _unlink_quietly(os.path.join(self.rootfs_dir, name))  # its tree is gone
        objects = 0
        for dirpath, _, files in os.walk(self.objects_dir):
            for f in files:
                path = os.path.join(dirpath, f)
                if f.startswith("tmp-") or os.lstat(path).st_nlink == 1:
                    os.unlink(path)
                    objects += 1
        return trees, objects


def _pid_alive(pid: str) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True
