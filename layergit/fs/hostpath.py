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

PATH often lies in a directory someone else may write (their home, a shared
directory), and lg often runs as root: that someone can rename, replace and
exchange names there while lg works. So PATH is resolved once, one component at a
time from ``/`` (or the working directory) with ``O_PATH|O_NOFOLLOW``, and every
later step is relative to what that opened: the directory that holds the last
component is pinned by an fd, the temporary file or directory is created there
with ``O_EXCL`` and changed through its own fd (``fchmod``), renamed with
``renameat``, and a FIFO or device is reopened through the fd of the very inode
that was looked at, never by name again. A name swapped behind lg's back can then
only make the export fail or land in the swapper's own directory, never reach
another file.

Symbolic links on the way, in directory components as in the last one, are
followed, as ``tar -f`` and the shell's ``>`` follow them (``-o /dev/stdout``
works), when they are owned by root or by the caller; what a link leads to is
written by the rules above (a regular file there is replaced, the link stays a
link). Two links are refused: one that leads nowhere (creating through it would
let the link choose where the archive lands) and one owned by anyone else (a link
another user planted in a directory they may write, ``~mallory/backups ->
/root/private``, is the oldest attack on programs run as root; the kernel's
fs.protected_symlinks stops it only in sticky directories, and only where it is on).
The owner is read from the link that was opened, so it cannot change between the
check and the use. Links in /proc (``/proc/self/fd/1``) are followed by the kernel,
which alone knows where they lead.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import BinaryIO

from ..errors import LgError
from ..removal import remove_at
from ..text import printable


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


_MAX_LINKS = 40  # as the kernel's MAXSYMLINKS
_LOOK = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC  # what is there, opened for nothing, never followed
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_OWN_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_SPECIAL = (stat.S_IFIFO, stat.S_IFCHR, stat.S_IFBLK)


@dataclass
class _Place:
    """What PATH leads to now, pinned by fds: close it after use."""

    path: str  # as the user named it, for messages
    dirfd: int  # the directory holding ``name`` (O_PATH)
    name: str  # the last component, inside ``dirfd``
    fd: int | None = None  # O_PATH fd of what is there (never a link); None for a new name
    existing: os.stat_result | None = None  # fstat of ``fd``

    @property
    def special(self) -> bool:
        """A FIFO or device: written into, never replaced."""
        return self.existing is not None and stat.S_IFMT(self.existing.st_mode) in _SPECIAL

    def close(self) -> None:
        for fd in (self.fd, self.dirfd):
            if fd is not None and fd >= 0:
                os.close(fd)
        self.fd = None
        self.dirfd = -1


def _shown(walked: str, comp: str) -> str:
    """A path lg reached, for a message: link targets on the way are anyone's text."""
    return printable(os.path.join(walked, comp))


def _components(path: str) -> list[str]:
    return [c for c in path.split("/") if c not in ("", ".")]


def _resolve(path: str) -> _Place:  # noqa: C901 - one walk: the fds and state stay in one place, where a race cannot hide
    """Walk PATH one component at a time, never letting a name be looked up twice.

    Each component is opened with O_PATH|O_NOFOLLOW relative to the directory fd
    before it; a link is judged by the fstat of the link that was opened and its
    target read from that same inode (readlinkat(fd, "")), so an exchange of names
    (renameat2 RENAME_EXCHANGE) between the check and the use changes nothing.
    """
    me = os.geteuid()
    proc_dev = None
    bare = path.rstrip("/") or "/"
    cur = os.open("/" if bare.startswith("/") else ".", _LOOK | os.O_DIRECTORY)
    todo = _components(bare)
    links = 0
    dangling: str | None = None  # the link that named the last component, if one did
    walked = "/" if bare.startswith("/") else ""
    try:
        if not todo or bare.rsplit("/", 1)[-1] in (".", ".."):
            raise LgError(f"cannot write {path}: name the file or directory itself")
        while todo:
            comp = todo.pop(0)
            last = not todo
            try:
                fd = os.open(comp, _LOOK, dir_fd=cur)
            except FileNotFoundError:
                if not last:
                    raise LgError(f"cannot write {path}: no directory {_shown(walked, comp)}") from None
                if dangling is not None:
                    raise LgError(
                        f"refusing to write through {path}: {dangling} is a symbolic link to nothing"
                    ) from None
                place, cur = _Place(path, cur, comp), -1
                return place
            st = os.fstat(fd)
            if stat.S_ISLNK(st.st_mode):
                try:
                    if st.st_uid not in (0, me):
                        raise LgError(
                            f"refusing to follow {_shown(walked, comp)}: "
                            f"a symbolic link owned by uid {st.st_uid}, not by you or root"
                        )
                    links += 1
                    if links > _MAX_LINKS:
                        raise LgError(f"cannot write {path}: too many levels of symbolic links")
                    target = os.readlink("", dir_fd=fd)
                finally:
                    os.close(fd)
                if proc_dev is None:
                    proc_dev = _proc_dev()
                if st.st_dev == proc_dev:  # a /proc magic link: only the kernel can follow it
                    opened = _follow_proc(cur, comp)
                    if opened is not None:
                        if not last:
                            os.close(opened[0])
                            raise LgError(f"cannot write {path}: {_shown(walked, comp)} is not a directory")
                        place, cur = _Place(path, cur, comp, *opened), -1
                        return place
                if last:
                    dangling = _shown(walked, comp)
                if target.startswith("/"):
                    os.close(cur)
                    cur = os.open("/", _LOOK | os.O_DIRECTORY)
                    walked = "/"
                parts = _components(target)
                if last and (not parts or parts[-1] == ".."):
                    raise LgError(f"cannot write {path}: it leads to a directory, not a name in one")
                todo = parts + todo
                continue
            if last:
                place, cur = _Place(path, cur, comp, fd, st), -1
                return place
            if not stat.S_ISDIR(st.st_mode):
                os.close(fd)
                raise LgError(f"cannot write {path}: {_shown(walked, comp)} is not a directory")
            os.close(cur)
            cur, walked = fd, os.path.join(walked, comp)
        raise AssertionError("unreachable: the loop returns at the last component")
    except OSError as exc:
        raise LgError(f"cannot write {path}: {exc.strerror}") from None
    finally:
        if cur >= 0:
            os.close(cur)


