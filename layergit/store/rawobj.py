"""Git's loose object formats (tree and commit), written and hashed without libgit2.

Capture builds hundreds of trees per commit and needs their ids before deciding
whether to write them (an unchanged directory must cost nothing), so trees are
serialised and hashed here in one pass. The formats are git's own; nothing new.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from ..errors import UsageError

MODE_TREE = 0o040000
MODE_BLOB = 0o100644
MODE_EXEC = 0o100755
MODE_LINK = 0o120000

OBJ_COMMIT, OBJ_TREE, OBJ_BLOB = 1, 2, 3

# Content at least this big is streamed in CHUNK-sized pieces (hashed, deflated, inflated,
# written as it flows) rather than held whole: memory stays bounded whatever a file's size,
# while the files of a rootfs (nearly all far smaller) keep the one-piece path.
STREAM_FROM = 8 << 20
CHUNK = 1 << 20
_TYPE_NAMES = {OBJ_COMMIT: b"commit", OBJ_TREE: b"tree", OBJ_BLOB: b"blob"}


def object_hasher(obj_type: int, size: int):
    """A SHA-1 fed git's object header: update it with the ``size`` bytes of content,
    in as many pieces as they come, and its digest is the object's id.

    hashlib is imported here, not at the top: it loads OpenSSL, a start-up cost that
    commands that only read objects and refs never need.
    """
    import hashlib

    return hashlib.sha1(_TYPE_NAMES[obj_type] + b" %d\0" % size)


def object_id(obj_type: int, data: bytes) -> bytes:
    """The raw 20-byte SHA-1 git gives an object of this type and content."""
    h = object_hasher(obj_type, len(data))
    h.update(data)
    return h.digest()


def _sort_key(item: tuple[bytes, int, bytes]) -> bytes:
    name, mode, _ = item
    return name + b"/" if mode == MODE_TREE else name


def tree_bytes(entries: list[tuple[bytes, int, bytes]]) -> bytes:
    """Serialise (name, mode, raw id) entries in git's order (trees sort as "name/")."""
    return b"".join(b"%o %s\0%s" % (mode, name, oid) for name, mode, oid in sorted(entries, key=_sort_key))


@dataclass(frozen=True)
class Signature:
    """An author or committer line: who, and when with its UTC offset."""

    name: str
    email: str
    time: int
    offset_minutes: int

    @classmethod
    def parse(cls, text: str, when: int | None = None) -> Signature:
        """Parse ``Name <email>`` as git does for --author."""
        name, lt, rest = text.partition("<")
        email, gt, tail = rest.partition(">")
        if not lt or not gt or tail.strip() or not name.strip() or "\n" in text:
            raise UsageError(f"author must look like 'Name <email>': {text!r}")
        return cls.now(name.strip(), email.strip(), when)

    @classmethod
    def now(cls, name: str, email: str, when: int | None = None) -> Signature:
        for value in (name, email):
            if any(c in value for c in "<>\n\0"):
                raise UsageError(f"invalid character in author {value!r}")
        stamp = int(time.time()) if when is None else when
        offset = time.localtime(stamp).tm_gmtoff // 60
        return cls(name, email, stamp, offset)

    def to_bytes(self) -> bytes:
        sign = "-" if self.offset_minutes < 0 else "+"
        hours, minutes = divmod(abs(self.offset_minutes), 60)
        who = _utf8(f"{self.name} <{self.email}>", "the author")
        return who + f" {self.time} {sign}{hours:02d}{minutes:02d}".encode()


def _utf8(text: str, what: str) -> bytes:
    """``text`` for a commit, which git reads as UTF-8: bytes that are not (from argv, as
    surrogates, or a lone surrogate from JSON) are one line, not an encoding traceback."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        shown = text if len(text) <= 60 else text[:60] + "..."
        raise UsageError(f"{what} is not valid UTF-8: {shown!r}") from None


def commit_bytes(
    tree: bytes, parents: list[bytes], author: Signature, committer: Signature, message: str
) -> bytes:
    lines = [b"tree " + tree.hex().encode()]
    lines += [b"parent " + p.hex().encode() for p in parents]
    lines.append(b"author " + author.to_bytes())
    lines.append(b"committer " + committer.to_bytes())
    body = message if message.endswith("\n") else message + "\n"
    return b"\n".join(lines) + b"\n\n" + _utf8(body, "the commit message")


def parse_tree(raw: bytes) -> list[tuple[bytes, int, bytes]]:
    """(name, mode, raw id) entries of a serialised tree, in stored order."""
    out = []
    pos = 0
    while pos < len(raw):
        space = raw.index(b" ", pos)
        nul = raw.index(b"\0", space)
        out.append((raw[space + 1: nul], int(raw[pos:space], 8), raw[nul + 1: nul + 21]))
        pos = nul + 21
    return out


def _parse_signature(text: bytes) -> Signature:
    ident, _, when = text.rpartition(b">")
    name, _, email = ident.partition(b"<")
    stamp, _, tz = when.strip().partition(b" ")
    sign = -1 if tz.startswith(b"-") else 1
    digits = tz.lstrip(b"+-") or b"0000"
    return Signature(
        name.strip().decode("utf-8", "replace"),
        email.decode("utf-8", "replace"),
        int(stamp),
        sign * (int(digits[:-2] or 0) * 60 + int(digits[-2:])),
    )


def parse_commit(raw: bytes) -> tuple[bytes, tuple[bytes, ...], Signature, Signature, str]:
    """(tree, parents, author, committer, message) of a serialised commit."""
    header, _, message = raw.partition(b"\n\n")
    tree, parents, author, committer = b"", [], None, None
    for line in header.split(b"\n"):
        key, _, value = line.partition(b" ")
        if key == b"tree":
            tree = bytes.fromhex(value.decode())
        elif key == b"parent":
            parents.append(bytes.fromhex(value.decode()))
        elif key == b"author":
            author = _parse_signature(value)
        elif key == b"committer":
            committer = _parse_signature(value)
    if not tree or author is None or committer is None:
        raise ValueError("not a well-formed commit")
    return tree, tuple(parents), author, committer, message.decode("utf-8", "replace")
