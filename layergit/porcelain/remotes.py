"""Images travel like code: remotes, and push, fetch and pull of image history.

A remote is an ordinary git remote of the store (``git remote -v`` shows it). What
moves is git's business (:mod:`layergit.transport.gitcli`): only objects the other
side lacks. What arrives is lg's: it lands in a quarantine, is checked as
``lg fsck`` checks the store, and only then enters the store and moves a name.

``push`` and ``pull`` are shared with OCI registries: :func:`is_git_operand` is the
one rule that decides which grammar a command line speaks.

With ``--build-cache`` the build cache travels too, to and from a remote the user
trusts for it (``remote.NAME.lgBuildCache`` in the store's config): pushed entries
are those whose commits the pushed images hold, fetched ones land under
``refs/layergit/remote-cache/REMOTE/`` and only ``lg build`` looks there, while the
remote stays trusted (:func:`trusted_caches`).

What arrives is bounded: ``--max-pack``, else ``layergit.maxPack`` in the store's
config, else :data:`DEFAULT_MAX_PACK`; ``lg serve --allow-push`` takes the same.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field

from ..errors import Conflict, CorruptStore, NotFound, UsageError
from ..store import names
from ..transport import urls
from .repo import Repo, store_lock

_REMOTE_NAME = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")  # a name component; fullmatch
_NAME_MAX = 64
_PROBLEMS_SHOWN = 1
_TRUST_KEY = "lgbuildcache"  # remote.NAME.lgBuildCache; git gives keys lowercased
DEFAULT_MAX_PACK = 32 << 30  # bytes a fetch, pull or served push may bring: registry pulls' --max-bytes
MAX_PACK_KEY = "layergit.maxPack"

Update = tuple[names.ImageName, bytes, "bytes | None"]  # an image, its new commit, the remote's old one
# A transfer's progress, as registry transfers report it: (item, bytes so far, bytes in all or None).
Report = Callable[[str, int, "int | None"], None]


class NotGitOperand(UsageError):
    """The first operand of push/pull names no remote, URL or path: it is a registry's."""


def is_git_operand(operand: str, remotes: Collection[str]) -> bool:
    """Whether ``lg push``/``lg pull`` with this first operand is git's (else a registry's).

    Git's exactly when it is a configured remote's name, a URL with a scheme
    (``file://``, ``ssh://``, ``git://``, ``http(s)://``; no image name holds ``://``)
    or a path (``/…``, ``./…``, ``../…``). scp-style ``host:path`` is not: it reads as
    an image name (``app:1``), so it is for ``lg remote add`` only.
    """
    return operand in remotes or urls.scheme(operand) is not None or urls.is_path(operand)


def could_name_remote(operand: str) -> bool:
    """Whether ``operand`` could be a configured remote's name: only then need ``lg pull``
    and ``lg push`` read the remotes (a git process) to tell which grammar it speaks.
    Git refuses ':' in a remote's name (it would be in refs/remotes/NAME/), and most
    image operands hold one (a tag, a port, a digest); a remote added with plain git
    may break lg's own naming rule (check_remote_name), so that rule is not this one."""
    return ":" not in operand


def check_remote_name(name: str) -> str:
    """A remote's name is one component of an image name, so ``origin/app:1`` parses."""
    if len(name) > _NAME_MAX or not _REMOTE_NAME.fullmatch(name):
        raise UsageError(f"invalid remote name {name!r}: lowercase [a-z0-9] separated by . _ -,"
                         f" at most {_NAME_MAX} characters")
    return name


@dataclass(frozen=True)
class Remote:
    name: str
    url: str
    build_cache: bool = False  # trusted for the build cache


def remote_add(repo: Repo, name: str, url: str, build_cache: bool = False) -> Remote:
    remote = Remote(check_remote_name(name), urls.normalise(url, scp=True), build_cache)
    with store_lock(repo):
        repo.store.add_remote(remote.name, remote.url)
        if build_cache:
            repo.store.set_config(f"remote.{remote.name}.{_TRUST_KEY}", "true")
    return remote


def remote_list(repo: Repo) -> list[Remote]:
    trusted = set(trusted_caches(repo))
    return [Remote(name, url, name in trusted) for name, url in sorted(repo.store.remotes().items())]


def trusted_caches(repo: Repo) -> list[str]:
    """The remotes whose build cache ``lg build`` uses and ``--build-cache`` moves, in
    name order: those the user marked, and no other."""
    found = repo.store.config_values(rf"^remote\..*\.{_TRUST_KEY}$")
    return sorted(key[len("remote."):-len(_TRUST_KEY) - 1] for key, value in found.items()
                  if value.strip().lower() in ("true", "yes", "on", "1"))


