"""Which endpoints to try for a registry, with the settings users already have.

As podman decides: HTTPS with certificates checked, always first; plain HTTP only as
the fallback for a loopback registry (``localhost``, 127.0.0.0/8, ``[::1]``), for one
marked ``insecure = true`` in ``registries.conf``, or with ``--tls-verify=false`` (which
also stops checking certificates). Per-registry CA and client certificates come from
``/etc/containers/certs.d/HOST[:PORT]/`` and ``/etc/docker/certs.d/HOST[:PORT]/``
(``*.crt`` CAs, ``*.cert`` with its ``*.key``); proxies from ``HTTPS_PROXY``,
``HTTP_PROXY`` and ``NO_PROXY``.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib

from .client import Endpoint

CERTS_DIRS = ("/etc/containers/certs.d", "/etc/docker/certs.d")
REGISTRIES_CONF = "/etc/containers/registries.conf"


def _is_loopback(host: str) -> bool:
    name = host.rsplit(":", 1)[0] if not host.startswith("[") else host[1:host.find("]")]
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _certs(host: str) -> tuple[str | None, tuple[str, str] | None]:
    """(CA file, (client cert, key)) from the first certs.d directory naming ``host``."""
    for base in CERTS_DIRS:
        directory = os.path.join(base, host)
        try:
            names = sorted(os.listdir(directory))
        except OSError:
            continue
        ca = next((os.path.join(directory, n) for n in names if n.endswith(".crt")), None)
        client = None
        for n in names:
            key = n[:-len(".cert")] + ".key"
            if n.endswith(".cert") and key in names:
                client = (os.path.join(directory, n), os.path.join(directory, key))
                break
        return ca, client
    return None, None


def registries_conf(path: str | None = None) -> dict:
    """``registries.conf`` (v2 TOML) as a dict; {} when absent or unreadable."""
    path = path or os.environ.get("CONTAINERS_REGISTRIES_CONF") or REGISTRIES_CONF
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _conf_entry(host: str, conf: dict) -> dict:
    for entry in conf.get("registry") or []:
        if isinstance(entry, dict) and entry.get("location") == host or \
                isinstance(entry, dict) and entry.get("prefix") == host:
            return entry
    return {}


def mirrors(host: str, conf: dict | None = None) -> list[str]:
    """Mirror hosts registries.conf lists for ``host``, in order (tried before it on pull)."""
    entry = _conf_entry(host, registries_conf() if conf is None else conf)
    out = []
    for mirror in entry.get("mirror") or []:
        if isinstance(mirror, dict) and isinstance(mirror.get("location"), str):
            out.append(mirror["location"].split("/")[0])
    return out


def _proxy(host: str, secure: bool) -> str | None:
    env = os.environ
    proxy = (env.get("HTTPS_PROXY") or env.get("https_proxy")) if secure else \
        (env.get("HTTP_PROXY") or env.get("http_proxy"))
    if not proxy:
        return None
    name = host.rsplit(":", 1)[0].strip("[]")
    for rule in (env.get("NO_PROXY") or env.get("no_proxy") or "").split(","):
        rule = rule.strip().lstrip(".")
        if rule == "*" or rule and (name == rule or name.endswith("." + rule) or host == rule):
            return None
    return proxy


def endpoints(host: str, tls_verify: bool | None = None, timeout: float | None = None,
              conf: dict | None = None) -> list[Endpoint]:
    """The endpoints to try for ``host``, in order; the first that answers is used."""
    entry = _conf_entry(host, registries_conf() if conf is None else conf)
    verify = tls_verify if tls_verify is not None else not entry.get("insecure", False)
    ca, client = _certs(host)
    read, connect = (timeout, min(timeout, 10.0)) if timeout else (60.0, 10.0)
    https = Endpoint(host, True, verify, ca, client, connect, read, _proxy(host, True))
    if verify and not _is_loopback(host):
        return [https]
    return [https, Endpoint(host, False, False, None, None, connect, read, _proxy(host, False))]
