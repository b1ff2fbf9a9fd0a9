"""What a RUN step mounts (``RUN --mount=...``) and the secrets a build is given
(``lg build --secret``), in BuildKit's grammars.

The grammars are pure (``parse_run_mount``, ``parse_secret``): a bad word is one
DockerfileError/UsageError before anything is made. ``Mounts`` then turns a step's
mounts into the throw-away container's bind mounts and tmpfs, and removes what it
made when the step ends:

- ``type=bind``: a path of the context (its .dockerignore applies), of a stage or
  of an image, checked out into ``tmp/build-mount-*`` and bound read-only unless
  ``rw``; rw writes go to that copy and are dropped with it. What the path holds is
  part of the step's cache key, as in BuildKit.
- ``type=cache``: a directory under ``cache/build-mounts/`` kept between builds,
  one per id (and per ``from`` tree when seeded from one); never part of the layer,
  since the layer leaves every mount point out.
- ``type=secret``: a secret given to ``lg build --secret``, written to a private
  directory on a tmpfs (``/dev/shm`` when there is one) and bound read-only, or
  handed over as an environment variable (``env=``). Its content is in no key: as in
  BuildKit, changing a secret does not invalidate the cache.
- ``type=tmpfs``: a tmpfs of ``size`` bytes.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import posixpath
import shutil
import tempfile
from dataclasses import dataclass, field
from typing import Callable, Mapping

from ..errors import UsageError
from .dockerfile import DockerfileError

_KINDS = ("bind", "cache", "secret", "tmpfs")
_SHARING = ("shared", "private", "locked")
SECRET_LIMIT = 500 * 1024  # BuildKit's bound on one secret
SECRETS_DIR = "/run/secrets"


@dataclass(frozen=True)
class RunMount:
    """One ``--mount`` of a RUN step, defaults filled in as BuildKit fills them."""

    kind: str
    target: str  # "" for a secret given only as an environment variable
    id: str = ""  # cache: the cache's name; secret: the secret's
    source: str = ""  # bind and cache-from: the path in the context or in ``from``
    from_: str = ""  # a stage or an image
    readonly: bool = False
    sharing: str = "shared"
    mode: int | None = None
    uid: int | None = None
    gid: int | None = None
    required: bool = False
    env: str = ""
    size: int | None = None


def _fields(text: str, where: str) -> list[tuple[str, str | None]]:
    from ..porcelain.mountspec import csv_fields

    try:
        return csv_fields(text, where)
    except UsageError as exc:
        raise DockerfileError(str(exc).removeprefix("invalid ")) from None


def _bool(key: str, value: str | None, where: str) -> bool:
    from ..porcelain.mountspec import flag_bool

    try:
        return flag_bool(key, value, where)
    except UsageError as exc:
        raise DockerfileError(str(exc).removeprefix("invalid ")) from None


def _number(key: str, value: str | None, where: str, base: int = 10) -> int:
    try:
        n = int(value or "", base)
    except ValueError:
        kind = "an octal" if base == 8 else "a"
        raise DockerfileError(f"{where}: {key}={value!r} is not {kind} number") from None
    if n < 0 or (base == 8 and n > 0o7777) or n > 0xFFFFFFFE:
        raise DockerfileError(f"{where}: {key}={value!r} is out of range")
    return n


def _path(value: str, where: str) -> str:
    if "\0" in value or "\n" in value:
        raise DockerfileError(f"{where}: a path holds a control character")
    return value


def parse_run_mount(text: str, workdir: str | None = None) -> RunMount:  # noqa: C901 - BuildKit's key table
    """``RUN --mount=[type=bind|cache|secret|tmpfs][,KEY=VALUE...]``; a relative target
    is below ``workdir``, as in BuildKit."""
    where = f"--mount={text[:80]}"
    fields = _fields(text, where)
    kind = "bind"
    for key, value in fields:
        if key == "type":
            if value not in _KINDS:
                raise DockerfileError(f"{where}: type must be one of {', '.join(_KINDS)}")
            kind = value
    allowed = {
        "bind": {"target", "source", "from", "readonly", "readwrite"},
        "cache": {"target", "id", "sharing", "from", "source", "mode", "uid", "gid", "readonly", "readwrite"},
        "secret": {"target", "id", "required", "mode", "uid", "gid", "env"},
        "tmpfs": {"target", "size"},
    }[kind]
    aliases = {"dst": "target", "destination": "target", "src": "source", "ro": "readonly", "rw": "readwrite"}
    got: dict = {"readonly": kind == "bind"}
    for key, value in fields:
        key = aliases.get(key, key)
        if key == "type":
            continue
        if key not in allowed:
            raise DockerfileError(f"{where}: {key} does not apply to type={kind}")
        if key == "readonly":
            got["readonly"] = _bool(key, value, where)
        elif key == "readwrite":
            got["readonly"] = not _bool(key, value, where)
        elif key == "required":
            got["required"] = _bool(key, value, where)
        elif key == "sharing":
            if value not in _SHARING:
                raise DockerfileError(f"{where}: sharing must be one of {', '.join(_SHARING)}")
            got["sharing"] = value
        elif key == "mode":
            got["mode"] = _number(key, value, where, 8)
        elif key in ("uid", "gid"):
            got[key] = _number(key, value, where)
        elif key == "size":
            from ..porcelain.mountspec import parse_size

            try:
                got["size"] = parse_size(value or "", "size")
            except UsageError as exc:
                raise DockerfileError(f"{where}: {exc}") from None
        elif key == "from":
            got["from_"] = value or ""
        elif value is None or value == "":
            raise DockerfileError(f"{where}: {key} needs a value")
        else:
            got[key] = _path(value, where)
    target = got.pop("target", "")
    if kind == "secret":
        if not got.get("id") and not target:
            raise DockerfileError(f"{where}: a secret needs an id or a target")
        got.setdefault("id", posixpath.basename(target.rstrip("/")))
        if not target and not got.get("env"):
            target = f"{SECRETS_DIR}/{got['id']}"
    if kind != "secret" or target:
        if not target:
            raise DockerfileError(f"{where}: target is required")
        if not target.startswith("/"):
            target = posixpath.join(workdir or "/", target)
        target = "/" + posixpath.normpath(target).lstrip("/")
        if target == "/":
            raise DockerfileError(f"{where}: a mount cannot replace the container's /")
    if kind == "cache":
        got.setdefault("id", target)
    return RunMount(kind, target, **got)


@dataclass(frozen=True)
class SecretSource:
    """``lg build --secret id=ID[,src=PATH|,env=VAR]``: where a secret's value comes from."""

    id: str
    path: str = ""
    env: str = ""

    def read(self, environ: Mapping[str, str]) -> bytes:
        """The value, bounded; one line when it cannot be had."""
        if self.env:
            if self.env not in environ:
                raise UsageError(f"--secret id={self.id}: environment variable {self.env} is not set")
            value = os.fsencode(environ[self.env])
        else:
            try:
                with open(self.path, "rb") as f:
                    value = f.read(SECRET_LIMIT + 1)
            except OSError as exc:
                raise UsageError(f"--secret id={self.id}: cannot read {self.path}: {exc.strerror}") from None
        if len(value) > SECRET_LIMIT:
            raise UsageError(f"--secret id={self.id}: larger than {SECRET_LIMIT} bytes")
        return value


