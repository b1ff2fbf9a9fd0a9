"""The per-directory metadata blob: what a git tree cannot say about a directory.

Every directory of a snapshot is a git tree holding one reserved blob,
:data:`~layergit.store.treenames.META_NAME`, that lists, one line per entry and sorted
by stored name, the entry's type, full mode, owner, mtime to the nanosecond, device
number, hardlink leader and xattrs. A subdirectory is described in its parent's
blob like any other entry; only the root of a snapshot describes itself, as ``.``.
Fifos, sockets and device nodes have no content and live only here; regular files
and symlinks are also ordinary git entries (so plain git shows their content).

The text is canonical (one way to write any metadata), so an unchanged directory
keeps its tree id and a chmod shows up as a one-line change in ``git diff``.
docs/format.md is the normative description of version 1.
"""

from __future__ import annotations

import re
import stat
from dataclasses import dataclass, field

from ..errors import CorruptStore, LgError

HEADER = b"lgmeta 1\n"
LINK_TARGET_MAX = 4095  # bytes: symlink(2) refuses PATH_MAX (4096, with its NUL) or more
# The largest .lgmeta blob lg reads (whole: it is parsed into one dict). A line is a
# stored name (at most 255 bytes) and about 40 bytes of type, mode, owner and mtime,
# plus a hardlink path or xattrs when there are any: a directory of a million entries
# of ordinary names (~20 bytes) is about 60 MB, and one line with the largest xattr
# (64 KiB, percent-encoded) fits hundreds of times over.
META_BLOB_MAX = 64 << 20


def read_link_target(store, oid: bytes | None) -> bytes:
    """A symlink's target from its blob, checked as Linux would check it: at most
    LINK_TARGET_MAX bytes, not empty and no NUL (symlink(2) refuses an empty target, and
    a NUL would end it early: an export would write it cut short). A store filled by
    plain git or a hostile remote may hold any of these. ``oid`` is a node's, which
    snapshot.read_dir gives every symlink; None is refused, not followed."""
    if oid is None:
        raise CorruptStore("a symlink has no target blob")
    target = store.read_blob(oid, LINK_TARGET_MAX, "symlink target")
    if not target or b"\0" in target:
        why = "is empty" if not target else "holds a NUL byte"
        raise CorruptStore(f"symlink target {oid.hex()} {why}; no symlink can have it")
    return target

# One letter per file type, as in ls -l (with "f" for regular files).
TYPE_CHARS = {
    stat.S_IFDIR: "d",
    stat.S_IFREG: "f",
    stat.S_IFLNK: "l",
    stat.S_IFCHR: "c",
    stat.S_IFBLK: "b",
    stat.S_IFIFO: "p",
    stat.S_IFSOCK: "s",
}
CHAR_TYPES = {v: k for k, v in TYPE_CHARS.items()}
# Types that have no git entry of their own: their line in the blob is all there is.
META_ONLY = frozenset("cbps")

_NS = 1_000_000_000
# Characters left as they are in xattr names and link paths; the rest is %XX, so that
# a field never holds a space, "=" or a byte that is not printable ASCII.
_SAFE = "/@:+,!$&'()*;[]^{|}#"
_PRINTABLE = re.compile(rb"[\x21-\x7e]*")  # fullmatch: "$" would let a final newline in

# What the fields of a line may look like (docs/format.md); anything else is refused.
_MODE = re.compile(r"[0-7]{4}")
_PAIR = re.compile(r"(0|[1-9][0-9]*):(0|[1-9][0-9]*)")  # UID:GID, MAJOR:MINOR
_MTIME = re.compile(r"(0|-?[1-9][0-9]*)\.([0-9]{9})")
_ID_LIMIT = (1 << 32) - 1  # uid_t; (uid_t)-1 means "leave unchanged" to chown, so not an owner
_SECONDS_LIMIT = 1 << 63  # time_t
_XATTR_NAME_MAX = 255  # bytes, as Linux's XATTR_NAME_MAX
_XATTR_SIZE_MAX = 65536  # bytes, as Linux's XATTR_SIZE_MAX


class InvalidMetadata(LgError, ValueError):
    """Metadata no filesystem entry can have (a negative owner, mode bits beyond 07777, ...)."""


