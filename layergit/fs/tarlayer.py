"""Reading tar archives (rootfs tarballs and image layers) into snapshot changes.

tarfile is used only as a parser: nothing is extracted to the host. Each member
becomes a :class:`TarEntry` (a path inside the image, its metadata and its blob), and
:func:`apply_layer` applies a layer's entries to an in-memory snapshot
(store.mutable), whiteouts first as the OCI layer spec says (a whiteout hides only
lower layers). Names with ``..`` are refused, absolute names are taken relative to
the image root, and a symlink in a parent path is resolved inside the image, never
on the host. Limits on uncompressed bytes and entry count stop decompression bombs.
"""

from __future__ import annotations

import collections
import errno
import hashlib
import io
import lzma
import re
import tarfile
from dataclasses import dataclass

from ..errors import LgError, UsageError
from ..store import meta as M
from ..store.mutable import Dir, Inode, MutableTree, PathError
from ..store.rawobj import CHUNK, STREAM_FROM

WHITEOUT = b".wh."
_TAIL = 1 << 20  # more than tarfile reads ahead (one 10 KiB record)
OPAQUE = b".wh..wh..opq"
_PAX_TIME = re.compile(r"(-?[0-9]+)(?:\.([0-9]*))?")  # seconds, optional fraction

_KINDS = {
    tarfile.REGTYPE: "f",
    tarfile.AREGTYPE: "f",
    tarfile.CONTTYPE: "f",
    tarfile.GNUTYPE_SPARSE: "f",  # old GNU sparse; tarfile reads the holes as zeros (see _check_sparse)
    tarfile.DIRTYPE: "d",
    tarfile.SYMTYPE: "l",
    tarfile.LNKTYPE: "h",
    tarfile.CHRTYPE: "c",
    tarfile.BLKTYPE: "b",
    tarfile.FIFOTYPE: "p",
}


_KIND_WORDS = {"f": "file", "l": "symlink", "c": "character device", "b": "block device", "p": "fifo"}


class ArchiveError(LgError):
    """An archive that is malformed, hostile or over the limits."""


class LimitExceeded(ArchiveError):
    """An archive over --max-bytes, --max-entries or the bound on extended headers:
    refused whatever reads it, format detection included."""


@dataclass
class Limits:
    """Caps on what one import may unpack; flags raise them for genuinely huge images."""

    max_bytes: int = 32 << 30
    max_entries: int = 2_000_000
    bytes: int = 0
    entries: int = 0

    def count(self, entries: int = 0, nbytes: int = 0) -> None:
        self.entries += entries
        self.bytes += nbytes
        if self.entries > self.max_entries:
            raise LimitExceeded(
                f"archive has more than {self.max_entries} entries (raise the limit with --max-entries)"
            )
        if self.bytes > self.max_bytes:
            raise LimitExceeded(
                f"archive unpacks to more than {self.max_bytes} bytes (raise the limit with --max-bytes)"
            )


class Digesting(io.RawIOBase):
    """A reader that hashes and counts what passes through it, within optional limits.

    Decompressor errors surface as ArchiveError: each library has its own types.
    With ``digest`` False nothing is hashed (``sha256`` stays the hash of nothing), for
    a stream no digest is checked against: a rootfs tarball, where hashing 200 MB cost
    a tenth of the import.
    """

    def __init__(self, inner, limits: Limits | None = None, digest: bool = True):
        self._inner = inner
        self._limits = limits
        self.sha256 = hashlib.sha256()
        self._hash = self.sha256.update if digest else _unhashed
        self.size = 0
        # The last reads, at least _TAIL bytes, to look back at where a tar ended: whole
        # pieces, since trimming one buffer to exactly _TAIL moved a megabyte per read.
        self._tail: collections.deque[bytes] = collections.deque()
        self._tail_size = 0

    def block_at(self, offset: int, n: int) -> bytes | None:
        """Bytes [offset, offset+n) if still in the look-back window, else None."""
        while self.size < offset + n and self.read(1 << 16):
            pass
        start = self.size - self._tail_size
        if offset < start:
            return None
        return b"".join(self._tail)[offset - start: offset - start + n]

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:
        try:
            data = self._inner.read(len(buf))
        except LgError:
            raise
        except Exception as exc:  # each decompressor has its own error types
            raise ArchiveError(f"corrupt or truncated compressed data: {exc}") from None
        n = len(data)
        buf[:n] = data
        if self._limits is not None:
            self._limits.count(nbytes=n)
        self._hash(data)
        self.size += n
        self._tail.append(bytes(data))
        self._tail_size += n
        while self._tail_size - len(self._tail[0]) >= _TAIL:
            self._tail_size -= len(self._tail.popleft())
        return n

    def drain(self) -> None:
        """Read to the end (a tar's trailing padding is part of the digest too)."""
        while self.read(1 << 20):
            pass


