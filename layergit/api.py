"""The Python API: the same functions the ``lg`` command calls, returning plain data.

    from layergit import api
    repo = api.open_repo("/tmp/lgroot")          # or None for $LG_ROOT / the default
    result = api.commit_dir(repo, "rootfs/", "app:v1", message="base")
    for entry in api.log(repo, "app:v1"):
        print(entry.id[:12], entry.message, entry.size)
    changes = api.diff(repo, "app:v1~1", "app:v1").changes

Importing this module is cheap: pygit2 loads on the first call that needs the store.
"""

from .porcelain.checkout import checkout, materialise
from .porcelain.diff import diff
from .porcelain.history import log, show
from .porcelain.images import commit_dir, list_images, rmi, tag
from .porcelain.maintenance import fsck, gc
from .porcelain.registry import RegistryOptions, login, pull, push
from .porcelain.repo import Repo, open_repo

__all__ = [
    "RegistryOptions",
    "Repo",
    "checkout",
    "commit_dir",
    "diff",
    "fsck",
    "gc",
    "list_images",
    "log",
    "login",
    "materialise",
    "open_repo",
    "pull",
    "push",
    "rmi",
    "show",
    "tag",
]
