"""Directory-fd based file operations that never follow a symlink out of a tree.

Every path below a tree root is reached one component at a time with
``O_NOFOLLOW`` relative to an already-open directory fd, so a symlink planted in a
tree (by an image, an archive or a racing process) can never redirect a read or a
write to the host. Operations on entries that cannot be opened (symlinks, device
nodes, fifos) go through ``/proc/self/fd/DIRFD/NAME`` with ``follow_symlinks=False``,
which names the entry inside the pinned directory without resolving it.
"""

from __future__ import annotations

import errno
import os
import stat

from ..errors import LgError

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NOCTTY | os.O_NONBLOCK


def proc_path(dirfd: int, name: bytes) -> bytes:
    """A path naming ``name`` inside the directory open as ``dirfd``, without resolving it."""
    return b"/proc/self/fd/%d/%s" % (dirfd, name)


def open_dir(dirfd: int, name: bytes) -> int:
    """Open a subdirectory, refusing symlinks."""
    return os.open(name, DIR_FLAGS, dir_fd=dirfd)


def read_xattrs(dirfd: int, name: bytes, fd: int | None = None) -> tuple[tuple[str, bytes], ...]:
    """All xattrs of an entry, sorted by name; empty where the filesystem has none."""
    target = fd if fd is not None else proc_path(dirfd, name)
    try:
        names = os.listxattr(target, follow_symlinks=False) if fd is None else os.listxattr(fd)
    except OSError as exc:
        if exc.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
            return ()
        raise
    out = []
    for key in sorted(names):
        try:
            value = os.getxattr(target, key, follow_symlinks=False) if fd is None else os.getxattr(fd, key)
        except OSError as exc:
            if exc.errno == errno.ENODATA:  # removed while we looked
                continue
            raise
        out.append((key, value))
    return tuple(out)


def open_file(dirfd: int, name: bytes, expect: os.stat_result) -> tuple[int, os.stat_result]:
    """A regular file opened for reading, and its fstat, checking it is the inode we stat'ed."""
    fd = os.open(name, FILE_FLAGS, dir_fd=dirfd)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_ino != expect.st_ino or st.st_dev != expect.st_dev:
            raise LgError(f"{os.fsdecode(name)} changed while being read; try again")
    except BaseException:
        os.close(fd)
        raise
    return fd, st


def read_all(fd: int, size: int) -> bytes:
    """Everything left in an open file, expected to be ``size`` bytes (for small files)."""
    chunks = []
    while True:
        chunk = os.read(fd, max(size, 1 << 16))
        if not chunk:
            break
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)