def _unhashed(data: bytes) -> None:
    pass


def decompressed(raw, limits: Limits, digest: bool = True) -> Digesting:
    """Wrap a binary stream, undoing gzip, xz or zstd as detected from its first bytes."""
    buffered = raw if hasattr(raw, "peek") else io.BufferedReader(raw)
    magic = buffered.peek(6)[:6]
    inner: io.BufferedIOBase | io.RawIOBase
    if magic[:2] == b"\x1f\x8b":
        from isal import igzip

        inner = igzip.GzipFile(fileobj=buffered, mode="rb")
    elif magic == b"\xfd7zXZ\x00":
        inner = lzma.LZMAFile(buffered)
    elif magic[:4] == b"\x28\xb5\x2f\xfd":
        inner = _Zstd(buffered)
    else:
        inner = buffered
    return Digesting(inner, limits, digest)


class _Zstd(io.RawIOBase):
    """zstd decompression that notices a truncated stream (stream_reader does not)."""

    def __init__(self, raw):
        import zstandard

        self._raw = raw
        self._d = zstandard.ZstdDecompressor().decompressobj()
        self._buf = b""

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        while not self._buf:
            chunk = self._raw.read(1 << 16)
            if not chunk:
                if not self._d.eof:
                    raise ArchiveError("zstd data is truncated")
                return b""
            self._buf = self._d.decompress(chunk)
        out, self._buf = self._buf[:n] if n >= 0 else self._buf, self._buf[n:] if n >= 0 else b""
        return out


# An extended header (pax x or g, GNU long name or link, a sparse map) holds a path
# (PATH_MAX, 4 KiB), a link target (as much) and xattrs, whose values store.meta caps
# at 64 KiB as Linux does: 1 MiB holds a dozen xattrs at that cap. Real writers put at
# most a global header, a pax header, a long name and link and a sparse map before one
# member; more is a chain that tarfile would follow by recursion.
_MAX_EXTENDED = 1 << 20
_MAX_EXTENDED_HEADERS = 8


class _BoundedInfo(tarfile.TarInfo):
    """tarfile's member header, refusing an extended header over the bounds above
    before it is read: tarfile reads each whole into memory, its size as the archive
    claims it, so a 300 KB .tar.gz made lg hold 300 MB. tarfile offers no public hook
    for this; these override its private readers (as Python 3.11's tarfile names
    them): ``_proc_pax``, ``_proc_gnulong`` (the header's size is known
    before the read) and ``_proc_sparse``, ``_proc_gnusparse_10`` (maps read block by
    block until the map says it ends: their reads are capped instead)."""

    def _proc_pax(self, tar: BoundedTarFile):
        self._spend(tar, self.size, "pax extended header")
        if self.type == tarfile.XGLTYPE:  # kept for every later member
            tar.global_bytes += self.size
            if tar.global_bytes > _MAX_EXTENDED:
                raise LimitExceeded(f"archive has pax global headers of more than {_MAX_EXTENDED} bytes")
        return super()._proc_pax(tar)  # type: ignore[misc]  # private, not in typeshed

    def _proc_gnulong(self, tar: BoundedTarFile):
        self._spend(tar, self.size, "GNU long name or link")
        return super()._proc_gnulong(tar)  # type: ignore[misc]  # private, not in typeshed

    def _proc_sparse(self, tar: BoundedTarFile):
        return self._capped(tar, super()._proc_sparse, tar)  # type: ignore[misc]  # private, not in typeshed

    def _proc_gnusparse_10(self, next, pax_headers, tar: BoundedTarFile):
        return self._capped(tar, super()._proc_gnusparse_10, next, pax_headers, tar)  # type: ignore[misc]  # private, not in typeshed

    def _spend(self, tar: BoundedTarFile, size: int, what: str) -> None:
        tar.extended_headers += 1
        tar.extended_bytes += size
        if tar.extended_headers > _MAX_EXTENDED_HEADERS:
            raise LimitExceeded(
                f"archive has more than {_MAX_EXTENDED_HEADERS} extended headers before one entry")
        if tar.extended_bytes > _MAX_EXTENDED:
            raise LimitExceeded(f"archive has a {what} of more than {_MAX_EXTENDED} bytes")

    def _capped(self, tar: BoundedTarFile, read, *args):
        """``read(*args)`` with the archive's reads counted as an extended header."""
        self._spend(tar, 0, "GNU sparse map")
        real = tar.fileobj
        tar.fileobj = _SparseMapReads(real, tar)  # type: ignore[assignment]  # reads and tells
        try:
            return read(*args)
        finally:
            tar.fileobj = real