def parse_secret(text: str, environ: Mapping[str, str]) -> SecretSource:
    """docker build's ``--secret`` grammar: ``id=ID`` with ``src=``/``source=`` (a file),
    ``env=`` (a variable) and ``type=file|env``; with neither, the variable named ID
    if it is set, else the file ID (as buildx does)."""
    where = f"--secret {text[:80]!r}"
    try:
        fields = _fields(text, where)
    except DockerfileError as exc:
        raise UsageError(str(exc)) from None
    got: dict[str, str] = {}
    for key, value in fields:
        key = {"source": "src", "target": "id"}.get(key, key)
        if key not in ("id", "src", "env", "type") or not value:
            raise UsageError(f"invalid {where}: use id=ID[,src=PATH|,env=VAR]")
        got[key] = value
    kind = got.get("type", "")
    if kind not in ("", "file", "env"):
        raise UsageError(f"invalid {where}: type must be file or env")
    ident = got.get("id") or os.path.basename(got.get("src", ""))
    if not ident or "/" in ident or ident in (".", ".."):
        raise UsageError(f"invalid {where}: id=ID is required (a name without /)")
    if "src" in got and "env" in got:
        raise UsageError(f"invalid {where}: give src or env, not both")
    if "env" in got or kind == "env":
        return SecretSource(ident, env=got.get("env") or got.get("src") or ident)
    if "src" in got or kind == "file":
        return SecretSource(ident, path=got.get("src") or ident)
    return SecretSource(ident, env=ident) if ident in environ else SecretSource(ident, path=ident)


