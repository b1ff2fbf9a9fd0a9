"""Docker's image references: ``[REGISTRY/]PATH[:TAG][@DIGEST]``, normalised as Docker does.

``debian`` is ``docker.io/library/debian:latest``; the first component is a registry
only when it has a ``.`` or a ``:`` or is ``localhost`` (so ``localhost:5000/app`` and
``ghcr.io/o/app`` name registries, ``team/app`` is on Docker Hub). Local names are the
familiar form Docker shows (``debian:latest``, ``localhost:5000/app:1``), which is what
``store/names.py`` stores as a ref.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import UsageError
from ..text import quoted

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"  # where docker.io's Distribution API answers
_HUB_ALIASES = {"index.docker.io", "registry-1.docker.io", DOCKER_HUB}
DEFAULT_TAG = "latest"

_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_LABEL = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)"
_HOST = re.compile(rf"(?:{_LABEL}(?:\.{_LABEL})*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{{1,5}})?")
_TAG = re.compile(r"\w[\w.-]{0,127}", re.ASCII)
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
MAX_NAME = 255  # Docker's limit on the whole name, registry included


@dataclass(frozen=True)
class Reference:
    """A parsed reference; ``tag`` is None only when a digest alone was given."""

    registry: str  # "docker.io", "localhost:5000", "ghcr.io"
    repository: str  # "library/debian", "team/app"
    tag: str | None = DEFAULT_TAG
    digest: str | None = None  # "sha256:<64 hex>"

    @property
    def name(self) -> str:
        """The familiar name: what Docker shows and lg stores (``debian``, ``localhost:5000/app``)."""
        if self.registry == DOCKER_HUB:
            return self.repository.removeprefix("library/") if self.repository.count("/") == 1 \
                else self.repository
        return f"{self.registry}/{self.repository}"

    @property
    def api_host(self) -> str:
        """The host[:port] whose /v2/ answers for this registry."""
        return DOCKER_HUB_API if self.registry == DOCKER_HUB else self.registry

    @property
    def reference(self) -> str:
        """What /v2/NAME/manifests/ takes: the digest when given (it pins), else the tag."""
        return self.digest or self.tag or DEFAULT_TAG

    def local(self) -> str:
        """``NAME:TAG`` as lg names the image locally (the tag is latest when none was given)."""
        return f"{self.name}:{self.tag or DEFAULT_TAG}"

    def __str__(self) -> str:
        text = f"{self.registry}/{self.repository}"
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def _bad(text: str, why: str) -> UsageError:
    return UsageError(f"invalid reference {quoted(text[:300])}: {why}")


def _split_domain(text: str, name: str) -> tuple[str, str]:
    first, slash, rest = name.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        if not _HOST.fullmatch(first):
            raise _bad(text, f"{quoted(first)} is not a registry host[:port]")
        domain = DOCKER_HUB if first in _HUB_ALIASES else first
        return domain, rest
    return DOCKER_HUB, name


def parse(text: str) -> Reference:
    """Parse and normalise ``text`` as Docker does; UsageError with one line when malformed."""
    if not text or len(text) > 4 * MAX_NAME:
        raise _bad(text, "empty" if not text else "too long")
    rest, at, digest = text.partition("@")
    if at and not _DIGEST.fullmatch(digest):
        raise _bad(text, "a digest is sha256: and 64 lowercase hex digits")
    slash, colon = rest.rfind("/"), rest.rfind(":")
    name, tag = (rest[:colon], rest[colon + 1:]) if colon > slash else (rest, None)
    if tag is not None and not _TAG.fullmatch(tag):
        raise _bad(text, "a tag is up to 128 of [A-Za-z0-9_.-], not starting with . or -")
    domain, path = _split_domain(text, name)
    parts = path.split("/")
    for part in parts:
        if not _COMPONENT.fullmatch(part):
            why = "repository names are lowercase" if part.lower() != part else \
                "path components are [a-z0-9] separated by . _ __ or -"
            raise _bad(text, why)
    if domain == DOCKER_HUB and len(parts) == 1:
        path = "library/" + path
    if len(name) > MAX_NAME:
        raise _bad(text, f"names are at most {MAX_NAME} characters")
    return Reference(domain, path, tag if tag is not None else (None if at else DEFAULT_TAG), digest or None)
