"""An image's history read like a repository's: log and show."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from . import sizes
from .repo import Repo, signature_time


@dataclass(frozen=True)
class LogEntry:
    id: str
    date: datetime
    author: str
    message: str
    size: int  # bytes this layer added or rewrote
    parents: tuple[str, ...]


@dataclass(frozen=True)
class ShowInfo:
    id: str
    tree: str
    rootfs: str
    parents: tuple[str, ...]
    author: str
    author_date: datetime
    committer: str
    commit_date: datetime
    message: str
    config: dict
    size: int


def who(sig) -> str:
    return f"{sig.name} <{sig.email}>"


def log(repo: Repo, rev: str, limit: int | None = None) -> list[LogEntry]:
    """First-parent history from ``rev``, newest first, like docker history."""
    out: list[LogEntry] = []
    oid: bytes | None = repo.resolve(rev)
    while oid is not None and (limit is None or len(out) < limit):
        img = repo.image(oid)
        parent = img.commit.parents[0] if img.commit.parents else None
        parent_rootfs = repo.image(parent).rootfs if parent else None
        out.append(
            LogEntry(
                oid.hex(),
                signature_time(img.commit.author),
                who(img.commit.author),
                img.commit.message.rstrip("\n"),
                sizes.layer_size(repo, oid, img.rootfs, parent_rootfs),
                tuple(p.hex() for p in img.commit.parents),
            )
        )
        oid = parent
    return out


def show(repo: Repo, rev: str) -> ShowInfo:
    img = repo.image_at(rev)
    c = img.commit
    return ShowInfo(
        img.id.hex(),
        c.tree.hex(),
        img.rootfs.hex(),
        tuple(p.hex() for p in c.parents),
        who(c.author),
        signature_time(c.author),
        who(c.committer),
        signature_time(c.committer),
        c.message.rstrip("\n"),
        img.config,
        sizes.tree_size(repo, img.rootfs),
    )


def inspect_image(repo: Repo, rev: str) -> dict:
    """Docker-style inspect output for an image."""
    from ..store import names
    from .images import repo_digests

    info = show(repo, rev)
    tags = []
    for ref, oid in repo.store.refs(names.IMAGE_PREFIX):
        image = names.from_ref(ref)
        if image is not None and oid.hex() == info.id:
            tags.append(str(image))
    return {
        "Id": info.id,
        "RepoTags": tags,
        "RepoDigests": repo_digests(repo, bytes.fromhex(info.id)),
        "Parent": info.parents[0] if info.parents else "",
        "Comment": info.message,
        "Created": info.commit_date.isoformat(),
        "Author": info.author,
        "Config": {k: v for k, v in info.config.items() if k not in ("Architecture", "Os", "Variant")},
        "Architecture": info.config.get("Architecture", ""),
        "Os": info.config.get("Os", "linux"),
        "Size": info.size,
        "RootFS": {"Type": "layergit", "Tree": info.rootfs},
    }
