"""Reading tar archives (rootfs tarballs and image layers) into snapshot changes.

Nothing is extracted to the host: fs/tarread.py parses the stream, and each member
becomes a :class:`TarEntry` (a path inside the image, its metadata and its blob), and
:func:`apply_layer` applies a layer's entries to an in-memory snapshot
(store.mutable), whiteouts first as the OCI layer spec says (a whiteout hides only
lower layers). Names with ``..`` are refused, absolute names are taken relative to
the image root, and a symlink in a parent path is resolved inside the image, never
on the host. Limits on uncompressed bytes and entry count stop decompression bombs.
"""

from __future__ import annotations

import hashlib
import io
import lzma
import threading
from dataclasses import dataclass, field
from functools import partial

from ..errors import LgError, UsageError
from ..store import meta as M
from ..store.mutable import Dir, Inode, MutableTree, PathError
from ..store.rawobj import CHUNK, STREAM_FROM
from .tarread import Member, TarBoundError, TarError, TarReader

WHITEOUT = b".wh."
OPAQUE = b".wh..wh..opq"

_KINDS = {
    b"0": "f",
    b"\0": "f",
    b"7": "f",  # contiguous file
    b"S": "f",  # old GNU sparse: holes read as zeros
    b"5": "d",
    b"2": "l",
    b"1": "h",
    b"3": "c",
    b"4": "b",
    b"6": "p",
}


_KIND_WORDS = {"f": "file", "l": "symlink", "c": "character device", "b": "block device", "p": "fifo"}


class ArchiveError(LgError):
    """An archive that is malformed, hostile or over the limits."""


class LimitExceeded(ArchiveError):
    """An archive over --max-bytes, --max-entries or the bound on extended headers:
    refused whatever reads it, format detection included."""


@dataclass
class Limits:
    """Caps on what one import may unpack; flags raise them for genuinely huge images.
    Counted from two threads (a layer's read-ahead counts its bytes, the parser its
    entries and holes), hence the lock: ``+=`` on an attribute is not atomic."""

    max_bytes: int = 32 << 30
    max_entries: int = 2_000_000
    bytes: int = 0
    entries: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def count(self, entries: int = 0, nbytes: int = 0) -> None:
        with self._lock:
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
    a tenth of the import. ``read`` hands on the inner stream's bytes objects as they
    are (the tar reader's path: no copy); ``readinto`` serves a BufferedReader.
    """

    def __init__(self, inner, limits: Limits | None = None, digest: bool = True):
        self._inner = inner
        self._limits = limits
        self.sha256 = hashlib.sha256()
        self._hash = self.sha256.update if digest else _unhashed
        self.size = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        try:
            data = self._inner.read(-1 if size is None else size)
        except LgError:
            raise
        except Exception as exc:  # each decompressor has its own error types
            raise ArchiveError(f"corrupt or truncated compressed data: {exc}") from None
        n = len(data)
        if self._limits is not None:
            self._limits.count(nbytes=n)
        self._hash(data)
        self.size += n
        return data

    def readinto(self, buf) -> int:
        data = self.read(len(buf))
        buf[:len(data)] = data
        return len(data)

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


@dataclass(slots=True)  # one per entry of a layer: a million-file layer holds a million
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


def read_tar(stream, writer, limits: Limits, whiteouts: bool, deposit=None, watch=None) -> list[TarEntry]:
    """Parse one tar stream into entries, writing file contents as blobs as we go, and
    regular files into ``deposit`` too when given (a fs.farm.FarmDeposit). ``watch``,
    when given, sees each member before its content is read, and may stop the parse
    by raising."""
    entries = []
    tar = TarReader(stream)
    try:
        for member in tar:
            limits.count(entries=1)
            if watch is not None:
                watch(member)
            limits.count(nbytes=member.holes)  # not in the archive: counted before they are read
            entries.append(_entry(tar, member, writer, whiteouts, deposit))
    except TarBoundError as exc:
        raise LimitExceeded(str(exc)) from None
    except TarError as exc:
        raise ArchiveError(str(exc)) from None
    return entries


def _entry(tar: TarReader, member: Member, writer, whiteouts: bool, deposit) -> TarEntry:
    kind = _KINDS.get(member.type)
    if kind is None:  # before anything else: a whiteout's name does not make a vendor type readable
        raise ArchiveError(f"entry {member.name!r} has unsupported tar type {member.type!r}")
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
    if kind == "h":
        return TarEntry(parts, "h", link=split_path(member.linkname, "hardlink target"))
    rdev = (member.devmajor, member.devminor) if kind in "cb" else None
    try:
        meta = M.EntryMeta(kind, member.mode & 0o7777, member.uid, member.gid, member.mtime_ns, rdev, None,
                           member.xattrs)
    except M.InvalidMetadata as exc:
        raise ArchiveError(f"entry {member.name!r}: {exc}") from None
    entry = TarEntry(parts, kind, meta)
    if kind == "f":
        if deposit is None:
            entry.oid = _put_content(tar, member, writer)
        else:
            entry.oid = deposit.blob(writer, meta, member.size, partial(_small_content, tar, member),
                                     partial(_pieces, tar, member))
    elif kind == "l":
        entry.target = _link_target(member)
        entry.oid = writer.put_blob(entry.target)
    return entry


def _link_target(member: Member) -> bytes:
    """A symlink's target as Linux can hold it: not empty (symlink(2) refuses it, and
    Docker refuses the layer) and at most LINK_TARGET_MAX bytes."""
    target = member.linkname.encode("utf-8", "surrogateescape")
    if not target:
        raise ArchiveError(f"entry {member.name[:200]!r}: its symlink target is empty")
    if len(target) > M.LINK_TARGET_MAX:
        raise ArchiveError(f"entry {member.name[:200]!r}: its symlink target is"
                           f" {len(target)} bytes; Linux allows {M.LINK_TARGET_MAX}")
    return target


def _put_content(f: TarReader, member: Member, writer) -> bytes:
    """A member's content as a blob: whole when small, else in CHUNK pieces, so a
    4 GB member costs a chunk of memory (the stream cannot be read twice: the pack
    writer hashes and deflates as the pieces come)."""
    if member.size < STREAM_FROM:
        return writer.put_blob(_small_content(f, member))
    return writer.put_blob_stream(member.size, _pieces(f, member))


def _small_content(f: TarReader, member: Member) -> bytes:
    """A member's content whole (one read, or pieces for a sparse file: a hole, a run, ...)."""
    data = f.read(member.size)
    if len(data) < member.size:
        data = b"".join(_pieces(f, member, len(data), data))
    return data


def _pieces(f: TarReader, member: Member, done: int = 0, first: bytes = b""):
    """The member's content from byte ``done`` on, in pieces of at most CHUNK, after
    ``first`` (what was read already)."""
    if first:
        yield first
    left = member.size - done
    while left:
        chunk = f.read(min(CHUNK, left))
        if not chunk:
            raise ArchiveError(f"archive is truncated inside {member.name!r}")
        left -= len(chunk)
        yield chunk


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
