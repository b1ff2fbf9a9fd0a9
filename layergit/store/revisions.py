"""Revision syntax: ``NAME[:TAG]``, full or short ids, and git's ``~N`` / ``^N`` suffixes.

A bare word is first an image name (Docker semantics: ``app`` means ``app:latest``),
then a short id of at least four hex digits, so an image called ``cafe`` wins over a
commit whose id starts with cafe, as in Docker.
"""

from __future__ import annotations

import re

from ..errors import NotFound, UsageError
from . import names

_SUFFIX = re.compile(r"(~[0-9]*|\^[0-9]*)\Z")
_HEX = re.compile(r"[0-9a-f]{4,40}")  # fullmatch


def _split_suffixes(rev: str) -> tuple[str, list[str]]:
    suffixes: list[str] = []
    while True:
        m = _SUFFIX.search(rev)
        if not m or m.start() == 0:
            return rev, suffixes[::-1]
        suffixes.append(m.group(1))
        rev = rev[: m.start()]


def resolve_base(store, base: str) -> bytes:
    if names.looks_like_name(base):
        target = store.ref(names.parse(base).ref)
        if target is not None:
            return target
    if _HEX.fullmatch(base):
        oid = store.expand_prefix(base)
        if oid is not None:
            return oid
    if not names.looks_like_name(base) and not _HEX.fullmatch(base):
        raise UsageError(f"invalid revision {base!r}")
    raise NotFound(f"no such image or revision: {base}")


def resolve(store, rev: str) -> bytes:
    """The commit id ``rev`` names; NotFound / UsageError with one clear line otherwise."""
    base, suffixes = _split_suffixes(rev.strip())
    oid = resolve_base(store, base)
    store.commit(oid)  # must be a commit
    for suffix in suffixes:
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
        raise NotFound(f"{rev}: {oid.hex()[:12]} has no parent #{n} (history starts there)")
    return parents[n - 1]
