"""What changed between two image versions, entry by entry and in the config."""

from __future__ import annotations

from dataclasses import dataclass

from ..store.treediff import Change, diff_trees, root_meta_changes
from .repo import Repo

TEXT_LIMIT = 1 << 20  # larger files are summarised, not diffed line by line


@dataclass(frozen=True)
class DiffResult:
    old: str | None  # commit ids; old is None when B has no parent
    new: str
    changes: list[Change]
    config_changes: dict[str, tuple[object, object]]  # key -> (old, new)


def _under(path: bytes, prefixes: list[bytes]) -> bool:
    return not prefixes or any(path == p or path.startswith(p.rstrip(b"/") + b"/") for p in prefixes)


def diff(repo: Repo, a: str, b: str | None = None, paths: list[str] | None = None,
         include_mtime: bool = False) -> DiffResult:
    """Changes from ``a`` to ``b``; with only ``a``, from its parent to ``a`` (like git show)."""
    if b is None:
        new = repo.image_at(a)
        old = repo.image(new.commit.parents[0]) if new.commit.parents else None
    else:
        old, new = repo.image_at(a), repo.image_at(b)
    prefixes = [b"/" + p.encode("utf-8", "surrogateescape").strip(b"/") for p in paths or []]
    changes = [c for c in diff_trees(repo.store, old.rootfs if old else None, new.rootfs, include_mtime)
               if _under(c.path, prefixes)]
    if old is not None and _under(b"/", prefixes):
        aspects = root_meta_changes(repo.store, old.rootfs, new.rootfs, include_mtime)
        if aspects:
            changes.insert(0, Change("M", b"/", None, None, tuple(aspects)))
    old_cfg = old.config if old else {}
    keys = sorted(set(old_cfg) | set(new.config))
    config_changes = {k: (old_cfg.get(k), new.config.get(k))
                      for k in keys if old_cfg.get(k) != new.config.get(k)}
    return DiffResult(old.id.hex() if old else None, new.id.hex(), changes, config_changes)


def blob_text(repo: Repo, oid: bytes | None) -> str | None:
    """A file's content as text for a unified diff; None when binary or too large."""
    if oid is None:
        return ""
    if repo.store.object_size(oid) > TEXT_LIMIT:
        return None
    data = repo.store.read_blob(oid)
    if b"\0" in data[:8192]:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None
