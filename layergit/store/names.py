"""Docker image names (``[registry/]path[:tag]``) and the git refs that hold them.

``NAME:TAG`` lives at ``refs/heads/NAME/TAG`` so that plain git users can
``git log wordpress/latest``. Docker allows a few things git refuses in a ref
component (``:`` in ``localhost:5000``, ``..`` or a trailing ``.lock`` in a tag);
those characters are written ``%XX``. Neither grammar allows ``%`` itself, so the
mapping is reversible. One clash cannot be escaped away: ``a:b`` and ``a/b:c`` would
need ``refs/heads/a/b`` as both a file and a directory; creating the second one is
refused with a clear message (see porcelain.images).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import UsageError

IMAGE_PREFIX = "refs/heads/"
# The digest index: refs/layergit/digests/NAME/sha256-HEX -> the commit a registry
# manifest of repository NAME with that digest was pushed from or pulled into.
DIGEST_PREFIX = "refs/layergit/digests/"
_DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")
REMOTE_PREFIX = "refs/remotes/"  # REMOTE/NAME/TAG: what ``lg fetch`` last saw on a remote
# The build cache: refs/layergit/build-cache/KEY -> the commit a build step made here
# (build/cache.py); refs/layergit/remote-cache/REMOTE/KEY -> one a remote's builds made,
# fetched with ``lg fetch --build-cache`` and used only while that remote is trusted.
BUILD_CACHE_PREFIX = "refs/layergit/build-cache/"
REMOTE_CACHE_PREFIX = "refs/layergit/remote-cache/"
_CACHE_KEY_RE = re.compile(r"[0-9a-f]{64}")


def cache_key(ref: str, prefix: str = BUILD_CACHE_PREFIX) -> str | None:
    """The step key of a build-cache ref under ``prefix``, or None for anything else."""
    key = ref[len(prefix):] if ref.startswith(prefix) else ""
    return key if _CACHE_KEY_RE.fullmatch(key) else None


def remote_cache_ref(remote: str, key: str) -> str:
    return f"{REMOTE_CACHE_PREFIX}{remote}/{key}"
DEFAULT_TAG = "latest"

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_LABEL = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
_DOMAIN = rf"(?:{_LABEL})(?:\.{_LABEL})*(?::[0-9]+)?"
# Used with fullmatch: "$" would also match before a final newline.
_NAME_RE = re.compile(rf"(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*")
_TAG_RE = re.compile(r"\w[\w.-]{0,127}", re.ASCII)


@dataclass(frozen=True)
class ImageName:
    """An image name checked against Docker's grammar, with its tag: the one form that
    becomes a ref (``ref``), so no other text ever names a ref."""

    name: str
    tag: str = DEFAULT_TAG

    def __str__(self) -> str:
        return f"{self.name}:{self.tag}"

    @property
    def ref(self) -> str:
        return IMAGE_PREFIX + "/".join(_escape(c) for c in self.name.split("/")) + "/" + _escape(self.tag)


def _split(text: str) -> tuple[str, str | None]:
    slash = text.rfind("/")
    colon = text.rfind(":")
    if colon > slash:
        return text[:colon], text[colon + 1:]
    return text, None


def parse(text: str) -> ImageName:
    """Parse ``NAME[:TAG]`` with Docker's grammar; raises UsageError when malformed."""
    name, tag = _split(text)
    if "@" in text:
        raise UsageError(f"invalid image name {text!r}: digests are not supported here")
    if len(name) > 255 or not _NAME_RE.fullmatch(name):
        raise UsageError(f"invalid image name {text!r}: names are lowercase [a-z0-9] separated by . _ - /")
    if tag is not None and not _TAG_RE.fullmatch(tag):
        raise UsageError(
            f"invalid tag in {text!r}: tags are up to 128 of [A-Za-z0-9_.-], not starting with . or -"
        )
    return ImageName(name, tag or DEFAULT_TAG)


def looks_like_name(text: str) -> bool:
    try:
        parse(text)
    except UsageError:
        return False
    return True


def _escape(component: str) -> str:
    component = component.replace(":", "%3A")
    if ".." in component or component.endswith(".lock") or component.endswith("."):
        component = component.replace(".", "%2E")
    return component


def _unescape(component: str) -> str:
    return re.sub(r"%([0-9A-F]{2})", lambda m: chr(int(m.group(1), 16)), component)


def from_ref(ref: str) -> ImageName | None:
    """The image name a ref under refs/heads/ stands for, None for other refs."""
    if not ref.startswith(IMAGE_PREFIX):
        return None
    path = ref[len(IMAGE_PREFIX):]
    if "/" not in path:
        return None
    name, _, tag = path.rpartition("/")
    image = ImageName("/".join(_unescape(c) for c in name.split("/")), _unescape(tag))
    return image if looks_like_name(str(image)) else None


def digest_ref(name: str, digest: str) -> str:
    """The digest index's ref for manifest ``digest`` (``sha256:HEX``) of image ``name``."""
    if not _NAME_RE.fullmatch(name) or not _DIGEST_RE.fullmatch(digest):
        raise UsageError(f"invalid image digest reference {name!r}@{digest!r}")
    return DIGEST_PREFIX + "/".join(_escape(c) for c in name.split("/")) + "/" + digest.replace(":", "-")


def from_digest_ref(ref: str) -> tuple[str, str] | None:
    """(name, digest) of a digest index ref, None for other refs."""
    if not ref.startswith(DIGEST_PREFIX) or "/" not in ref[len(DIGEST_PREFIX):]:
        return None
    name, _, leaf = ref[len(DIGEST_PREFIX):].rpartition("/")
    digest = leaf.replace("-", ":", 1)
    name = "/".join(_unescape(c) for c in name.split("/"))
    return (name, digest) if _NAME_RE.fullmatch(name) and _DIGEST_RE.fullmatch(digest) else None


def split_digest(text: str) -> tuple[str, str] | None:
    """``NAME@sha256:HEX`` as (familiar name, digest); None if ``text`` has no ``@``.

    Docker Hub's long forms (``docker.io/library/debian``) are the short ones lg stores."""
    if "@" not in text:
        return None
    name, _, digest = text.partition("@")
    if name.rfind(":") > name.rfind("/"):  # NAME:TAG@DIGEST: the digest pins, the tag is a comment
        name = name[:name.rfind(":")]
    name = name.removeprefix("docker.io/")
    if name.startswith("library/") and name.count("/") == 1:
        name = name.removeprefix("library/")
    if not _NAME_RE.fullmatch(name) or not _DIGEST_RE.fullmatch(digest):
        raise UsageError(f"invalid image digest reference {text[:200]!r}: NAME@sha256:64 hex digits")
    return name, digest


def tracking_ref(remote: str, image: ImageName) -> str:
    """Where ``lg fetch`` records ``image`` as last seen on ``remote``: git's own
    remote-tracking name, so that ``git log origin/app/1`` in the store shows it too."""
    return f"{REMOTE_PREFIX}{remote}/{image.ref[len(IMAGE_PREFIX):]}"


def from_tracking_ref(ref: str) -> tuple[str, ImageName] | None:
    """(remote, image) of a remote-tracking ref, None for other refs."""
    if not ref.startswith(REMOTE_PREFIX):
        return None
    remote, _, rest = ref[len(REMOTE_PREFIX):].partition("/")
    image = from_ref(IMAGE_PREFIX + rest) if remote else None
    return (remote, image) if image is not None else None
