"""Three-way merges of the package databases an app-on-a-base rebase always meets.

When the base upgrades a package and the app installs another, both change dpkg's
status file: a text merge conflicts, although the two changes touch different
packages. These merges work on what the files hold instead: records keyed by
package, each side's changes kept, a package changed differently on both sides a
real conflict (:class:`DbConflict`, naming the packages).

- dpkg's ``status`` (and ``status-old``, its backup) and apt's ``extended_states``:
  RFC 822 stanzas separated by blank lines, keyed by ``Package`` and ``Architecture``.
- apk's ``installed``: the same shape with one-letter fields (``P:name``), keyed by ``P``.
- apk's ``world`` and other one-name-per-line lists: a set of lines.
- logs written only at the end (``dpkg.log``, apt's ``history.log`` and ``term.log``,
  ``alternatives.log``): ours, then what theirs appended to the base's.

Pure functions of bytes, no store: tested in tests/unit/test_pkgmerge.py.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import LgError


class DbConflict(LgError):
    """A record both sides changed differently, or a file that does not have its format."""


@dataclass(frozen=True)
class Stanzas:
    """A stanza file's format: the fields its records are keyed by, and the separator
    between a field's name and its value."""

    keys: tuple[str, ...]
    separator: bytes


DPKG = Stanzas(("Package", "Architecture"), b":")
APK = Stanzas(("P",), b":")


def _split(data: bytes, fmt: Stanzas, what: str) -> tuple[list[tuple], dict[tuple, bytes]]:
    """(record keys in file order, key -> the record's text)."""
    order: list[tuple] = []
    records: dict[tuple, bytes] = {}
    for chunk in data.replace(b"\r\n", b"\n").split(b"\n\n"):
        text = chunk.strip(b"\n")
        if not text:
            continue
        fields: dict[str, bytes] = {}
        for line in text.split(b"\n"):
            if line[:1] in (b" ", b"\t"):
                continue  # a continuation line
            name, sep, value = line.partition(fmt.separator)
            if sep:
                fields.setdefault(name.decode(errors="replace"), value.strip())
        if fmt.keys[0] not in fields:
            raise DbConflict(f"{what}: a record has no {fmt.keys[0]} field")
        key = tuple(fields.get(k, b"") for k in fmt.keys)
        if key in records:
            raise DbConflict(f"{what}: {_name(key)} is recorded twice")
        order.append(key)
        records[key] = text + b"\n"
    return order, records


def _name(key: tuple) -> str:
    return ":".join(part.decode(errors="replace") for part in key if part)


def merge_stanzas(base: bytes, ours: bytes, theirs: bytes, fmt: Stanzas, what: str,
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
    for i, key in enumerate(t_order):  # theirs' additions go after their predecessor in theirs
        if key in placed or key not in result:
            continue
        before = next((k for k in reversed(t_order[:i]) if k in placed), None)
        at = order.index(before) + 1 if before is not None else 0
        order.insert(at, key)
        placed.add(key)
    return b"\n".join(result[k] for k in order)


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
