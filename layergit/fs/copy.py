"""Copying a tree between two directory fds with its owners, modes, times and xattrs.

``lg cp`` (in and out of a container) and a new volume's first fill from its image
both copy between trees that someone else controls: the container's processes, the
image's author. So every entry is reached relative to an open directory fd with
``O_NOFOLLOW`` (fs/safeio.py): a symlink is copied as a symlink, never followed,
and a directory swapped for a link while we copy fails the copy instead of
redirecting it. Owners are set before modes (chown clears setuid bits), times last.
Hardlinks within the source become separate files; holes are not kept; the walk
recurses, so a tree nested some hundreds of directories deep is refused in one line.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager

from ..errors import LgError
from .safeio import DIR_FLAGS, FILE_FLAGS

_CHUNK = 1 << 20


class CopyError(LgError):
    """A copy that could not complete (the message names the entry)."""


def _name(value: str | bytes) -> bytes:
    return os.fsencode(value)


def _xattrs(src, dst, follow: bool = True) -> None:
    """Copy extended attributes (security.capability among them); a filesystem without
    them is not an error."""
    try:
        names = os.listxattr(src, follow_symlinks=follow)
    except OSError:
        return
    for attr in names:
        try:
            os.setxattr(dst, attr, os.getxattr(src, attr, follow_symlinks=follow), follow_symlinks=follow)
        except OSError as exc:
            if exc.errno not in (errno.ENOTSUP, errno.EPERM, errno.EOPNOTSUPP):
                raise


def _content(src: int, dst: int) -> None:
    while True:
        try:
            n = os.copy_file_range(src, dst, _CHUNK)
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
                raise
            data = os.read(src, _CHUNK)
            n = len(data)
            view = memoryview(data)
            while view:
                view = view[os.write(dst, view):]
        if n == 0:
            return


def _meta(fd: int, st: os.stat_result, owners: bool) -> None:
    if owners:
        os.fchown(fd, st.st_uid, st.st_gid)
    os.fchmod(fd, stat.S_IMODE(st.st_mode))
    os.utime(fd, ns=(st.st_atime_ns, st.st_mtime_ns))


def _clear(dst_dir: int, name: bytes, want_dir: bool, shown: str) -> bool:
    """Make way for a new entry: an existing directory is kept (to copy into) when a
    directory comes; anything else that is not a directory is replaced. True when a
    directory is there to merge into."""
    try:
        st = os.stat(name, dir_fd=dst_dir, follow_symlinks=False)
    except FileNotFoundError:
        return False
    if stat.S_ISDIR(st.st_mode):
        if want_dir:
            return True
        raise CopyError(f"cannot overwrite directory {shown} with a non-directory")
    if want_dir:
        raise CopyError(f"cannot overwrite non-directory {shown} with a directory")
    os.unlink(name, dir_fd=dst_dir)
    return False


def copy_entry(src_dir: int, src_name: str | bytes, dst_dir: int, dst_name: str | bytes,
               owners: bool = True, shown: str = "") -> None:
    """Copy the entry ``src_name`` of ``src_dir`` (not followed if it is a symlink) to
    ``dst_name`` in ``dst_dir``, recursively; ``shown`` names it in errors."""
    src, dst = _name(src_name), _name(dst_name)
    shown = shown or os.fsdecode(dst)
    try:
        st = os.stat(src, dir_fd=src_dir, follow_symlinks=False)
        if stat.S_ISDIR(st.st_mode):
            _copy_dir(src_dir, src, dst_dir, dst, st, owners, shown)
        elif stat.S_ISREG(st.st_mode):
            _clear(dst_dir, dst, False, shown)
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            with _pair(src_dir, src, FILE_FLAGS, dst_dir, dst, flags, 0o600) as (fd_in, fd_out):
                os.set_blocking(fd_in, True)
                _content(fd_in, fd_out)
                _xattrs(fd_in, fd_out)
                _meta(fd_out, st, owners)
        elif stat.S_ISLNK(st.st_mode):
            _clear(dst_dir, dst, False, shown)
            os.symlink(os.readlink(src, dir_fd=src_dir), dst, dir_fd=dst_dir)
            if owners:
                os.chown(dst, st.st_uid, st.st_gid, dir_fd=dst_dir, follow_symlinks=False)
            os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dst_dir, follow_symlinks=False)
        else:  # device node, fifo, socket: made again, never opened
            _clear(dst_dir, dst, False, shown)
            os.mknod(dst, stat.S_IFMT(st.st_mode) | 0o600, st.st_rdev, dir_fd=dst_dir)
            if owners:
                os.chown(dst, st.st_uid, st.st_gid, dir_fd=dst_dir, follow_symlinks=False)
            os.chmod(dst, stat.S_IMODE(st.st_mode), dir_fd=dst_dir, follow_symlinks=False)
            os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dst_dir, follow_symlinks=False)
    except CopyError:
        raise
    except RecursionError:  # a tree nested hundreds deep (the walk recurses): one line, not a crash
        raise CopyError(f"{shown[:80]}...: the tree nests too deep to copy") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise CopyError(f"{shown}: a symbolic link took the place of a directory while copying") from None
        if exc.errno == errno.EMFILE:
            raise CopyError(f"{shown}: the tree nests too deep to copy") from None
        raise CopyError(f"cannot copy {shown}: {exc.strerror}") from None


def _copy_dir(src_dir: int, src: bytes, dst_dir: int, dst: bytes, st: os.stat_result, owners: bool,
              shown: str) -> None:
    if not _clear(dst_dir, dst, True, shown):
        os.mkdir(dst, 0o700, dir_fd=dst_dir)
    with _pair(src_dir, src, DIR_FLAGS, dst_dir, dst, DIR_FLAGS) as (fd_in, fd_out):
        copy_contents(fd_in, fd_out, owners, shown)
        _xattrs(fd_in, fd_out)
        _meta(fd_out, st, owners)


@contextmanager
def _pair(src_dir: int, src: bytes, src_flags: int, dst_dir: int, dst: bytes, dst_flags: int,
          mode: int = 0) -> Iterator[tuple[int, int]]:
    """The source entry and the destination entry, open together for the block."""
    fd_in = os.open(src, src_flags, dir_fd=src_dir)
    try:
        fd_out = os.open(dst, dst_flags, mode, dir_fd=dst_dir)
        try:
            yield fd_in, fd_out
        finally:
            os.close(fd_out)
    finally:
        os.close(fd_in)


def copy_contents(src_fd: int, dst_fd: int, owners: bool = True, shown: str = "") -> None:
    """Copy every entry of the directory open as ``src_fd`` into the one open as ``dst_fd``."""
    for name in sorted(os.listdir(src_fd)):
        copy_entry(src_fd, name, dst_fd, name, owners, f"{shown.rstrip('/')}/{name}")


def copy_dir_meta(src_fd: int, dst_fd: int) -> None:
    """Give the directory ``dst_fd`` the owner, mode and times of ``src_fd`` (a volume's root
    takes those of the image's directory it is mounted on, as Docker's)."""
    _meta(dst_fd, os.fstat(src_fd), True)


def is_empty(fd: int) -> bool:
    return not os.listdir(fd)
