"""Reading a tar stream: member headers and content, in one forward pass.

Layers and rootfs tarballs are read here, not with tarfile, for two reasons. Speed:
tarfile's stream mode copies every byte of content through a growing buffer and
builds each header through several layers of Python, which made it most of the CPU
of an import; here a header is one ``struct`` unpack and content goes from the stream
to the caller in the pieces it asks for. Bounds: tarfile reads an extended header
whole at the size the archive claims and follows sparse maps as given, so those had
to be wrapped from outside through its private methods; here every bound is checked
before the read it guards.

Formats read: v7, ustar (with its name prefix), GNU (long names and links, the old
sparse type ``S`` and its extension blocks), pax (``x`` and ``g`` headers, numbers,
``SCHILY.xattr.*``) and GNU's pax sparse forms 0.0, 0.1 and 1.0. Other member types
are refused by the caller; this module only says what the archive holds. Names are
``str`` decoded as UTF-8 with surrogateescape, as tarfile gives them, so bytes that
are not UTF-8 survive a round trip through ``encode("utf-8", "surrogateescape")``.
"""

from __future__ import annotations

import os
import re
import struct
from dataclasses import dataclass

from ..errors import LgError

BLOCK = 512
# An extended header (pax x or g, GNU long name or link, a sparse map) holds a path
# (PATH_MAX, 4 KiB), a link target (as much) and xattrs, whose values store.meta caps
# at 64 KiB as Linux does: 1 MiB holds a dozen xattrs at that cap. Real writers put at
# most a global header, a pax header, a long name and link and a sparse map before one
# member; more is a chain.
MAX_EXTENDED = 1 << 20
MAX_EXTENDED_HEADERS = 8

REGULAR = (b"0", b"\0", b"7")  # regular file, old regular file, contiguous file
SPARSE = b"S"  # old GNU sparse file
_DATA_TYPES = REGULAR + (SPARSE,)
_DEVICES = (b"3", b"4")  # types whose size counts data blocks that follow
_GNU_LONGNAME, _GNU_LONGLINK, _PAX, _PAX_GLOBAL = b"L", b"K", b"x", b"g"
_POSIX_MAGIC = b"ustar\x0000"

# name, mode, uid, gid, size, mtime, chksum, type, linkname, magic+version, uname, gname,
# devmajor, devminor, prefix (ustar) or GNU's atime..realsize, padding
_BUFFER = 1 << 16
_HEADER = struct.Struct("100s8s8s8s12s12s8sc100s8s32s32s8s8s155s12x")
_PAX_RECORD = re.compile(rb"(\d+) ([^=\n]+)=")


class TarError(LgError):
    """A tar stream that is malformed, truncated or over a bound on extended headers."""


class TarBoundError(TarError):
    """An extended header over MAX_EXTENDED bytes, or more than MAX_EXTENDED_HEADERS of
    them before one member: refused before it is read."""


@dataclass
class Member:
    """One member as the archive describes it, extended headers applied."""

    name: str
    type: bytes
    mode: int
    uid: int
    gid: int
    size: int  # of the file: a sparse file's full length, holes included
    mtime_ns: int
    linkname: str
    devmajor: int
    devminor: int
    xattrs: tuple[tuple[str, bytes], ...]
    sparse: tuple[tuple[int, int], ...] | None  # data runs (offset, length) of a sparse file
    stored: int  # bytes of content in the archive (a sparse file's runs, end to end)
    offset: int  # where its first header (extended ones included) starts
    offset_data: int  # where its content starts

    def is_file(self) -> bool:
        """A regular file, sparse or not (a member whose content follows its header)."""
        return self.type in _DATA_TYPES

    def is_symlink(self) -> bool:
        return self.type == b"2"


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def _field(raw: bytes) -> bytes:
    """A NUL-terminated header field."""
    end = raw.find(b"\0")
    return raw if end < 0 else raw[:end]


