"""Three-way merges of the package databases an app-on-a-base rebase always meets.

When the base upgrades a package and the app installs another, both change dpkg's
status file: a text merge conflicts, although the two changes touch different
packages. These merges work on what the files hold instead: records keyed by
package, each side's changes kept, a package changed differently on both sides a
real conflict (:class:`DbConflict`, naming the packages).

- dpkg's ``status`` (and ``status-old``, its backup) and apt's ``extended_states``:
  RFC 822 stanzas separated by blank lines, keyed by ``Package`` and ``Architecture``.
- apk's ``installed``: the same shape with one-letter fields (``P:name``), keyed by ``P``;
  debconf's ``config.dat`` and ``templates.dat``, keyed by ``Name``.
- ``/etc/passwd``, ``group``, ``shadow``, ``gshadow``: a line per account, keyed by name
  (a base and an app that each add a system user).
- apk's ``world`` and other one-name-per-line lists: a set of lines.
- logs written only at the end (``dpkg.log``, apt's ``history.log`` and ``term.log``,
  ``alternatives.log``): ours, then what theirs appended to the base's.

Pure functions of bytes, no store: tested in tests/unit/test_pkgmerge.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from ..errors import LgError


class DbConflict(LgError):
    """A record both sides changed differently, or a file that does not have its format."""


@dataclass(frozen=True)
class Stanzas:
    """RFC 822 records separated by blank lines, keyed by the values of ``keys``
    (``separator`` between a field's name and its value)."""

    keys: tuple[str, ...]
    separator: bytes
    joiner = b"\n"  # between records

    def records(self, data: bytes, what: str) -> Iterator[tuple[tuple, bytes]]:
        for chunk in data.replace(b"\r\n", b"\n").split(b"\n\n"):
            text = chunk.strip(b"\n")
            if not text:
                continue
            fields: dict[str, bytes] = {}
            for line in text.split(b"\n"):
                if line[:1] in (b" ", b"\t"):
                    continue  # a continuation line
                name, sep, value = line.partition(self.separator)
                if sep:
                    fields.setdefault(name.decode(errors="replace"), value.strip())
            if self.keys[0] not in fields:
                raise DbConflict(f"{what}: a record has no {self.keys[0]} field")
            yield tuple(fields.get(k, b"") for k in self.keys), text + b"\n"


@dataclass(frozen=True)
class Lines:
    """One record per line, keyed by its first ``separator``-separated field: /etc/passwd,
    /etc/group and their shadows (a user or group by name)."""

    separator: bytes = b":"
    joiner = b""

    def records(self, data: bytes, what: str) -> Iterator[tuple[tuple, bytes]]:
        for line in data.split(b"\n"):
            if line:
                yield (line.partition(self.separator)[0],), line + b"\n"


DPKG = Stanzas(("Package", "Architecture"), b":")
APK = Stanzas(("P",), b":")
DEBCONF = Stanzas(("Name",), b":")
ACCOUNTS = Lines()
Format = Stanzas | Lines


def _split(data: bytes, fmt: Format, what: str) -> tuple[list[tuple], dict[tuple, bytes]]:
    """(record keys in file order, key -> the record's text)."""
    order: list[tuple] = []
    records: dict[tuple, bytes] = {}
    for key, text in fmt.records(data, what):
        if key in records:
            raise DbConflict(f"{what}: {_name(key)} is recorded twice")
        order.append(key)
        records[key] = text
    return order, records


def _name(key: tuple) -> str:
    return ":".join(part.decode(errors="replace") for part in key if part)


def merge_records(base: bytes, ours: bytes, theirs: bytes, fmt: Format, what: str,
                  prefer: str | None = None) -> bytes:
    """Records of ``ours`` with each record ``theirs`` added, changed or removed since
    ``base``, in ours' order with theirs' new records where theirs has them after the
    record before them (dpkg keeps its status sorted; this keeps that). A record both
    sides changed differently raises DbConflict naming every such package, unless
    ``prefer`` ("ours" or "theirs") says whose record to keep."""
    _, b = _split(base, fmt, what)
    o_order, o = _split(ours, fmt, what)
    t_order, t = _split(theirs, fmt, what)
    clashes = {k for k in set(b) | set(o) | set(t)
               if o.get(k) != b.get(k) and t.get(k) != b.get(k) and o.get(k) != t.get(k)}
    if clashes and prefer is None:
        raise DbConflict(f"{what}: {', '.join(sorted(_name(k) for k in clashes))} changed on both sides")
    result = dict(o)
    for key in set(b) | set(t):
        if t.get(key) != b.get(key) and (key not in clashes or prefer == "theirs"):
            if key in t:
                result[key] = t[key]
            else:
                result.pop(key, None)
    order = [k for k in o_order if k in result]
    placed = set(order)
    followers: dict[tuple | None, list[tuple]] = {}  # theirs' new records, after their predecessor
    before: tuple | None = None
    for key in t_order:
        if key in result and key not in placed:
            followers.setdefault(before, []).append(key)
        if key in result:
            before = key
    out: list[tuple] = []
    for anchor in [None, *order]:
        if anchor is not None:
            out.append(anchor)
        pending = followers.get(anchor, [])[::-1]
        while pending:
            key = pending.pop()
            out.append(key)
            pending.extend(followers.get(key, [])[::-1])
    return fmt.joiner.join(result[k] for k in out)


def merge_lines(base: bytes, ours: bytes, theirs: bytes) -> bytes:
    """A list of one item per line (apk's world): ours, less what theirs removed, plus
    what theirs added, in ours' order then theirs'."""
    b, o, t = (set(x.split(b"\n")) - {b""} for x in (base, ours, theirs))
    added, removed = t - b, b - t
    out = [line for line in ours.split(b"\n") if line and line not in removed]
    out += [line for line in theirs.split(b"\n") if line in added and line not in o]
    return b"".join(line + b"\n" for line in dict.fromkeys(out))


def merge_appended(base: bytes, ours: bytes, theirs: bytes, what: str) -> bytes:
    """A log both sides appended to: ours, then what theirs added after the base's text."""
    if not theirs.startswith(base):
        raise DbConflict(f"{what}: theirs rewrote the log instead of appending to it")
    return ours + theirs[len(base):]