def set_build_cache(repo: Repo, name: str, trust: bool) -> int:
    """Trust a remote's build cache, or stop: then its fetched entries go (so gc can drop
    their objects); returns how many went."""
    with store_lock(repo):
        if name not in repo.store.remotes():
            raise NotFound(f"no such remote: {name}")
        repo.store.set_config(f"remote.{name}.{_TRUST_KEY}", "true" if trust else None)
        return 0 if trust else _drop_remote_cache(repo, name)


def _drop_remote_cache(repo: Repo, name: str) -> int:
    entries = repo.store.refs(f"{names.REMOTE_CACHE_PREFIX}{name}/")
    for ref, _ in entries:
        repo.store.delete_ref(ref)
    return len(entries)


def receive_limit(repo: Repo, given: int | None) -> int:
    """The most a fetch, pull or served push may bring: ``given`` (--max-pack), else the
    store's ``layergit.maxPack``, else DEFAULT_MAX_PACK."""
    if given is not None:
        return given
    configured = repo.store.config_values(rf"^{re.escape(MAX_PACK_KEY.lower())}$").get(MAX_PACK_KEY.lower())
    if not configured:
        return DEFAULT_MAX_PACK
    from .runopts import parse_size

    return parse_size(configured, MAX_PACK_KEY)


def remote_remove(repo: Repo, name: str) -> int:
    """Forget a remote and its remote-tracking names; returns how many names went."""
    with store_lock(repo):
        if name not in repo.store.remotes():
            raise NotFound(f"no such remote: {name}")
        tracking = repo.store.refs(f"{names.REMOTE_PREFIX}{name}/")
        for ref, _ in tracking:
            repo.store.delete_ref(ref)
        _drop_remote_cache(repo, name)
        repo.store.remove_remote(name)
    return len(tracking)


@dataclass(frozen=True)
class Target:
    """Where a push or fetch goes: its URL, and the remote's name if it has one."""

    url: str
    remote: str | None


def target(repo: Repo, operand: str) -> Target:
    remotes = repo.store.remotes()
    if not is_git_operand(operand, remotes):
        raise NotGitOperand(f"{operand!r} is not a configured remote, a URL or a path;"
                            " images in OCI registries are not supported yet")
    if operand in remotes:
        return Target(remotes[operand], operand)
    return Target(urls.normalise(operand, scp=False), None)


@dataclass(frozen=True)
class RefUpdate:
    image: str
    old: str | None
    new: str


@dataclass
class TransferResult:
    """What a push, fetch or pull did: names set, names already current, objects moved."""

    url: str
    updated: list[RefUpdate] = field(default_factory=list)
    up_to_date: list[str] = field(default_factory=list)
    tracking: list[RefUpdate] = field(default_factory=list)
    objects: int = 0
    bytes: int = 0
    ignored: int = 0  # refs of the remote that are not layergit images
    pruned: list[str] = field(default_factory=list)  # remote-tracking names of images the remote dropped
    pushes: int = 0
    warnings: list[str] = field(default_factory=list)
    cache_entries: int = 0  # build-cache entries sent or received (--build-cache)


def _images(texts: list[str]) -> list[names.ImageName]:
    return list(dict.fromkeys(names.parse(t) for t in texts))


@dataclass
class RemoteHoldings:
    """What a remote holds: its images, its build-cache entries (step key -> commit),
    and how many of its refs are something else (branches of code, tags, names lg
    would not write): those are left alone and counted."""

    images: dict[names.ImageName, bytes]
    cache: dict[str, bytes]
    ignored: int


def _remote_refs(repo: Repo, url: str) -> RemoteHoldings:
    from ..transport import gitcli

    listing = gitcli.ls_remote(repo.store.path, url)
    images: dict[names.ImageName, bytes] = {}
    cache: dict[str, bytes] = {}
    for ref, oid in listing.refs.items():
        image = names.from_ref(ref)
        key = names.cache_key(ref)
        if image is not None and image.ref == ref:
            images[image] = oid
        elif key is not None:
            cache[key] = oid
    return RemoteHoldings(images, cache, listing.unreadable + len(listing.refs) - len(images) - len(cache))