def _number(raw: bytes, what: str) -> int:
    """A numeric header field: octal text, or GNU's base-256 (first byte 0x80 or 0xff)."""
    if raw[0] & 0x80:
        if raw[0] not in (0x80, 0xFF):
            raise TarError(f"corrupt tar header: its {what} is not a number")
        n = int.from_bytes(raw[1:], "big")
        return n - (1 << (8 * len(raw) - 8)) if raw[0] == 0xFF else n
    text = raw.partition(b"\0")[0]
    try:
        return int(text, 8)  # int() allows the spaces tar pads with
    except ValueError:
        if not text.strip(b" "):
            return 0
        raise TarError(f"corrupt tar header: its {what} is not a number") from None


def _checksum_ok(block: bytes) -> bool:
    """Whether the header's checksum matches, as tar computes it (bytes summed unsigned,
    or signed as some old writers did), with the checksum field read as spaces."""
    try:
        stored = _number(block[148:156], "checksum")
    except TarError:
        return False
    unsigned = sum(block[:148]) + 256 + sum(block[156:])
    if stored == unsigned:
        return True
    signed = sum(struct.unpack("148b", block[:148])) + 256 + sum(struct.unpack("356b", block[156:]))
    return stored == signed


_PAX_INTEGER = re.compile(r"-?[0-9]+")


def _pax_number(value: str, key: str) -> int:
    """A pax integer; a negative one is for the caller to refuse (an owner out of range)."""
    if not _PAX_INTEGER.fullmatch(value):
        raise TarError(f"corrupt tar header: pax {key} {value[:40]!r} is not a number")
    return int(value)


_PAX_TIME = re.compile(r"(-?[0-9]+)(?:\.([0-9]*))?")  # seconds, optional fraction


def _pax_time_ns(text: str) -> int:
    m = _PAX_TIME.fullmatch(text)
    if m is None:
        raise TarError(f"corrupt tar header: a malformed mtime {text[:40]!r}")
    whole, frac = m.group(1), m.group(2) or ""
    sign = -1 if whole.startswith("-") else 1
    return int(whole) * 1_000_000_000 + sign * int((frac + "000000000")[:9])