def cache_dir_name(mount_id: str, seed: bytes | None) -> str:
    """The directory of a cache mount under ``cache/build-mounts``: one per id (and
    per seed tree), hashed so an id can be any string."""
    h = hashlib.sha256(mount_id.encode("utf-8", "surrogateescape"))
    if seed is not None:
        h.update(b"\0from " + seed.hex().encode())
    return h.hexdigest()


@dataclass
class Prepared:
    """A step's mounts made: the container's ``--mount`` and ``--tmpfs`` words and
    environment, and what to remove afterwards."""

    mounts: list[str] = field(default_factory=list)
    tmpfs: list[str] = field(default_factory=list)
    env: list[str] = field(default_factory=list)
    scratch: list[str] = field(default_factory=list)  # directories to remove
    locks: list[int] = field(default_factory=list)  # fds holding cache locks
    secrets: str = ""  # the step's directory of secret files, once made

    def bind(self, source: str, target: str, readonly: bool) -> None:
        import csv
        import io

        out = io.StringIO()
        row = ["type=bind", f"source={source}", f"target={target}"] + (["readonly"] if readonly else [])
        csv.writer(out, lineterminator="").writerow(row)
        self.mounts.append(out.getvalue())

    def close(self) -> None:
        for path in self.scratch:
            shutil.rmtree(path, ignore_errors=True)
        for fd in self.locks:
            os.close(fd)
        self.scratch.clear()
        self.locks.clear()


def secret_dir(tmp: str) -> str:
    """A private directory for secret files: on a tmpfs when the host has one, so a
    secret never reaches a disk, else under the root's ``tmp/`` (removed after the step)."""
    base = "/dev/shm" if os.path.isdir("/dev/shm") else tmp
    os.makedirs(base, exist_ok=True)
    return tempfile.mkdtemp(dir=base, prefix="lg-secret-")


def open_cache(
    directory: str, mount: RunMount, prepared: Prepared, fill: Callable[[str], None] | None
) -> str:
    """The cache directory to mount, created with the mount's mode and owner (and
    ``fill``ed from its ``from`` source) when missing; ``sharing`` as BuildKit has it:
    ``locked`` waits for the other user, ``private`` takes a fresh throw-away
    directory when the cache is in use, ``shared`` mounts it as it is."""
    parent = os.path.dirname(directory)
    os.makedirs(parent, mode=0o700, exist_ok=True)
    fd = os.open(directory + ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    try:
        if mount.sharing == "locked":
            fcntl.flock(fd, fcntl.LOCK_EX)
        elif mount.sharing == "private":
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        else:
            fcntl.flock(fd, fcntl.LOCK_SH)
    except BlockingIOError:  # private, and in use
        os.close(fd)
        fresh = _new_dir(parent, mount, fill)
        prepared.scratch.append(fresh)
        return fresh
    prepared.locks.append(fd)
    if not os.path.isdir(directory):
        os.rename(_new_dir(parent, mount, fill), directory)
    return directory


def _new_dir(parent: str, mount: RunMount, fill: Callable[[str], None] | None) -> str:
    new = tempfile.mkdtemp(dir=parent, prefix=".new-")
    if fill is not None:
        fill(new)
    os.chmod(new, mount.mode if mount.mode is not None else 0o755)
    own(new, mount)
    return new


def own(path: str, mount: RunMount) -> None:
    """Give ``path`` the mount's uid and gid (0 by default), as root can; lg run by a
    user maps its containers' ids onto its own, so there the user's ids stay."""
    if os.geteuid() == 0:
        os.chown(path, mount.uid or 0, mount.gid or 0, follow_symlinks=False)


def prune_cache_mounts(directory: str) -> int:
    """Remove every cache mount under ``directory`` (``cache/build-mounts``) that no
    build uses now (its lock is free); returns the bytes freed. ``lg system prune``
    calls it, as ``docker system prune`` drops the build cache."""
    from ..removal import remove_tree

    freed = 0
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return 0
    for name in names:
        path = os.path.join(directory, name)
        if name.endswith(".lock") or name.startswith("."):  # a lock, or a killed build's (lg gc's)
            continue
        lock = path + ".lock"
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue
            freed += _bytes(path)
            remove_tree(path)
            os.unlink(lock)
        finally:
            os.close(fd)
    return freed


def _bytes(path: str) -> int:
    total = 0
    for top, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(top, name)).st_blocks * 512
            except OSError:
                pass
    return total
