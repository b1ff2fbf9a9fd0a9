"""Remembering what we read last time, so a re-commit costs what changed.

Like git's index: for each regular file of a captured directory we keep its
(dev, ino, size, mtime, ctime) and the blob id and xattrs we found. ctime moves on
any write, chmod, chown, xattr change, link or rename, so an identical stat tuple
means identical content and metadata. Files whose ctime is within a second of the
capture are not remembered (the kernel's coarse timestamps could hide a write in
the same tick). The cache is an optimisation only: a missing or unreadable file
means a full read, and so does one of any other shape (written by another version,
truncated, or tampered with: every record is checked before one is believed, and a
name in a remembered listing is one path component, never a way out of the
directory).

Like git's untracked cache, each directory is remembered too: its own stat tuple
(its mtime moves when an entry is added, removed or renamed), its entries' names
and what was found of each, and the tree it became. A directory found the same,
entry by entry, is that tree again without building it (fs.capture).
"""

from __future__ import annotations

import hashlib
import marshal
import os
import struct
import time
from operator import itemgetter
from typing import Iterable, TypeGuard

from .safeio import write_cache

_RACY_NS = 1_000_000_000
_FORMAT = 4  # (format, files, directories); anything else read is an empty cache
_KEY = struct.Struct("<QQqqq").pack  # dev, ino, size, mtime, ctime (ns, negative before 1970)


class StatCache:
    def __init__(self, path: str | None):
        self._path = path
        self._old: dict = {}
        self._new: dict = {}
        self._old_dirs: dict = {}
        self._new_dirs: dict = {}
        self.settled_before = time.time_ns() - _RACY_NS
        if path:
            try:
                with open(path, "rb") as f:
                    # loads of the whole file: marshal.load on a file reads it piece by
                    # piece through Python calls, 120 ms for a 6,768-entry tree, not 9.
                    saved = marshal.loads(f.read())
            except (OSError, EOFError, ValueError, TypeError):
                saved = None
            if (type(saved) is tuple and len(saved) == 3 and saved[0] == _FORMAT
                    and type(saved[1]) is dict and type(saved[2]) is dict):
                self._old, self._old_dirs = saved[1], saved[2]  # each record checked when used

    @classmethod
    def for_directory(cls, cache_dir: str, source: str) -> StatCache:
        key = hashlib.sha1(os.fsencode(os.path.realpath(source))).hexdigest()
        return cls(os.path.join(cache_dir, key))

    @staticmethod
    def key(st: os.stat_result) -> bytes:
        """An inode's state: device, inode, size, mtime and ctime, packed as 40 bytes.
        One bytes object (73 bytes in memory), not a tuple of five ints (about 240) nor
        their decimal digits (about 90, and four times the time to make): a capture
        makes one per entry and keeps two or three per file, for a million files
        hundreds of megabytes."""
        try:
            return _KEY(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        except struct.error:  # a time beyond 1678-2262 (ext4 keeps 1901-2446): longer, so
            return _KEY(st.st_dev, st.st_ino, st.st_size, 0, 0) + b"%d %d" % (  # never a packed key
                st.st_mtime_ns, st.st_ctime_ns)

    def lookup(self, relpath: bytes, key: bytes):
        """(blob id, xattrs) recorded for this exact inode state (``key``), or None."""
        hit = self._old.get(relpath)
        if _file_record(hit) and hit[0] == key:
            self._new[relpath] = hit
            return hit[1], hit[2]
        return None

    def record(self, relpath: bytes, st: os.stat_result, key: bytes, blob: bytes, xattrs) -> None:
        """Remember a file read in state ``key`` (of ``st``), if it has settled."""
        if self.settled(st):
            self._new[relpath] = (key, blob, xattrs)

    def settled(self, st: os.stat_result) -> bool:
        """Whether an inode last changed long enough before this capture to be remembered
        (both its times before ``settled_before``, which a walk may compare itself)."""
        return st.st_ctime_ns < self.settled_before and st.st_mtime_ns < self.settled_before

    def keep(self, relpaths: Iterable[bytes]) -> None:
        """Carry files' records over unread: they are in a directory found the same.
        Not checked here (most of a re-commit's files pass through): :meth:`lookup`
        checks a record before it is believed, whichever capture carried it."""
        old, new = self._old, self._new
        for relpath in relpaths:
            hit = old.get(relpath)
            if hit is not None:
                new[relpath] = hit

    def directory(self, relpath: bytes, st: os.stat_result):
        """(names, entries, tree) recorded for this directory in this very state, or None."""
        hit = self._old_dirs.get(relpath)
        if _dir_record(hit) and hit[0] == self.key(st):
            return hit[1], hit[2], hit[3]
        return None

    def record_directory(
        self, relpath: bytes, st: os.stat_result, names: list, entries: tuple, tree: bytes
    ) -> None:
        """Remember a directory: its listing, what was found of each entry (a tuple
        fs.capture compares whole) and its tree."""
        self._new_dirs[relpath] = (self.key(st), names, entries, tree)

    def save(self) -> None:
        if self._path:
            write_cache(self._path, marshal.dumps((_FORMAT, self._new, self._new_dirs)))


def _file_record(hit: object) -> TypeGuard[tuple]:
    """Whether ``hit`` has the shape :meth:`StatCache.record` gives a file's record."""
    return (type(hit) is tuple and len(hit) == 3 and type(hit[1]) is bytes and len(hit[1]) in (20, 32)
            and type(hit[2]) is tuple
            and (not hit[2] or all(type(x) is tuple and len(x) == 2 and type(x[0]) is str
                                   and type(x[1]) is bytes for x in hit[2])))


def _components(names: list) -> bool:
    """Whether every name is one path component, each once (C-speed checks: a cached
    listing is as long as the directory)."""
    if not names:
        return True
    try:
        joined = b"/".join(names)  # TypeError unless all are bytes (marshal gives no bytearray)
    except TypeError:
        return False
    return (joined.count(b"/") == len(names) - 1 and b"\0" not in joined and b"" not in names
            and b"." not in names and b".." not in names and len(set(names)) == len(names))


def _dir_record(hit: object) -> TypeGuard[tuple]:
    """Whether ``hit`` has the shape :meth:`StatCache.record_directory` gives: a sorted
    listing that cannot lead out of the directory, and per entry (name, stored, key, link,
    subtree) whose stored name is one component too (it becomes a tree entry's name)."""
    if not (type(hit) is tuple and len(hit) == 4 and type(hit[1]) is list and type(hit[2]) is tuple
            and type(hit[3]) is bytes and len(hit[3]) in (20, 32)):
        return False
    names, found = hit[1], hit[2]
    if not (_components(names) and names == sorted(names)):
        return False
    if found and (set(map(type, found)) != {tuple} or set(map(len, found)) != {5}):
        return False
    return _components(list(map(itemgetter(1), found)))
