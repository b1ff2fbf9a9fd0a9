"""Docker's ``--filter KEY=VALUE`` for lg ps and lg images, combined as Docker does.

Values of one key are alternatives (``-f status=exited -f status=created``: either),
different keys must all hold. A key Docker does not know for that listing, a value a
key cannot take, or a word without ``=`` is one :class:`UsageError` before anything
is listed, so that a typo never passes as "no match".
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import NotFound, UsageError

if TYPE_CHECKING:  # lg ps loads neither images.py nor its store modules
    from .container_views import ContainerRow
    from .images import ImageRow
    from .repo import Repo
    from .volumes import Volume

CONTAINER_KEYS = ("id", "name", "label", "status", "exited", "ancestor", "network", "health", "before",
                  "since", "volume")
IMAGE_KEYS = ("dangling", "label", "reference", "before", "since")
NETWORK_KEYS = ("id", "name", "label", "driver", "type", "scope")
VOLUME_KEYS = ("dangling", "driver", "label", "name")
STATUSES = ("created", "restarting", "running", "removing", "paused", "exited", "dead")
HEALTH = ("starting", "healthy", "unhealthy", "none")


@dataclass(frozen=True)
class Filters:
    """Parsed ``-f`` words: key -> the values given for it, in order."""

    values: dict[str, list[str]]

    def __contains__(self, key: str) -> bool:
        return key in self.values

    def get(self, key: str) -> list[str]:
        return self.values.get(key, [])


def parse(words: Iterable[str], keys: tuple[str, ...]) -> Filters:
    values: dict[str, list[str]] = {}
    for word in words:
        key, eq, value = word.partition("=")
        key = key.strip().lower()
        if not eq:
            raise UsageError(f"bad format of filter (expected name=value): {word}")
        if key not in keys:
            raise UsageError(f"invalid filter '{key}' (known: {', '.join(keys)})")
        values.setdefault(key, []).append(value)
    return Filters(values)


def _labels_match(labels: dict[str, str], wanted: list[str]) -> bool:
    """``label=KEY`` or ``label=KEY=VALUE``; unlike other keys, every label given must match."""
    for item in wanted:
        key, eq, value = item.partition("=")
        if key not in labels or (eq and labels[key] != value):
            return False
    return True


def _choice(key: str, values: list[str], allowed: tuple[str, ...]) -> set[str]:
    for value in values:
        if value not in allowed:
            raise UsageError(f"invalid filter '{key}={value}' (one of: {', '.join(allowed)})")
    return set(values)


def _number(key: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise UsageError(f"invalid filter '{key}={value}': not an integer") from None


def containers(repo: Repo, rows: list[ContainerRow], filters: Filters) -> list[ContainerRow]:
    """The rows (newest first, as lg ps lists them) that every filter admits."""
    tests: list[Callable[[ContainerRow], bool]] = []
    if "id" in filters:
        tests.append(lambda r: any(r.id.startswith(v) for v in filters.get("id")))
    if "name" in filters:
        patterns = [_regex("name", v) for v in filters.get("name")]
        tests.append(lambda r: any(p.search(r.name) for p in patterns))
    if "label" in filters:
        tests.append(lambda r: _labels_match(r.labels, filters.get("label")))
    if "status" in filters:
        statuses = _choice("status", filters.get("status"), STATUSES)
        tests.append(lambda r: r.state in statuses)
    if "exited" in filters:
        codes = {_number("exited", v) for v in filters.get("exited")}
        tests.append(lambda r: r.state == "exited" and r.exit_code in codes)
    if "health" in filters:
        health = _choice("health", filters.get("health"), HEALTH)
        tests.append(lambda r: r.health in health)
    if "network" in filters:
        tests.append(lambda r: r.network in filters.get("network"))
    if "volume" in filters:
        tests.append(lambda r: any(v in r.mounts for v in filters.get("volume")))
    if "ancestor" in filters:
        bases = [_image_id(repo, v) for v in filters.get("ancestor")]
        tests.append(lambda r: any(_descends(repo, r.image_id, b) for b in bases))
    rows = _window(rows, filters, lambda ref: _container_created(repo, ref), lambda r: r.created)
    return [r for r in rows if all(t(r) for t in tests)]


def images(repo: Repo, rows: list[ImageRow], filters: Filters) -> list[ImageRow]:
    """The image rows that every filter admits."""
    tests: list[Callable[[ImageRow], bool]] = []
    if "dangling" in filters:
        # every image lg lists has a name: none is dangling
        given = [v.lower() for v in filters.get("dangling")]
        dangling = _choice("dangling", given, ("true", "false", "1", "0"))
        tests.append(lambda r: not dangling & {"true", "1"})
    if "label" in filters:
        tests.append(lambda r: _labels_match(r.labels, filters.get("label")))
    if "reference" in filters:
        patterns = filters.get("reference")
        tests.append(lambda r: any(fnmatch.fnmatchcase(name, p) for p in patterns
                                   for name in (r.name, f"{r.name}:{r.tag}")))
    rows = _window(rows, filters, lambda ref: _image_order(repo, repo.resolve(ref)),
                   lambda r: _image_order(repo, bytes.fromhex(r.id)))
    return [r for r in rows if all(t(r) for t in tests)]


def _window(rows: list, filters: Filters, created_of: Callable, created: Callable) -> list:
    """``before=REF`` and ``since=REF``: rows created strictly before or after REF."""
    for key in ("before", "since"):
        for ref in filters.get(key):
            edge = created_of(ref)
            rows = [r for r in rows if (created(r) < edge if key == "before" else created(r) > edge)]
    return rows


def _regex(key: str, value: str) -> re.Pattern:
    try:
        return re.compile(value)
    except re.error as exc:
        raise UsageError(f"invalid filter '{key}={value}': {exc}") from None


def _image_id(repo: Repo, rev: str) -> str:
    try:
        return repo.resolve(rev).hex()
    except NotFound:
        raise NotFound(f"no such image: {rev} (in filter ancestor={rev})") from None


def _descends(repo: Repo, image_id: str, base: str) -> bool:
    from .remotes import is_ancestor

    return is_ancestor(repo.store, bytes.fromhex(base), bytes.fromhex(image_id))


def _container_created(repo: Repo, ref: str) -> str:
    from .container_lookup import find

    return find(repo, ref).record().created


def _image_order(repo: Repo, oid: bytes) -> tuple[float, int]:
    """When an image was made, for before= and since=: its commit time, then its depth
    in first-parent history, as commit times have whole seconds and an image built on
    another in the same second is still the later one."""
    from .repo import signature_time

    commit = repo.store.commit(oid)
    depth, seen = 0, commit
    while seen.parents and depth < 100_000:
        seen = repo.store.commit(seen.parents[0])
        depth += 1
    return signature_time(commit.committer).timestamp(), depth


def ps(repo: Repo, all_: bool, words: Iterable[str]) -> list[ContainerRow]:
    """lg ps: the containers every filter admits; a ``status`` filter looks past running ones."""
    from .container_views import ps as listed

    wanted = parse(words, CONTAINER_KEYS)
    return containers(repo, listed(repo, all_ or "status" in wanted), wanted)


def list_images(repo: Repo, words: Iterable[str], remote: bool = False) -> list[ImageRow]:
    """lg images: the images every filter admits."""
    from .images import list_images as listed

    wanted = parse(words, IMAGE_KEYS)
    return images(repo, listed(repo, remote), wanted)


def network_ls(repo: Repo, words: Iterable[str]) -> list[dict]:
    """lg network ls: the networks (as networks.ls gives them) every filter admits."""
    from .networks import ls

    wanted = parse(words, NETWORK_KEYS)
    tests: list[Callable[[dict], bool]] = []
    if "id" in wanted:
        tests.append(lambda n: any(n["id"].startswith(v) for v in wanted.get("id")))
    if "name" in wanted:
        patterns = [_regex("name", v) for v in wanted.get("name")]
        tests.append(lambda n: any(p.search(n["name"]) for p in patterns))
    if "label" in wanted:
        tests.append(lambda n: _labels_match(n.get("labels") or {}, wanted.get("label")))
    if "driver" in wanted:
        tests.append(lambda n: "bridge" in wanted.get("driver"))
    if "scope" in wanted:
        tests.append(lambda n: "local" in _choice("scope", wanted.get("scope"), ("local", "swarm", "global")))
    if "type" in wanted:
        kinds = _choice("type", wanted.get("type"), ("custom", "builtin"))
        tests.append(lambda n: ("custom" if n.get("internal_dns", True) else "builtin") in kinds)
    return [n for n in ls(repo) if all(t(n) for t in tests)]


def volumes(repo: Repo, vols: list[Volume], words: Iterable[str],
            using: dict[str, list[str]]) -> list[Volume]:
    """lg volume ls and prune: the volumes every filter admits; ``dangling=true`` is
    one no container uses (``using``: volumes.users)."""
    wanted = parse(words, VOLUME_KEYS)
    tests: list[Callable[[Volume], bool]] = []
    if "dangling" in wanted:
        given = _choice("dangling", [v.lower() for v in wanted.get("dangling")], ("true", "false", "1", "0"))
        tests.append(lambda v: (v.name not in using) in {value in ("true", "1") for value in given})
    if "driver" in wanted:
        tests.append(lambda v: "local" in wanted.get("driver"))
    if "label" in wanted:
        tests.append(lambda v: _labels_match(v.labels, wanted.get("label")))
    if "name" in wanted:
        patterns = [_regex("name", v) for v in wanted.get("name")]
        tests.append(lambda v: any(p.search(v.name) for p in patterns))
    return [v for v in vols if all(t(v) for t in tests)]


def volume_ls(repo: Repo, words: Iterable[str]) -> list[Volume]:
    """lg volume ls: the volumes every filter admits."""
    from .volumes import ls, users

    return volumes(repo, ls(repo), list(words), users(repo))
