"""Reading whole (undeltified) objects straight from pack files, inflated with ISA-L.

Checkout and the materialised cache read every blob of a rootfs; libgit2 inflates
them with zlib and holds the GIL while doing it. Our own packs (store.pack) never
contain deltas, so for them the object is a header and one deflate stream that ISA-L
inflates several times faster. Deltified objects (after ``git gc``) and loose objects
are left to libgit2: this reader answers None and the caller falls back.
"""

from __future__ import annotations

import mmap
import os
import struct
import zlib
from collections.abc import Iterator

from .rawobj import CHUNK, STREAM_FROM

_DELTA_TYPES = (6, 7)  # OFS_DELTA, REF_DELTA
_ID_SET_MAX = 100_000  # ids of a bigger pack are not copied into a set (2 MB and more)
_ISAL_FROM = 4096  # objects this big or bigger inflate with ISA-L (the bytes of a rootfs: nearly all)


class InflateError(Exception):
    """A pack object whose deflate stream is corrupt."""


def _inflate(data: bytes, size: int) -> bytes:
    """zlib for small objects (commits, trees, configs, most files), ISA-L for big ones:
    a command that reads only an image's commit and config (every lg run) would pay
    for importing ISA-L and gain nothing."""
    try:
        if size < _ISAL_FROM:
            return zlib.decompress(data)
        from isal import isal_zlib

        try:
            return isal_zlib.decompress(data)
        except isal_zlib.error as exc:  # type: ignore[misc]  # isal's stub calls error an instance
            raise InflateError(str(exc)) from None
    except zlib.error as exc:
        raise InflateError(str(exc)) from None


class _Pack:
    def __init__(self, base: str):
        with open(base + ".idx", "rb") as f:
            self.idx = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        self.path = base + ".pack"
        with open(self.path, "rb") as f:
            self.pack = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        if self.idx[:8] != b"\xfftOc\x00\x00\x00\x02":
            raise ValueError("unsupported pack index version")
        if len(self.pack) < 32 or self.pack[-20:] != self.idx[-40:-20]:
            raise ValueError("the pack is not the one its index was made for")  # truncated, or replaced
        self.fanout = struct.unpack_from(">256I", self.idx, 8)
        self.count = self.fanout[255]
        self.sha_at = 8 + 1024
        self.off_at = self.sha_at + 24 * self.count  # after the sha and crc tables
        self.large_at = self.off_at + 4 * self.count
        self._ends: dict[int, int] | None = None
        self._ids: frozenset[bytes] | None = None

    def find(self, oid: bytes) -> int | None:
        lo = self.fanout[oid[0] - 1] if oid[0] else 0
        hi = self.fanout[oid[0]]
        idx, at = self.idx, self.sha_at
        while lo < hi:
            mid = (lo + hi) // 2
            probe = idx[at + 20 * mid: at + 20 * mid + 20]
            if probe == oid:
                return self._offset(mid)
            if probe < oid:
                lo = mid + 1
            else:
                hi = mid
        return None

    def holds(self, oid: bytes) -> bool:
        """Whether the pack holds ``oid``: for a writer's many checks (a commit asks for
        every file it did not read), from a set of the index's ids made at the first
        check, in packs small enough for that; a binary search in the others."""
        if self._ids is None and self.count <= _ID_SET_MAX:
            idx, at = self.idx, self.sha_at
            self._ids = frozenset(idx[at + 20 * i: at + 20 * i + 20] for i in range(self.count))
        return oid in self._ids if self._ids is not None else self.find(oid) is not None

    def _offset(self, i: int) -> int:
        (off,) = struct.unpack_from(">I", self.idx, self.off_at + 4 * i)
        if off & 0x80000000:
            (off,) = struct.unpack_from(">Q", self.idx, self.large_at + 8 * (off & 0x7FFFFFFF))
        if not 12 <= off < len(self.pack) - 20:
            raise ValueError("the pack index points outside its pack")
        return off

    def end_of(self, offset: int) -> int:
        """Where the object at ``offset`` ends: the next object's start, or the trailer."""
        if self._ends is None:
            starts = sorted(self._offset(i) for i in range(self.count))
            self._ends = dict(zip(starts, starts[1:] + [len(self.pack) - 20], strict=True))
        return self._ends[offset]

    def header(self, offset: int) -> tuple[int, int, int]:
        """(type, size, offset of the data) of the object at ``offset``; ValueError for a
        size whose bytes run off the end of the pack."""
        pack = self.pack
        byte = pack[offset]
        obj_type = (byte >> 4) & 7
        size = byte & 0x0F
        shift, pos = 4, offset + 1
        try:
            while byte & 0x80:
                byte = pack[pos]
                size |= (byte & 0x7F) << shift
                shift += 7
                pos += 1
        except IndexError:
            raise ValueError("an object's size runs off the end of its pack") from None
        return obj_type, size, pos

    def read(self, offset: int) -> tuple[int, bytes] | None:
        obj_type, size, pos = self.header(offset)
        if obj_type in _DELTA_TYPES:
            return None
        data = _inflate(self.pack[pos: self.end_of(offset)], size)
        if len(data) != size:
            raise ValueError("pack object size mismatch")
        return obj_type, data


    def open(self, offset: int) -> tuple[int, int, Iterator[bytes]] | None:
        """(type, size, content in pieces) of the object at ``offset``, None for a delta.
        An object of STREAM_FROM bytes or more is inflated CHUNK bytes at a time."""
        obj_type, size, pos = self.header(offset)
        if obj_type in _DELTA_TYPES:
            return None
        if size < STREAM_FROM:
            whole = self.read(offset)
            return None if whole is None else (obj_type, size, iter((whole[1],)))
        return obj_type, size, self._inflating(pos, self.end_of(offset), size)

    def _inflating(self, pos: int, end: int, size: int) -> Iterator[bytes]:
        """The deflate stream at [pos, end) inflated piece by piece. Read with pread, not
        through the map: mapped pages count as resident memory while they stay mapped,
        which for a 4 GB object would be 4 GB."""
        from isal import isal_zlib

        inflate, pending, done = isal_zlib.decompressobj(), b"", 0
        with open(self.path, "rb", buffering=0) as f:
            while not inflate.eof:
                if not pending and pos < end:
                    pending = os.pread(f.fileno(), min(CHUNK, end - pos), pos)
                    pos = pos + len(pending) if pending else end
                try:
                    out = inflate.decompress(pending, CHUNK)
                except isal_zlib.error as exc:  # type: ignore[misc]  # isal's stub calls error an instance
                    raise InflateError(str(exc)) from None
                pending = inflate.unconsumed_tail
                if not out and not pending and pos >= end:
                    break  # the stream ends before its end marker
                done += len(out)
                if done > size:
                    break
                yield out
        if done != size or not inflate.eof:
            raise InflateError(f"the object's deflate stream does not hold its {size} bytes")


