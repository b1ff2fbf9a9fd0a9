"""User namespace id maps: the ones lg asks for from /etc/subuid and /etc/subgid, and the
one this process lives under (read from /proc/self; no system calls).

The map is the one podman makes: the user's own id is 0 inside, and its first
subordinate range is 1..COUNT, so a container's ids 1..COUNT stay exact and 0 is the
user (whose files in the root are then root's inside). Without a subordinate range
the map is the single id: everything still runs, as root inside, but no other owner
can be kept, and lg says so once.
"""

from __future__ import annotations

from dataclasses import dataclass

SUBUID = "/etc/subuid"
SUBGID = "/etc/subgid"
MAX_LINES = 100_000  # a bounded read: the files are the administrator's, but large ones exist


@dataclass(frozen=True)
class IdRange:
    """``count`` ids starting at ``inside`` in the namespace and at ``outside`` on the host."""

    inside: int
    outside: int
    count: int


@dataclass(frozen=True)
class IdMap:
    """One kind of id (uid or gid) of the namespace: the ranges newuidmap/newgidmap write."""

    ranges: tuple[IdRange, ...]

    @property
    def single(self) -> bool:
        """Only the user's own id is mapped: no subordinate range."""
        return len(self.ranges) == 1 and self.ranges[0].count == 1

    @property
    def size(self) -> int:
        return sum(r.count for r in self.ranges)

    def contains(self, inside: int) -> bool:
        return any(r.inside <= inside < r.inside + r.count for r in self.ranges)

    def to_host(self, inside: int) -> int | None:
        """The host id of ``inside``, None when it is outside every range."""
        for r in self.ranges:
            if r.inside <= inside < r.inside + r.count:
                return r.outside + inside - r.inside
        return None

    def args(self) -> list[str]:
        """The triples newuidmap and newgidmap take after the pid."""
        return [str(v) for r in self.ranges for v in (r.inside, r.outside, r.count)]


def subordinate(text: str, name: str, ident: int) -> IdRange | None:
    """The first range of ``name`` (or of the numeric ``ident``) in a subuid/subgid file's text,
    as 1..COUNT inside. Malformed lines are skipped, as shadow's own tools do."""
    for line in text.splitlines()[:MAX_LINES]:
        fields = line.strip().split(":")
        if len(fields) != 3 or fields[0] not in (name, str(ident)):
            continue
        try:
            start, count = int(fields[1]), int(fields[2])
        except ValueError:
            continue
        if start > 0 and count > 0:
            return IdRange(1, start, count)
    return None


def user_map(own: int, sub: IdRange | None) -> IdMap:
    """The map of one kind of id: the user's own id as 0, then its subordinate range."""
    ranges = [IdRange(0, own, 1)]
    if sub is not None:
        ranges.append(sub)
    return IdMap(tuple(ranges))


def read_subordinate(path: str, name: str, ident: int) -> IdRange | None:
    """:func:`subordinate` of the file at ``path``; a missing file is no range."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return subordinate(f.read(4 << 20), name, ident)
    except FileNotFoundError:
        return None


def current_map(kind: str = "uid") -> IdMap:
    """The map this process lives under, from /proc/self/{uid,gid}_map (the kernel's truth)."""
    ranges = []
    for line in (read_small(f"/proc/self/{kind}_map") or "").splitlines():
        fields = line.split()
        if len(fields) == 3:
            ranges.append(IdRange(int(fields[0]), int(fields[1]), int(fields[2])))
    return IdMap(tuple(ranges))


def inside() -> bool:
    """Whether this process runs in a user namespace other than the host's (whose map is
    the identity over all 2^32-1 ids)."""
    ranges = current_map().ranges
    return not (len(ranges) == 1 and ranges[0] == IdRange(0, 0, 4294967295))


def read_small(path: str) -> str | None:
    """A small file's text (a map, a sysctl, a pid file), None when it cannot be read."""
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            return f.read(4096).strip()
    except OSError:
        return None