def _proc_dev() -> int:
    try:
        return os.stat("/proc/self/fd").st_dev
    except OSError:
        return -1


def _follow_proc(dirfd: int, name: str) -> tuple[int, os.stat_result] | None:
    """What a /proc link leads to, if it is a FIFO, device or socket (a pipe or tty on
    /proc/self/fd/1 has no path to walk); None when its text is a path to walk."""
    fd = os.open(name, os.O_PATH | os.O_CLOEXEC, dir_fd=dirfd)
    st = os.fstat(fd)
    if stat.S_IFMT(st.st_mode) in _SPECIAL or stat.S_ISSOCK(st.st_mode):
        return fd, st
    os.close(fd)
    return None


def _place(path: str, directory: bool) -> _Place:
    """Where PATH leads, refusing in one line what cannot be written there."""
    if not directory and path.endswith("/"):
        raise LgError(f"{path} names a directory; name a file to write")
    place = _resolve(path)
    try:
        st = place.existing
        if st is None:
            return place
        if stat.S_ISDIR(st.st_mode) and not directory:
            raise LgError(f"{path} is a directory; name a file to write")
        if directory and not stat.S_ISDIR(st.st_mode):
            raise LgError(f"{path} exists and is not a directory")
        if directory and place.fd is not None and _entries(place.fd):
            raise LgError(f"{path} is not empty; an output directory must be new or empty")
        if stat.S_ISSOCK(st.st_mode):
            raise LgError(f"cannot write {path}: it is a socket")
        return place
    except BaseException:
        place.close()
        raise


def _entries(pathfd: int) -> list[str]:
    fd = os.open(".", _OWN_DIR, dir_fd=pathfd)
    try:
        return os.listdir(fd)
    finally:
        os.close(fd)


def check_output(path: str | None, directory: bool = False) -> None:
    """Refuse now what :func:`output_file` or :func:`output_directory` would refuse
    after the work: a command checks its output path before spending time."""
    if path is not None and not is_stdout(path):
        _place(path, directory).close()


def _umask() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1], 8) for line in f if line.startswith("Umask:"))


def _temporary_name(place: _Place) -> str:
    import secrets  # 2 ms to load: only for the commands that write an output file, not every checkout

    return f".{place.name}.lg-{secrets.token_hex(6)}"


def _final_mode(place: _Place, fresh_mode: int) -> int:
    base = stat.S_IMODE(place.existing.st_mode) & 0o777 if place.existing else fresh_mode
    return base & ~_umask()


def _publish(place: _Place, tmp: str, fd: int) -> None:
    """Rename ``tmp`` (open as ``fd``) over PATH, and make sure what landed is ours:
    someone who may write the directory can swap the name in between, which only
    leaves their own entry at PATH; that is reported, never written through."""
    try:  # the temporary itself may have been moved away: then PATH is not ours either
        os.rename(tmp, place.name, src_dir_fd=place.dirfd, dst_dir_fd=place.dirfd)
        now = os.stat(place.name, dir_fd=place.dirfd, follow_symlinks=False)
    except FileNotFoundError:
        now = None
    ours = os.fstat(fd)
    if now is None or (now.st_dev, now.st_ino) != (ours.st_dev, ours.st_ino):
        raise LgError(f"{place.path} was changed by someone else while lg wrote it; check its directory")


