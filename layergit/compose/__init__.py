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
