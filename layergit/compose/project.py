"""Finding and loading the project a ``lg compose`` command is about.

compose's rules: ``-f FILE`` (repeatable) or the first of compose.yaml, compose.yml,
docker-compose.yaml, docker-compose.yml in the working directory; the project
directory is ``--project-directory`` or the first file's directory (where ``.env`` and
relative paths are read from).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from . import ComposeError, yamlfile
from .model import Project, load


@dataclass(frozen=True)
class ProjectOptions:
    """The options every ``lg compose`` command takes, as given."""

    files: tuple[str, ...] = ()
    name: str | None = None
    directory: str | None = None
    env_file: str | None = None


def open_project(options: ProjectOptions, environ: Mapping[str, str] | None = None) -> Project:
    environ = os.environ if environ is None else environ
    files = list(options.files)
    if not files:
        found = yamlfile.find(options.directory or ".")
        if found is None:
            raise ComposeError("no compose file here (compose.yaml, compose.yml, docker-compose.yaml,"
                               " docker-compose.yml); name one with -f")
        files = [found]
    if len(files) > 1:
        raise ComposeError("lg compose reads one file: merging several with -f is not supported yet")
    directory = options.directory or os.path.dirname(os.path.abspath(files[0]))
    return load(yamlfile.read(files[0]), directory, environ, options.name, options.env_file)
