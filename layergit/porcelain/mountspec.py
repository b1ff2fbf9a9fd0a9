"""Docker's two grammars for a container's mounts, ``-v`` and ``--mount``, as values.

Pure: nothing is looked up or made here, so a bad word is one UsageError before a
container, a volume or a directory exists. ``-v SRC:DST[:OPTS]`` is a bind mount when
SRC is an absolute path, a named volume when SRC follows Docker's volume-name grammar,
and ``-v DST`` alone is an anonymous volume. ``--mount`` is comma-separated
``key=value`` fields (CSV: a field may be quoted), with Docker's keys and defaults
(``type=volume``).
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field

from ..errors import UsageError

# Docker's local volume names: at least two characters, never a path.
VOLUME_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]{1,254}")
_TRUE, _FALSE = ("", "1", "true"), ("0", "false")
_PROPAGATION = ("private", "rprivate")  # what lg's mounts are; shared and slave would reach the host's tree
_SIZE = r"^([0-9]+(?:\.[0-9]+)?)([bkmg]?)b?$"
_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


@dataclass(frozen=True)
class MountRequest:
    """One mount a user asked for; ``source`` is a host path (bind), a volume's name
    ("" for an anonymous volume) or nothing (tmpfs)."""

    kind: str  # "bind", "volume" or "tmpfs"
    target: str
    source: str = ""
    readonly: bool = False
    nocopy: bool = False  # volume-nocopy: a new volume is not filled from the image
    tmpfs_options: str = ""  # tmpfs mount data (size=, mode=)
    labels: dict[str, str] = field(default_factory=dict)  # volume-label: for a volume this creates


def parse_size(text: str, flag: str) -> int:
    """A size as Docker's flags take it (``256m``, ``1.5g``; units of 1024) in bytes."""
    m = re.match(_SIZE, text.strip(), re.IGNORECASE)
    if not m:
        raise UsageError(f"invalid {flag} value {text!r}:"
                         " use a number with an optional unit b, k, m or g (e.g. 256m)")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def check_volume_name(name: str) -> str:
    """``name`` if it is a volume name Docker would take; one line otherwise."""
    if not VOLUME_NAME.fullmatch(name):
        shown = name[:80]
        hint = (" (a host directory must be given as an absolute path)"
                if "/" in name or name.startswith(".") else "")
        raise UsageError(f"invalid volume name {shown!r}: use [a-zA-Z0-9][a-zA-Z0-9_.-]+,"
                         f" at least 2 characters{hint}")
    return name


def _target(path: str, where: str) -> str:
    if not path.startswith("/"):
        raise UsageError(f"invalid {where}: the container path {path[:80]!r} must be absolute")
    if "\0" in path or "\n" in path:
        raise UsageError(f"invalid {where}: the container path holds a control character")
    target = posixpath.normpath(path)
    target = "/" + target.lstrip("/")  # normpath keeps a leading "//"
    if target == "/":
        raise UsageError(f"invalid {where}: a mount cannot replace the container's /")
    return target


def parse_volume(text: str) -> MountRequest:
    """``-v SRC:DST[:OPTS]`` or ``-v DST`` (an anonymous volume)."""
    where = f"-v {text[:80]!r}"
    parts = text.split(":")
    if len(parts) == 1:
        return MountRequest("volume", _target(parts[0], where))
    if len(parts) > 3 or not parts[0] or not parts[1]:
        raise UsageError(f"invalid {where}: use NAME:PATH[:ro], /HOST/PATH:PATH[:ro] or PATH")
    source, target = parts[0], _target(parts[1], where)
    readonly = nocopy = False
    for opt in (parts[2].split(",") if len(parts) == 3 else []):
        if opt in ("ro", "rw"):
            readonly = opt == "ro"
        elif opt == "nocopy":
            nocopy = True
        elif opt in ("z", "Z") or opt in _PROPAGATION:
            continue  # SELinux relabelling (no SELinux here), and the propagation lg mounts with
        else:
            raise UsageError(f"invalid {where}: unknown option {opt!r} (ro, rw, nocopy)")
    if source.startswith("/"):
        if nocopy:
            raise UsageError(f"invalid {where}: nocopy is for volumes, not host paths")
        return MountRequest("bind", target, posixpath.normpath(source), readonly)
    return MountRequest("volume", target, check_volume_name(source), readonly, nocopy)


def flag_bool(key: str, value: str | None, where: str) -> bool:
    """A boolean field of a mount as Docker and BuildKit take them (bare key: true)."""
    value = (value or "").lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise UsageError(f"invalid {where}: {key}={value!r} is not a boolean")