class _SparseMapReads:
    """The archive stream while a sparse map is read: what is read counts as extended
    header bytes, refused over the bound before the read."""

    def __init__(self, inner, tar: BoundedTarFile):
        self._inner = inner
        self._tar = tar

    def read(self, n: int) -> bytes:
        self._tar.extended_bytes += n
        if self._tar.extended_bytes > _MAX_EXTENDED:
            raise LimitExceeded(f"archive has a GNU sparse map of more than {_MAX_EXTENDED} bytes")
        return self._inner.read(n)

    def tell(self) -> int:
        return self._inner.tell()


class BoundedTarFile(tarfile.TarFile):
    """A TarFile whose member headers are :class:`_BoundedInfo`; open archives with
    ``BoundedTarFile.open``. The extended-header budget is per member, but for pax
    global headers, which tarfile keeps for the rest of the archive."""

    tarinfo = _BoundedInfo
    members: list[tarfile.TarInfo]  # tarfile's own, not in typeshed
    extended_headers = 0
    extended_bytes = 0
    global_bytes = 0

    def next(self):
        self.extended_headers = self.extended_bytes = 0
        return super().next()


@dataclass
class TarEntry:
    parts: list[bytes]  # path inside the image, no "." or ".." components
    kind: str  # f d l c b p, "h" hardlink, "wh" whiteout, "opq" opaque dir, "skip"
    meta: M.EntryMeta | None = None
    oid: bytes | None = None  # blob of a file or symlink target
    target: bytes | None = None  # symlink target
    link: list[bytes] | None = None  # hardlink target path


def split_path(name: str, what: str = "entry") -> list[bytes]:
    """Archive path -> components; absolute paths are relative to the root, ``..`` is refused."""
    raw = name.encode("utf-8", "surrogateescape")
    framed = b"/" + raw + b"/"  # a name may have thousands of components: search bytes, not lists
    if b"/../" in framed:
        raise ArchiveError(f"{what} {name!r} has a '..' component; refusing it")
    parts = raw.split(b"/")
    if b"//" in framed or b"/./" in framed:
        parts = [p for p in parts if p not in (b"", b".")]
    if b"\0" in raw:
        raise ArchiveError(f"{what} {name!r} contains NUL")
    return parts


def _mtime_ns(member: tarfile.TarInfo) -> int:
    text = member.pax_headers.get("mtime")
    if text:
        m = _PAX_TIME.fullmatch(text)
        if m is None:
            raise ArchiveError(f"entry {member.name!r} has a malformed mtime {text!r}")
        whole, frac = m.group(1), m.group(2) or ""
        sign = -1 if whole.startswith("-") else 1
        return int(whole) * 1_000_000_000 + sign * int((frac + "000000000")[:9])
    return int(member.mtime) * 1_000_000_000


def _xattrs(member: tarfile.TarInfo) -> tuple[tuple[str, bytes], ...]:
    out = []
    for key, value in member.pax_headers.items():
        if key.startswith("SCHILY.xattr."):
            out.append((key[len("SCHILY.xattr."):], value.encode("utf-8", "surrogateescape")))
    return tuple(sorted(out))


