"""What ``lg images`` shows of each image commit, kept by commit id in one file.

A commit never changes, so neither does what a listing shows of it: its time, its
rootfs size and its labels. Reading them means the commit, its tree, its config and
a size file per image, about 150 µs an image: 0.15 s of a listing of a thousand
images, whose goal is 0.2 s in all (issue 13). Kept in ``cache/sizes/listing``, a
listing reads the refs and this one file, and reads an image itself only the first
time it lists it.

The file is an optimisation only, written whole and renamed into place: a missing,
damaged or foreign one is an empty cache, and two listings at once just both write
theirs. It holds the commits the last listing showed (and up to SPARE others, so
that ``lg images`` and ``lg images --remote`` do not evict each other). ``lg gc``
leaves it: a record of a commit gc removed is never asked for again, and goes when
the listings have left it out SPARE times over.
"""

from __future__ import annotations

import marshal
import os
from dataclasses import dataclass

from ..fs.safeio import write_cache
from . import sizes

FILE_NAME = "listing"
_FORMAT = 1
_READ_MAX = 64 << 20  # a bigger file is not lg's: an empty cache
SPARE = 4096  # summaries of commits the listing did not show that stay in the file


@dataclass(frozen=True)
class Summary:
    """A commit as a listing shows it."""

    time: int  # the committer's time, seconds since the epoch
    offset_minutes: int  # and its UTC offset
    size: int  # the rootfs's file bytes (porcelain.sizes)
    labels: tuple[tuple[str, str], ...]

    def to_record(self) -> tuple:
        return (self.time, self.offset_minutes, self.size, self.labels)

    @classmethod
    def from_record(cls, record) -> Summary | None:
        """The summary a record of the file holds, None for a record of another shape."""
        if type(record) is not tuple or len(record) != 4:
            return None
        when, offset, size, labels = record
        if not (type(when) is int and type(offset) is int and type(size) is int and type(labels) is tuple):
            return None
        if not all(type(pair) is tuple and len(pair) == 2 and all(type(x) is str for x in pair)
                   for pair in labels):
            return None
        return cls(when, offset, size, labels)


def summarise(repo, commit_id: bytes) -> Summary:
    """Read what a listing shows of ``commit_id`` from the store."""
    img = repo.image(commit_id)
    labels = tuple(sorted((str(k), str(v)) for k, v in (img.config.get("Labels") or {}).items()))
    committer = img.commit.committer
    return Summary(committer.time, committer.offset_minutes, sizes.tree_size(repo, img.rootfs), labels)


class ListingCache:
    """The summaries of the last listings; :meth:`get` reads an image the file lacks."""

    def __init__(self, repo):
        self._repo = repo
        self._path = os.path.join(repo.root.cache_dir("sizes"), FILE_NAME)
        self._old = self._load()
        self._shown: dict[bytes, Summary] = {}
        self._new = False

    def _load(self) -> dict:
        try:
            with open(self._path, "rb") as f:
                data = f.read(_READ_MAX + 1)
            saved = marshal.loads(data) if len(data) <= _READ_MAX else None
        except (OSError, EOFError, ValueError, TypeError):
            return {}
        if type(saved) is not tuple or len(saved) != 2 or saved[0] != _FORMAT or type(saved[1]) is not dict:
            return {}
        return saved[1]  # each record checked when used

    def get(self, commit_id: bytes) -> Summary:
        summary = self._shown.get(commit_id)
        if summary is None:
            summary = Summary.from_record(self._old.get(commit_id))
            if summary is None:
                summary = summarise(self._repo, commit_id)
                self._new = True
            self._shown[commit_id] = summary
        return summary

    def save(self) -> None:
        """Write the file if this listing read an image it did not hold; a cache that
        cannot be written (a read-only root) is no error."""
        if not self._new:
            return
        records = {oid: s.to_record() for oid, s in self._shown.items()}
        for oid, record in self._old.items():
            if len(records) >= len(self._shown) + SPARE:
                break
            if type(oid) is bytes and len(oid) == 20 and Summary.from_record(record) is not None:
                records.setdefault(oid, record)
        write_cache(self._path, marshal.dumps((_FORMAT, records)))