@dataclass(frozen=True, slots=True)  # slots: one per entry of a tree being read or built
class EntryMeta:
    """Everything about one filesystem entry except its content and name.

    Construction refuses values that could not come from a real entry, so neither a
    hostile archive nor a hostile metadata blob can hand checkout a mode with file type
    bits, an owner chown reads as "unchanged" or a number os.* cannot convert.
    """

    kind: str  # one of TYPE_CHARS' values
    mode: int  # permission bits incl. setuid/setgid/sticky (07777)
    uid: int
    gid: int
    mtime_ns: int
    rdev: tuple[int, int] | None = None  # (major, minor) for c and b
    link: bytes | None = None  # hardlink leader: "/"-joined stored path from rootfs
    xattrs: tuple[tuple[str, bytes], ...] = field(default=())

    def __post_init__(self) -> None:
        if self.kind not in CHAR_TYPES:
            raise InvalidMetadata(f"unknown file type {self.kind!r}")
        if not 0 <= self.mode <= 0o7777:
            raise InvalidMetadata(f"mode {self.mode:#o} is not a permission mode")
        if not (0 <= self.uid < _ID_LIMIT and 0 <= self.gid < _ID_LIMIT):
            raise InvalidMetadata(f"owner {self.uid}:{self.gid} is out of range")
        if not -_SECONDS_LIMIT <= self.mtime_ns // _NS < _SECONDS_LIMIT:
            raise InvalidMetadata(f"mtime {self.mtime_ns} ns is out of range")
        if self.rdev is not None:
            if self.kind not in "cb":
                raise InvalidMetadata(f"a device number on a {self.kind}")
            if not (0 <= self.rdev[0] <= _ID_LIMIT and 0 <= self.rdev[1] <= _ID_LIMIT):
                raise InvalidMetadata(f"device number {self.rdev[0]}:{self.rdev[1]} is out of range")
        if self.link is not None and (self.kind == "d" or not self.link.startswith(b"/")):
            raise InvalidMetadata(f"hardlink leader {self.link!r} on a {self.kind}")
        for key, value in self.xattrs:
            _check_xattr(key, value)

    @property
    def st_mode(self) -> int:
        return CHAR_TYPES[self.kind] | self.mode


def _check_xattr(key: str, value: bytes) -> None:
    """An xattr Linux can hold: setxattr refuses the rest, and checkout must not meet it."""
    if not key:
        raise InvalidMetadata("an xattr without a name")
    namespace, dot, rest = key.partition(".")
    if "\0" in key:
        raise InvalidMetadata(f"xattr name {key!r} contains NUL")
    if not (namespace and dot and rest):
        raise InvalidMetadata(f"xattr name {key!r} is not NAMESPACE.NAME (user.x, trusted.x, ...)")
    if len(key.encode("utf-8", "surrogateescape")) > _XATTR_NAME_MAX:
        raise InvalidMetadata(f"xattr name {key[:32]!r}... is longer than {_XATTR_NAME_MAX} bytes")
    if len(value) > _XATTR_SIZE_MAX:
        raise InvalidMetadata(f"xattr {key!r} has a value larger than {_XATTR_SIZE_MAX} bytes")


def format_mtime(ns: int) -> str:
    """Seconds and nanoseconds; the second part is never negative (floor division)."""
    sec, nsec = divmod(ns, _NS)
    return f"{sec}.{nsec:09d}"


def _xattr_value(value: bytes) -> str:
    if _PRINTABLE.fullmatch(value) and b'"' not in value and b"\\" not in value:
        return '"' + value.decode("ascii") + '"'
    import base64  # here: most commands never meet a binary xattr, and base64 costs start-up

    return "0s" + base64.b64encode(value).decode("ascii")


def _parse_xattr_value(text: str) -> bytes:
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        return text[1:-1].encode("ascii")
    if text.startswith("0s"):
        import base64

        return base64.b64decode(text[2:], validate=True)
    raise ValueError(f"bad xattr value {text!r}")


def format_line(name: bytes, m: EntryMeta) -> bytes:
    if m.link is None and m.rdev is None and not m.xattrs:  # almost every entry: one format
        sec, nsec = divmod(m.mtime_ns, _NS)
        return name + f"\t{m.kind} {m.mode:04o} {m.uid}:{m.gid} {sec}.{nsec:09d}\n".encode()
    return _format_line(name, m)


def _format_line(name: bytes, m: EntryMeta) -> bytes:
    """format_line for any entry (the plain ones too: tests hold the two to one output)."""
    from urllib.parse import quote_from_bytes  # here: urllib.parse costs every command's start-up

    parts = [m.kind, f"{m.mode:04o}", f"{m.uid}:{m.gid}", format_mtime(m.mtime_ns)]
    if m.link is not None:
        parts.append("link=" + quote_from_bytes(m.link, safe=_SAFE))
    if m.rdev is not None:
        parts.append(f"rdev={m.rdev[0]}:{m.rdev[1]}")
    for key, value in m.xattrs:
        quoted = quote_from_bytes(key.encode("utf-8", "surrogateescape"), safe=_SAFE)
        parts.append(f"xattr.{quoted}={_xattr_value(value)}")
    return name + b"\t" + " ".join(parts).encode("utf-8") + b"\n"


