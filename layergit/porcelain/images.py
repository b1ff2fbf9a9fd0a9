"""Images as named commits: commit a directory, tag, untag, list."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime

from ..errors import Conflict, LgError, NotFound
from ..store import names
from . import sizes
from .repo import Repo, local_time, store_lock

_RACE_RETRIES = 20


@dataclass(frozen=True)
class CommitResult:
    id: str
    tree: str
    parent: str | None
    tag: str | None
    entries: int
    bytes: int


@dataclass(frozen=True)
class ImageRow:
    name: str
    tag: str
    id: str
    created: datetime
    size: int
    digests: list[str] = field(default_factory=list)  # NAME@sha256:..., the digest index's
    labels: dict[str, str] = field(default_factory=dict)


class NameClash(Conflict):
    """Two image names that git cannot store side by side (see store.names)."""


def check_ref_clash(repo: Repo, image: names.ImageName) -> None:
    """Refuse a name whose ref would be both a file and a directory (see store.names)."""
    ref = image.ref
    for existing, _ in repo.store.refs(names.IMAGE_PREFIX):
        if existing.startswith(ref + "/") or ref.startswith(existing + "/"):
            other = names.from_ref(existing)
            raise NameClash(f"{image} cannot coexist with image {other or existing}:"
                            " pick another name or tag")


def move_tag(repo: Repo, image: names.ImageName, new: bytes, old: bytes | None, message: str) -> None:
    if old is None:
        check_ref_clash(repo, image)
    repo.store.set_ref(image.ref, new, old, message)


def force_tag(repo: Repo, image: names.ImageName, oid: bytes, message: str) -> None:
    """Point a tag at ``oid`` whatever it pointed at (docker load semantics)."""
    for _ in range(10):
        old = repo.store.ref(image.ref)
        if old == oid:
            return
        try:
            move_tag(repo, image, oid, old, message)
            return
        except Conflict:
            continue
    raise LgError(f"{image} keeps moving; not tagged")


def commit_dir(repo: Repo, source: str, tag: str, **options) -> CommitResult:
    """Snapshot ``source`` as a new commit on ``tag`` (moving it like a branch).

    Options: message, author ("Name <mail>"), parent (a revision), allow_empty, progress.
    """
    with store_lock(repo):
        return _commit_dir(repo, source, tag, **options)


def _commit_dir(
    repo: Repo,
    source: str,
    tag: str,
    message: str | None = None,
    author: str | None = None,
    parent: str | None = None,
    allow_empty: bool = False,
    progress=None,
) -> CommitResult:
    from ..fs.capture import capture
    from ..fs.statcache import StatCache
    from ..store.image import write_image_tree
    from ..store.rawobj import Signature
    from .checkout import deposit

    image = names.parse(tag)
    store = repo.store
    tip = store.ref(image.ref)
    if tip is None:
        check_ref_clash(repo, image)  # before writing anything
    base = repo.resolve(parent) if parent else tip
    based_on = repo.image(base) if base else None  # its config now, its rootfs for the layer's size
    config = based_on.config if based_on else {}
    who = Signature.parse(author) if author is not None else store.default_author()
    committer = store.default_author()
    text = message or f"lg commit {source}"
    with store.writer() as w, deposit(repo) as farm:
        stat_cache = StatCache.for_directory(repo.root.cache_dir("stat"), source)
        captured = capture(w, source, stat_cache, progress, farm)
        tree = write_image_tree(w, config, captured.tree)
        if base and not allow_empty and store.commit(base).tree == tree:
            raise LgError(f"nothing changed since {base.hex()[:12]}; use --allow-empty to commit anyway")
        oid = w.commit(tree, [base] if base else [], who, committer, text)
    expected = tip
    for _ in range(_RACE_RETRIES):
        try:
            move_tag(repo, image, oid, expected, f"commit: {text.splitlines()[0]}")
            break
        except NameClash:
            raise
        except Conflict:
            # The tag is locked, or someone moved it since we read it: then stack our
            # commit on top of theirs so both land (unless the user pinned the parent).
            import random  # only a race comes here

            time.sleep(random.uniform(0.005, 0.05))
            current = store.ref(image.ref)
            if current == expected:
                continue  # only locked: try again
            if parent or current is None:
                raise Conflict(f"{image} moved while committing;"
                               f" nothing was tagged (the commit is {oid.hex()[:12]})") from None
            expected = base = current
            with store.writer() as w:
                oid = w.commit(tree, [base], who, committer, text)
    else:
        raise Conflict(f"{image} keeps moving; gave up after {_RACE_RETRIES} attempts")
    sizes.remember(repo, "tree", captured.tree, captured.bytes)
    # The layer's size too, for lg log: without it the first log of a commit of a
    # million files walks them all. A first commit's layer is its whole tree; another's
    # is a diff that skips every subtree the commit kept.
    if base is None:
        sizes.remember(repo, "layer", oid, captured.bytes)
    else:
        if based_on is None or based_on.id != base:  # another commit landed first: ours is on it
            based_on = repo.image(base)
        sizes.layer_size(repo, oid, captured.tree, based_on.rootfs)
    return CommitResult(oid.hex(), tree.hex(), base.hex() if base else None, str(image), captured.entries,
                        captured.bytes)


def tag(repo: Repo, source: str, target: str) -> str:
    """Point ``target`` at the commit ``source`` names (moving it if it exists)."""
    oid = repo.resolve(source)
    image = names.parse(target)
    old = repo.store.ref(image.ref)
    if old != oid:
        move_tag(repo, image, oid, old, f"tag: {source}")
    return oid.hex()


def rmi(repo: Repo, targets: list[str], force: bool = False) -> list[tuple[str, str]]:
    """Remove names (objects stay until ``lg gc``); returns (name, id) removed.

    A target that is no name but an image id (or its prefix) removes the names that
    point at that image, as ``docker rmi ID`` does: only with ``force`` when there are
    several, so that one id typed never silently removes many names.
    ``NAME@sha256:...`` removes that entry of the digest index. Removing a tag also
    removes the digests of NAME that led to the same commit once no tag of NAME does,
    as Docker forgets an image's RepoDigests with its last tag."""
    resolved: list[tuple[str, str, bytes]] = []  # (shown, ref, commit)
    for text in targets:
        pinned = names.split_digest(text)
        if pinned is None:
            resolved += [(str(image), image.ref, oid) for image, oid in _rmi_targets(repo, text, force)]
            continue
        shown, ref = f"{pinned[0]}@{pinned[1]}", names.digest_ref(*pinned)
        oid = repo.store.ref(ref)
        if oid is None:
            raise NotFound(f"no such image: {shown}")
        resolved.append((shown, ref, oid))
    for _, ref, _ in resolved:
        repo.store.delete_ref(ref)
    for _, ref, oid in resolved:
        image = names.from_ref(ref)
        if image is not None:
            _forget_digests(repo, image.name, oid)
    return [(shown, oid.hex()) for shown, _, oid in resolved]


