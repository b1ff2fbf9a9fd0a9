"""File locks (flock) that every layer uses: the store, containers, networks, the monitor.

flock locks die with their process, so a killed lg never leaves a lock held.
"""

from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager


@contextmanager
def locked(path: str, shared: bool = False):
    """Hold an flock on ``path`` (created if needed) for the block."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