def encode_blob(entries: dict[bytes, EntryMeta]) -> bytes:
    """The blob text for a directory; ``entries`` maps stored names (and b".") to metadata."""
    return HEADER + b"".join(format_line(name, entries[name]) for name in sorted(entries))


def _match(pattern: re.Pattern[str], text: str, what: str) -> re.Match[str]:
    m = pattern.fullmatch(text)
    if m is None:
        raise ValueError(f"bad {what} {text!r}")
    return m


# The line of almost every entry (no hardlink, device number or xattr), in one match:
# the same fields the patterns above accept, as bytes. Reading a 1 GB image's metadata
# for lg waste spent most of its time in the general parser below.
_PLAIN = re.compile(rb"([^\t]*)\t([a-z]) ([0-7]{4}) (0|[1-9][0-9]*):(0|[1-9][0-9]*)"
                    rb" (0|-?[1-9][0-9]*)\.([0-9]{9})")


def parse_line(line: bytes) -> tuple[bytes, EntryMeta]:
    """One line of :func:`format_line` (without its newline) -> (name, metadata);
    ValueError when it is not one, in canonical form."""
    plain = _PLAIN.fullmatch(line)
    if plain is not None:
        name, kind, mode, uid, gid, sec, nsec = plain.groups()
        return name, EntryMeta(kind.decode(), int(mode, 8), int(uid), int(gid), int(sec) * _NS + int(nsec))
    from urllib.parse import unquote_to_bytes  # only for links and xattrs (see format_line)

    name, tab, rest = line.partition(b"\t")
    fields = rest.decode("utf-8").split(" ")
    if not tab or len(fields) < 4:
        raise ValueError("expected NAME<TAB>TYPE MODE UID:GID MTIME")
    kind, mode, owner, mtime = fields[:4]
    _match(_MODE, mode, "mode")
    uid, gid = _match(_PAIR, owner, "owner").groups()
    sec, nsec = _match(_MTIME, mtime, "mtime").groups()
    link = rdev = None
    xattrs = []
    for extra in fields[4:]:
        key, _, value = extra.partition("=")
        if key == "link":
            link = unquote_to_bytes(value)
        elif key == "rdev":
            major, minor = _match(_PAIR, value, "device number").groups()
            rdev = (int(major), int(minor))
        elif key.startswith("xattr."):
            xattr = unquote_to_bytes(key[6:]).decode("utf-8", "surrogateescape")
            xattrs.append((xattr, _parse_xattr_value(value)))
        else:
            raise ValueError(f"unknown field {key!r}")
    if [k for k, _ in xattrs] != sorted({k for k, _ in xattrs}):
        raise ValueError("xattrs not sorted by name, or one named twice")
    mtime_ns = int(sec) * _NS + int(nsec)
    meta = EntryMeta(kind, int(mode, 8), int(uid), int(gid), mtime_ns, rdev, link, tuple(xattrs))
    # One way to write any metadata: whatever this writer would not have written (fields
    # out of order, %xx in lower case, base64 with stray bits, ...) is not ours. The
    # patterns above already pin down lines without link= or xattrs, most of them.
    if (link is not None or xattrs or len(fields) > 5) and format_line(name, meta) != line + b"\n":
        raise ValueError("not in canonical form")
    return name, meta


def decode_blob(data: bytes) -> dict[bytes, EntryMeta]:
    """Parse a metadata blob; raises CorruptStore with the offending line.

    Lines may come in any order (a blob made by hand); everything else must be exactly
    what :func:`encode_blob` writes, and each name may appear once.
    """
    if not data.startswith(HEADER):
        raise CorruptStore(f"metadata blob does not start with {HEADER.strip().decode()!r}")
    body = data[len(HEADER):]
    if body and not body.endswith(b"\n"):
        raise CorruptStore("metadata blob does not end with a newline")
    out: dict[bytes, EntryMeta] = {}
    for line in body.split(b"\n")[:-1] if body else []:
        try:
            name, meta = parse_line(line)
        except (ValueError, UnicodeDecodeError) as exc:
            raise CorruptStore(f"bad metadata line {line[:80]!r}: {exc}") from None
        if name in out:
            raise CorruptStore(f"metadata blob describes {name!r} twice")
        if name == b"." and meta.kind != "d":
            raise CorruptStore(f"metadata blob describes its directory as a {meta.kind}")
        out[name] = meta
    return out


def default_meta(git_mode: int) -> EntryMeta:
    """Metadata for an entry a plain git tree gave us without a metadata line."""
    if git_mode == 0o040000:
        return EntryMeta("d", 0o755, 0, 0, 0)
    if git_mode == 0o120000:
        return EntryMeta("l", 0o777, 0, 0, 0)
    return EntryMeta("f", 0o755 if git_mode & 0o111 else 0o644, 0, 0, 0)
