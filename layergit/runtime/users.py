"""Resolving ``-u USER[:GROUP]`` inside the container, as Docker does.

Names are looked up in the container's own /etc/passwd and /etc/group (read after
pivot_root, so they are the image's files, never the host's); numbers need no
entry. The user's supplementary groups come from /etc/group.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass

from ..errors import ExitCode, LgError
from . import syscalls as sc


class UserError(LgError):
    exit_code = ExitCode.RUN_FAILED


@dataclass(frozen=True)
class User:
    """Who a container's process runs as, resolved from ``--user`` and the image's own
    passwd and group files: the ids to set and the home directory to start in."""

    uid: int
    gid: int
    groups: tuple[int, ...]
    home: str


MAX_DATABASE = 4 << 20  # bytes: far beyond any real passwd or group file
# Ids are 32 bits, and the last one is (uid_t)-1, which setresuid and setresgid read as
# "leave unchanged": -u 4294967295 ran the command as root.
MAX_ID = 0xFFFF_FFFE


def parse_id(text: str) -> int | None:
    """``text`` (one half of USER[:GROUP]) as a numeric id, or None when it is a name to look
    up; a number no kernel takes (negative, or above MAX_ID) is refused, never wrapped."""
    digits = text[1:] if text.startswith("-") else text
    if not (digits.isascii() and digits.isdigit()):
        return None
    if text.startswith("-") or len(digits) > len(str(MAX_ID)) or int(digits) > MAX_ID:
        raise UserError(f"invalid user or group id {text[:20]!r}: ids are 0 to {MAX_ID}")
    return int(digits)


def check(spec_user: str) -> None:
    """Refuse a USER[:GROUP] whose numbers are out of range before any container exists
    (names can only be looked up in the image, when the container starts)."""
    user, _, group = spec_user.partition(":")
    parse_id(user)
    parse_id(group)


def _image_id(text: str, path: str, name: str) -> int:
    """An id from the image's ``path`` (hostile input) for ``name``: a number in range."""
    try:
        value = parse_id(text)
    except UserError:
        value = None
    if value is None:
        raise UserError(f"the image's {path} gives {name[:40]!r} the id {text[:20]!r}: ids are 0 to {MAX_ID}")
    return value


def _entries(path: str) -> list[list[str]]:
    """The lines of the image's ``path`` split into fields; [] if it does not exist.

    The file is the image's, read as root before exec, so it is hostile input: a
    link to /dev/zero must not grow without bound, a FIFO must not hang lg, and a
    magic link (/proc/self/fd/0) must not read lg's own stdin. Regular files only,
    opened without blocking and without magic links, read up to MAX_DATABASE.
    """
    try:
        flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
        fd = sc.openat2(-100, path, flags, sc.RESOLVE_NO_MAGICLINKS)
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise UserError(f"cannot read the image's {path}: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UserError(f"the image's {path} is not a regular file")
        if st.st_size > MAX_DATABASE:
            raise UserError(f"the image's {path} is larger than {MAX_DATABASE >> 20} MiB")
        data = os.read(fd, MAX_DATABASE + 1)
    finally:
        os.close(fd)
    if len(data) > MAX_DATABASE:  # grew since fstat
        raise UserError(f"the image's {path} is larger than {MAX_DATABASE >> 20} MiB")
    text = data.decode("utf-8", errors="replace")
    return [line.split(":") for line in text.splitlines() if line.strip() and not line.startswith("#")]


def _usable(path: str, needed: bool) -> list[list[str]]:
    """_entries, except that an unusable file counts as absent when no name must be looked
    up in it (numeric ids): only a lookup by name needs the image's database."""
    try:
        return _entries(path)
    except UserError:
        if needed:
            raise
        return []


def _named(rows: list[list[str]], key: str, fields: int) -> list[str] | None:
    """The first row of at least ``fields`` fields for ``key``: its name, or its id if ``key`` is numeric."""
    by_id = key.isascii() and key.isdigit()
    return next((r for r in rows if len(r) >= fields and (r[0] == key or (by_id and r[2] == key))), None)


def _member_gid(text: str) -> int | None:
    """A supplementary group's id, or None for one no kernel takes: it names no group."""
    try:
        return parse_id(text)
    except UserError:
        return None


def extra_groups(wanted: list[str]) -> tuple[int, ...]:
    """``--group-add``: group ids, or names looked up in the image's /etc/group."""
    if not wanted:
        return ()
    table = _usable("/etc/group", any(parse_id(g) is None for g in wanted))
    out = []
    for group in wanted:
        gid = parse_id(group)
        if gid is None:
            entry = _named(table, group, 3)
            if entry is None:
                raise UserError(f"unable to find group {group}: no entry in the image's /etc/group")
            gid = _image_id(entry[2], "/etc/group", entry[0])
        out.append(gid)
    return tuple(out)


def resolve(spec_user: str) -> User:
    user, _, group = (spec_user or "0").partition(":")
    uid_given, gid_given = parse_id(user), parse_id(group)
    passwd = _usable("/etc/passwd", uid_given is None)
    groups = _usable("/etc/group", bool(group) and gid_given is None)
    entry = _named(passwd, user, 6)
    if entry is not None:
        uid, gid = _image_id(entry[2], "/etc/passwd", entry[0]), _image_id(entry[3], "/etc/passwd", entry[0])
    elif uid_given is not None:
        uid, gid = uid_given, 0
    else:
        raise UserError(f"unable to find user {user}: no matching entries in the image's /etc/passwd")
    home = entry[5] if entry else "/"
    name = entry[0] if entry else None
    if group:
        g = _named(groups, group, 3)
        if g is not None:
            gid = _image_id(g[2], "/etc/group", g[0])
        elif gid_given is not None:
            gid = gid_given
        else:
            raise UserError(f"unable to find group {group}: no matching entries in the image's /etc/group")
    member = {
        n for g in groups if len(g) >= 4 and name and name in g[3].split(",")
        if (n := _member_gid(g[2])) is not None
    }
    extra = sorted(member - {gid})
    return User(uid, gid, tuple(extra), home)
