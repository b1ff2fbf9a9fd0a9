"""The environment of every ``git`` process lg starts on a repository of its own.

lg run from inside another repository's git (a hook, an alias, a ``rebase --exec``)
inherits variables naming that repository, and they win over ``--git-dir`` and
``-C``: git would then fetch into its objects and refs (GIT_COMMON_DIR), gc and
prune it or fsck it in the store's stead (GIT_DIR), take its shallow file or replace
refs, write under a namespace, or refuse every ref update (a pre-receive hook's
quarantine). So they are dropped: git's own list (``git rev-parse --local-env-vars``)
but for the config it carries (GIT_CONFIG_PARAMETERS, GIT_CONFIG_COUNT: the user's,
and lg's ``-c`` wins over them), and the two that list leaves out.
"""

from __future__ import annotations

import os

CALLERS_REPOSITORY = (
    "GIT_DIR", "GIT_COMMON_DIR", "GIT_WORK_TREE", "GIT_IMPLICIT_WORK_TREE", "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_INDEX_FILE", "GIT_GRAFT_FILE", "GIT_SHALLOW_FILE",
    "GIT_NO_REPLACE_OBJECTS", "GIT_REPLACE_REF_BASE", "GIT_PREFIX", "GIT_INTERNAL_SUPER_PREFIX",
    "GIT_CONFIG", "GIT_NAMESPACE", "GIT_QUARANTINE_PATH",
)


def environ(**extra: str) -> dict[str, str]:
    """This process's environment without the caller's repository, with ``extra`` added."""
    env = {name: value for name, value in os.environ.items() if name not in CALLERS_REPOSITORY}
    env.update(extra)
    return env