def _trusted_target(repo: Repo, where: Target) -> str:
    """The remote's name, if --build-cache may move its cache; else one line why not."""
    if where.remote is None:
        raise UsageError("--build-cache needs a configured remote (lg remote add --build-cache NAME URL)")
    if where.remote not in trusted_caches(repo):
        raise UsageError(f"the build cache of {where.remote} is not trusted, so none of it moves; trust it"
                         f" with: lg remote set-build-cache {where.remote} true")
    return where.remote


def _history(store, tips: list[bytes]) -> Iterator[bytes]:
    """Every commit in the history of ``tips``, each once."""
    seen: set[bytes] = set()
    stack = list(tips)
    while stack:
        cid = stack.pop()
        if cid in seen:
            continue
        seen.add(cid)
        yield cid
        stack.extend(store.commit(cid).parents)


def is_ancestor(store, old: bytes, new: bytes) -> bool:
    """Whether ``old`` is ``new`` or in its history (a move from old to new fast-forwards)."""
    return any(cid == old for cid in _history(store, [new]))


def _set_tracking(repo: Repo, remote: str, image: names.ImageName, oid: bytes,
                  result: TransferResult) -> None:
    ref = names.tracking_ref(remote, image)
    old = repo.store.ref(ref)
    if old != oid:
        repo.store.set_ref(ref, oid, old, f"fetch: {remote}")
        result.tracking.append(RefUpdate(f"{remote}/{image}", old.hex() if old else None, oid.hex()))


def _prune_tracking(repo: Repo, remote: str, present: set[names.ImageName], result: TransferResult) -> None:
    """Drop the remote-tracking names of images the remote no longer holds (git's fetch
    --prune), so that lg gc can let their objects go."""
    for ref, _ in repo.store.refs(f"{names.REMOTE_PREFIX}{remote}/"):
        tracked = names.from_tracking_ref(ref)
        if tracked is not None and tracked[1] not in present:
            repo.store.delete_ref(ref)
            result.pruned.append(f"{remote}/{tracked[1]}")


# -- push ------------------------------------------------------------------------


def push(repo: Repo, operand: str, images: list[str], all_images: bool = False, force: bool = False,
         max_pack: int | None = None, build_cache: bool = False,
         progress: Report | None = None) -> TransferResult:
    """Send images' history to a git remote: refuses (before sending anything) a move
    that would lose the remote's commits unless ``force``, and a push a host would
    refuse by its limits; ``max_pack`` splits a long history into several pushes.
    ``build_cache``: also the build-cache entries whose commits the images hold (so no
    object more travels), to a remote trusted for it. ``progress`` hears the bytes sent."""
    from ..transport import gitcli

    where = target(repo, operand)
    if all_images == bool(images):
        raise UsageError("name the images to push, or give --all")
    if build_cache:
        _trusted_target(repo, where)
    store = repo.store
    with store_lock(repo):
        ours = _local_images(repo, images, all_images)
        holdings = _remote_refs(repo, where.url)
        theirs = holdings.images
        result = TransferResult(where.url)
        updates: list[Update] = []
        for image, oid in ours.items():
            old = theirs.get(image)
            if old == oid:
                result.up_to_date.append(str(image))
                continue
            if old is not None and not force and not (store.has(old) and is_ancestor(store, old, oid)):
                raise Conflict(f"{image} on {where.remote or where.url} has commits this store lacks"
                               " (pull first, or push --force to replace them)")
            updates.append((image, oid, old))
        haves = [oid for oid in theirs.values() if store.has(oid)]
        objects = gitcli.objects_between(store.path, [oid for _, oid, _ in updates], haves)
        result.objects = len(objects)
        result.bytes = sum(disk for _, _, disk, _ in objects)
        result.warnings.extend(_check_limits(where.url, objects, result.bytes, max_pack))
        steps = _split(store, updates, haves, max_pack) if max_pack and result.bytes > max_pack else [updates]
        steps = [step for step in steps if step]
        moves = [[(image.ref, new, old) for image, new, old in step] for step in steps]
        if build_cache:
            entries = _cache_to_push(store, list(ours.values()), holdings.cache)
            result.cache_entries = len(entries)
            if entries:
                moves = moves[:-1] + [(moves[-1] if moves else []) + entries]
        for i, step_moves in enumerate(moves, 1):
            label = f"{where.remote or where.url}" + (f" ({i}/{len(moves)})" if len(moves) > 1 else "")
            gitcli.push(store.path, where.url, step_moves,
                        _pack_progress(progress, label, result.bytes if len(moves) == 1 else None))
            result.pushes += 1
        for image, oid, old in updates:
            result.updated.append(RefUpdate(str(image), old.hex() if old else None, oid.hex()))
            if where.remote:
                _set_tracking(repo, where.remote, image, oid, result)
    return result