class TarReader:
    """The members of a tar stream, in order, and the content of the current one.

    ``stream`` needs only ``read(n)`` (it may return fewer bytes than asked before its
    end). Iterating yields each :class:`Member`; the member's content is read with
    :meth:`read` before the next one is asked for, and whatever is left of it is skipped.
    The end is a zero block, or the stream's end exactly between members; anything else
    (a short header, a bad checksum, content cut short) is a TarError. With ``seekable``
    (a regular file, indexed rather than read: fs.imagearchive), skipped content is
    seeked over instead of read.
    """

    def __init__(self, stream, seekable: bool = False):
        self._stream = stream
        self._end = -1  # the file's size, when seekable
        if seekable:
            self._end = stream.seek(0, os.SEEK_END)
            stream.seek(0)
        self.offset = 0  # bytes consumed
        self._buf = b""
        self._bpos = 0
        self._globals: dict[str, str] = {}
        self._global_bytes = 0
        self._left = 0  # bytes of the current member's content still in the stream
        self._skip = 0  # padding after them, up to the next header
        self._runs: list[tuple[int, int]] = []  # a sparse member's runs not yet given out
        self._sparse = False
        self._pos = 0  # where the caller is in the current (sparse) member's file
        self._size = 0  # the current member's file size
        self._name = ""

    # -- reading the stream ------------------------------------------------------------

    def _read(self, n: int) -> bytes:
        """Up to ``n`` bytes, fewer only at the stream's end. Headers and small files are
        served from a buffer filled _BUFFER bytes at a time: a minbase rootfs is 6,768
        members, and a read call through the decompressor per header block, record and
        padding was most of the reader's time."""
        pos = self._bpos
        if len(self._buf) - pos < n:
            self._refill(n)
            pos = 0
        data = self._buf[pos:pos + n]
        self._bpos = pos + len(data)
        self.offset += len(data)
        return data

    def _refill(self, n: int) -> None:
        """Make at least ``n`` bytes buffered, or all that is left of the stream."""
        pieces = [self._buf[self._bpos:]]
        got = len(pieces[0])
        while got < n and (more := self._stream.read(max(_BUFFER, n - got))):
            pieces.append(more)
            got += len(more)
        self._buf = b"".join(pieces) if len(pieces) > 1 else pieces[0]
        self._bpos = 0

    def _exact(self, n: int, what: str) -> bytes:
        data = self._read(n)
        if len(data) != n:
            raise TarError(f"archive is truncated inside {what}")
        return data

    def _discard(self, n: int) -> None:
        buffered = min(n, len(self._buf) - self._bpos)
        self._bpos += buffered
        self.offset += buffered
        n -= buffered
        if self._end >= 0 and n:  # the buffer is empty: the stream is at self.offset
            if self.offset + n > self._end:
                raise TarError(f"archive is truncated inside {self._name!r}")
            self.offset = self._stream.seek(n, os.SEEK_CUR)
            return
        while n:
            got = len(self._read(min(n, 1 << 20)))
            if not got:
                raise TarError(f"archive is truncated inside {self._name!r}")
            n -= got

    # -- members -----------------------------------------------------------------------

    def __iter__(self):
        return self

    def __next__(self) -> Member:
        self._finish()
        member = self._next_member()
        if member is None:
            raise StopIteration
        return member

    def _finish(self) -> None:
        """Skip what is left of the current member's content and padding."""
        self._discard(self._left + self._skip)
        self._left = self._skip = 0
        self._runs = []
        self._sparse = False

    def _block(self) -> bytes | None:
        """The next header block, or None at the archive's end."""
        at = self.offset
        block = self._read(BLOCK)
        if not block and at == 0:
            raise TarError("not a tar archive: it is empty")
        if not block or block == bytes(BLOCK):
            return None
        if len(block) < BLOCK:
            raise TarError(f"archive is truncated at byte {at}")
        if not _checksum_ok(block):
            raise TarError(f"corrupt tar header at byte {at}")
        return block

    def _next_member(self) -> Member | None:
        start = self.offset
        pax: dict[str, str] = {}
        sparse_00: list[tuple[int, int]] = []
        long_name = long_link = None
        headers = extended = 0
        while True:
            block = self._block()
            if block is None:
                if headers:
                    raise TarError(f"archive is truncated at byte {self.offset}: an extended header"
                                   " has no member")
                return None
            fields = _HEADER.unpack(block)
            kind = fields[7]
            size = _number(fields[4], "size")
            if kind not in (_GNU_LONGNAME, _GNU_LONGLINK, _PAX, _PAX_GLOBAL):
                break
            headers += 1
            extended += size
            if headers > MAX_EXTENDED_HEADERS:
                raise TarBoundError(
                    f"archive has more than {MAX_EXTENDED_HEADERS} extended headers before one entry")
            if size < 0 or extended > MAX_EXTENDED:
                what = "pax extended header" if kind in (_PAX, _PAX_GLOBAL) else "GNU long name or link"
                raise TarBoundError(f"archive has a {what} of more than {MAX_EXTENDED} bytes")
            data = self._exact(size, "an extended header")
            self._discard(-size % BLOCK)
            if kind == _GNU_LONGNAME:
                long_name = _text(_field(data))
            elif kind == _GNU_LONGLINK:
                long_link = _text(_field(data))
            else:
                records, runs = _pax_records(data)
                if kind == _PAX_GLOBAL:
                    self._global_bytes += size
                    if self._global_bytes > MAX_EXTENDED:
                        raise TarBoundError(
                            f"archive has pax global headers of more than {MAX_EXTENDED} bytes")
                    self._globals.update(records)
                else:
                    pax.update(records)
                    sparse_00.extend(runs)
        return self._member(block, fields, start, {**self._globals, **pax}, sparse_00, long_name, long_link,
                            extended)

    def _member(self, block: bytes, fields, start: int, pax: dict[str, str], sparse_00, long_name, long_link,
                extended: int) -> Member:
        (name, mode, uid, gid, size, mtime, _, kind, linkname, magic, _, _, major, minor, prefix) = fields
        text = long_name if long_name is not None else _text(_field(name))
        if long_name is None and magic == _POSIX_MAGIC and (head := _field(prefix)):
            text = _text(head) + "/" + text
        if kind == b"\0" and text.endswith("/"):
            kind = b"5"  # v7 wrote directories as regular files named with a slash
        text = pax.get("path", text)
        if kind == b"5":
            text = text.rstrip("/") or text
        member = Member(
            name=text,
            type=kind,
            mode=_number(mode, "mode"),
            uid=_pax_number(pax["uid"], "uid") if "uid" in pax else _number(uid, "uid"),
            gid=_pax_number(pax["gid"], "gid") if "gid" in pax else _number(gid, "gid"),
            size=0,
            mtime_ns=(_pax_time_ns(pax["mtime"]) if "mtime" in pax
                      else _number(mtime, "mtime") * 1_000_000_000),
            linkname=pax.get("linkpath", long_link if long_link is not None else _text(_field(linkname))),
            devmajor=_number(major, "device major") if kind in _DEVICES else 0,
            devminor=_number(minor, "device minor") if kind in _DEVICES else 0,
            xattrs=tuple(sorted((k[13:], v.encode("utf-8", "surrogateescape"))
                                for k, v in pax.items() if k.startswith("SCHILY.xattr."))),
            sparse=None,
            stored=0,
            offset=start,
            offset_data=self.offset,
        )
        self._name = member.name
        if member.is_file():
            stored = _pax_number(pax["size"], "size") if "size" in pax else _number(size, "size")
            if stored < 0:
                raise TarError(f"corrupt tar header: entry {member.name[:200]!r} has a negative size")
            member.size = member.stored = stored
            self._skip = -stored % BLOCK
            if kind == SPARSE:
                self._old_gnu_sparse(member, block, extended)
            elif "GNU.sparse.major" in pax or "GNU.sparse.map" in pax or sparse_00:
                self._pax_sparse(member, pax, sparse_00, extended)
            self._left = member.stored
            self._pos = 0
            self._size = member.size
            if member.sparse is not None:
                _check_runs(member)
                self._runs = [run for run in member.sparse if run[1]]
                self._sparse = True
        return member

    # -- GNU sparse files ------------------------------------------------------------------

    def _old_gnu_sparse(self, member: Member, block: bytes, extended: int) -> None:
        """Old GNU type S: four runs in the header, 21 more per extension block."""
        runs = _runs_from(block[386:482], 4)
        more = block[482]
        while more:
            extended += BLOCK
            if extended > MAX_EXTENDED:
                raise TarBoundError(f"archive has a GNU sparse map of more than {MAX_EXTENDED} bytes")
            ext = self._exact(BLOCK, "a GNU sparse map")
            runs += _runs_from(ext[:504], 21)
            more = ext[504]
        member.offset_data = self.offset
        member.size = _number(block[483:495], "sparse size")
        member.sparse = tuple(runs)

    def _pax_sparse(self, member: Member, pax: dict[str, str], sparse_00, extended: int) -> None:
        """GNU's pax forms: 0.0 (offset/numbytes records), 0.1 (a map record), 1.0 (a map
        at the start of the content, in decimal lines, padded to a block)."""
        if "GNU.sparse.name" in pax:
            member.name = pax["GNU.sparse.name"]
        realsize = pax.get("GNU.sparse.realsize", pax.get("GNU.sparse.size"))
        if realsize is None:
            raise TarError(f"entry {member.name[:200]!r}: a GNU sparse member without its size")
        if pax.get("GNU.sparse.major") == "1":
            runs, used = self._sparse_map_10(member, extended)
            member.stored -= used
        elif "GNU.sparse.map" in pax:
            numbers = [_pax_number(n, "GNU.sparse.map") for n in pax["GNU.sparse.map"].split(",")]
            if len(numbers) % 2:
                raise TarError(f"entry {member.name[:200]!r}: its GNU sparse map is not pairs")
            runs = list(zip(numbers[::2], numbers[1::2], strict=True))
        else:
            runs = sparse_00
        member.size = _pax_number(realsize, "GNU.sparse.realsize")
        member.sparse = tuple(runs)
        member.offset_data = self.offset

    def _sparse_map_10(self, member: Member, extended: int) -> tuple[list[tuple[int, int]], int]:
        """The 1.0 map: read block by block, each counted as an extended header."""
        text = b""
        used = 0
        numbers: list[int] = []
        want: int | None = None
        while want is None or len(numbers) < 1 + 2 * want:
            extended += BLOCK
            if extended > MAX_EXTENDED:
                raise TarBoundError(f"archive has a GNU sparse map of more than {MAX_EXTENDED} bytes")
            if used + BLOCK > member.stored:
                raise TarError(f"entry {member.name[:200]!r}: its GNU sparse map runs past its content")
            text += self._exact(BLOCK, "a GNU sparse map")
            used += BLOCK
            *lines, text = text.split(b"\n")
            for line in lines:
                if not line.isdigit():
                    raise TarError(f"entry {member.name[:200]!r}: its GNU sparse map is not numbers")
                numbers.append(int(line))
                if want is None:
                    want = numbers[0]
        runs = list(zip(numbers[1::2], numbers[2::2], strict=True))[:want]
        return runs, used

    # -- content -------------------------------------------------------------------------

    def read(self, n: int) -> bytes:
        """Up to ``n`` bytes of the current member's file (a sparse file's holes as zeros);
        b"" at its end. Content cut short by the stream's end is a TarError."""
        if self._sparse:
            return self._read_sparse(n)
        if self._left == 0:
            return b""
        return self._content(n)

    def _content(self, n: int) -> bytes:
        data = self._read(min(n, self._left))
        if not data:
            raise TarError(f"archive is truncated inside {self._name!r}")
        self._left -= len(data)
        return data

    def _read_sparse(self, n: int) -> bytes:
        """The next piece of a sparse file: zeros up to the next run, then the run's bytes."""
        end = self._runs[0][0] if self._runs else self._size
        if self._pos < end:  # in a hole
            take = min(n, end - self._pos)
            self._pos += take
            return bytes(take)
        if not self._runs:
            return b""
        offset, length = self._runs[0]
        data = self._content(min(n, length))
        self._pos += len(data)
        if len(data) == length:
            self._runs.pop(0)
        else:
            self._runs[0] = (offset + len(data), length - len(data))
        return data


