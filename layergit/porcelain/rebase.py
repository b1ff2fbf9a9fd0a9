"""lg rebase and lg squash: move an app's versions onto a new base, flatten a history.

A rebase replays each version of IMAGE above OLDBASE (its first-parent chain,
oldest first) onto NEWBASE as git rebase does: version V with parent P becomes a
commit whose rootfs is the three-way merge (store/merge3.py) of P's rootfs (base),
the result so far (ours: NEWBASE, then each replayed version) and V's (theirs), with
V's message and author. As in git rebase, "ours" is the new base's side and
"theirs" the app's.

The conflicts an app on a patched base always meets are resolved by what the files
mean, not reported away: dpkg's and apk's databases record by record
(porcelain/pkgmerge.py), append-only logs by appending, and ``/etc/ld.so.cache`` by
running ldconfig in a container of the merged version. Every other conflict is
resolved by the user's ``--prefer`` rules or reported, all of one version in one
report, and then nothing is tagged and no object stays referenced.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from ..errors import LgError, NotFound, UsageError
from ..store import names
from ..store.merge3 import PathConflict, Resolution, merge_trees
from .images import force_tag
from .pkgmerge import (
    ACCOUNTS,
    APK,
    DEBCONF,
    DPKG,
    DbConflict,
    Format,
    merge_appended,
    merge_lines,
    merge_records,
)
from .repo import Image, Repo, store_lock

if TYPE_CHECKING:
    from ..store.rawobj import Signature
    from ..store.snapshot import Node
    from ..store.store import ObjectWriter

SIDES = ("ours", "theirs")
# What ldconfig writes: regenerated together by running it in the merged version.
LDCONFIG_FILES = (b"/etc/ld.so.cache", b"/var/cache/ldconfig/aux-cache")
LDCONFIG = "/sbin/ldconfig"
# Files merged by what they hold: path -> (how, argument).
RECORD_FILES: dict[bytes, Format] = {
    b"/var/lib/dpkg/status": DPKG,
    b"/var/lib/dpkg/status-old": DPKG,
    b"/var/lib/apt/extended_states": DPKG,
    b"/var/cache/debconf/config.dat": DEBCONF,
    b"/var/cache/debconf/config.dat-old": DEBCONF,
    b"/var/cache/debconf/templates.dat": DEBCONF,
    b"/var/cache/debconf/templates.dat-old": DEBCONF,
    b"/lib/apk/db/installed": APK,
    **{path: ACCOUNTS for path in (b"/etc/passwd", b"/etc/group", b"/etc/shadow", b"/etc/gshadow",
                                   b"/etc/passwd-", b"/etc/group-", b"/etc/shadow-", b"/etc/gshadow-")},
}
LINE_FILES = (b"/etc/apk/world", b"/var/lib/dpkg/statoverride")
APPENDED_FILES = (b"/var/log/dpkg.log", b"/var/log/apt/history.log", b"/var/log/apt/term.log",
                  b"/var/log/alternatives.log", b"/var/log/apk.log")
DB_MAX = 64 << 20  # bytes of a package database lg reads whole to merge it
# Config fields the base decides when both sides changed them; the app decides the rest.
BASE_FIELDS = ("Architecture", "Os", "Variant", "OsVersion")


@dataclass(frozen=True)
class Rule:
    """``--prefer``: a side for every conflict (path None) or for a path and what is below it."""

    side: str
    path: bytes | None = None

    @classmethod
    def parse(cls, text: str) -> Rule:
        path, eq, side = text.rpartition("=")
        if side not in SIDES or (eq and not path.startswith("/")):
            raise UsageError(f"--prefer {text!r}: give ours, theirs, or /PATH=ours|theirs")
        return cls(side, ("/" + path.strip("/")).encode("utf-8", "surrogateescape") if eq else None)

    def covers(self, path: bytes) -> bool:
        return (self.path is None or self.path == b"/" or path == self.path
                or path.startswith(self.path + b"/"))


@dataclass(frozen=True)
class ConflictReport:
    path: str
    what: list[str]


@dataclass
class RebaseResult:
    id: str | None  # the new tip; None when the rebase stopped
    tag: str | None
    replayed: list[tuple[str, str]] = field(default_factory=list)  # (old id, new id)
    dropped: list[str] = field(default_factory=list)  # versions whose changes the new base had
    resolved: list[tuple[str, str, str]] = field(default_factory=list)  # (version, path, how)
    stopped_at: str | None = None  # the version whose conflicts stopped it
    conflicts: list[ConflictReport] = field(default_factory=list)


def merge_config(base: dict, ours: dict, theirs: dict) -> dict:
    """The replayed version's config: each field from the side that changed it; when both
    did, Env and Labels merge by name, ExposedPorts and Volumes as sets, the platform
    fields stay the base's and the rest (Cmd, Entrypoint, User, ...) are the app's."""
    out = {}
    for key in sorted(set(base) | set(ours) | set(theirs)):
        b, o, t = base.get(key), ours.get(key), theirs.get(key)
        if t == b:
            value = o
        elif o == b or o == t:
            value = t
        elif key == "Env":
            value = _merge_env(b or [], o or [], t or [])
        elif key in ("Labels", "ExposedPorts", "Volumes"):
            value = _merge_map(b or {}, o or {}, t or {})
        else:
            value = o if key in BASE_FIELDS else t
        if value is not None:
            out[key] = value
    return out


def _merge_map(base: dict, ours: dict, theirs: dict) -> dict:
    """Key by key: theirs' change wins, except a deletion of what ours changed."""
    out = dict(ours)
    for key in set(base) | set(theirs):
        if theirs.get(key) == base.get(key):
            continue
        if key in theirs:
            out[key] = theirs[key]
        elif ours.get(key) == base.get(key):
            out.pop(key, None)
    return out


