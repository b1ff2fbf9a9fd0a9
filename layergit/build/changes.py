"""Dockerfile-style config instructions (``lg commit -c 'CMD ["nginx"]'``) applied to config.json.

The same instruction grammar as Dockerfiles for the instructions that only change
the image config: CMD and ENTRYPOINT (JSON or shell form), ENV, WORKDIR, USER,
EXPOSE, LABEL, VOLUME, STOPSIGNAL.
"""

from __future__ import annotations

import json
import shlex

from ..errors import UsageError

SHELL = ["/bin/sh", "-c"]


def _exec_form(rest: str) -> list[str]:
    text = rest.strip()
    if text.startswith("["):
        try:
            value = json.loads(text)
        except (ValueError, RecursionError):  # RecursionError: arrays nested past json's limit
            value = None
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
    return SHELL + [text]


def _pairs(rest: str, what: str) -> list[tuple[str, str]]:
    words = shlex.split(rest)
    if len(words) >= 2 and "=" not in words[0]:
        return [(words[0], rest.strip()[len(words[0]):].strip())]  # legacy "ENV KEY value with spaces"
    out = []
    for word in words:
        key, eq, value = word.partition("=")
        if not eq or not key:
            raise UsageError(f"{what} expects KEY=VALUE, got {word!r}")
        out.append((key, value))
    return out


def apply(config: dict, instruction: str) -> dict:  # noqa: C901 (one short branch per keyword: a table)
    """A new config with one instruction applied; UsageError for anything else."""
    keyword, _, rest = instruction.strip().partition(" ")
    keyword = keyword.upper()
    cfg = json.loads(json.dumps(config))
    if not rest.strip() and keyword not in ("CMD", "ENTRYPOINT"):
        raise UsageError(f"{keyword} needs an argument")
    if keyword == "CMD":
        cfg["Cmd"] = _exec_form(rest) if rest.strip() else None
    elif keyword == "ENTRYPOINT":
        cfg["Entrypoint"] = _exec_form(rest) if rest.strip() else None
    elif keyword == "ENV":
        env = dict(item.partition("=")[::2] for item in cfg.get("Env") or [])
        env.update(_pairs(rest, "ENV"))
        cfg["Env"] = [f"{k}={v}" for k, v in env.items()]
    elif keyword == "LABEL":
        labels = dict(cfg.get("Labels") or {})
        labels.update(_pairs(rest, "LABEL"))
        cfg["Labels"] = labels
    elif keyword == "WORKDIR":
        cfg["WorkingDir"] = rest.strip()
    elif keyword == "USER":
        cfg["User"] = rest.strip()
    elif keyword == "EXPOSE":
        ports = dict(cfg.get("ExposedPorts") or {})
        for port in rest.split():
            ports[port if "/" in port else port + "/tcp"] = {}
        cfg["ExposedPorts"] = ports
    elif keyword == "VOLUME":
        volumes = dict(cfg.get("Volumes") or {})
        for path in _exec_form(rest) if rest.strip().startswith("[") else rest.split():
            volumes[path] = {}
        cfg["Volumes"] = volumes
    elif keyword == "STOPSIGNAL":
        cfg["StopSignal"] = rest.strip()
    else:
        raise UsageError(
            f"unsupported change {keyword!r}: use CMD, ENTRYPOINT, ENV, WORKDIR, USER, EXPOSE, LABEL, VOLUME"
            " or STOPSIGNAL"
        )
    return {k: v for k, v in cfg.items() if v is not None}