def read_tar(stream, writer, limits: Limits, whiteouts: bool, deposit=None, watch=None) -> list[TarEntry]:
    """Parse one tar stream into entries, writing file contents as blobs as we go, and
    regular files into ``deposit`` too when given (a fs.cache.FarmDeposit). ``watch``,
    when given, sees each member before its content is read, and may stop the parse
    by raising."""
    entries = []
    try:
        with _parsing(BoundedTarFile.open, fileobj=stream, mode="r|", errorlevel=2) as tar:
            members = iter(tar)
            while (member := _parsing(next, members, None)) is not None:
                limits.count(entries=1)
                if watch is not None:
                    watch(member)
                _check_sparse(tar, member, limits)
                entries.append(_entry(tar, member, writer, whiteouts, deposit))
            _check_end(stream, tar.offset)
    except (tarfile.TarError, EOFError, OSError) as exc:
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise  # the store's disk is full, not the archive broken: the caller names it
        raise ArchiveError(f"not a readable tar archive: {exc}") from None
    return entries


def _parsing(parse, *args, **kwargs):
    """``parse(...)``, one of tarfile's steps that read a header. tarfile lets ValueError
    and IndexError out of its parsing of GNU sparse maps and PAX numbers (a map that is
    not numbers, an extended sparse header cut off): archives that lie, like the rest."""
    try:
        return parse(*args, **kwargs)
    except (ValueError, IndexError) as exc:
        raise ArchiveError(f"corrupt tar header: {exc}") from None


def _check_sparse(tar: tarfile.TarFile, member, limits: Limits) -> None:  # typeshed: TarInfo.sparse is an int
    """A GNU sparse member (old GNU type S, PAX 0.0, 0.1 and 1.0, as ``tar --sparse``
    writes them; common in images: lastlog, faillog) whose map tarfile can follow.

    tarfile turns the map into data runs and holes and trusts it: runs out of order or
    past the file's size, or more data than the archive holds for the member, would
    read other members' bytes as content. The holes are counted against the limits
    before anything is read, so a 1 TB hole in a 10 KB archive is a bomb like any other.
    """
    if member.sparse is None:
        return
    end = stored = 0
    for offset, size in member.sparse:
        if size == 0:
            continue  # old GNU headers pad their four slots with (0, 0)
        if offset < end or size < 0 or offset + size > member.size:
            raise ArchiveError(f"entry {member.name!r} has a sparse map out of order or past its size")
        end, stored = offset + size, stored + size
    if member.offset_data + stored > tar.offset:
        raise ArchiveError(f"entry {member.name!r}: its sparse map claims more data than the archive holds")
    limits.count(nbytes=member.size - stored)


def _check_end(stream: Digesting, offset: int) -> None:
    """tarfile stops quietly at a corrupt or truncated header; a real end is a zero block."""
    block = stream.block_at(offset, 512)
    if block is None or block == b"" or block == bytes(512):
        return
    if len(block) < 512:
        raise ArchiveError(f"archive is truncated at byte {offset}")
    raise ArchiveError(f"corrupt tar header at byte {offset}")


def _entry(tar, member: tarfile.TarInfo, writer, whiteouts: bool, deposit) -> TarEntry:
    parts = split_path(member.name)
    base = parts[-1] if parts else b""
    if whiteouts and base.startswith(WHITEOUT):
        if base == OPAQUE:
            return TarEntry(parts[:-1], "opq")
        if base.startswith(WHITEOUT + WHITEOUT) or base == WHITEOUT:
            if base == WHITEOUT:
                raise ArchiveError(f"invalid whiteout {member.name!r}")
            return TarEntry(parts, "skip")  # aufs bookkeeping (.wh..wh.plnk and friends)
        return TarEntry(parts[:-1] + [base[len(WHITEOUT):]], "wh")
    kind = _KINDS.get(member.type)
    if kind is None:
        raise ArchiveError(f"entry {member.name!r} has unsupported tar type {member.type!r}")
    if kind == "h":
        return TarEntry(parts, "h", link=split_path(member.linkname, "hardlink target"))
    rdev = (member.devmajor, member.devminor) if kind in "cb" else None
    try:
        meta = M.EntryMeta(
            kind, member.mode & 0o7777, member.uid, member.gid, _mtime_ns(member), rdev, None, _xattrs(member)
        )
    except M.InvalidMetadata as exc:
        raise ArchiveError(f"entry {member.name!r}: {exc}") from None
    entry = TarEntry(parts, kind, meta)
    if kind == "f":
        if deposit is None:
            entry.oid = _put_content(tar.extractfile(member), member, writer)
        else:
            with deposit.file(meta, member.size) as out:
                entry.oid = out.oid = _put_content(tar.extractfile(member), member, writer, out.write)
    elif kind == "l":
        entry.target = _link_target(member)
        entry.oid = writer.put_blob(entry.target)
    return entry