def _merge_env(base: list[str], ours: list[str], theirs: list[str]) -> list[str]:
    def split(env: list[str]) -> dict[str, str]:
        return dict(item.partition("=")[::2] for item in env)

    merged = _merge_map(split(base), split(ours), split(theirs))
    order = list(dict.fromkeys([item.partition("=")[0] for item in ours + theirs]))
    return [f"{k}={merged[k]}" for k in order if k in merged]


class _Resolver:
    """The rebase's answers to conflicts: the user's rules by path, the package
    databases and ld.so.cache, then the user's rule for everything."""

    def __init__(self, store, writer, rules: list[Rule]):
        self.store = store
        self.writer = writer
        self.by_path = sorted((r for r in rules if r.path is not None), key=lambda r: -len(r.path or b""))
        self.default = next((r.side for r in rules if r.path is None), None)
        self.ldconfig = False

    def __call__(self, c: PathConflict) -> Resolution | PathConflict | None:
        rule = next((r for r in self.by_path if r.covers(c.path)), None)
        if rule is not None:
            return Resolution(self._side(c, rule.side), f"--prefer {rule.side}")
        if c.path in LDCONFIG_FILES and c.what == ("content",):
            self.ldconfig = True
            return Resolution(c.merged, "regenerated by ldconfig")
        if c.what == ("content",) and c.merged is not None and c.merged.meta.kind == "f":
            try:
                merged = self._content(c)
            except DbConflict as exc:
                return replace(c, detail=str(exc)) if self.default is None else \
                    Resolution(self._side(c, self.default), f"--prefer {self.default} ({exc})")
            if merged is not None:
                return merged
        if self.default is not None:
            return Resolution(self._side(c, self.default), f"--prefer {self.default}")
        return None

    @staticmethod
    def _side(c: PathConflict, side: str) -> Node | None:
        node = c.ours if side == "ours" else c.theirs
        if node is not None and c.merged is not None and node.meta.kind == "d":
            return replace(c.merged, meta=node.meta)  # its own aspects; what is below still merges
        return node

    def _content(self, c: PathConflict) -> Resolution | None:
        from ..text import printable

        assert c.base is not None and c.ours is not None and c.theirs is not None and c.merged is not None
        what = printable(c.path.decode(errors="replace"))
        fmt = RECORD_FILES.get(c.path)
        if fmt is None and c.path not in LINE_FILES and c.path not in APPENDED_FILES:
            return None
        b, o, t = (self.store.read_blob(n.oid, DB_MAX, what) for n in (c.base, c.ours, c.theirs))
        if fmt is not None:
            data, how = merge_records(b, o, t, fmt, what, self.default), "merged record by record"
        elif c.path in LINE_FILES:
            data, how = merge_lines(b, o, t), "merged line by line"
        else:
            data, how = merge_appended(b, o, t, what), "theirs' lines appended"
        return Resolution(replace(c.merged, oid=self.writer.put_blob(data)), how)


def _chain(repo: Repo, oldbase: bytes, tip: bytes, image: str) -> list[Image]:
    """IMAGE's versions above OLDBASE on its first-parent chain, oldest first."""
    out: list[Image] = []
    oid: bytes | None = tip
    while oid != oldbase:
        if oid is None:
            raise UsageError(f"{oldbase.hex()[:12]} is not an ancestor of {image} (along first parents)")
        img = repo.image(oid)
        out.append(img)
        oid = img.commit.parents[0] if img.commit.parents else None
    return out[::-1]


