"""Reading objects straight from pack files: whole ones inflated with ISA-L, small
deltified ones rebuilt here.

Checkout and the materialised cache read every blob of a rootfs; libgit2 inflates
them with zlib and holds the GIL while doing it. Our own packs (store.pack) never
contain deltas, so for them the object is a header and one deflate stream that ISA-L
inflates several times faster. A store that ``lg gc`` (``git gc``) repacked, or that
fetched from a remote, holds deltas too: commits, trees and configs, what every
listing reads. Those are rebuilt here (:func:`apply_delta`), so that ``lg images``
over a thousand images does not load libgit2 (85 ms) to read them. Deltified objects
of 1 MiB or more (_REBUILD_MAX), chains longer than _CHAIN_MAX or holding 1 MiB of
delta data (a loop, in a hostile pack), bases in another pack and loose objects are
left to libgit2: this reader answers None and the caller falls back.
"""

from __future__ import annotations

import copy
import mmap
import os
import struct
import weakref
import zlib
from collections.abc import Iterator

from .rawobj import CHUNK, STREAM_FROM

OFS_DELTA, REF_DELTA = 6, 7
_DELTA_TYPES = (OFS_DELTA, REF_DELTA)
# Deltas on deltas a read follows: git makes chains of at most 50 (pack.depth); a longer
# one, or a REF_DELTA loop in a hostile pack, is left to libgit2.
_CHAIN_MAX = 64
# What is rebuilt here: objects, bases and the chain's delta data all under 1 MiB
# (commits, trees, configs). A hostile delta of 4 KB can claim 256 MiB, or be 1 MiB of
# one-byte inserts (a Python loop step each); such work, and big blobs, is libgit2's.
_REBUILD_MAX = 1 << 20
_BASES_MAX = 16 << 20  # bytes of rebuilt objects kept as bases for the next delta read
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


_HEADER_MAX = 11  # an object header: its type and a size of up to 67 bits


def parse_header(head: bytes) -> tuple[int, int, int]:
    """(type, size, length of the header) of the object header ``head`` starts with."""
    try:
        byte = head[0]
        obj_type = (byte >> 4) & 7
        size = byte & 0x0F
        shift, pos = 4, 1
        while byte & 0x80:
            byte = head[pos]
            size |= (byte & 0x7F) << shift
            shift += 7
            pos += 1
    except IndexError:
        raise ValueError("an object's size runs off the end of its pack (or past 67 bits)") from None
    return obj_type, size, pos


def _delta_size(delta, pos: int) -> tuple[int, int]:
    """A size in a delta's header (7 bits a byte, least significant first) and the
    position after it."""
    size = shift = 0
    while True:
        byte = delta[pos]
        pos += 1
        size |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return size, pos
        if shift > 63:
            raise ValueError("a delta's size runs past 64 bits")


def made_size(delta: bytes) -> int:
    """The size of the object ``delta`` (or the start of it) says it makes."""
    try:
        return _delta_size(delta, _delta_size(delta, 0)[1])[0]
    except IndexError:
        raise ValueError("a delta's header is cut short") from None


def _copy_range(delta: bytes, pos: int, op: int) -> tuple[int, int, int]:
    """A copy instruction's (offset, size) and the position after it: bits 0-3 of ``op``
    say which offset bytes follow, bits 4-6 which size bytes; size 0 means 64 KiB."""
    offset = size = 0
    for i in range(4):
        if op & (1 << i):
            offset |= delta[pos] << (8 * i)
            pos += 1
    for i in range(3):
        if op & (0x10 << i):
            size |= delta[pos] << (8 * i)
            pos += 1
    return offset, size or 0x10000, pos


def apply_delta(base: bytes, delta: bytes) -> bytes:
    """The object git's ``delta`` makes of ``base``: copies of ranges of the base and
    inserted bytes. ValueError for a delta that does not fit its base or its size."""
    try:
        source, pos = _delta_size(delta, 0)
        target, pos = _delta_size(delta, pos)
        if source != len(base):
            raise ValueError("a delta's base is not the size the delta says")
        out, view, end = bytearray(), memoryview(base), len(delta)
        while pos < end:
            op = delta[pos]
            pos += 1
            if op & 0x80:
                offset, size, pos = _copy_range(delta, pos, op)
                if offset + size > source:
                    raise ValueError("a delta copies from beyond its base")
                out += view[offset:offset + size]
            elif op:  # insert the next op bytes
                if pos + op > end:
                    raise ValueError("a delta's insert runs off its end")
                out += delta[pos:pos + op]
                pos += op
            else:
                raise ValueError("a delta holds the reserved instruction 0")
            if len(out) > target:
                raise ValueError("a delta makes more than the size it says")
    except IndexError:
        raise ValueError("a delta ends in the middle of an instruction") from None
    if len(out) != target:
        raise ValueError("a delta makes less than the size it says")
    return bytes(out)


