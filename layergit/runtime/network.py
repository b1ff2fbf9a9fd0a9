"""Container networking. For now: the loopback interface of a new network namespace.

Bringing ``lo`` up is one SIOCSIFFLAGS ioctl; pyroute2 (which later network modes
use for links, addresses and routes) costs 150-250 ms to import here, more than
the whole of a container start should, so it is imported only by those modes.
"""

from __future__ import annotations

import fcntl
import socket
import struct

_SIOCSIFFLAGS = 0x8914
_IFF_UP, _IFF_LOOPBACK, _IFF_RUNNING = 0x1, 0x8, 0x40


def loopback_up() -> None:
    """Bring up ``lo`` in the current network namespace (127.0.0.1 and ::1 come with it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        fcntl.ioctl(s, _SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", _IFF_UP | _IFF_LOOPBACK | _IFF_RUNNING))