def csv_fields(text: str, where: str) -> list[tuple[str, str | None]]:
    """A mount's comma-separated ``key[=value]`` fields (CSV quoting, as Go's reader
    takes it: a stray quote is an error), keys lower-cased; also RUN --mount's."""
    import csv  # only for --mount: every lg run loads this module

    try:
        words = next(csv.reader([text], strict=True))
    except (csv.Error, StopIteration):
        raise UsageError(f"invalid {where}: not comma-separated key=value fields") from None
    out = []
    for word in words:
        key, eq, value = word.partition("=")
        out.append((key.strip().lower(), value if eq else None))
    return out


def parse_mount(text: str) -> MountRequest:  # noqa: C901 - one table of Docker's keys, read in one place
    """``--mount type=volume|bind|tmpfs,source=...,target=...[,readonly][,...]``."""
    where = f"--mount {text[:80]!r}"
    kind, source, target = "volume", "", ""
    readonly = nocopy = False
    size: int | None = None
    mode: int | None = None
    labels: dict[str, str] = {}
    for key, value in csv_fields(text, where):
        if key == "type":
            if value not in ("volume", "bind", "tmpfs"):
                raise UsageError(f"invalid {where}: type must be volume, bind or tmpfs")
            kind = value
        elif key in ("source", "src"):
            source = value or ""
        elif key in ("target", "destination", "dst"):
            target = value or ""
        elif key in ("readonly", "ro"):
            readonly = flag_bool(key, value, where)
        elif key == "volume-nocopy":
            nocopy = flag_bool(key, value, where)
        elif key == "volume-label":
            name, _, label = (value or "").partition("=")
            if not name:
                raise UsageError(f"invalid {where}: volume-label needs KEY=VALUE")
            labels[name] = label
        elif key == "volume-driver":
            if value != "local":
                raise UsageError(f"invalid {where}: only the local volume driver exists here")
        elif key == "bind-propagation":
            if value not in _PROPAGATION:
                raise UsageError(f"invalid {where}: bind-propagation {value!r} is not supported (rprivate)")
        elif key == "tmpfs-size":
            size = parse_size(value or "", "tmpfs-size")
        elif key == "tmpfs-mode":
            try:
                mode = int(value or "", 8)
            except ValueError:
                raise UsageError(f"invalid {where}: tmpfs-mode must be octal, e.g. 1770") from None
            if not 0 <= mode <= 0o7777:
                raise UsageError(f"invalid {where}: tmpfs-mode must be at most 7777")
        elif key == "consistency":
            continue  # macOS's; meaningless on Linux, as Docker ignores it there
        else:
            raise UsageError(f"invalid {where}: unexpected key {key!r}")
    if not target:
        raise UsageError(f"invalid {where}: target is required")
    target = _target(target, where)
    other = {"bind": ("volume-", "tmpfs-"), "volume": ("tmpfs-",), "tmpfs": ("volume-",)}[kind]
    used = [key for key, _ in csv_fields(text, where) if key.startswith(other) or
            (kind == "tmpfs" and key in ("source", "src")) or (kind != "bind" and key == "bind-propagation")]
    if used:
        raise UsageError(f"invalid {where}: {used[0]} does not apply to type={kind}")
    if kind == "bind":
        if not source.startswith("/"):
            raise UsageError(f"invalid {where}: a bind source must be an absolute host path")
        return MountRequest("bind", target, posixpath.normpath(source), readonly)
    if kind == "tmpfs":
        options = ",".join(([f"size={size}"] if size is not None else []) +
                           ([f"mode={mode:o}"] if mode is not None else []))
        return MountRequest("tmpfs", target, readonly=readonly, tmpfs_options=options)
    return MountRequest("volume", target, check_volume_name(source) if source else "", readonly, nocopy,
                        labels=labels)


def parse_tmpfs(text: str) -> MountRequest:
    """``--tmpfs PATH[:OPTS]``: OPTS is mount data as Docker passes it."""
    target, _, opts = text.partition(":")
    if "\n" in opts or "\0" in opts:
        raise UsageError(f"invalid --tmpfs {text[:80]!r}: options hold a control character")
    return MountRequest("tmpfs", _target(target, f"--tmpfs {text[:80]!r}"), tmpfs_options=opts)


def check_targets(requests: list[MountRequest]) -> None:
    """Two mounts on one path: Docker's "Duplicate mount point"."""
    seen: set[str] = set()
    for request in requests:
        if request.target in seen:
            raise UsageError(f"duplicate mount point: {request.target}")
        seen.add(request.target)