def _pack_progress(report: Report | None, label: str, total: int | None):
    """git's byte counts as ``report`` hears them: the total once the pack is complete,
    ``total`` (an estimate, or None) until then."""
    if report is None:
        return None
    return lambda done, complete: report(label, done, done if complete else max(total or 0, done) or None)


def _cache_to_push(store, tips: list[bytes],
                   theirs: dict[str, bytes]) -> list[tuple[str, bytes, bytes | None]]:
    """(ref, new, remote's old) for each local build-cache entry whose commit is in the
    history of ``tips`` and that the remote lacks or holds differently."""
    held = set(_history(store, tips))
    out = []
    for ref, oid in store.refs(names.BUILD_CACHE_PREFIX):
        key = names.cache_key(ref)
        if key is not None and oid in held and theirs.get(key) != oid:
            out.append((ref, oid, theirs.get(key)))
    return out


def _local_images(repo: Repo, images: list[str], all_images: bool) -> dict[names.ImageName, bytes]:
    if all_images:
        found = {}
        for ref, oid in repo.store.refs(names.IMAGE_PREFIX):
            image = names.from_ref(ref)
            if image is not None:
                found[image] = oid
        return found
    out = {}
    for image in _images(images):
        tip = repo.store.ref(image.ref)
        if tip is None:
            raise NotFound(f"no such image: {image}")
        out[image] = tip
    return out


def _check_limits(url: str, objects, total: int, max_pack: int | None) -> list[str]:
    """Refuse what the host would refuse, before a byte is sent; warnings for the rest."""
    limits = urls.limits_for(url)
    warnings: list[str] = []
    big = sorted(((size, path) for kind, size, _, path in objects
                  if kind == "blob" and size > urls.WARN_FILE), reverse=True)
    if limits.max_file:
        over = [(size, path) for size, path in big if size > limits.max_file]
        if over:
            shown = ", ".join(f"/{_real_path(path)} ({size >> 20} MiB)" for size, path in over[:3])
            more = f" and {len(over) - 3} more" if len(over) > 3 else ""
            raise Conflict(f"{limits.host} refuses files over {limits.max_file // 1_000_000} MB, and a file"
                           f" cannot be split: {shown}{more}")
    warnings.extend(f"/{_real_path(path)} is {size >> 20} MiB; git hosts warn above"
                    f" {urls.WARN_FILE >> 20} MiB" for size, path in big[:5])
    if limits.max_push and total > limits.max_push and not (max_pack and max_pack <= limits.max_push):
        raise Conflict(f"this push is about {total >> 20} MiB and {limits.host} refuses pushes over"
                       f" {limits.max_push >> 20} MiB: split it with --max-pack SIZE")
    return warnings


def _real_path(stored_path: str) -> str:
    """A path as git lists it (``rootfs/etc/%%2Egit``) as the image's own path."""
    from ..store import treenames

    parts = stored_path.encode(errors="surrogateescape").split(b"/")
    if parts[:1] == [b"rootfs"]:
        parts = parts[1:]
    return "/".join(treenames.decode(p).decode(errors="replace") for p in parts)


def _split(store, updates: list[Update], haves: list[bytes], max_pack: int) -> list[list[Update]]:
    """Consecutive pushes, each at most ``max_pack`` bytes on disk where one commit allows:
    every image's first-parent history is sent oldest first, tip by tip, moving the
    remote's tag through versions it had here too."""
    from ..transport import gitcli

    steps: list[list[Update]] = []
    sent = list(haves)
    for image, oid, old in updates:
        chain: list[bytes] = []
        walk: bytes | None = oid
        while walk is not None and walk not in sent and walk != old:
            chain.append(walk)
            parents = store.commit(walk).parents
            walk = parents[0] if parents else None
        chain.reverse()
        previous, batch_size, last = old, 0, None
        for cid in chain:
            objects = gitcli.objects_between(store.path, [cid], sent + ([last] if last else []))
            size = sum(disk for _, _, disk, _ in objects)
            if last is not None and batch_size + size > max_pack:
                steps.append([(image, last, previous)])
                sent.append(last)
                previous, batch_size = last, 0
            batch_size += size
            last = cid
        if last is not None:
            steps.append([(image, last, previous)])
            sent.append(last)
    return steps


# -- fetch and pull ----------------------------------------------------------------


