"""A file that one thread writes while another reads what is already there.

lg push makes a layer (tar, compression, digests) and uploads it; made one after the
other, a cold push costs both. With a spool the upload follows the layer file as it
grows, as Docker and podman stream a layer into the registry while compressing it:
the writer says how far the file is written (:meth:`Spool.wrote`) and how it ended,
the reader asks for bytes at an offset and waits only for bytes not yet written. The
reader holds its own descriptor, opened before the writer's first byte, so the file
may be renamed into a cache meanwhile.
"""

from __future__ import annotations

import os
import threading

from ..errors import LgError


class SpoolFailed(Exception):
    """The writer gave up (its error is its own to report): the reader stops too."""


class Spool:
    def __init__(self, path: str):
        self._fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
        self._ready = threading.Condition()
        self._written = 0
        self._digest: str | None = None
        self._failed = False

    def wrote(self, total: int) -> None:
        """The first ``total`` bytes of the file are written (flushed to the kernel)."""
        with self._ready:
            self._written = total
            self._ready.notify_all()

    def finish(self, digest: str, size: int) -> None:
        """The file is complete: ``size`` bytes whose digest is ``digest``."""
        with self._ready:
            self._written, self._digest = size, digest
            self._ready.notify_all()

    def fail(self) -> None:
        with self._ready:
            self._failed = True
            self._ready.notify_all()

    def chunk(self, offset: int, n: int) -> bytes:
        """Up to ``n`` bytes at ``offset``: waits until ``n`` are written or the file is
        complete; empty at its end. Raises SpoolFailed once the writer failed."""
        with self._ready:
            while not self._failed and self._digest is None and self._written < offset + n:
                self._ready.wait()
            if self._failed:
                raise SpoolFailed("the layer could not be made")
            n = min(n, self._written - offset)
        if n <= 0:
            return b""
        data = os.pread(self._fd, n, offset)
        if len(data) != n:  # the file changed under us: never send a short layer as a whole one
            raise LgError(f"a layer file being uploaded ended at {offset + len(data)}"
                          f" of {self._written} bytes")
        return data

    def digest(self) -> str:
        """The complete file's digest (once :meth:`chunk` has returned its end)."""
        assert self._digest is not None, "asked for the digest of a spool still being written"
        return self._digest

    def size(self) -> int:
        """The complete file's size."""
        assert self._digest is not None, "asked for the size of a spool still being written"
        return self._written

    def close(self) -> None:
        os.close(self._fd)
