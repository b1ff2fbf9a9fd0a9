"""What an image's layers carry that its final rootfs does not: an exact waste report.

The layers are those ``lg export`` ships (one per commit that changed the rootfs, made
by the very same :func:`~layergit.fs.tarwrite.write_layer`, here writing into a
recorder instead of a tar), so every figure is of bytes an export really carries.
Each regular file's content shipped in a layer (a *copy*; a tar hardlink carries none)
ends in exactly one bucket, which is how nothing is counted twice:

- ``kept``: the copy the final rootfs is extracted from (the last one shipped at its
  path); of those, ``duplicate`` is a copy whose content another kept copy already
  holds (same blob id, not a hardlink): squashing keeps it, deduplication would not;
- ``overwritten``: a later layer shipped the path again with other content (or as
  another type);
- ``metadata``: a later layer shipped the same content again only to change its
  metadata (a ``chown -R`` layer ships every file it touched again);
- ``resent``: a later layer shipped the same content and metadata again (a hardlink's
  first name comes along with a new link to it);
- ``deleted``: a later layer deleted the path, or replaced a directory above it.

Shipped bytes are the sum of all buckets; squashing saves exactly shipped minus kept,
the sum of the last four. Content is never read: sizes come from the object headers,
and memory is one small record per live path.

dive's efficiency score is computed beside it, as dive computes it from the same
layers (per path, the smallest size it was seen with over the sum of every size it was
seen with, a whiteout counting 0 bytes); dive's "wasted" figure adds up every
copy of a path shipped more than once, the kept copy included.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

from ..errors import UsageError
from ..store.meta import EntryMeta
from .repo import Repo

CATEGORIES = ("overwritten", "metadata", "resent", "deleted")


@dataclass
class _Copy:
    layer: int
    oid: bytes | None
    meta: EntryMeta
    size: int  # content bytes this entry carries in the layer's tar


@dataclass
class LayerWaste:
    id: str
    message: str
    shipped: int  # content bytes in this layer's tar
    files: int  # regular files shipped with content
    wasted: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CATEGORIES, 0))  # of its copies
    kept: int = 0


@dataclass(frozen=True)
class PathWaste:
    path: str
    wasted: int
    copies: int  # copies of this path shipped and wasted


@dataclass(frozen=True)
class WasteReport:
    id: str
    base: str | None  # the commit below the first layer counted (lg diff --waste A B), None for all
    shipped: int
    kept: int  # equals the final rootfs's file bytes when base is None
    duplicate: int  # part of kept
    wasted: dict[str, int]  # by category
    squash_saves: int
    efficiency: float  # kept / shipped
    dive_efficiency: float
    dive_wasted: int
    layers: list[LayerWaste]
    paths: list[PathWaste]  # most wasted first


class _Slot:
    __slots__ = ("copy", "kids")

    def __init__(self) -> None:
        self.copy: _Copy | None = None
        self.kids: dict[bytes, _Slot] = {}


class _Live:
    """The last copy shipped at every path still present, as a tree of paths (deleting a
    directory drops what is below it in one step)."""

    def __init__(self) -> None:
        self.root = _Slot()

    def slot(self, path: bytes, create: bool) -> _Slot | None:
        slot = self.root
        for name in path.strip(b"/").split(b"/"):
            if not name:
                continue
            nxt = slot.kids.get(name)
            if nxt is None:
                if not create:
                    return None
                nxt = slot.kids[name] = _Slot()
            slot = nxt
        return slot

    def pop(self, path: bytes) -> _Slot | None:
        parent, _, name = path.rpartition(b"/")
        above = self.slot(parent, create=False)
        return above.kids.pop(name, None) if above is not None else None


def _below(slot: _Slot, path: bytes) -> Iterator[tuple[bytes, _Copy]]:
    """Every copy at and below ``slot``, without recursion (paths nest deep)."""
    stack = [(path, slot)]
    while stack:
        here, s = stack.pop()
        if s.copy is not None:
            yield here, s.copy
        stack.extend((here + b"/" + name, kid) for name, kid in s.kids.items())


class _Counter:
    """The waste of one image, fed the entries of its layers in order (the interface
    :func:`~layergit.fs.tarwrite.write_layer` writes to)."""

    def __init__(self, store) -> None:
        self.store = store
        self.entries = 0
        self.live = _Live()
        self.layers: list[LayerWaste] = []
        self.by_path: dict[bytes, list[int]] = {}  # path -> [bytes wasted, copies]
        self.dive: dict[bytes, list[int]] = {}  # path -> [times seen, cumulative size, smallest size]

    def start(self, commit: str, message: str) -> None:
        self.layers.append(LayerWaste(commit, message, 0, 0))

    def _waste(self, path: bytes, copy: _Copy, category: str) -> None:
        if copy.size:
            self.layers[copy.layer].wasted[category] += copy.size
            slot = self.by_path.setdefault(path, [0, 0])
            slot[0] += copy.size
            slot[1] += 1

    def _seen(self, path: bytes, size: int) -> None:
        seen = self.dive.get(path)
        if seen is None:
            self.dive[path] = [1, size, size]
        else:
            seen[0] += 1
            seen[1] += size
            seen[2] = min(seen[2], size)

    def add(self, path: bytes, m: EntryMeta, oid: bytes | None, hardlink_to: bytes | None = None) -> None:
        self.entries += 1
        if path == b"/":
            return
        size = self.store.object_size(oid) if m.kind == "f" and hardlink_to is None and oid else 0
        layer = self.layers[-1]
        layer.shipped += size
        layer.files += 1 if size else 0
        new = _Copy(len(self.layers) - 1, oid, m, size)
        slot = self.live.slot(path, create=True)
        assert slot is not None
        old = slot.copy
        if old is not None:
            if old.meta.kind != m.kind or old.oid != oid:
                self._waste(path, old, "overwritten")
            elif old.meta != m:
                self._waste(path, old, "metadata")
            else:
                self._waste(path, old, "resent")
        if m.kind != "d":
            self._seen(path, size)
            for name, kid in slot.kids.items():  # a directory replaced: what was below is gone
                for sub, copy in _below(kid, path + b"/" + name):
                    self._waste(sub, copy, "deleted")
            slot.kids = {}
        slot.copy = new

    def whiteout(self, path: bytes) -> None:
        self.entries += 1
        gone = self.live.pop(path)
        if gone is not None:
            for sub, copy in _below(gone, path):
                self._waste(sub, copy, "deleted")
        self._seen(path, 0)  # dive (0.13) sizes a whiteout as the empty file it is

    def report(self, tip: str, base: str | None, top: int | None) -> WasteReport:
        seen_blobs: set[bytes] = set()
        duplicate = 0
        for _, copy in _below(self.live.root, b""):
            if copy.size:
                self.layers[copy.layer].kept += copy.size
                if copy.oid in seen_blobs:
                    duplicate += copy.size
                else:
                    seen_blobs.add(copy.oid)  # type: ignore[arg-type]
        shipped = sum(layer.shipped for layer in self.layers)
        wasted = {c: sum(layer.wasted[c] for layer in self.layers) for c in CATEGORIES}
        kept = sum(layer.kept for layer in self.layers)
        minimum = sum(s[2] for s in self.dive.values())
        cumulative = sum(s[1] for s in self.dive.values())
        paths = sorted((PathWaste(p.decode("utf-8", "surrogateescape"), w, n)
                        for p, (w, n) in self.by_path.items()), key=lambda pw: (-pw.wasted, pw.path))
        return WasteReport(
            tip, base, shipped, kept, duplicate, wasted, shipped - kept,
            kept / shipped if shipped else 1.0,
            minimum / cumulative if cumulative else 1.0,
            sum(s[1] for s in self.dive.values() if s[0] > 1),
            self.layers, paths[:top] if top is not None else paths,
        )


def waste(repo: Repo, rev: str, base: str | None = None, top: int | None = 20) -> WasteReport:
    """The waste report of ``rev``'s layers (those above ``base`` when given, which must be
    on its first-parent chain), with the ``top`` most wasteful paths (all: None)."""
    tip = repo.resolve(rev)
    stop = repo.resolve(base) if base is not None else None
    chain = []
    oid: bytes | None = tip
    while oid is not None and oid != stop:
        img = repo.image(oid)
        chain.append(img)
        oid = img.commit.parents[0] if img.commit.parents else None
    if stop is not None and oid != stop:
        raise UsageError(f"{base} is not on the first-parent history of {rev}")
    previous = repo.image(stop).rootfs if stop is not None else None
    versions = [(img.id.hex(), img.commit.message.rstrip("\n"), img.rootfs) for img in reversed(chain)]
    counter = count(repo.store, versions, previous)
    return counter.report(tip.hex(), stop.hex() if stop is not None else None, top)


def count(store, versions: list[tuple[str, str, bytes]], previous: bytes | None = None) -> _Counter:
    """The waste of the layers between ``versions`` ((id, message, rootfs), oldest first),
    the first one's layer taken from ``previous`` (None: from nothing)."""
    from ..fs.tarwrite import write_layer

    counter = _Counter(store)
    for commit, message, rootfs in versions:
        if rootfs == previous:
            continue  # a config-only commit: no layer (an empty_layer history entry)
        counter.start(commit, message)
        write_layer(counter, previous, rootfs)  # type: ignore[arg-type]
        previous = rootfs
    return counter
