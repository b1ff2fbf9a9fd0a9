"""Capturing a directory as a snapshot tree (see layergit.store.meta for the format).

The walk is depth-first in byte order of names, one directory fd at a time, never
following symlinks. Each directory becomes a git tree of its files, symlinks and
subdirectories plus a metadata blob; a tree or blob that the store already holds is
not written again, which is what makes an unchanged subtree free.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from typing import Callable

from ..errors import LgError, NotFound
from ..store import meta as M
from ..store import treenames
from ..store.rawobj import MODE_BLOB, MODE_EXEC, MODE_LINK, MODE_TREE, OBJ_BLOB, OBJ_TREE, tree_bytes
from .content import put_file
from .safeio import open_dir, read_xattrs
from .statcache import StatCache

Progress = Callable[[int, int], None]  # (entries done, bytes done)


@dataclass
class CaptureResult:
    tree: bytes
    entries: int = 0
    bytes: int = 0
    warnings: list[str] = field(default_factory=list)


def entry_meta(st: os.stat_result, xattrs, link: bytes | None = None) -> M.EntryMeta:
    kind = M.TYPE_CHARS.get(stat.S_IFMT(st.st_mode))
    if kind is None:
        raise LgError(f"unsupported file type {stat.S_IFMT(st.st_mode):o}")
    rdev = (os.major(st.st_rdev), os.minor(st.st_rdev)) if kind in "cb" else None
    return M.EntryMeta(
        kind, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, st.st_mtime_ns, rdev, link, xattrs
    )


class _Walker:
    def __init__(self, writer, cache: StatCache, progress: Progress | None):
        self.w = writer
        self.cache = cache
        self.progress = progress
        self.leaders: dict[tuple[int, int], bytes] = {}
        self.result = CaptureResult(b"")

    def directory(self, fd: int, stored_path: bytes, own: M.EntryMeta | None) -> bytes:
        """The tree for an open directory; ``own`` is the root's metadata (None below it)."""
        metas: dict[bytes, M.EntryMeta] = {b".": own} if own else {}
        git_entries: list[tuple[bytes, int, bytes]] = []
        names = sorted(os.fsencode(e.name) for e in os.scandir(fd))
        for name in names:
            est = os.stat(name, dir_fd=fd, follow_symlinks=False)
            stored = treenames.encode(name)
            child = stored_path + b"/" + stored
            self.result.entries += 1
            if stat.S_ISDIR(est.st_mode):
                sub = open_dir(fd, name)
                try:
                    sst = os.fstat(sub)
                    if (sst.st_ino, sst.st_dev) != (est.st_ino, est.st_dev):
                        raise LgError(f"{os.fsdecode(child)} changed while being read; try again")
                    git_entries.append((stored, MODE_TREE, self.directory(sub, child, None)))
                    metas[stored] = entry_meta(est, read_xattrs(fd, name, sub))
                finally:
                    os.close(sub)
                continue
            link = None
            if est.st_nlink > 1:
                key = (est.st_dev, est.st_ino)
                link = self.leaders.get(key)
                if link is None:
                    self.leaders[key] = child
            if stat.S_ISREG(est.st_mode):
                hit = self.cache.lookup(child, est)
                if hit is not None and self.w.has(hit[0]):
                    blob, xattrs = hit
                else:
                    blob, xattrs = put_file(self.w, fd, name, est)
                    self.cache.record(child, est, blob, xattrs)
                if link is None:
                    self.result.bytes += est.st_size
                git_entries.append((stored, MODE_EXEC if est.st_mode & 0o100 else MODE_BLOB, blob))
            elif stat.S_ISLNK(est.st_mode):
                xattrs = read_xattrs(fd, name)
                git_entries.append((stored, MODE_LINK, self.w.put(OBJ_BLOB, os.readlink(name, dir_fd=fd))))
            else:
                xattrs = read_xattrs(fd, name)
            metas[stored] = entry_meta(est, xattrs, link)
            if self.progress and self.result.entries % 256 == 0:
                self.progress(self.result.entries, self.result.bytes)
        git_entries.append((treenames.META_NAME_B, MODE_BLOB, self.w.put(OBJ_BLOB, M.encode_blob(metas))))
        return self.w.put(OBJ_TREE, tree_bytes(git_entries))


def capture(
    writer, source: str, cache: StatCache | None = None, progress: Progress | None = None
) -> CaptureResult:
    """Write ``source`` (a directory; the path itself may be a symlink) as a snapshot tree."""
    try:
        fd = os.open(source, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise NotFound(f"no such directory: {source}") from None
    except NotADirectoryError:
        raise LgError(f"not a directory: {source}") from None
    except PermissionError:
        raise LgError(f"cannot read directory {source}: permission denied") from None
    walker = _Walker(writer, cache or StatCache(None), progress)
    try:
        walker.result.tree = walker.directory(fd, b"", entry_meta(os.fstat(fd), read_xattrs(fd, b".", fd)))
    except PermissionError as exc:
        raise LgError(f"cannot read {exc.filename or source}: permission denied") from None
    finally:
        os.close(fd)
    walker.cache.save()
    if progress:
        progress(walker.result.entries, walker.result.bytes)
    return walker.result
