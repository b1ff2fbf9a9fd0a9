"""Removing trees we wrote, even where their own modes deny us (0000 dirs, read-only files).

Checkouts, cached rootfs, container upper dirs and test scratch all hold such trees;
one implementation serves them all. Symlinks are removed, never followed.

A container decides how deep its upper dir nests (thousands of levels, more than
PATH_MAX allows as a path), so the walk is fd-relative, keeps its own stack rather
than recursing (shutil.rmtree recurses in Python 3.11) and holds a bounded number of
directory fds (fs.safeio.DirStack).
"""

from __future__ import annotations

import errno
import os
import stat

from .fs.safeio import DIR_FLAGS, DirStack


def remove_tree(path: str) -> None:
    """Remove ``path`` and everything below it; a missing path is fine."""
    path = path.rstrip("/") or "/"
    try:
        parent = os.open(os.path.dirname(path) or ".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        remove_at(parent, os.fsencode(os.path.basename(path)))
    finally:
        os.close(parent)


def remove_at(dirfd: int, name: bytes) -> None:
    """Remove the entry ``name`` of the directory open as ``dirfd``, and all below it.

    Entries that vanish meanwhile (an earlier, interrupted removal) are fine.
    """
    top = _open(dirfd, name)
    if top < 0:
        return
    try:
        with DirStack(top) as dirs:
            pending = [_clear(top)]  # per level: the subdirectories still to remove
            while True:
                if pending[-1]:
                    sub_name = pending[-1].pop()
                    sub = _open(dirs.fd, sub_name)
                    if sub < 0:
                        continue
                    dirs.push(sub, sub_name)
                    pending.append(_clear(sub))
                    continue
                pending.pop()
                if not pending:
                    break
                done = dirs.names[-1]
                dirs.pop()
                _forget(os.rmdir, done, dirs.fd)
    finally:
        os.close(top)
    _forget(os.rmdir, name, dirfd)


def _forget(func, name: bytes, dirfd: int) -> None:
    try:
        func(name, dir_fd=dirfd)
    except FileNotFoundError:
        pass


def _open(dirfd: int, name: bytes) -> int:
    """Open a directory to empty it, first making it ours to read where its mode denies us.

    -1 when there is nothing to empty: ``name`` is gone, or is not a directory (any
    more) and has been unlinked, a symlink included, never followed.
    """
    try:
        return os.open(name, DIR_FLAGS, dir_fd=dirfd)
    except FileNotFoundError:
        return -1
    except PermissionError:
        pass
    except OSError as exc:
        if exc.errno not in (errno.ENOTDIR, errno.ELOOP):
            raise
        _forget(os.unlink, name, dirfd)
        return -1
    # Pinned without following a link (O_PATH needs no permission), then made readable.
    pinned = os.open(name, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dirfd)
    try:
        os.chmod(f"/proc/self/fd/{pinned}", 0o700)
        return os.open(".", DIR_FLAGS, dir_fd=pinned)
    finally:
        os.close(pinned)


def _clear(fd: int) -> list[bytes]:
    """Unlink every non-directory in the directory ``fd``; returns its subdirectories."""
    st = os.fstat(fd)
    if stat.S_IMODE(st.st_mode) & 0o700 != 0o700:
        try:
            os.fchmod(fd, 0o700)  # unlinking needs write and search permission
        except PermissionError:
            pass
    subdirs = []
    with os.scandir(fd) as entries:
        for entry in entries:
            name = os.fsencode(entry.name)
            if entry.is_dir(follow_symlinks=False):
                subdirs.append(name)
            else:
                _forget(os.unlink, name, fd)
    return subdirs
