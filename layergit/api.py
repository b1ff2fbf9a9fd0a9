"""The Python API: the same functions the ``lg`` command calls, returning plain data.

    from layergit import api
    repo = api.open_repo("/tmp/lgroot")          # or None for $LG_ROOT / the default
    result = api.commit_dir(repo, "rootfs/", "app:v1", message="base")
    for entry in api.log(repo, "app:v1"):
        print(entry.id[:12], entry.message, entry.size)
    changes = api.diff(repo, "app:v1~1", "app:v1").changes
    api.push(repo, "/srv/images.git", ["app:v1"])  # a remote's name, a URL or a path

Importing this module is cheap: pygit2 loads on the first call that needs the store.
"""

from .porcelain.checkout import checkout, materialise
from .porcelain.diff import diff
from .porcelain.history import log, show
from .porcelain.images import commit_dir, list_images, rmi, tag
from .porcelain.maintenance import fsck, gc
from .porcelain.rebase import rebase, squash
from .porcelain.registry import RegistryOptions, login
from .porcelain.registry import pull as registry_pull
from .porcelain.registry import push as registry_push
from .porcelain.remotes import fetch, pull, push, remote_add, remote_list, remote_remove
from .porcelain.repo import Repo, open_repo

__all__ = [
    "RegistryOptions",
    "Repo",
    "checkout",
    "commit_dir",
    "diff",
    "fetch",
    "fsck",
    "gc",
    "list_images",
    "log",
    "login",
    "materialise",
    "open_repo",
    "pull",
    "push",
    "rebase",
    "registry_pull",
    "registry_push",
    "remote_add",
    "remote_list",
    "remote_remove",
    "rmi",
    "show",
    "squash",
    "tag",
]