def _check_runs(member: Member) -> None:
    """A sparse map is refused unless its runs are in order, inside the file, and no more
    than the archive holds for the member: a map that lies would read other members'
    bytes as content."""
    end = stored = 0
    for offset, size in member.sparse or ():
        if offset < end or size < 0 or offset + size > member.size:
            raise TarError(f"entry {member.name[:200]!r} has a sparse map out of order or past its size")
        end, stored = offset + size, stored + size
    if stored > member.stored:
        raise TarError(f"entry {member.name[:200]!r}: its sparse map claims more data than the archive holds")


def _runs_from(raw: bytes, count: int) -> list[tuple[int, int]]:
    """Old GNU sparse slots: (offset, length) pairs of 12-byte numbers; empty slots end the list."""
    runs = []
    for i in range(count):
        slot = raw[24 * i: 24 * i + 24]
        if not slot.strip(b"\0"):
            break
        runs.append((_number(slot[:12], "sparse offset"), _number(slot[12:], "sparse length")))
    return runs


def _pax_records(data: bytes) -> tuple[dict[str, str], list[tuple[int, int]]]:
    """A pax header's records, and GNU sparse 0.0's offset/numbytes pairs in their order
    (the same key repeats, so they cannot live in the dict)."""
    records: dict[str, str] = {}
    runs: list[tuple[int, int]] = []
    pending: int | None = None
    pos = 0
    while pos < len(data):
        if data[pos] == 0:
            break  # padding
        m = _PAX_RECORD.match(data, pos)
        length = int(m.group(1)) if m else 0
        end = pos + length
        if m is None or length < len(m.group(0)) + 1 or end > len(data) or data[end - 1] != 10:
            raise TarError("corrupt tar header: a malformed pax record")
        try:
            key = m.group(2).decode("utf-8")
        except UnicodeDecodeError:
            raise TarError("corrupt tar header: a pax key that is not UTF-8") from None
        value = _text(data[m.end(): pos + length - 1])
        pos += length
        if key == "GNU.sparse.offset":
            pending = _pax_number(value, key)
        elif key == "GNU.sparse.numbytes":
            if pending is None:
                raise TarError("corrupt tar header: GNU.sparse.numbytes without its offset")
            runs.append((pending, _pax_number(value, key)))
            pending = None
        else:
            records[key] = value
    return records, runs