class PackReader:
    InflateError = InflateError

    def __init__(self, pack_dir: str):
        self._dir = pack_dir
        self._packs: dict[str, _Pack] = {}
        self._listing: tuple[str, ...] = ()

    def refresh(self) -> bool:
        """Read the pack directory again; True if its packs changed."""
        try:
            listing = tuple(sorted(n[:-4] for n in os.listdir(self._dir) if n.endswith(".idx")))
        except FileNotFoundError:
            return False
        if listing == self._listing:
            return False
        self._listing = listing
        for name in listing:
            if name not in self._packs:
                try:
                    self._packs[name] = _Pack(os.path.join(self._dir, name))
                except (OSError, ValueError):
                    continue  # a pack being removed by gc, or an index we do not read: libgit2's job
        return True

    def _locate(self, oid: bytes) -> tuple[_Pack, int] | None:
        for attempt in range(2):
            for pack in self._packs.values():
                offset = pack.find(oid)
                if offset is not None:
                    return pack, offset
            if attempt == 0 and not self.refresh():
                return None
        return None

    def contains(self, oid: bytes) -> bool:
        """Whether a pack seen at the last refresh holds ``oid`` (a delta too); no reread
        of the directory on a miss."""
        return any(pack.holds(oid) for pack in self._packs.values())

    def read(self, oid: bytes) -> tuple[int, bytes] | None:
        """(type, data) of a whole object in a pack, or None (let libgit2 handle it)."""
        where = self._locate(oid)
        return where[0].read(where[1]) if where else None

    def open(self, oid: bytes) -> tuple[int, int, Iterator[bytes]] | None:
        """(type, size, content in pieces) of a whole object in a pack, or None
        (absent, or a delta: let libgit2 handle it); big objects are never held whole."""
        where = self._locate(oid)
        return where[0].open(where[1]) if where else None

    def header(self, oid: bytes) -> tuple[int, int] | None:
        """(type, size) of a whole object in a pack, or None (absent, a delta, or an index
        that points outside its pack: libgit2 then says what is wrong)."""
        try:
            where = self._locate(oid)
            if where is None:
                return None
            obj_type, size, _ = where[0].header(where[1])
        except ValueError:
            return None
        return None if obj_type in _DELTA_TYPES else (obj_type, size)