def _deflated_max(size: int) -> int:
    """The most bytes a deflate stream of ``size`` bytes takes (zlib's compressBound)."""
    return size + (size >> 12) + (size >> 14) + (size >> 25) + 13


class _Pack:
    def __init__(self, base: str):
        with open(base + ".idx", "rb") as f:
            self.idx = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        self.path = base + ".pack"
        self._fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)  # held while the map is
        weakref.finalize(self, os.close, self._fd)
        self.pack = mmap.mmap(self._fd, 0, access=mmap.ACCESS_READ)
        self.objects_end = len(self.pack) - 20  # the trailer (the pack's SHA-1) follows
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
        self._bases: dict[int, tuple[int, bytes]] = {}  # offset -> an object rebuilt or read as a base
        self._bases_size = 0

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
        if not 12 <= off < self.objects_end:
            raise ValueError("the pack index points outside its pack")
        return off

    def end_of(self, offset: int) -> int:
        """Where the object at ``offset`` ends: the next object's start, or the trailer."""
        if self._ends is None:
            starts = sorted(self._offset(i) for i in range(self.count))
            self._ends = dict(zip(starts, starts[1:] + [self.objects_end], strict=True))
        return self._ends[offset]

    def header(self, offset: int) -> tuple[int, int, int]:
        """(type, size, offset of the data) of the object at ``offset``; ValueError for a
        size whose bytes run off the end of the pack."""
        # Read with pread, not through the map: a fault on the map maps the pages around it
        # too (64 KiB), and mapped pages count as resident memory. Asking the size of every
        # file of a 1 GB image (lg waste) made 270 MB of its pack resident.
        obj_type, size, length = parse_header(os.pread(self._fd, _HEADER_MAX, offset))
        return obj_type, size, offset + length

    def _mapped_header(self, offset: int) -> tuple[int, int, int]:
        """:meth:`header` through the map, for an object about to be read through it anyway."""
        obj_type, size, length = parse_header(self.pack[offset:offset + _HEADER_MAX])
        return obj_type, size, offset + length

    def read(self, offset: int) -> tuple[int, bytes] | None:
        """(type, data) of the object at ``offset``; None for a delta left to libgit2."""
        obj_type, size, pos = self._mapped_header(offset)
        if obj_type not in _DELTA_TYPES:
            return obj_type, self._inflated(offset, pos, size)
        chain: list[tuple[int, int, int]] = []  # (offset, data position, size) of each delta
        deltas = 0  # bytes of delta data the chain holds
        while obj_type in _DELTA_TYPES:
            deltas += size
            if len(chain) == _CHAIN_MAX or deltas >= _REBUILD_MAX:
                return None
            base, after = self._base(offset, obj_type, pos)
            if base is None:
                return None
            chain.append((offset, after, size))
            offset = base
            if offset in self._bases:
                obj_type, data = self._bases[offset]
                break
            obj_type, size, pos = self._mapped_header(offset)
        else:
            if size >= _REBUILD_MAX:
                return None
            data = self._inflated(offset, pos, size)
            self._keep(offset, obj_type, data)
        for at, pos, size in reversed(chain):
            delta = self._inflated(at, pos, size)
            if made_size(delta) >= _REBUILD_MAX:
                return None
            data = apply_delta(data, delta)
            self._keep(at, obj_type, data)
        return obj_type, data

    def _inflated(self, offset: int, pos: int, size: int) -> bytes:
        """The ``size`` bytes of the deflate stream at ``pos`` (of the object at ``offset``)."""
        # Where the next object starts costs a sorted table of the whole index (~40 ms for
        # a pack of 7,000 objects) when only a few objects are read: deflate's own bound
        # ends the slice instead, the stream's end marker ends the inflate. A stream longer
        # than the bound (no writer makes one) fails to inflate, and libgit2 reads it.
        bound = min(self.objects_end, pos + _deflated_max(size))
        end = self._ends[offset] if self._ends is not None else bound
        data = _inflate(self.pack[pos:end], size)
        if len(data) != size:
            raise ValueError("pack object size mismatch")
        return data

    def _keep(self, offset: int, obj_type: int, data: bytes) -> None:
        """Remember an object that a delta was (or may be) built on: a listing reads many
        objects deltified against the same few bases, as git's delta base cache knows.
        Every object kept is under _REBUILD_MAX, so the cache holds at least 16 of them."""
        if self._bases_size + len(data) > _BASES_MAX:
            self._bases.clear()
            self._bases_size = 0
        if offset not in self._bases:
            self._bases[offset] = (obj_type, data)
            self._bases_size += len(data)

    def _base(self, offset: int, obj_type: int, pos: int) -> tuple[int | None, int]:
        """The offset of a delta's base (None: not in this pack) and where its data starts."""
        if obj_type == REF_DELTA:
            return self.find(bytes(self.pack[pos:pos + 20])), pos + 20
        try:  # OFS_DELTA: a distance back, 7 bits a byte, most significant first, each +1
            byte = self.pack[pos]
            distance = byte & 0x7F
            pos += 1
            while byte & 0x80:
                byte = self.pack[pos]
                distance = ((distance + 1) << 7) | (byte & 0x7F)
                pos += 1
        except IndexError:
            raise ValueError("a delta's base offset runs off the end of its pack") from None
        base = offset - distance
        if not 12 <= base < offset:
            raise ValueError("a delta's base is not an earlier object of its pack")
        return base, pos

    def delta_header(self, offset: int) -> tuple[int, int] | None:
        """(type, size) of the deltified object at ``offset``: the type its chain ends in,
        the size its delta says it makes; None for an object :meth:`read` leaves to
        libgit2 by its size or its chain's length or delta bytes."""
        obj_type, size, pos = self.header(offset)
        made, deltas = None, 0
        for _ in range(_CHAIN_MAX):
            if obj_type not in _DELTA_TYPES:
                return (obj_type, made) if size < _REBUILD_MAX and made is not None else None
            base, after = self._base(offset, obj_type, pos)
            deltas += size
            if base is None or deltas >= _REBUILD_MAX:
                return None
            if made is None:
                try:
                    head = zlib.decompressobj().decompress(self.pack[after:after + 64], 20)
                except zlib.error as exc:
                    raise InflateError(str(exc)) from None
                made = made_size(head)
                if made >= _REBUILD_MAX:
                    return None
            offset = base
            obj_type, size, pos = self.header(offset)
        return None


    def open(self, offset: int) -> tuple[int, int, Iterator[bytes]] | None:
        """(type, size, content in pieces) of the object at ``offset``, None for a delta
        read() leaves to libgit2. A whole object of STREAM_FROM bytes or more is inflated
        CHUNK bytes at a time."""
        obj_type, size, pos = self.header(offset)  # (a big one is read with pread, not the map)
        if size < STREAM_FROM or obj_type in _DELTA_TYPES:  # a delta is rebuilt whole
            whole = self.read(offset)
            return None if whole is None else (whole[0], len(whole[1]), iter((whole[1],)))
        return obj_type, size, self._inflating(pos, self.end_of(offset), size)

    def _inflating(self, pos: int, end: int, size: int) -> Iterator[bytes]:
        """The deflate stream at [pos, end) inflated piece by piece. Read with pread, not
        through the map: mapped pages count as resident memory while they stay mapped,
        which for a 4 GB object would be 4 GB."""
        from isal import isal_zlib

        inflate, pending, done = isal_zlib.decompressobj(), b"", 0
        while not inflate.eof:  # from the fd held with the map: the file may be renamed or removed since
            if not pending and pos < end:
                pending = os.pread(self._fd, min(CHUNK, end - pos), pos)
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