class _Stopped(Exception):
    """Conflicts: leave the writer's block so that its pack is removed."""


class _Written:
    """The store as a rebase reads it: the trees and blobs it wrote itself (its one pack is
    readable only once finished, and each version is merged onto the one before), then
    the store's. Only what merges read: trees, blobs and their sizes."""

    def __init__(self, store):
        self.store = store
        self.objects: dict[bytes, tuple[int, bytes]] = {}

    def tree(self, oid: bytes) -> list[tuple[bytes, int, bytes]]:
        from ..store.rawobj import OBJ_TREE, parse_tree

        hit = self.objects.get(oid)
        return parse_tree(hit[1]) if hit and hit[0] == OBJ_TREE else self.store.tree(oid)

    def read_blob(self, oid: bytes, limit: int | None = None, what: str = "blob") -> bytes:
        from ..store.rawobj import OBJ_BLOB

        hit = self.objects.get(oid)
        if hit is None or hit[0] != OBJ_BLOB:
            return self.store.read_blob(oid, limit, what)
        if limit is not None and len(hit[1]) > limit:
            raise LgError(f"{what} {oid.hex()} is {len(hit[1])} bytes; lg reads at most {limit}")
        return hit[1]


class _Recorder:
    """The rebase's object writer, remembering the trees and blobs it writes for _Written."""

    def __init__(self, writer, written: _Written):
        self.writer = writer
        self.written = written

    def put(self, obj_type: int, data: bytes) -> bytes:
        oid = self.writer.put(obj_type, data)
        self.written.objects[oid] = (obj_type, data)
        return oid

    def put_blob(self, data: bytes) -> bytes:
        from ..store.rawobj import OBJ_BLOB

        return self.put(OBJ_BLOB, data)


def rebase(repo: Repo, onto: str, oldbase: str, image: str, tag: str | None = None,
           prefer: list[str] | None = None) -> RebaseResult:
    """Replay IMAGE's versions above OLDBASE onto ONTO; tag the result ``tag`` (default:
    IMAGE when it is a tag). Conflicts left standing return a result with
    ``stopped_at`` set, and nothing is tagged. The new objects go into one pack, which a
    version needing ldconfig finishes early (its container reads the store)."""
    rules = [Rule.parse(p) for p in prefer or []]
    target = names.parse(tag) if tag else _own_tag(repo, image)
    with store_lock(repo):
        new_base, old_base, tip = repo.resolve(onto), repo.resolve(oldbase), repo.resolve(image)
        pending = _chain(repo, old_base, tip, image)
        result = RebaseResult(None, str(target) if target else None)
        parent = repo.image(new_base)
        previous = repo.image(old_base)
        written = _Written(repo.store)
        committer = repo.store.default_author()
        try:
            while pending:
                ldconfig = False
                with repo.store.writer() as w:
                    step = _Step(written, _Recorder(w, written), w, committer, rules, result)
                    while pending and not ldconfig:
                        version = pending.pop(0)
                        parent, ldconfig = step.replay(previous, parent, version)
                        previous = version
                if ldconfig:
                    parent = _run_ldconfig(repo, parent.id)
                    result.replayed[-1] = (result.replayed[-1][0], parent.id.hex())
        except _Stopped:
            result.tag = None
            return result
        result.id = parent.id.hex()
        if target is not None:
            force_tag(repo, target, parent.id, f"rebase: {image} onto {onto}")
    return result


def _own_tag(repo: Repo, image: str) -> names.ImageName | None:
    """IMAGE itself when it names a tag, as git rebase moves the branch it replays."""
    if not names.looks_like_name(image):
        return None
    parsed = names.parse(image)
    return parsed if repo.store.ref(parsed.ref) is not None else None


