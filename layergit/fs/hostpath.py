"""Host paths a user names for lg to write: who else can reach them, and writing them safely.

:func:`reachable_by_others` tells whether users other than root and the caller
can walk into a directory (lg checkout warns when such a directory receives
setuid binaries or device nodes; a future lg cp needs the same answer).

For ``lg export -o PATH``, what is at PATH decides how it is written, as with ``tar -f``:

* nothing yet, or a regular file: the result is written to a new file beside it and
  renamed over PATH when complete, so PATH holds the old content or the new, never
  half of it, and a failure leaves nothing behind. The new file is the caller's,
  with the replaced file's permission bits (a new one gets 0666), both less the
  umask: replacing never widens who may read what was at PATH.
* a FIFO, a character or block device (``/dev/null``, a tty): written *into*, as
  ``tar -f`` does; replacing ``/dev/null`` with a file would break the host.
* a directory: refused, except by :func:`output_directory`, which fills a new
  private directory and renames it over PATH only if PATH is absent or empty.

A symbolic link at PATH is followed, as ``tar -f`` and the shell's ``>`` follow it
(``-o /dev/stdout`` works), and what it leads to is written by the rules above: a
regular file there is replaced, the link stays a link. Two links are refused: one
that leads nowhere (creating through it would let the link choose where the
archive lands) and one owned by neither the caller nor root (a link another user
planted in a shared directory such as /tmp, pointing at /etc/shadow, is the
oldest attack on programs run as root; the kernel's fs.protected_symlinks stops it
only in sticky directories, and only where it is switched on).
"""

from __future__ import annotations

import os
import secrets
import shutil
import stat
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import BinaryIO

from ..errors import LgError

_MAX_LINKS = 40  # as the kernel's MAXSYMLINKS
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_SPECIAL = (stat.S_IFIFO, stat.S_IFCHR, stat.S_IFBLK)


def _others_may_search(path: str, st: os.stat_result, me: int) -> bool:
    """Whether the directory grants search (x) to someone besides root and ``me``.

    With a POSIX ACL the group bits are the ACL's mask, so g+x then means some
    named user or group may pass, whatever the owning group.
    """
    if st.st_mode & stat.S_IXOTH or (st.st_mode & stat.S_IXUSR and st.st_uid not in (0, me)):
        return True
    if not st.st_mode & stat.S_IXGRP:
        return False
    try:
        return st.st_gid != 0 or bool(os.getxattr(path, "system.posix_acl_access"))
    except OSError:  # no ACL (ENODATA) or none possible here (ENOTSUP)
        return False


def reachable_by_others(path: str) -> bool:
    """Whether a user other than root and the caller may be able to enter ``path``.

    Entering takes search permission on the directory and on every directory above
    it, so each of them must let someone else pass. The answer errs towards yes: it
    does not look up group members to check that one and the same user passes
    every step, nor other ways in (bind mounts, open descriptors).
    """
    me = os.geteuid()
    path = os.path.realpath(path)
    while True:
        if not _others_may_search(path, os.stat(path), me):
            return False
        if path == "/":
            return True
        path = os.path.dirname(path)


def is_stdout(path: str | None) -> bool:
    return path in (None, "-")


@dataclass(frozen=True)
class _Place:
    """What PATH leads to now."""

    path: str  # as the user named it, for messages
    name: str  # the name to write: PATH, or where its symbolic links lead
    existing: os.stat_result | None  # the inode there now; None for a new name

    @property
    def special(self) -> bool:
        """A FIFO or device: written into, never replaced."""
        return self.existing is not None and stat.S_IFMT(self.existing.st_mode) in _SPECIAL


def _check_links(path: str) -> None:
    """Refuse a symbolic link at PATH (or at where it leads) that another user owns."""
    me = os.geteuid()
    for _ in range(_MAX_LINKS):
        try:
            st = os.lstat(path)
        except OSError:
            return  # nothing there (or a /proc magic link's pseudo target): the open decides
        if not stat.S_ISLNK(st.st_mode):
            return
        if st.st_uid not in (0, me):
            raise LgError(
                f"refusing to follow {path}: a symbolic link owned by uid {st.st_uid}, not by you or root"
            )
        path = os.path.join(os.path.dirname(path), os.readlink(path))
    raise LgError(f"cannot write {path}: too many levels of symbolic links")