def _fail(place: _Place, exc: BaseException, below: str | None = None) -> None:
    """Turn an OSError of the write (no file name: a write to an fd; or one ``below``
    the directory being filled) into the one line of a failed write; others, reading
    the store say, stay what they are."""
    if not isinstance(exc, OSError):
        return
    name = os.fsdecode(exc.filename) if isinstance(exc.filename, (str, bytes)) else None
    if name is None or (below is not None and (name == below or name.startswith(below + "/"))):
        raise LgError(f"cannot write {place.path}: {exc.strerror}") from None


@contextmanager
def output_file(path: str | None) -> Iterator[BinaryIO]:
    """A binary stream for PATH ("-" or None: stdout), written by the module's rules."""
    if path is None or is_stdout(path):
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    place = _place(path, directory=False)
    try:
        if place.special:
            yield from _into_special(place)
            return
        tmp = _temporary_name(place)
        mode = _final_mode(place, 0o666)
        try:
            fd = os.open(tmp, _NEW_FILE, 0o600, dir_fd=place.dirfd)
        except OSError as exc:
            raise LgError(f"cannot write {path}: {exc.strerror}") from None
        try:
            with open(fd, "wb", closefd=False) as f:
                yield f
            os.fchmod(fd, mode)
            _publish(place, tmp, fd)
        except BaseException as exc:
            _unlink_quietly(place.dirfd, tmp, fd)
            _fail(place, exc)
            raise
        finally:
            os.close(fd)
    finally:
        place.close()


def _into_special(place: _Place) -> Iterator[BinaryIO]:
    """Write into the FIFO or device that was looked at, reopened through its own fd
    (/proc/self/fd/N), not by its name, which may lead elsewhere by now."""
    try:
        # A FIFO waits for its reader here.
        fd = os.open(f"/proc/self/fd/{place.fd}", os.O_WRONLY | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        raise LgError(f"cannot write {place.path}: {exc.strerror}") from None
    with open(fd, "wb") as f:
        now, seen = os.fstat(fd), place.existing
        assert seen is not None  # a special file was looked at: _Place.special
        if stat.S_IFMT(now.st_mode) not in _SPECIAL or (now.st_dev, now.st_ino) != (seen.st_dev, seen.st_ino):
            raise LgError(f"{place.path} changed while lg looked at it; try again")
        try:
            yield f
            f.flush()
        except OSError as exc:  # a reader gone (EPIPE), a full device: one line, not click's silent exit 1
            _fail(place, exc)
            raise


def _unlink_quietly(dirfd: int, name: str, fd: int) -> None:
    """Remove our temporary file, if the name still holds it (else it is someone else's)."""
    try:
        now = os.stat(name, dir_fd=dirfd, follow_symlinks=False)
        ours = os.fstat(fd)
        if (now.st_dev, now.st_ino) == (ours.st_dev, ours.st_ino):
            os.unlink(name, dir_fd=dirfd)
    except OSError:
        pass


def _empty(dirfd: int) -> None:
    """Remove everything below the directory open as ``dirfd``, never following a link."""
    for name in os.listdir(dirfd):
        remove_at(dirfd, os.fsencode(name))


@contextmanager
def output_directory(path: str) -> Iterator[str]:
    """A new, private directory to fill; it becomes PATH (absent or empty) on success.

    What is yielded names the directory through its fd (/proc/self/fd/N), so filling
    it by plain path names below that is safe: the name it was made under may be
    swapped at will, the fd stays on the directory lg made, and nobody else can
    enter that directory (0700, lg's) to plant a link in it until it is complete
    and renamed into place.
    """
    place = _place(path, directory=True)
    try:
        tmp = _temporary_name(place)
        mode = _final_mode(place, 0o777)
        try:
            os.mkdir(tmp, 0o700, dir_fd=place.dirfd)
        except OSError as exc:
            raise LgError(f"cannot write {path}: {exc.strerror}") from None
        try:
            fd = os.open(tmp, _OWN_DIR, dir_fd=place.dirfd)
        except OSError:  # ELOOP, ENOTDIR: a link or file has taken the name already
            raise LgError(f"cannot write {path}: its new directory was replaced by someone else's") from None
        try:
            below = f"/proc/self/fd/{fd}"
            st = os.fstat(fd)
            if st.st_uid != os.geteuid() or stat.S_IMODE(st.st_mode) & 0o077 or os.listdir(fd):
                raise LgError(f"cannot write {path}: its new directory was replaced by someone else's")
            yield below
            os.fchmod(fd, mode)
            _publish(place, tmp, fd)
        except BaseException as exc:
            try:
                _empty(fd)
            except OSError:
                pass
            try:
                now = os.stat(tmp, dir_fd=place.dirfd, follow_symlinks=False)
                if (now.st_dev, now.st_ino) == (os.fstat(fd).st_dev, os.fstat(fd).st_ino):
                    os.rmdir(tmp, dir_fd=place.dirfd)
            except OSError:
                pass
            _fail(place, exc, below)
            raise
        finally:
            os.close(fd)
    finally:
        place.close()
