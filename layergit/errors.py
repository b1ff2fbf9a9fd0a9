"""The errors layergit raises on purpose, each with the exit code the CLI maps it to.

One place decides exit codes (as pip does), so every command fails the same way:
one line on stderr, a meaningful status, the traceback only with --debug.
"""


class LgError(Exception):
    """A failure we expect and can explain in one line."""

    exit_code = 1


class UsageError(LgError):
    """The user asked for something malformed (bad name, bad flag value)."""

    exit_code = 2


class NotFound(LgError):
    """An image, revision, container or path that does not exist."""


class Conflict(LgError):
    """The operation would overwrite or clash with existing state."""


class CorruptStore(LgError):
    """The store holds something that does not parse; fsck explains more."""