def _place(path: str, directory: bool) -> _Place:
    """Where PATH leads, refusing in one line what cannot be written there."""
    if not directory and path.endswith("/"):
        raise LgError(f"{path} names a directory; name a file to write")
    bare = path.rstrip("/") or "/"
    _check_links(bare)
    try:
        # O_PATH follows links, but opens nothing for I/O: no FIFO wait, no device open.
        fd = os.open(bare, os.O_PATH | os.O_CLOEXEC)
    except FileNotFoundError:
        if os.path.islink(bare):
            raise LgError(
                f"refusing to write through {path}: a symbolic link to nothing ({os.readlink(bare)})"
            ) from None
        parent = os.path.dirname(bare) or "."
        if not os.path.isdir(parent):
            raise LgError(f"cannot write {path}: no directory {parent}") from None
        return _Place(path, bare, None)
    except OSError as exc:
        raise LgError(f"cannot write {path}: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        # A FIFO or device is opened again by PATH (an anonymous pipe behind /dev/stdout
        # has no other name); what is replaced is named where the links lead.
        name = bare if stat.S_IFMT(st.st_mode) in _SPECIAL else os.readlink(f"/proc/self/fd/{fd}")
    finally:
        os.close(fd)
    place = _Place(path, name, st)
    if stat.S_ISDIR(st.st_mode) and not directory:
        raise LgError(f"{path} is a directory; name a file to write")
    if directory and not stat.S_ISDIR(st.st_mode):
        raise LgError(f"{path} exists and is not a directory")
    if directory and os.listdir(name):
        raise LgError(f"{path} is not empty; an output directory must be new or empty")
    if stat.S_ISSOCK(st.st_mode):
        raise LgError(f"cannot write {path}: it is a socket")
    return place


def check_output(path: str | None, directory: bool = False) -> None:
    """Refuse now what :func:`output_file` or :func:`output_directory` would refuse
    after the work: a command checks its output path before spending time."""
    if path is not None and not is_stdout(path):
        _place(path, directory)


def _umask() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1], 8) for line in f if line.startswith("Umask:"))


@contextmanager
def _replacing(place: _Place, fresh_mode: int) -> Iterator[str]:
    """A temporary name beside ``place.name`` for the caller to create and fill;
    renamed over it on success, removed on any failure."""
    parent, base = os.path.split(place.name)
    tmp = os.path.join(parent, f".{base}.lg-{secrets.token_hex(6)}")
    mode = (stat.S_IMODE(place.existing.st_mode) & 0o777 if place.existing else fresh_mode) & ~_umask()
    try:
        yield tmp
        os.chmod(tmp, mode)
        os.rename(tmp, place.name)
    except BaseException as exc:
        if os.path.isdir(tmp) and not os.path.islink(tmp):
            shutil.rmtree(tmp)
        elif os.path.lexists(tmp):
            os.unlink(tmp)
        # Failing on the temporary name (or below it), or a write (no name), is failing to write PATH.
        if isinstance(exc, OSError) and (exc.filename is None or os.fsdecode(exc.filename).startswith(tmp)):
            raise LgError(f"cannot write {place.path}: {exc.strerror}") from None
        raise


@contextmanager
def output_file(path: str | None) -> Iterator[BinaryIO]:
    """A binary stream for PATH ("-" or None: stdout), written by the module's rules."""
    if path is None or is_stdout(path):
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    place = _place(path, directory=False)
    if place.existing is not None and place.special:
        try:
            # A FIFO waits for its reader here.
            fd = os.open(place.name, os.O_WRONLY | os.O_NOCTTY | os.O_CLOEXEC)
        except OSError as exc:
            raise LgError(f"cannot write {path}: {exc.strerror}") from None
        with open(fd, "wb") as f:
            now = os.fstat(fd)
            if (now.st_dev, now.st_ino) != (place.existing.st_dev, place.existing.st_ino):
                raise LgError(f"{path} changed while lg looked at it; try again")
            yield f
        return
    with _replacing(place, 0o666) as tmp:
        with open(os.open(tmp, _NEW_FILE, 0o600), "wb") as f:
            yield f


@contextmanager
def output_directory(path: str) -> Iterator[str]:
    """A new, private directory to fill; it becomes PATH (absent or empty) on success.

    Filling it by plain path names is safe: nobody else can enter it, let alone plant
    a symbolic link in it, until it is complete and renamed into place.
    """
    place = _place(path, directory=True)
    with _replacing(place, 0o777) as tmp:
        os.mkdir(tmp, 0o700)
        yield tmp
