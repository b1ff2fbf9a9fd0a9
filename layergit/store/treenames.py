r"""Escaping of file names into git tree entry names, and back.

A root filesystem may hold names git refuses or treats specially (``.git``,
``.gitmodules``, their HFS/NTFS look-alikes that ``git fsck`` flags), names that are
not UTF-8, names with control characters, and a name equal to our reserved
metadata entry. Such names are stored as ``%`` followed by the name with ``%``,
``\``, control bytes and (for non-UTF-8 names) every byte >= 0x80 percent-encoded,
and the first byte encoded when the name starts with ``.``. (git's NTFS checks split
names at ``\``, so an escaped name must not keep one.) Every real name that starts
with ``%`` is escaped too, so decoding is unambiguous. Names that need none of this
are stored verbatim, which keeps ``git ls-tree`` readable. docs/format.md is the
normative description.
"""

import re

META_NAME = ".lgmeta"
META_NAME_B = META_NAME.encode()

# Code points HFS+ ignores when comparing names; git strips them to spot ".git".
_HFS_IGNORABLE = re.compile("[\u200c-\u200f\u202a-\u202e\u206a-\u206f\ufeff]")
# NTFS 8.3 short names ("git~1", "gitmod~2", "gi7eba~1") that git also refuses.
_SHORT_NAME = re.compile(r"^[a-z0-9]{1,6}~[0-9]+[. ]*$")
_CONTROL = re.compile(rb"[\x00-\x1f\x7f]")


def _git_special(text: str) -> bool:
    """True when git (fsck, checkout) would treat a component of this name specially."""
    folded = _HFS_IGNORABLE.sub("", text).lower()
    for part in folded.split("\\"):
        if part.startswith(".git") or _SHORT_NAME.match(part):
            return True
    return False


def needs_escape(name: bytes) -> bool:
    if name.startswith(b"%") or name == META_NAME_B or _CONTROL.search(name):
        return True
    try:
        text = name.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return _git_special(text)


def _percent(name: bytes, high_bytes: bool) -> bytes:
    out = bytearray()
    for i, b in enumerate(name):
        if b in (0x25, 0x5C) or b < 0x20 or b == 0x7F or (high_bytes and b >= 0x80) or (i == 0 and b == 0x2E):
            out += b"%%%02X" % b
        else:
            out.append(b)
    return bytes(out)


def encode(name: bytes) -> bytes:
    """The tree entry name for the file name ``name`` (raw bytes, never empty)."""
    if not needs_escape(name):
        return name
    try:
        name.decode("utf-8")
        utf8 = True
    except UnicodeDecodeError:
        utf8 = False
    return b"%" + _percent(name, high_bytes=not utf8)


_PCT = re.compile(rb"%([0-9A-Fa-f]{2})")


def decode(stored: bytes) -> bytes:
    """The file name a tree entry name stands for; inverse of :func:`encode`."""
    if not stored.startswith(b"%"):
        return stored
    return _PCT.sub(lambda m: bytes([int(m.group(1), 16)]), stored[1:])
