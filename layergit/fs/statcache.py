"""Remembering what we read last time, so a re-commit costs what changed.

Like git's index: for each regular file of a captured directory we keep its
(dev, ino, size, mtime, ctime) and the blob id and xattrs we found. ctime moves on
any write, chmod, chown or xattr change, so an identical stat tuple means identical
content and metadata. Files whose ctime is within a second of the capture are not
remembered (the kernel's coarse timestamps could hide a write in the same tick).
The cache is an optimisation only: a missing or unreadable file means a full read.
"""

from __future__ import annotations

import hashlib
import marshal
import os
import time

_RACY_NS = 1_000_000_000


class StatCache:
    def __init__(self, path: str | None):
        self._path = path
        self._old: dict = {}
        self._new: dict = {}
        self._started = time.time_ns()
        if path:
            try:
                with open(path, "rb") as f:
                    self._old = marshal.load(f)
            except (OSError, EOFError, ValueError, TypeError):
                self._old = {}

    @classmethod
    def for_directory(cls, cache_dir: str, source: str) -> StatCache:
        key = hashlib.sha1(os.fsencode(os.path.realpath(source))).hexdigest()
        return cls(os.path.join(cache_dir, key))

    @staticmethod
    def _key(st: os.stat_result) -> tuple:
        return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)

    def lookup(self, relpath: bytes, st: os.stat_result):
        """(blob id, xattrs) recorded for this exact inode state, or None."""
        hit = self._old.get(relpath)
        if hit is not None and hit[0] == self._key(st):
            self._new[relpath] = hit
            return hit[1], hit[2]
        return None

    def record(self, relpath: bytes, st: os.stat_result, blob: bytes, xattrs) -> None:
        if st.st_ctime_ns < self._started - _RACY_NS:
            self._new[relpath] = (self._key(st), blob, xattrs)

    def save(self) -> None:
        if not self._path:
            return
        os.makedirs(os.path.dirname(self._path), exist_ok=True)
        tmp = f"{self._path}.{os.getpid()}.tmp"
        with open(tmp, "wb") as f:
            marshal.dump(self._new, f)
        os.replace(tmp, self._path)
