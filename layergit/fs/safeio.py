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


def open_below(fd: int, parts: list[bytes]) -> int:
    """Open the directory ``parts`` (names, one per level) below the directory ``fd``,
    refusing symlinks at every level; ``fd`` itself stays open, and is duplicated for
    no parts."""
    fd = os.dup(fd)
    try:
        for part in parts:
            nxt = open_dir(fd, part)
            os.close(fd)
            fd = nxt
    except BaseException:
        os.close(fd)
        raise
    return fd


WINDOW = 32  # directory fds a walk keeps open besides its root (RLIMIT_NOFILE is 1024 by default)


def identity(st: os.stat_result) -> tuple[int, int]:
    return st.st_dev, st.st_ino


class DirStack:
    """The directories from a walk's root down to the one being walked, as fds.

    A tree may nest thousands of directories, far more than the 1024 fds a process
    gets by default, so only the deepest :data:`WINDOW` stay open (and the root,
    which the caller owns). One closed on the way down is reopened on the way back
    up as ``..`` of its child, which must then be the very inode it was: if the tree
    was rearranged meanwhile we stop, exactly where a held fd would have kept us.
    Walks that cut the loop short close the stack (``with``).
    """

    def __init__(self, root_fd: int, window: int = WINDOW):
        self._window = window  # walks that keep two stacks (source and copy) give each half
        self._fds = [root_fd]
        self._ids = [identity(os.fstat(root_fd))]
        self._names: list[bytes] = []

    def __enter__(self) -> DirStack:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    def __len__(self) -> int:
        """How many directories below the root the walk is."""
        return len(self._names)

    @property
    def fd(self) -> int:
        """The directory being walked (always open)."""
        return self._fds[-1]

    @property
    def names(self) -> list[bytes]:
        """Names from the root down to the directory being walked."""
        return self._names

    def push(self, fd: int, name: bytes, st: os.stat_result | None = None) -> None:
        """Go down into ``fd`` (opened as ``name`` in the current directory); the stack owns it."""
        self._fds.append(fd)
        self._ids.append(identity(st if st is not None else os.fstat(fd)))
        self._names.append(name)
        old = len(self._fds) - 1 - self._window
        if old >= 1 and self._fds[old] >= 0:
            os.close(self._fds[old])
            self._fds[old] = -1

    def pop(self) -> None:
        """Go back up to the parent, reopening it if it was closed."""
        fd = self._fds.pop()
        self._ids.pop()
        name = self._names.pop()
        try:
            if self._fds[-1] < 0:
                parent = os.open(b"..", DIR_FLAGS, dir_fd=fd)
                if identity(os.fstat(parent)) != self._ids[-1]:
                    os.close(parent)
                    where = f"{os.fsdecode(name)!r}, {len(self._names) + 1} levels down,"
                    raise LgError(f"directory {where} was moved while being read; try again")
                self._fds[-1] = parent
        finally:
            os.close(fd)

    def close(self) -> None:
        """Close every fd but the root's."""
        while len(self._fds) > 1:
            fd = self._fds.pop()
            if fd >= 0:
                os.close(fd)
        del self._ids[1:], self._names[:]


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


def write_cache(path: str, data: bytes) -> None:
    """Write a cache file whole: under ``.NAME.PID`` beside it, then renamed into place,
    so a reader finds the old file or the new one, never part of one (lg gc removes a
    killed writer's after a day). A cache that cannot be written (a full disk, a
    read-only root, something else in its place) is no error: it is computed again
    when next missed, and the command that had a value to keep has done its work."""
    directory, name = os.path.split(path)
    tmp = os.path.join(directory, f".{name}.{os.getpid()}")
    try:
        os.makedirs(directory, exist_ok=True)
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass
