"""Revision syntax: ``NAME[:TAG]``, full or short ids, and git's ``~N`` / ``^N`` suffixes.

A bare word is first an image name (Docker semantics: ``app`` means ``app:latest``),
then a short id of at least four hex digits, so an image called ``cafe`` wins over a
commit whose id starts with cafe, as in Docker.
"""

from __future__ import annotations

import re

from ..errors import NotFound, UsageError
from . import names

_HEX = re.compile(r"[0-9a-f]{4,40}")  # fullmatch
_DIGITS = frozenset("0123456789")  # ASCII only: str.isdigit() takes other scripts' digits
MAX_COUNT_DIGITS = 9  # ~N and ^N: far beyond any history, and int() never sees thousands of digits
_SHOWN = 80  # characters of a revision an error line quotes


def _shown(rev: str) -> str:
    return repr(rev if len(rev) <= _SHOWN else rev[:_SHOWN] + "...")


def _split_suffixes(rev: str) -> tuple[str, list[str]]:
    """``rev`` as its base and its ``~N``/``^N`` suffixes, read back from the end in one pass
    (a regex search per suffix made a run of 20,000 of them take 40 s)."""
    suffixes: list[str] = []
    end = len(rev)
    while True:
        start = end
        while start > 0 and rev[start - 1] in _DIGITS:
            start -= 1
        if start < 2 or rev[start - 1] not in "~^":  # a suffix needs something before it
            return rev[:end], suffixes[::-1]
        suffixes.append(rev[start - 1 : end])
        end = start - 1


def resolve_base(store, base: str) -> bytes:
    pinned = names.split_digest(base)
    if pinned is not None:  # NAME@sha256:... through the digest index (lg push, lg pull)
        target = store.ref(names.digest_ref(*pinned))
        if target is None:
            raise NotFound(f"no image {pinned[0]}@{pinned[1]} pushed or pulled here")
        return target
    if names.looks_like_name(base):
        image = names.parse(base)
        target = store.ref(image.ref)
        if target is None:
            target = _tracking(store, image)
        if target is not None:
            return target
    if _HEX.fullmatch(base):
        oid = store.expand_prefix(base)
        if oid is not None:
            return oid
    if not names.looks_like_name(base) and not _HEX.fullmatch(base):
        raise UsageError(f"invalid revision {_shown(base)}")
    raise NotFound(f"no such image or revision: {base}")  # a name or an id: short and printable


def _tracking(store, image: names.ImageName) -> bytes | None:
    """``REMOTE/NAME:TAG`` as a remote-tracking name (``origin/app:1``), asked only when
    no local image has that name: a local image wins, as a local branch does in git."""
    remote, slash, rest = image.name.partition("/")
    if not slash:
        return None
    return store.ref(names.tracking_ref(remote, names.ImageName(rest, image.tag)))


def shadowed(store, rev: str) -> bool:
    """Whether ``rev`` names a local image and also a remote-tracking one (the local wins;
    git warns about such a refname, and so does lg)."""
    base = _split_suffixes(rev.strip())[0]
    if not names.looks_like_name(base):
        return False
    image = names.parse(base)
    return store.ref(image.ref) is not None and _tracking(store, image) is not None


def resolve(store, rev: str) -> bytes:
    """The commit id ``rev`` names; NotFound / UsageError with one clear line otherwise."""
    base, suffixes = _split_suffixes(rev.strip())
    oid = resolve_base(store, base)
    store.commit(oid)  # must be a commit
    for suffix in suffixes:
        if len(suffix) - 1 > MAX_COUNT_DIGITS:
            raise UsageError(f"invalid revision {_shown(rev)}: a count after ~ or ^ has at most "
                             f"{MAX_COUNT_DIGITS} digits")
        count = int(suffix[1:] or 1)
        if suffix[0] == "~":
            for _ in range(count):
                oid = _parent(store, oid, 1, rev)
        elif count:
            oid = _parent(store, oid, count, rev)
    return oid


def _parent(store, oid: bytes, n: int, rev: str) -> bytes:
    parents = store.commit(oid).parents
    if len(parents) < n:
        raise NotFound(f"{_shown(rev)}: {oid.hex()[:12]} has no parent #{n} (history starts there)")
    return parents[n - 1]