def _forget_digests(repo: Repo, name: str, oid: bytes) -> None:
    tags = (names.from_ref(r) for r, target in repo.store.refs(names.IMAGE_PREFIX) if target == oid)
    if any(t is not None and t.name == name for t in tags):
        return
    for ref, target in repo.store.refs(names.DIGEST_PREFIX):
        parsed = names.from_digest_ref(ref)
        if target == oid and parsed is not None and parsed[0] == name:
            repo.store.delete_ref(ref)


def _rmi_targets(repo: Repo, text: str, force: bool) -> list[tuple[names.ImageName, bytes]]:
    image = names.parse(text)
    oid = repo.store.ref(image.ref)
    if oid is not None:
        return [(image, oid)]
    if len(text) >= 4 and all(c in "0123456789abcdef" for c in text):
        named = [(img, o) for ref, o in repo.store.refs(names.IMAGE_PREFIX)
                 if o.hex().startswith(text) and (img := names.from_ref(ref)) is not None]
        if len({o for _, o in named}) > 1:
            raise Conflict(f"image id {text} is ambiguous: give more digits")
        if len(named) > 1 and not force:
            raise Conflict(f"image {text} is named {len(named)} times"
                           f" ({', '.join(str(i) for i, _ in named)}): remove the names, or use -f")
        if named:
            return named
    raise NotFound(f"no such image: {image}")


def _named(ref: str, remote: bool) -> names.ImageName | None:
    """The name a listing shows for a ref: ``origin/app`` for a remote-tracking one."""
    if not remote:
        return names.from_ref(ref)
    tracked = names.from_tracking_ref(ref)
    return names.ImageName(f"{tracked[0]}/{tracked[1].name}", tracked[1].tag) if tracked else None


def list_images(repo: Repo, remote: bool = False) -> list[ImageRow]:
    """Local images, or with ``remote`` what ``lg fetch`` last saw on each remote."""
    from .listing import ListingCache

    rows = []
    digests = _digests_by_commit(repo)
    cache = ListingCache(repo)
    for ref, oid in repo.store.refs(names.REMOTE_PREFIX if remote else names.IMAGE_PREFIX):
        image = _named(ref, remote)
        if image is None:
            continue
        shown = cache.get(oid)
        rows.append(ImageRow(image.name, image.tag, oid.hex(), local_time(shown.time, shown.offset_minutes),
                             shown.size,
                             [d for d in digests.get(oid, []) if d.startswith(image.name + "@")],
                             dict(shown.labels)))
    cache.save()
    return rows


def _digests_by_commit(repo: Repo) -> dict[bytes, list[str]]:
    out: dict[bytes, list[str]] = {}
    for ref, oid in repo.store.refs(names.DIGEST_PREFIX):
        parsed = names.from_digest_ref(ref)
        if parsed is not None:
            out.setdefault(oid, []).append(f"{parsed[0]}@{parsed[1]}")
    return out


def repo_digests(repo: Repo, oid: bytes) -> list[str]:
    """Docker's RepoDigests of commit ``oid``: NAME@sha256:... it was pushed as or pulled from."""
    return sorted(_digests_by_commit(repo).get(oid, []))
