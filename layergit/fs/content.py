"""File content between the host and the store in bounded memory, holes kept.

A rootfs may hold a 4 GB file (a disk image, a database); reading it whole would need
4 GB of memory. Files of STREAM_FROM bytes or more therefore travel in CHUNK-sized
pieces: hashed and deflated into the pack as they are read, inflated and written out
as they come back. Smaller files, nearly all of a rootfs, keep the one-piece path,
which costs fewer calls.

Sparse files: reading asks the filesystem where the data is (SEEK_DATA/SEEK_HOLE), so
a hole costs no reads, only the hashing and deflating of its zeros (git's id covers
every byte; deflating zeros runs at several GB/s). Writing seeks over every all-zero
chunk instead of writing it and sets the size at the end, so holes come back as holes
(at CHUNK granularity) on filesystems that have them.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from typing import Protocol

from ..errors import LgError
from ..store.meta import EntryMeta
from ..store.rawobj import CHUNK, OBJ_BLOB, STREAM_FROM, object_hasher
from .safeio import open_file, read_xattrs

_ZEROS = bytes(CHUNK)


Xattrs = tuple[tuple[str, bytes], ...]


class Deposit(Protocol):
    """Where a file's bytes go besides the store (fs.farm.FarmDeposit)."""

    def blob(
        self, writer, meta: EntryMeta, size: int,
        whole: Callable[[], bytes], pieces: Callable[[], Iterable[bytes | memoryview]],
    ) -> bytes: ...


def put_file(
    writer, dirfd: int, name: bytes, expect: os.stat_result, deposit: Deposit | None = None,
    meta_for: Callable[[Xattrs], EntryMeta] | None = None,
) -> tuple[bytes, Xattrs]:
    """Store a regular file's content as a blob; returns its id and the file's xattrs,
    checking it is the inode we stat'ed (see safeio.open_file). With ``deposit`` (a
    fs.farm.FarmDeposit) the same bytes go into the farm too, under the metadata
    ``meta_for(xattrs)`` gives."""
    fd, st = open_file(dirfd, name, expect)
    try:
        xattrs = read_xattrs(dirfd, name, fd)
        size = st.st_size
        if deposit is not None:
            assert meta_for is not None
            oid = deposit.blob(writer, meta_for(xattrs), size, partial(read_whole, fd, size, name),
                               partial(file_chunks, fd, size, name))
        elif size < STREAM_FROM:
            oid = writer.put_blob(read_whole(fd, size, name))
        else:
            oid = writer.put_blob_stream(size, file_chunks(fd, size, name))
        return oid, xattrs
    finally:
        os.close(fd)


def _next_data(fd: int, pos: int, size: int) -> int:
    """Where data starts at or after ``pos``: ``size`` if only a hole follows; ``pos``
    where the filesystem cannot tell (everything is then data)."""
    try:
        return min(os.lseek(fd, pos, os.SEEK_DATA), size)
    except OSError as exc:
        if exc.errno == errno.ENXIO:
            return size
        if exc.errno in (errno.EINVAL, errno.EOPNOTSUPP):
            return pos
        raise


def _next_hole(fd: int, pos: int, size: int) -> int:
    try:
        return min(os.lseek(fd, pos, os.SEEK_HOLE), size)
    except OSError as exc:
        if exc.errno in (errno.EINVAL, errno.EOPNOTSUPP, errno.ENXIO):
            return size
        raise


def file_chunks(fd: int, size: int, name: bytes) -> Iterator[bytes | memoryview]:
    """The ``size`` bytes of an open file in pieces, its holes as zeros that cost no read.

    A file that is not ``size`` bytes long any more (written while we read it) is an
    error: the blob would be neither the old content nor the new.
    """
    zeros = memoryview(_ZEROS)
    pos = 0
    while pos < size:
        data = _next_data(fd, pos, size)
        while pos < data:
            n = min(CHUNK, data - pos)
            yield zeros[:n]
            pos += n
        hole = _next_hole(fd, pos, size) if pos < size else size
        while pos < hole:
            chunk = os.pread(fd, min(CHUNK, hole - pos), pos)
            if not chunk:
                break
            yield chunk
            pos += len(chunk)
        if pos < hole:
            break
    _same_size(fd, pos, size, name)


