"""Resolving ``-u USER[:GROUP]`` inside the container, as Docker does.

Names are looked up in the container's own /etc/passwd and /etc/group (read after
pivot_root, so they are the image's files, never the host's); numbers need no
entry. The user's supplementary groups come from /etc/group.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import LgError


class UserError(LgError):
    exit_code = 125


@dataclass(frozen=True)
class User:
    uid: int
    gid: int
    groups: tuple[int, ...]
    home: str


def _entries(path: str) -> list[list[str]]:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return [line.rstrip("\n").split(":") for line in f if line.strip() and not line.startswith("#")]
    except OSError:
        return []


def resolve(spec_user: str) -> User:
    user, _, group = (spec_user or "0").partition(":")
    passwd = _entries("/etc/passwd")
    groups = _entries("/etc/group")
    entry = next((p for p in passwd if len(p) >= 6 and (p[0] == user or (user.isdigit() and p[2] == user))), None)
    if entry is None and not user.isdigit():
        raise UserError(f"unable to find user {user}: no matching entries in the image's /etc/passwd")
    uid = int(entry[2]) if entry else int(user)
    gid = int(entry[3]) if entry else 0
    home = entry[5] if entry else "/"
    name = entry[0] if entry else None
    if group:
        g = next((g for g in groups if len(g) >= 3 and (g[0] == group or (group.isdigit() and g[2] == group))), None)
        if g is None and not group.isdigit():
            raise UserError(f"unable to find group {group}: no matching entries in the image's /etc/group")
        gid = int(g[2]) if g else int(group)
    extra = sorted({int(g[2]) for g in groups if len(g) >= 4 and name and name in g[3].split(",") and g[2].isdigit()} - {gid})
    return User(uid, gid, tuple(extra), home)