def _link_target(member: tarfile.TarInfo) -> bytes:
    """A symlink's target as Linux can hold it: not empty (symlink(2) refuses it, and
    Docker refuses the layer) and at most LINK_TARGET_MAX bytes."""
    target = member.linkname.encode("utf-8", "surrogateescape")
    if not target:
        raise ArchiveError(f"entry {member.name[:200]!r}: its symlink target is empty")
    if len(target) > M.LINK_TARGET_MAX:
        raise ArchiveError(f"entry {member.name[:200]!r}: its symlink target is"
                           f" {len(target)} bytes; Linux allows {M.LINK_TARGET_MAX}")
    return target


def _put_content(f, member: tarfile.TarInfo, writer, tee=None) -> bytes:
    """A member's content as a blob: whole when small, else in CHUNK pieces, so a
    4 GB member costs a chunk of memory (the stream cannot be read twice: the pack
    writer hashes and deflates as the pieces come, and ``tee`` gets each piece too)."""
    if member.size < STREAM_FROM:
        data = f.read()
        if len(data) != member.size:
            raise ArchiveError(f"archive is truncated inside {member.name!r}")
        if tee is not None:
            tee(data)
        return writer.put_blob(data)

    def pieces():
        left = member.size
        while left:
            chunk = f.read(min(CHUNK, left))
            if not chunk:
                raise ArchiveError(f"archive is truncated inside {member.name!r}")
            left -= len(chunk)
            if tee is not None:
                tee(chunk)
            yield chunk

    return writer.put_blob_stream(member.size, pieces())


def apply_layer(tree: MutableTree, entries: list[TarEntry]) -> None:
    """Apply one layer: its whiteouts to the lower layers, then its entries in order."""
    try:
        for e in entries:
            if e.kind == "wh":
                tree.remove(e.parts)
            elif e.kind == "opq":
                tree.clear(e.parts)
        for e in entries:
            if e.kind not in ("wh", "opq", "skip"):
                _put(tree, e)
    except PathError as exc:
        raise ArchiveError(str(exc)) from None


def _put(tree: MutableTree, e: TarEntry) -> None:
    """Place one entry of a layer that is not a whiteout."""
    if e.kind == "h":
        assert e.link is not None  # _entry gives every hardlink its target
        target = tree.get(e.link)
        if not isinstance(target, Inode):
            where = b"/".join(e.parts).decode(errors="replace")
            raise ArchiveError(f"hardlink /{where} points to a missing entry or a directory")
        if not e.parts:
            raise ArchiveError("a hardlink cannot replace the image root")
        tree.put(e.parts, target)
        return
    assert e.meta is not None  # _entry gives every other kind its metadata
    if e.kind == "d":
        tree.put(e.parts, Dir(e.meta))
        return
    if not e.parts:
        raise ArchiveError(f"a {_KIND_WORDS.get(e.kind, e.kind)} cannot replace the image root directory")
    tree.put(e.parts, Inode(e.meta, e.oid, e.target))


def check_limits_flags(max_bytes: int | None, max_entries: int | None) -> Limits:
    limits = Limits()
    if max_bytes is not None:
        if max_bytes <= 0:
            raise UsageError("--max-bytes must be positive")
        limits.max_bytes = max_bytes
    if max_entries is not None:
        if max_entries <= 0:
            raise UsageError("--max-entries must be positive")
        limits.max_entries = max_entries
    return limits