@dataclass
class _Step:
    """What replaying one version needs: the reading view, the writers, the committer."""

    written: _Written
    recorder: _Recorder
    writer: ObjectWriter
    committer: Signature
    rules: list[Rule]
    result: RebaseResult

    def replay(self, base: Image, ours: Image, theirs: Image) -> tuple[Image, bool]:
        """``theirs`` replayed on ``ours``: the new version (ours when nothing of it is
        left), and whether its ld.so.cache waits for ldconfig."""
        from ..store.image import write_image_tree
        from ..store.store import CommitInfo

        result = self.result
        resolver = _Resolver(self.written, self.recorder, self.rules)
        merged = merge_trees(self.written, self.recorder, base.rootfs, ours.rootfs, theirs.rootfs, resolver)
        short = theirs.id.hex()[:12]
        if merged.tree is None:
            result.stopped_at = theirs.id.hex()
            result.conflicts = [ConflictReport(c.path.decode(errors="surrogateescape"),
                                               [c.detail] if c.detail else list(c.what))
                                for c in merged.conflicts]
            raise _Stopped
        result.resolved += [(short, p.decode(errors="surrogateescape"), how) for p, how in merged.resolved]
        config = merge_config(base.config, ours.config, theirs.config)
        if config == ours.config and not merged.changed:
            result.dropped.append(theirs.id.hex())  # nothing left of it: git rebase drops it too
            return ours, False
        info = theirs.commit
        tree = write_image_tree(self.recorder, config, merged.tree)
        oid = self.writer.commit(tree, [ours.id], info.author, self.committer, info.message)
        result.replayed.append((theirs.id.hex(), oid.hex()))
        commit = CommitInfo(oid, tree, (ours.id,), info.author, self.committer, info.message)
        return Image(oid, commit, config, merged.tree), resolver.ldconfig


def _run_ldconfig(repo: Repo, oid: bytes) -> Image:
    """The commit ``oid`` with /etc/ld.so.cache as ldconfig writes it in a container of it
    (no network, lg's own user): the one way to know the libraries of a merged tree."""
    from ..store.image import write_image_tree
    from . import container_lookup, containers
    from .container_layer import container_rootfs
    from .runopts import RunOptions

    options = RunOptions(entrypoint=LDCONFIG, network="none", user="0:0", auto_remove=True)
    try:
        cid = containers.create(repo, oid.hex(), options, owned=True)
    except LgError as exc:
        raise LgError(f"cannot run ldconfig for /etc/ld.so.cache: {exc}") from None
    try:
        cdir = container_lookup.find(repo, cid)
        code = containers.start_attached(repo, cdir)
        if code != 0:
            raise LgError(f"ldconfig exited with {code} regenerating /etc/ld.so.cache; nothing was tagged")
        img = repo.image(oid)
        with repo.store.writer() as w:
            _, rootfs, _ = container_rootfs(repo, cdir, w)
            new = w.commit(write_image_tree(w, img.config, rootfs), list(img.commit.parents),
                           img.commit.author, img.commit.committer, img.commit.message)
        return repo.image(new)
    except LgError as exc:
        if "ldconfig" in str(exc):
            raise
        raise LgError(f"cannot run ldconfig for /etc/ld.so.cache: {exc}") from None
    finally:
        containers.remove(repo, [cid], force=True)


@dataclass(frozen=True)
class SquashResult:
    id: str
    tag: str
    parent: str | None
    squashed: int  # versions folded into one


def squash(repo: Repo, image: str, tag: str, onto: str | None = None,
           message: str | None = None) -> SquashResult:
    """One commit with IMAGE's tree (rootfs and config) whose parent is ``onto`` (none:
    a first version), tagged ``tag``; its message lists the versions it folds."""
    from ..store.image import write_image_tree

    target = names.parse(tag)
    with store_lock(repo):
        tip = repo.image_at(image)
        base = repo.resolve(onto) if onto else None
        folded = _folded(repo, tip.id, base)
        text = message or "\n".join([f"squash {image}" + (f" onto {onto}" if onto else ""), ""] +
                                    [f"* {m}" for m in folded]) + "\n"
        store = repo.store
        with store.writer() as w:
            oid = w.commit(write_image_tree(w, tip.config, tip.rootfs), [base] if base else [],
                           store.default_author(), store.default_author(), text)
        force_tag(repo, target, oid, f"squash: {image}")
    return SquashResult(oid.hex(), str(target), base.hex() if base else None, len(folded))


def _folded(repo: Repo, tip: bytes, base: bytes | None) -> list[str]:
    """The first lines of the versions from ``tip`` down to ``base`` (all when it is not
    on the first-parent chain), oldest first."""
    out = []
    oid: bytes | None = tip
    while oid is not None and oid != base:
        info = repo.store.commit(oid)
        out.append((info.message.strip().splitlines() or [""])[0])
        oid = info.parents[0] if info.parents else None
    if base is not None and oid is None:
        raise NotFound(f"{base.hex()[:12]} is not an ancestor of the image: squash onto one of its versions")
    return out[::-1]
