"""The pull policy of lg run, lg create, compose and build's FROM, as Docker and podman
have it: pull an image when it is missing here (the default), every time, or never.

Apart from registry.py, which loads only when a pull is really due: the common case,
an image that is here, costs one revision lookup, not the registry client's start-up
(a tenth of an ``lg run``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import LgError, NotFound, UsageError
from ..store import names
from .repo import Repo

if TYPE_CHECKING:
    from .registry import PullResult, RegistryOptions

PULL_POLICIES = ("missing", "always", "never")


def ensure(repo: Repo, image: str, policy: str = "missing", options: RegistryOptions | None = None
           ) -> PullResult | None:
    """Pull ``image`` before it is used, as the policy says; returns what was pulled.

    Only names and ``NAME@DIGEST`` are pulled: an id, or a revision with ``~``/``^``,
    names a local commit and resolves (or fails) as it always has."""
    if policy not in PULL_POLICIES:
        raise UsageError(f"unknown pull policy {policy!r}; use one of {', '.join(PULL_POLICIES)}")
    if policy == "never" or not (names.looks_like_name(image) or "@" in image):
        return None
    if policy == "missing":
        try:
            repo.resolve(image)
            return None
        except NotFound:
            pass
    from .registry import pull

    if policy == "always":
        return pull(repo, image, options)[0]
    try:
        return pull(repo, image, options)[0]
    except LgError as exc:  # both facts: it is not here, and why it could not come
        raise NotFound(f"no such image {image} here, and pulling it failed: {exc}") from None
