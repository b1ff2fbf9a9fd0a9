"""The errors layergit raises on purpose, each with the exit code the CLI maps it to.

One place decides exit codes (as pip does), so every command fails the same way:
one line on stderr, a meaningful status, the traceback only with --debug.
"""

import errno
from collections.abc import Iterator
from contextlib import contextmanager
from enum import IntEnum


class ExitCode(IntEnum):
    """lg's exit statuses. A container's own code passes through unchanged; around
    it, Docker's: lg failed to create or start it, its command could not be
    executed, its command was not found."""

    FAILURE = 1
    USAGE = 2
    RUN_FAILED = 125
    CANNOT_EXECUTE = 126
    COMMAND_NOT_FOUND = 127
    SIGNALLED = 128  # plus the signal's number (SIGTERM, SIGHUP)
    INTERRUPTED = 130  # Ctrl-C


class LgError(Exception):
    """A failure we expect and can explain in one line."""

    exit_code: int = ExitCode.FAILURE


class UsageError(LgError):
    """The user asked for something malformed (bad name, bad flag value)."""

    exit_code = ExitCode.USAGE


class NotFound(LgError):
    """An image, revision, container or path that does not exist."""


class Conflict(LgError):
    """The operation would overwrite or clash with existing state."""


class CorruptStore(LgError):
    """The store holds something that does not parse; fsck explains more."""


class DiskFull(LgError):
    """A write failed for lack of space or quota: the user frees some and tries again."""


_FULL = {errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded"}


@contextmanager
def disk_full_names(path: str) -> Iterator[None]:
    """Turn ENOSPC and EDQUOT raised inside into :class:`DiskFull` naming ``path``, what
    was being written: a write to an fd says neither where nor what filled up."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in _FULL:
            raise
        raise DiskFull(f"{_FULL[exc.errno]} while writing {path}; free some space and try again") from None


class TooDeep(LgError):
    """A tree nests directories deeper than git reads (``core.maxTreeDepth``).

    An image like that could be stored, but plain git could not read, fsck or push
    it, so it is refused before anything refers to it."""