class PendingPack(_Pack):
    """The pack a store.pack.PackWriter is still sealing (hashing it whole, syncing it),
    read at the offsets its writer holds, before it has an index or its final name: what
    an import wrote is readable while the pack is sealed (the import materialises its
    rootfs meanwhile). Every object is whole and written (the writer has settled);
    nothing here reads the header or the trailer, which the sealing writes."""

    def __init__(self, path: str, entries: dict[bytes, int], objects_end: int):
        self._fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        weakref.finalize(self, os.close, self._fd)
        self.pack = mmap.mmap(self._fd, objects_end, access=mmap.ACCESS_READ)
        self.objects_end = objects_end
        self._entries = entries  # oid -> offset << 32 | crc32, the writer's own table
        self._ends = None  # every object's end is objects_end (end_of)
        self._bases = {}
        self._bases_size = 0

    def find(self, oid: bytes) -> int | None:
        entry = self._entries.get(oid)
        return None if entry is None or entry < 0 else entry >> 32

    def holds(self, oid: bytes) -> bool:
        return self.find(oid) is not None

    def end_of(self, offset: int) -> int:
        """The end of all objects: a deflate stream ends at its own end marker, and the
        writer's table is not sorted by offset (sorting it would cost a big import)."""
        return self.objects_end


class PackReader:
    InflateError = InflateError

    def __init__(self, pack_dir: str):
        self._dir = pack_dir
        self._packs: dict[str, _Pack] = {}
        self._listing: tuple[str, ...] = ()
        self._last: _Pack | None = None
        self._pending: PendingPack | None = None

    def with_pending(self, pending: PendingPack) -> PackReader:
        """A copy of this reader that finds ``pending``'s objects before any pack's. It
        starts with the packs this reader has open; after that each keeps its own
        listing, and the copy's refreshes keep ``pending``."""
        view = copy.copy(self)
        view._pending = pending
        return view

    def refresh(self) -> bool:
        """Read the pack directory again; True if its packs changed."""
        try:
            listing = tuple(sorted(n[:-4] for n in os.listdir(self._dir) if n.endswith(".idx")))
        except FileNotFoundError:
            return False
        if listing == self._listing:
            return False
        self._listing = listing
        # Forget packs that are gone (gc repacked them): their objects may be gone too.
        # Not closed here: a stream may still be reading one (its fd closes with it).
        self._packs = {name: pack for name, pack in self._packs.items() if name in listing}
        self._last = None
        for name in listing:
            if name not in self._packs:
                try:
                    self._packs[name] = _Pack(os.path.join(self._dir, name))
                except (OSError, ValueError):
                    continue  # a pack being removed by gc, or an index we do not read: libgit2's job
        return True

    def _locate(self, oid: bytes) -> tuple[_Pack, int] | None:
        if self._pending is not None and (offset := self._pending.find(oid)) is not None:
            return self._pending, offset
        last = self._last  # objects read together were mostly written together: one pack
        if last is not None and (offset := last.find(oid)) is not None:
            return last, offset
        for attempt in range(2):
            for pack in self._packs.values():
                offset = pack.find(oid)
                if offset is not None:
                    self._last = pack
                    return pack, offset
            if attempt == 0 and not self.refresh():
                return None
        return None

    def contains(self, oid: bytes) -> bool:
        """Whether a pack seen at the last refresh holds ``oid`` (a delta too); no reread
        of the directory on a miss."""
        if self._pending is not None and self._pending.holds(oid):
            return True
        return any(pack.holds(oid) for pack in self._packs.values())

    def read(self, oid: bytes) -> tuple[int, bytes] | None:
        """(type, data) of an object in a pack, or None (let libgit2 handle it)."""
        where = self._locate(oid)
        return where[0].read(where[1]) if where else None

    def open(self, oid: bytes) -> tuple[int, int, Iterator[bytes]] | None:
        """(type, size, content in pieces) of an object in a pack, or None (absent, or
        a delta read() leaves to libgit2); big whole objects are never held whole."""
        where = self._locate(oid)
        return where[0].open(where[1]) if where else None

    def header(self, oid: bytes) -> tuple[int, int] | None:
        """(type, size) of an object in a pack, or None (absent, a delta left to libgit2,
        or an index that points outside its pack: libgit2 then says what is wrong)."""
        try:
            where = self._locate(oid)
            if where is None:
                return None
            pack, offset = where
            obj_type, size, _ = pack.header(offset)
            return pack.delta_header(offset) if obj_type in _DELTA_TYPES else (obj_type, size)
        except (ValueError, InflateError):
            return None
