"""Resolving ``-u USER[:GROUP]`` inside the container, as Docker does.

Names are looked up in the container's own /etc/passwd and /etc/group (read after
pivot_root, so they are the image's files, never the host's); numbers need no
entry. The user's supplementary groups come from /etc/group.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass

from ..errors import LgError
from . import syscalls as sc


class UserError(LgError):
    exit_code = 125


@dataclass(frozen=True)
class User:
    uid: int
    gid: int
    groups: tuple[int, ...]
    home: str


MAX_DATABASE = 4 << 20  # bytes: far beyond any real passwd or group file


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
    by_id = key.isdigit()
    return next((r for r in rows if len(r) >= fields and (r[0] == key or (by_id and r[2] == key))), None)


def resolve(spec_user: str) -> User:
    user, _, group = (spec_user or "0").partition(":")
    passwd = _usable("/etc/passwd", not user.isdigit())
    groups = _usable("/etc/group", bool(group) and not group.isdigit())
    entry = _named(passwd, user, 6)
    if entry is None and not user.isdigit():
        raise UserError(f"unable to find user {user}: no matching entries in the image's /etc/passwd")
    uid = int(entry[2]) if entry else int(user)
    gid = int(entry[3]) if entry else 0
    home = entry[5] if entry else "/"
    name = entry[0] if entry else None
    if group:
        g = _named(groups, group, 3)
        if g is None and not group.isdigit():
            raise UserError(f"unable to find group {group}: no matching entries in the image's /etc/group")
        gid = int(g[2]) if g else int(group)
    member = {
        int(g[2]) for g in groups if len(g) >= 4 and name and name in g[3].split(",") and g[2].isdigit()
    }
    extra = sorted(member - {gid})
    return User(uid, gid, tuple(extra), home)
