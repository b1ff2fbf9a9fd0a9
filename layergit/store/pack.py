"""Writing new objects as one git packfile (version 2) with its index.

Why not libgit2's object writer: it deflates each object with zlib into its own
loose file, which made a commit of a Debian rootfs slower than ostree's. ISA-L's
deflate (the ``isal`` package) at level 1 compresses as tightly as zlib -1 at several
times the speed, and one sequential pack file replaces thousands of small files.
The result is an ordinary pack that git, libgit2 and dulwich read; ``lg gc`` repacks
the small packs many commits leave behind.

Objects given whole are deflated and written by a second thread, in batches, while
the caller goes on: an import or pull parses the next tar members and hashes them
meanwhile, and ISA-L deflates without the GIL. Deflating had been a third of an
import's time on the one thread that did everything else too.

Nothing is visible until :meth:`PackWriter.finish` renames the ``.idx`` into place
(git ignores a pack without its index), so a killed writer leaves only a temporary
file that the next ``lg gc`` removes.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Callable, Iterable
from functools import partial

from isal import isal_zlib

from ..background import Background
from .packread import PendingPack
from .rawobj import object_hasher, object_id

_COMPRESSION_LEVEL = 1
# Whole objects are handed to the deflate thread in batches of at least this many bytes
# (one hand-over per small object would cost more than deflating it), closed by the
# object that fills them: one under STREAM_FROM (8 MiB), or a tree. At most _DEPTH
# batches wait and one is being written: about 50 MiB at worst, 5 MiB for files as
# most images hold them.
_BATCH_BYTES = 1 << 20
_DEPTH = 4
_QUEUED = -1  # the entry of an object handed over and not yet written
# The disk writes of a big pack are started each time this many bytes have been appended
# (see PackWriter._write_back), so that finish's fsync does not write it all at the end.
_WRITE_BACK_BYTES = 8 << 20


class _Streamed:
    """The record of one object :meth:`PackWriter.add_stream` streams, written by the
    deflate thread: every method runs there, in the order they were queued, while that
    thread owns the file and the offsets. It ends kept (with the id the caller hashed)
    or cut off again (a duplicate, or a source that went wrong); one whose ending never
    came (its caller interrupted) is cut off by whatever the pack writes next."""

    def __init__(self, pack: PackWriter, obj_type: int, size: int):
        self._pack = pack
        self._header = _object_header(obj_type, size)
        self._start = self._end = self._crc = 0
        self._deflate = isal_zlib.compressobj(_COMPRESSION_LEVEL)

    def begin(self) -> None:
        self._pack._end_open_record()
        self._pack._open_record = self
        self._start = self._end = self._pack._offset
        self._crc = 0
        self._append(self._header)

    def more(self, chunk: bytes | memoryview) -> None:
        self._append(self._deflate.compress(chunk))

    def keep(self, oid: bytes) -> None:
        self._append(self._deflate.flush())
        pack = self._pack
        pack._entries[oid] = self._start << 32 | self._crc
        pack._offset = self._end
        pack._open_record = None
        pack._write_back(self._end)

    def cut(self) -> None:
        f = self._pack._file
        f.seek(self._start)
        f.truncate()
        self._pack._open_record = None

    def _append(self, data: bytes) -> None:
        self._pack._file.write(data)
        self._crc = isal_zlib.crc32(data, self._crc)
        self._end += len(data)


class GivenUp(Exception):
    """finish stopped, having installed nothing: the pack was given up (PackWriter.give_up)."""


def _immutable(chunk: bytes | memoryview) -> bool:
    """bytes, or a view of bytes: nothing can change it once given."""
    return isinstance(chunk, bytes) or (isinstance(chunk, memoryview) and type(chunk.obj) is bytes)


def _object_header(obj_type: int, size: int) -> bytes:
    out = bytearray()
    byte = (obj_type << 4) | (size & 0x0F)
    size >>= 4
    while size:
        out.append(byte | 0x80)
        byte = size & 0x7F
        size >>= 7
    out.append(byte)
    return bytes(out)


class PackWriter:
    """Accumulates objects into a temporary pack under ``pack_dir``."""

    def __init__(self, pack_dir: str):
        self._dir = pack_dir
        fd_path = os.path.join(pack_dir, f"tmp_pack_lg_{os.getpid()}_{id(self):x}")
        self._tmp = fd_path
        self._file = open(fd_path, "w+b")
        self._file.write(b"PACK" + struct.pack(">II", 2, 0))
        # oid -> offset << 32 | crc32, or _QUEUED: one int, not a tuple of two (about 85 bytes
        # less an object; an import of a million files writes a million)
        self._entries: dict[bytes, int] = {}
        self._offset = 12
        self._written_back = 0  # the offset up to which the disk writes have been started
        self._batch: list[tuple[bytes, int, bytes]] = []  # (oid, type, data) not handed over yet
        self._batch_bytes = 0
        self._deflater: Background | None = None  # started by the first full batch or streamed object
        self._open_record: _Streamed | None = None  # a streamed record begun and not ended yet
        self._given_up = False  # set by give_up, from another thread than finish's

    def __contains__(self, oid: bytes) -> bool:
        return oid in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, obj_type: int, data: bytes, oid: bytes | None = None) -> bytes:
        """Append an object (unless already in this pack); returns its raw id."""
        if oid is None:
            oid = object_id(obj_type, data)
        if oid in self._entries:
            return oid
        self._entries[oid] = _QUEUED
        self._batch.append((oid, obj_type, data))
        self._batch_bytes += len(data) + 32
        if self._batch_bytes >= _BATCH_BYTES:
            self._hand_over()
        return oid

    def _hand_over(self) -> Background:
        """Give the batch gathered so far (if any) to the deflate thread, started if need
        be; returns the thread, which owns the file and the offsets until _settle."""
        if self._deflater is None:
            self._deflater = Background("pack-deflate", _DEPTH)
        if self._batch:
            batch, self._batch, self._batch_bytes = self._batch, [], 0
            self._deflater.submit(lambda: self._write(batch))
        return self._deflater

    def _write(self, batch: list[tuple[bytes, int, bytes]]) -> None:
        """Deflate and append whole objects (in the deflate thread, or the caller's
        once that thread has stopped)."""
        self._end_open_record()
        f, entries, offset = self._file, self._entries, self._offset
        for oid, obj_type, data in batch:
            record = _object_header(obj_type, len(data)) + isal_zlib.compress(data, _COMPRESSION_LEVEL)
            f.write(record)
            entries[oid] = offset << 32 | isal_zlib.crc32(record)
            offset += len(record)
        self._offset = offset
        self._write_back(offset)

    def _end_open_record(self) -> None:
        """Cut off a streamed record whose keep or cut never came (add_stream interrupted
        once its start was queued), so that what comes next starts where the pack ends
        and is indexed where it is."""
        if self._open_record is not None:
            self._open_record.cut()

    def _write_back(self, end: int) -> None:
        """Start the disk writes of what was appended before ``end``, once that is
        _WRITE_BACK_BYTES more than last time, without waiting for them. Called where a
        record ends (a batch, a streamed object kept), never inside one: a streamed
        object that turns out to be a duplicate is cut off again, and its bytes should
        not have gone to the disk first.

        finish must fsync the pack before its index makes it visible. Left to the end,
        that fsync wrote a pulled image's 100 MB pack in 0.2-0.35 s, after everything
        else and while ``lg pull`` waited; started as the pack grows, the disk writes
        overlap the import. POSIX_FADV_DONTNEED is the stdlib's way to start them: Linux
        starts writing the range's dirty pages back (what sync_file_range does, which
        Python lacks), then drops those of its pages that are clean. A range just
        written is mostly dirty; a page the kernel's flusher wrote meanwhile is dropped,
        and finish's checksum pass reads it back from the disk: a cost, never a wrong byte.
        """
        if end - self._written_back < _WRITE_BACK_BYTES:
            return
        self._file.flush()
        try:
            os.posix_fadvise(self._file.fileno(), self._written_back, end - self._written_back,
                             os.POSIX_FADV_DONTNEED)
        except OSError:
            pass  # advice only: finish's fsync writes what this did not start
        self._written_back = end

    def _settle(self) -> None:
        """Write every object handed to :meth:`add` so far, and stop the deflate thread
        (raising what stopped it): the file and the offsets are this thread's again."""
        if self._deflater is not None:
            self._deflater.close()  # left set if this raises: abort then abandons it
            self._deflater = None
        batch, self._batch, self._batch_bytes = self._batch, [], 0
        self._write(batch)

    def add_stream(
        self, obj_type: int, size: int, chunks: Iterable[bytes | memoryview], known: Callable[[bytes], bool]
    ) -> bytes:
        """Append an object of ``size`` bytes that arrive in ``chunks``, never held whole:
        each chunk is hashed here and deflated and written by the deflate thread, so the
        two overlap (a pulled image's 50 MB package list had done both on this thread,
        beside the one inflating the layer, with the second core idle). Returns its raw id.

        The chunks must not change once given: the thread reads them later, so they are
        bytes or views of bytes (a read-only view of a buffer that something else writes
        would not do). At most _DEPTH of them wait for it.

        The id is known only after the last chunk, so the record is written first and
        cut off again when the object turns out to be in this pack or ``known`` (the
        store has it). That costs a deflate and some disk for a duplicate, but one pass
        over the source, which may not be readable twice (a tar stream); a file read
        twice (hash, then write) would also cost the second read of every new file.
        Whatever goes wrong (a source that changed size, an error of the reader) cuts
        the record off too, so the pack stays well-formed. A failure of the thread (a
        full disk) is raised here or by the next write, and the pack is then aborted.
        """
        deflater = self._hand_over()
        record = _Streamed(self, obj_type, size)
        digest = object_hasher(obj_type, size)
        seen = 0
        try:
            deflater.submit(record.begin)
            for chunk in chunks:
                seen += len(chunk)
                if seen > size:
                    break
                if not _immutable(chunk):
                    raise TypeError("a streamed object's chunks must be bytes or views of bytes")
                digest.update(chunk)
                deflater.submit(partial(record.more, chunk))
            if seen != size:
                raise ValueError(f"object content was {seen} bytes, not the {size} announced")
            oid = digest.digest()
            duplicate = oid in self._entries or known(oid)
        except BaseException:
            deflater.submit(record.cut)  # behind its chunks; raises the thread's own failure instead
            raise
        if duplicate:
            deflater.submit(record.cut)
        else:
            self._entries[oid] = _QUEUED
            deflater.submit(partial(record.keep, oid))
        return oid

    def abort(self) -> None:
        """Remove the pack and index being written, as far as :meth:`finish` got."""
        if self._deflater is not None:
            self._deflater.abandon()
            self._deflater = None
        try:
            self._file.close()
        except OSError:
            pass  # flushing what is buffered fails on a full disk too; the file goes anyway
        for path in (self._tmp, self._tmp + ".idx"):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass

    def pending(self) -> PendingPack:
        """Every object added so far, readable before :meth:`finish` (which may then run
        in another thread: it touches only the header, the trailer and the index)."""
        self._settle()
        self._file.flush()
        return PendingPack(self._tmp, self._entries, self._offset)

    def finish(self, fsync: bool = True) -> str | None:
        """Seal the pack and install it with its index; returns the pack's path. Raises
        GivenUp, having installed nothing, if :meth:`give_up` came before its last look
        (just before the renames)."""
        self._settle()
        if not self._entries:
            self.abort()
            return None
        f = self._file
        f.seek(8)
        f.write(struct.pack(">I", len(self._entries)))
        f.flush()
        f.seek(0)
        digest = hashlib.sha1()
        while chunk := f.read(1 << 20):
            self._check_given_up()
            digest.update(chunk)
        pack_sum = digest.digest()
        f.seek(0, os.SEEK_END)
        f.write(pack_sum)
        f.flush()
        self._check_given_up()
        if fsync:
            os.fsync(f.fileno())
        f.close()
        base = os.path.join(self._dir, "pack-" + pack_sum.hex())
        self._check_given_up()  # sorting a million ids for the index takes a while
        idx = self._index_bytes(pack_sum)
        idx_tmp = self._tmp + ".idx"
        with open(idx_tmp, "wb") as out:
            out.write(idx)
            if fsync:
                os.fsync(out.fileno())
        self._check_given_up()  # the last look: from here on both renames are made
        os.chmod(self._tmp, 0o444)
        os.chmod(idx_tmp, 0o444)
        os.rename(self._tmp, base + ".pack")
        os.rename(idx_tmp, base + ".idx")
        return base + ".pack"

    def give_up(self) -> None:
        """The pack will not be kept (abort follows): a finish under way in another thread
        stops at its next look (a MiB of its hashing, or a step of its writes), before
        it installs anything, instead of hashing and syncing a pack of gigabytes first.
        Once it has begun to install, it ends as it would have."""
        self._given_up = True

    def _check_given_up(self) -> None:
        if self._given_up:
            raise GivenUp("the pack was given up while it was being sealed")

    def _index_bytes(self, pack_sum: bytes) -> bytes:
        oids = sorted(self._entries)
        fanout = [0] * 256
        for oid in oids:
            fanout[oid[0]] += 1
        running = 0
        for i in range(256):
            running += fanout[i]
            fanout[i] = running
        small: list[int] = []
        large: list[int] = []
        for oid in oids:
            offset = self._entries[oid] >> 32
            if offset < 0x80000000:
                small.append(offset)
            else:
                small.append(0x80000000 | len(large))
                large.append(offset)
        parts = [
            b"\xfftOc" + struct.pack(">I", 2),
            struct.pack(">256I", *fanout),
            b"".join(oids),
            struct.pack(f">{len(oids)}I", *(self._entries[o] & 0xFFFFFFFF for o in oids)),
            struct.pack(f">{len(oids)}I", *small),
            struct.pack(f">{len(large)}Q", *large),
            pack_sum,
        ]
        body = b"".join(parts)
        return body + hashlib.sha1(body).digest()
