"""Compose files (compose-spec) read into typed values, for ``lg compose``.

The pipeline, one module each: ``yamlfile`` reads a file, bounded, as YAML 1.2 (so
``restart: no`` stays a string and ``- 22:22`` is not the number 1342); ``envfile``
reads ``.env``; ``interpolate`` replaces ``${VAR:-default}`` and its kin in every
string value; ``model`` checks every key and type, refusing what lg does not support
by name, and gives a :class:`model.Project` of services, networks and volumes with
the order services start in. Nothing here touches the store or the runtime: the
commands map a Project onto lg's own run, network and volume code.
"""

from __future__ import annotations

from ..errors import LgError


class ComposeError(LgError):
    """A compose file lg cannot use: malformed, a key it does not support, an unset
    required variable, a cycle in depends_on. Raised before anything is started."""


def read_small(path: str, limit: int, what: str) -> bytes:
    """The whole of a file compose reads (the compose file, ``.env``, an env_file), read
    up to ``limit`` bytes: /dev/zero or a huge file is one line, not all of memory."""
    try:
        with open(path, "rb") as f:
            raw = f.read(limit + 1)
    except FileNotFoundError:
        raise ComposeError(f"{what} {path} not found") from None
    except OSError as exc:
        raise ComposeError(f"cannot read {what} {path}: {exc.strerror}") from None
    if len(raw) > limit:
        raise ComposeError(f"{what} {path} is larger than {limit >> 20} MiB")
    return raw


# The labels docker compose puts on what it makes, which lg compose puts on its own
# containers, networks and volumes: how a project's things are found again (``ps``,
# ``down``) and how ``lg system boot`` orders a project's services.
PROJECT = "com.docker.compose.project"
SERVICE = "com.docker.compose.service"
NUMBER = "com.docker.compose.container-number"
CONFIG_HASH = "com.docker.compose.config-hash"
DEPENDS_ON = "com.docker.compose.depends_on"  # "db:service_healthy:false,..." (SERVICE:CONDITION:RESTART)
NETWORK = "com.docker.compose.network"
VOLUME = "com.docker.compose.volume"
