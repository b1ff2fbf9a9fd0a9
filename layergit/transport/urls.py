"""What a remote's URL is, as git takes it, and which hosts limit what a push may hold.

Pure: no git, no network. A URL reaches ``git`` as an argument, so anything that
could read as an option or name a transport that runs commands (``ext::``,
``fd::``) is refused here, before a process starts.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from ..errors import UsageError

SCHEMES = ("file", "ssh", "git", "http", "https")
ALLOWED_PROTOCOLS = ":".join(SCHEMES)  # GIT_ALLOW_PROTOCOL: what git itself will run
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")  # match at the start
# scp-style [user@]host:path: git's rule is a colon before any slash
_SCP = re.compile(r"(?:[A-Za-z0-9._-]+@)?[A-Za-z0-9][A-Za-z0-9.-]*:(?!//).*")
URL_MAX = 4096


def is_path(text: str) -> bool:
    """A path as an operand: ``/…``, ``./…``, ``../…`` (never a Docker image name)."""
    return text.startswith(("/", "./", "../")) or text in (".", "..")


def scheme(text: str) -> str | None:
    """The scheme of ``scheme://…``, lowercased; None for anything else."""
    m = _SCHEME.match(text)
    return m.group(1).lower() if m else None


def _check_text(url: str) -> None:
    if not url or len(url) > URL_MAX:
        raise UsageError(f"a remote URL is 1 to {URL_MAX} characters")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in url):
        raise UsageError("a remote URL may not contain control characters")
    if url.startswith("-"):
        raise UsageError(f"invalid remote URL {url!r}: it would read as an option")


def normalise(url: str, *, scp: bool) -> str:
    """``url`` as lg hands it to git: a path made absolute (git runs in the store), a
    URL with one of SCHEMES kept as is, scp-style ``host:path`` only when ``scp``
    (``lg remote add``); UsageError for anything else."""
    _check_text(url)
    found = scheme(url)
    if found is not None:
        if found not in SCHEMES:
            raise UsageError(f"unsupported remote URL scheme {found!r}: use one of {', '.join(SCHEMES)}")
        return url
    if "::" in url.split("/", 1)[0]:
        raise UsageError(f"invalid remote URL {url!r}: git's remote helpers (TRANSPORT::) are not used")
    if is_path(url):
        return os.path.abspath(url)
    if scp and _SCP.fullmatch(url):
        return url
    raise UsageError(f"invalid remote URL {url!r}: give a path, host:path or "
                     f"{'/'.join(SCHEMES)}://")


@dataclass(frozen=True)
class HostLimits:
    """What a hosting service refuses in one push (0: no limit known)."""

    host: str
    max_file: int = 0
    max_push: int = 0


WARN_FILE = 50 << 20  # GitHub warns above this; so does lg, for any host
_HOSTS = (
    HostLimits("github.com", max_file=100_000_000, max_push=2 << 30),
    HostLimits("gitlab.com", max_push=5_000_000_000),
)


def host_of(url: str) -> str:
    """The host name a URL or scp-style address names ('' for a path or file://)."""
    if scheme(url) is not None:
        rest = url.split("://", 1)[1]
        authority = rest.split("/", 1)[0].rpartition("@")[2]
        if authority.startswith("["):
            return authority.partition("]")[0][1:].lower()
        return authority.partition(":")[0].lower() if scheme(url) != "file" else ""
    if is_path(url):
        return ""
    return url.partition(":")[0].rpartition("@")[2].lower()


def limits_for(url: str) -> HostLimits:
    host = host_of(url)
    for limits in _HOSTS:
        if host == limits.host or host.endswith("." + limits.host):
            return limits
    return HostLimits(host)
