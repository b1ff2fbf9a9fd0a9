"""Name resolution between containers: their /etc/hosts files, kept up to date.

Each container's /etc/hosts is a file in its directory, bind-mounted into it. On a
user-defined network every member's file lists every member (name and aliases), and
is rewritten in place (the same inode, so the bind mount sees it) whenever one joins
or leaves: a container finds those started after it, without a DNS server. On the
default bridge, as with Docker, containers only know themselves.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

BASE = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"


HOST_GATEWAY = "host-gateway"


def render(hostname: str, own: list[tuple[str, list[str]]], peers: list[tuple[str, list[str]]],
           extra: Sequence[str] = (), gateway: str | None = None) -> str:
    """The hosts file of one container: localhost, ``--add-host`` entries (NAME:IP, with
    ``host-gateway`` meaning ``gateway``, left out while there is none), its own
    addresses, then its peers'."""
    lines = [BASE]
    for item in extra:
        name, _, ip = item.partition(":")
        address = gateway if ip == HOST_GATEWAY else ip
        if address:
            lines.append(f"{address}\t{name}\n")
    if not own:
        lines.append(f"127.0.1.1\t{hostname}\n")
    for ip, names in own + peers:
        lines.append(f"{ip}\t{' '.join(dict.fromkeys(names))}\n")
    return "".join(lines)


def rewrite(path: str, text: str) -> None:
    """Replace the content of ``path`` in place (a rename would detach the bind mount)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except FileNotFoundError:
        return  # the container is being removed
    try:
        data = text.encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, data, 0)
    finally:
        os.close(fd)