def fetch(repo: Repo, operand: str, images: list[str] | None = None,
          max_pack: int | None = None, build_cache: bool = False,
          progress: Report | None = None) -> TransferResult:
    """Bring images' history from a git remote into the store, checked, and record what
    the remote holds as remote-tracking names (``origin/app:1``); no local tag moves.
    ``max_pack``: stop (keeping nothing) once the remote has sent more than that (by
    default :func:`receive_limit`'s). ``build_cache``: also the remote's build cache, into
    ``refs/layergit/remote-cache/REMOTE/``, from a remote trusted for it. ``progress``
    hears the bytes received."""
    return _receive(repo, operand, images or [], False, max_pack, build_cache, progress)


def pull(repo: Repo, operand: str, images: list[str] | None = None,
         max_pack: int | None = None, build_cache: bool = False,
         progress: Report | None = None) -> TransferResult:
    """:func:`fetch`, then fast-forward the local tags of the images named (none named:
    every local image the remote also holds); a tag whose history diverged from the
    remote's is refused before any tag moves."""
    return _receive(repo, operand, images or [], True, max_pack, build_cache, progress)


def _receive(repo: Repo, operand: str, wanted: list[str], pull: bool, max_pack: int | None,
             build_cache: bool, progress: Report | None) -> TransferResult:
    from ..transport import gitcli

    where = target(repo, operand)
    cache_remote = _trusted_target(repo, where) if build_cache else None
    limit = receive_limit(repo, max_pack)
    store = repo.store
    with store_lock(repo):
        holdings = _remote_refs(repo, where.url)
        theirs = holdings.images
        cache = holdings.cache if cache_remote else {}
        result = TransferResult(where.url, ignored=holdings.ignored)
        if wanted:
            chosen = _images(wanted)
            missing = [str(i) for i in chosen if i not in theirs]
            if missing:
                raise NotFound(f"{where.remote or where.url} has no image {missing[0]}")
        elif pull:  # the local images the remote also holds
            chosen = [i for i in theirs if store.ref(i.ref) is not None]
        else:
            chosen = list(theirs)
        fetch_set = list(theirs) if not wanted and where.remote else chosen
        with store.quarantine(repo.root.tmp) as quarantine:
            need = [image.ref for image in fetch_set if not store.has(theirs[image])]
            need += [names.BUILD_CACHE_PREFIX + key for key, oid in cache.items() if not store.has(oid)]
            if need:
                gitcli.fetch(quarantine.path, where.url, need, limit,
                             _pack_progress(progress, where.remote or where.url, None))
            got = dict(quarantine.refs(names.IMAGE_PREFIX))
            arrived = {image: got.get(image.ref, theirs[image]) for image in fetch_set}
            got_cache = dict(quarantine.refs(names.BUILD_CACHE_PREFIX))
            cached = {key: got_cache.get(names.BUILD_CACHE_PREFIX + key, oid) for key, oid in cache.items()}
            _check_arrivals(repo, quarantine, where, list(arrived.values()) + list(cached.values()))
            moves = _fast_forwards(repo, quarantine, chosen, arrived, result) if pull else []
            result.objects = store.admit(quarantine)
        if where.remote:
            for image, oid in arrived.items():
                _set_tracking(repo, where.remote, image, oid, result)
            if not wanted:
                _prune_tracking(repo, where.remote, set(theirs), result)
        if cache_remote:
            result.cache_entries = _set_remote_cache(repo, cache_remote, cached)
        from .images import move_tag

        for image, new, old in moves:
            move_tag(repo, image, new, old, f"pull: {where.remote or where.url}")
            result.updated.append(RefUpdate(str(image), old.hex() if old else None, new.hex()))
    return result


def _set_remote_cache(repo: Repo, remote: str, cached: dict[str, bytes]) -> int:
    """Mirror the remote's build cache under its own namespace: entries it holds set,
    the ones it dropped gone; returns how many entries changed."""
    prefix = f"{names.REMOTE_CACHE_PREFIX}{remote}/"
    changed = 0
    for ref, _ in repo.store.refs(prefix):
        if names.cache_key(ref, prefix) not in cached:
            repo.store.delete_ref(ref)
            changed += 1
    for key, oid in cached.items():
        ref = names.remote_cache_ref(remote, key)
        old = repo.store.ref(ref)
        if old != oid:
            repo.store.set_ref(ref, oid, old, f"fetch --build-cache: {remote}")
            changed += 1
    return changed


