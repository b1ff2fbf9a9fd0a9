"""Registry credentials in the files Docker and podman use, and their credential helpers.

Read, first found wins: ``$REGISTRY_AUTH_FILE``; else
``${XDG_RUNTIME_DIR}/containers/auth.json`` (``/run/containers/UID/auth.json`` without
XDG_RUNTIME_DIR), ``${XDG_CONFIG_HOME:-~/.config}/containers/auth.json``, then
``${DOCKER_CONFIG:-~/.docker}/config.json``. In each, ``credHelpers[host]`` or
``credsStore`` names a ``docker-credential-NAME`` program asked first, then
``auths[host].auth`` (base64 of ``user:password``). ``lg login`` hands the
credentials to the helper the first of those files names for the host
(``docker-credential-NAME store``, as docker login does), else writes where podman
writes (the first of those files), mode 0600, replaced atomically, keeping every other
key; ``lg logout`` erases them from the helper and removes the entry from the file.
Passwords are never printed, nor passed on a command line.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import tempfile

from ..errors import LgError, NotFound, UsageError
from ..text import printable
from .client import Credentials
from .reference import DOCKER_HUB

# How Docker names Hub in its config; podman writes "docker.io".
_HUB_KEYS = (DOCKER_HUB, "https://index.docker.io/v1/", "index.docker.io", "registry-1.docker.io")
MAX_AUTH_FILE = 1 << 20


def write_path() -> str:
    if os.environ.get("REGISTRY_AUTH_FILE"):
        return os.environ["REGISTRY_AUTH_FILE"]
    runtime = os.environ.get("XDG_RUNTIME_DIR") or f"/run/containers/{os.getuid()}"
    return os.path.join(runtime, "containers", "auth.json")


def read_paths() -> list[str]:
    if os.environ.get("REGISTRY_AUTH_FILE"):
        return [os.environ["REGISTRY_AUTH_FILE"]]
    home = os.path.expanduser("~")
    config = os.environ.get("XDG_CONFIG_HOME") or os.path.join(home, ".config")
    docker = os.environ.get("DOCKER_CONFIG") or os.path.join(home, ".docker")
    return [write_path(), os.path.join(config, "containers", "auth.json"),
            os.path.join(docker, "config.json")]


def _load(path: str) -> dict:
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_AUTH_FILE + 1)
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise LgError(f"cannot read {path}: {exc.strerror}") from None
    if len(data) > MAX_AUTH_FILE:
        raise LgError(f"{path} is over {MAX_AUTH_FILE} bytes; not an auth file")
    try:
        doc = json.loads(data) if data.strip() else {}
    except (ValueError, RecursionError):
        raise LgError(f"{path} is not valid JSON") from None
    if not isinstance(doc, dict):
        raise LgError(f"{path} is not an auth file (a JSON object)")
    return doc


def _keys(host: str) -> tuple[str, ...]:
    return _HUB_KEYS if host in _HUB_KEYS else (host, f"https://{host}", f"http://{host}")


HELPER_OUTPUT_MAX = 1 << 16  # bytes of a helper's answer lg reads


def _call_helper(name: str, action: str, request: bytes, host: str) -> subprocess.CompletedProcess:
    """``docker-credential-NAME ACTION`` with ``request`` on stdin (the helper protocol)."""
    try:
        proc = subprocess.run([f"docker-credential-{name}", action], input=request, capture_output=True,
                              timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        raise LgError(f"credential helper docker-credential-{printable(name)} failed for {host}") from None
    return proc


def _helper(name: str, host: str) -> Credentials | None:
    if not _helper_name_ok(name):
        return None
    proc = _call_helper(name, "get", host.encode(), host)
    if proc.returncode != 0 or len(proc.stdout) > HELPER_OUTPUT_MAX:
        return None  # "credentials not found": the next source may have them
    try:
        doc = json.loads(proc.stdout)
        user, secret = doc["Username"], doc["Secret"]
    except (ValueError, KeyError, TypeError):
        raise LgError(f"docker-credential-{printable(name)} answered no credentials for {host}") from None
    if not isinstance(user, str) or not isinstance(secret, str):
        return None
    return Credentials(user, secret)


def _decode(entry: object, path: str, host: str) -> Credentials | None:
    if not isinstance(entry, dict):
        return None
    if isinstance(entry.get("identitytoken"), str) and entry["identitytoken"]:
        return Credentials("<token>", entry["identitytoken"])
    auth = entry.get("auth")
    if not isinstance(auth, str) or not auth:
        return None
    try:
        user, colon, password = base64.b64decode(auth, validate=True).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        raise LgError(f"{path}: the entry for {host} is not base64 of user:password") from None
    return Credentials(user, password) if colon else None


def _section(doc: dict, key: str) -> dict:
    value = doc.get(key)
    return value if isinstance(value, dict) else {}


def lookup(host: str) -> Credentials | None:
    """The credentials for registry ``host``, or None for anonymous access."""
    for path in read_paths():
        doc = _load(path)
        helpers = _section(doc, "credHelpers")
        for key in _keys(host):
            if isinstance(helpers.get(key), str):
                found = _helper(helpers[key], host)
                if found:
                    return found
        auths = _section(doc, "auths")
        for key in _keys(host):
            found = _decode(auths.get(key), path, host)
            if found:
                return found
        if isinstance(doc.get("credsStore"), str):
            found = _helper(doc["credsStore"], host)
            if found:
                return found
    return None


def _helper_name_ok(name: object) -> bool:
    return isinstance(name, str) and bool(name) and "/" not in name and "\0" not in name


def helper_for(host: str) -> str | None:
    """The credential helper the first auth file naming one gives ``host``:
    ``credHelpers[host]``, else ``credsStore``; None when no file names one."""
    for path in read_paths():
        doc = _load(path)
        helpers = _section(doc, "credHelpers")
        for key in _keys(host):
            if _helper_name_ok(helpers.get(key)):
                return helpers[key]
        if _helper_name_ok(doc.get("credsStore")):
            return doc["credsStore"]
    return None


def _helper_failed(name: str, action: str, host: str, proc: subprocess.CompletedProcess) -> LgError:
    said = (proc.stdout or proc.stderr)[:300].decode(errors="replace").strip()
    return LgError(f"docker-credential-{printable(name)} {action} failed for {host}: {printable(said)}")


def _store(path: str, doc: dict) -> None:
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, mode=0o700, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".auth-")
    try:
        with os.fdopen(fd, "w") as f:
            os.fchmod(f.fileno(), 0o600)
            json.dump(doc, f, indent="\t")
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def save(host: str, credentials: Credentials) -> str:
    """Record ``credentials`` for ``host``: in the credential helper configured for it,
    else where podman would; returns the helper's program or the file. A plain entry
    for the host left in the file is dropped, so it cannot shadow the helper's."""
    if ":" in credentials.username:
        raise UsageError("a user name cannot contain ':'")
    helper = helper_for(host)
    if helper is not None:
        request = json.dumps({"ServerURL": host, "Username": credentials.username,
                              "Secret": credentials.password}).encode()
        proc = _call_helper(helper, "store", request, host)
        if proc.returncode != 0:
            raise _helper_failed(helper, "store", host, proc)
        _drop_entry(host)
        return f"docker-credential-{helper}"
    path = write_path()
    doc = _load(path)
    auths = doc.setdefault("auths", {})
    if not isinstance(auths, dict):
        raise LgError(f"{path}: \"auths\" is not an object")
    for key in _keys(host)[1:]:
        auths.pop(key, None)
    pair = f"{credentials.username}:{credentials.password}".encode()
    auths[_keys(host)[0]] = {"auth": base64.b64encode(pair).decode()}
    _store(path, doc)
    return path


def _drop_entry(host: str) -> bool:
    """Remove ``host``'s entries from the file login writes; whether there were any."""
    path = write_path()
    doc = _load(path)
    auths = _section(doc, "auths")
    gone = [key for key in _keys(host) if auths.pop(key, None) is not None]
    if gone:
        _store(path, doc)
    return bool(gone)


def remove(host: str) -> str:
    """Forget ``host``'s credentials: erased from its credential helper and from the file
    login writes; returns where they were. NotFound if neither had them."""
    helper = helper_for(host)
    erased = helper is not None and _call_helper(helper, "erase", host.encode(), host).returncode == 0
    if not _drop_entry(host) and not erased:
        raise NotFound(f"not logged in to {host}")
    return f"docker-credential-{helper}" if erased else write_path()
