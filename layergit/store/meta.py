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

import base64
import re
import stat
from dataclasses import dataclass, field
from urllib.parse import quote_from_bytes, unquote_to_bytes

from ..errors import CorruptStore

HEADER = b"lgmeta 1\n"

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
_PRINTABLE = re.compile(rb'^[\x21-\x7e]*$')


@dataclass(frozen=True)
class EntryMeta:
    """Everything about one filesystem entry except its content and name."""

    kind: str  # one of TYPE_CHARS' values
    mode: int  # permission bits incl. setuid/setgid/sticky (07777)
    uid: int
    gid: int
    mtime_ns: int
    rdev: tuple[int, int] | None = None  # (major, minor) for c and b
    link: bytes | None = None  # hardlink leader: "/"-joined stored path from rootfs
    xattrs: tuple[tuple[str, bytes], ...] = field(default=())

    @property
    def st_mode(self) -> int:
        return CHAR_TYPES[self.kind] | self.mode


def format_mtime(ns: int) -> str:
    """Seconds and nanoseconds; the second part is never negative (floor division)."""
    sec, nsec = divmod(ns, _NS)
    return f"{sec}.{nsec:09d}"


def _xattr_value(value: bytes) -> str:
    if _PRINTABLE.match(value) and b'"' not in value and b"\\" not in value:
        return '"' + value.decode("ascii") + '"'
    return "0s" + base64.b64encode(value).decode("ascii")


def _parse_xattr_value(text: str) -> bytes:
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        return text[1:-1].encode("ascii")
    if text.startswith("0s"):
        return base64.b64decode(text[2:], validate=True)
    raise ValueError(f"bad xattr value {text!r}")


def format_line(name: bytes, m: EntryMeta) -> bytes:
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


def _parse_line(line: bytes) -> tuple[bytes, EntryMeta]:
    name, _, rest = line.partition(b"\t")
    fields = rest.decode("utf-8").split(" ")
    kind, mode, owner, mtime = fields[:4]
    uid, gid = owner.split(":")
    sec, nsec = mtime.split(".")
    if kind not in CHAR_TYPES or len(nsec) != 9:
        raise ValueError("bad type or mtime")
    link = rdev = None
    xattrs = []
    for extra in fields[4:]:
        key, _, value = extra.partition("=")
        if key == "link":
            link = unquote_to_bytes(value)
        elif key == "rdev":
            major, minor = value.split(":")
            rdev = (int(major), int(minor))
        elif key.startswith("xattr."):
            xattr = unquote_to_bytes(key[6:]).decode("utf-8", "surrogateescape")
            xattrs.append((xattr, _parse_xattr_value(value)))
        else:
            raise ValueError(f"unknown field {key!r}")
    meta = EntryMeta(
        kind, int(mode, 8), int(uid), int(gid), int(sec) * _NS + int(nsec), rdev, link, tuple(xattrs)
    )
    return name, meta


def decode_blob(data: bytes) -> dict[bytes, EntryMeta]:
    """Parse a metadata blob; raises CorruptStore with the offending line."""
    if not data.startswith(HEADER):
        raise CorruptStore(f"metadata blob does not start with {HEADER.strip().decode()!r}")
    out: dict[bytes, EntryMeta] = {}
    for line in data[len(HEADER):].splitlines():
        try:
            name, meta = _parse_line(line)
        except (ValueError, UnicodeDecodeError) as exc:
            raise CorruptStore(f"bad metadata line {line[:80]!r}: {exc}") from None
        out[name] = meta
    return out


def default_meta(git_mode: int) -> EntryMeta:
    """Metadata for an entry a plain git tree gave us without a metadata line."""
    if git_mode == 0o040000:
        return EntryMeta("d", 0o755, 0, 0, 0)
    if git_mode == 0o120000:
        return EntryMeta("l", 0o777, 0, 0, 0)
    return EntryMeta("f", 0o755 if git_mode & 0o111 else 0o644, 0, 0, 0)