def read_whole(fd: int, size: int, name: bytes) -> bytes:
    """A small file's ``size`` bytes in one piece. One that grew while it was read is
    refused, as file_chunks refuses a big one: reading on to its end would let a
    process that keeps appending hold this one's memory without bound."""
    data = os.pread(fd, size, 0) if size else b""
    while len(data) < size:  # a short read (rare on a regular file)
        more = os.pread(fd, size - len(data), len(data))
        if not more:
            break
        data += more
    _same_size(fd, len(data), size, name)
    return data


def _same_size(fd: int, read: int, size: int, name: bytes) -> None:
    """Refuse a file that is not the ``size`` bytes it had when it was opened: its blob
    would be neither the old content nor the new."""
    if read != size or os.pread(fd, 1, size) or os.fstat(fd).st_size != size:
        raise LgError(f"{os.fsdecode(name)} changed size while being read; try again")


def file_blob_id(fd: int, name: bytes) -> bytes:
    """The blob id of an open file's content, read in pieces (holes unread)."""
    size = os.fstat(fd).st_size
    digest = object_hasher(OBJ_BLOB, size)
    for chunk in file_chunks(fd, size, name):
        digest.update(chunk)
    return digest.digest()


def write_blob(store, oid: bytes, fd: int) -> int:
    """Write a blob into the open, empty file ``fd``; returns its size.

    The store verifies the content as it flows; on CorruptStore the caller removes
    the file.
    """
    size, chunks = store.open_blob(oid)
    out = SparseWriter(fd, size >= STREAM_FROM)
    for chunk in chunks:
        out.write(chunk)
    return out.finish()


class SparseWriter:
    """Writes content into an open, empty file piece by piece; for a big file
    (``sparse``) it seeks over every all-zero chunk instead of writing it, and the file
    gets its size from ftruncate at the end, so a sparse file stays sparse."""

    def __init__(self, fd: int, sparse: bool):
        self._fd = fd
        self._sparse = sparse
        self._pos = self._end = 0

    def write(self, chunk: bytes | memoryview) -> None:
        n = len(chunk)
        if self._sparse and chunk == (_ZEROS if n == CHUNK else bytes(n)):
            os.lseek(self._fd, n, os.SEEK_CUR)
        else:
            view = memoryview(chunk)
            while view:
                view = view[os.write(self._fd, view):]
            self._end = self._pos + n
        self._pos += n

    def finish(self) -> int:
        """The size written; a trailing hole gets it from ftruncate (the seeks did not)."""
        if self._end != self._pos:
            os.ftruncate(self._fd, self._pos)
        return self._pos


class BlobReader:
    """A blob's ``size`` bytes of content, given as pieces (store.open_blob's, verified as
    they flow, or fs.farm.FarmReads', verified before), as a file to ``read`` (for
    tarfile): ``read(n)`` gives exactly ``n`` bytes until the end, a whole piece without
    copying it."""

    def __init__(self, size: int, chunks: Iterator[bytes | memoryview]):
        self.size, self._chunks = size, chunks
        self._pending: bytes | memoryview = b""

    def read(self, n: int = -1, /) -> bytes | memoryview:
        if n < 0:
            n = self.size  # all that is left: never more than the whole
        parts = []
        while n > 0:
            if not self._pending:
                chunk = next(self._chunks, None)
                if chunk is None:
                    break
                self._pending = chunk
            piece = self._pending if len(self._pending) <= n else self._pending[:n]
            self._pending = self._pending[len(piece):]
            parts.append(piece)
            n -= len(piece)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def finish(self) -> None:
        """Drain what is left: the store's check of the content runs at its end."""
        for _ in self._chunks:
            pass
        self._pending = b""