def _check_arrivals(repo: Repo, quarantine, where: Target, tips: list[bytes]) -> None:
    from .maintenance import check_received

    report = check_received(Repo(repo.root, quarantine), tips, repo.store.has)
    if report.problems:
        more = len(report.problems) - _PROBLEMS_SHOWN
        tail = f" (and {more} more)" if more > 0 else ""
        raise CorruptStore(f"{where.remote or where.url} sent objects that fail lg's checks, nothing was"
                           f" kept: {report.problems[0]}{tail}")


def _fast_forwards(repo: Repo, quarantine, chosen, arrived, result: TransferResult):
    """(image, new, old) for each local tag to move; Conflict if any diverged."""
    moves = []
    for image in chosen:
        new = arrived[image]
        old = repo.store.ref(image.ref)
        if old == new:
            result.up_to_date.append(str(image))
        elif old is None or is_ancestor(quarantine, old, new):
            moves.append((image, new, old))
        elif is_ancestor(quarantine, new, old):
            result.up_to_date.append(str(image))  # ours is ahead: nothing to take
        else:
            raise Conflict(f"{image} has diverged from the remote's (local {old.hex()[:12]},"
                           f" remote {new.hex()[:12]}); nothing was changed")
    return moves


# -- serving -----------------------------------------------------------------------

# What git-http-backend's receive-pack is told when pushes are allowed: fsck every
# object strictly, never delete or rewind an image, run lg's checks before refs move.
_PUSH_CONFIG = {
    "http.receivepack": "true",
    "receive.fsckObjects": "true",
    **{f"receive.fsck.{msg}": "error" for msg in ("hasDot", "hasDotdot", "hasDotgit", "fullPathname",
                                                  "zeroPaddedFilemode", "badFilemode", "badTimezone")},
    "receive.denyDeletes": "true",
    "receive.denyNonFastForwards": "true",
    "core.logAllRefUpdates": "always",
}


def serve(repo: Repo, listen: str, allow_push: bool, log, ready, max_pack: int | None = None,
          timeout: float | None = None) -> None:
    """This store over git's smart HTTP protocol until interrupted: read-only, or with
    ``allow_push`` accepting pushes that pass lg's checks (the pre-receive hook in
    :mod:`.prereceive`), each under the store's lock as a local commit is, and none
    larger than ``max_pack`` (receive.maxInputSize; by default :func:`receive_limit`'s);
    a client silent for ``timeout`` seconds is dropped."""
    import os
    import shutil
    import tempfile

    from ..pyexec import PACKAGE_PARENT, module_argv
    from ..transport import serve as server

    host, port = server.parse_listen(listen)
    options = server.ServeOptions(repo.store.path, host, port, allow_push, log=log,  # the store, created
                                  timeout=timeout or server.IDLE_TIMEOUT)
    # Only images are served: containers' and build-cache refs, and what other remotes
    # hold, stay private; the exact object walk as for a push (gitcli.EXACT_WALK).
    served = {"transfer.hideRefs": ["refs/layergit/", names.REMOTE_PREFIX], "pack.useSparse": ["false"]}
    options.env = _config_env(served)
    hooks = tempfile.mkdtemp(prefix="lg-serve-hooks-") if allow_push else None  # outside tmp/: gc empties it
    try:
        if hooks:
            hook = os.path.join(hooks, "pre-receive")
            argv = module_argv("layergit.porcelain.prereceive", os.path.abspath(repo.root.path))
            with open(hook, "w") as f:
                f.write(f"#!/bin/sh\nPYTHONPATH={_sh(PACKAGE_PARENT)} exec {' '.join(map(_sh, argv))}\n")
            os.chmod(hook, 0o700)
            options.env = _config_env({**served, **{k: [v] for k, v in _PUSH_CONFIG.items()},
                                       "core.hooksPath": [hooks],
                                       "receive.maxInputSize": [str(receive_limit(repo, max_pack))]})
            options.around_push = lambda: store_lock(repo)
        server.serve(options, ready)
    finally:
        if hooks:
            shutil.rmtree(hooks, ignore_errors=True)


def _config_env(config: dict[str, list[str]]) -> dict[str, str]:
    """git config as the environment passes it to git and every git it starts."""
    pairs = [(key, value) for key, values in config.items() for value in values]
    env = {"GIT_CONFIG_COUNT": str(len(pairs))}
    for i, (key, value) in enumerate(pairs):
        env.update({f"GIT_CONFIG_KEY_{i}": key, f"GIT_CONFIG_VALUE_{i}": value})
    return env


def _sh(text: str) -> str:
    import shlex

    return shlex.quote(text)
