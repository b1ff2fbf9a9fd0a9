"""lg images over a store as it is after lg gc (refs packed, objects deltified) and with
its listing cache (porcelain/listing.py) fresh, missing or tampered with: the rows are
the store's, whatever the cache holds."""

from __future__ import annotations

import json
import marshal
import os
import subprocess

import pytest

from layergit.porcelain import listing


def _store(lg) -> str:
    return os.path.join(lg.root, "store.git")


def _rows(lg) -> list[dict]:
    return json.loads(lg.out("images", "--json"))


@pytest.fixture
def three(lg, tmp_path):
    """Three images, the first of two versions."""
    src = tmp_path / "src"
    os.makedirs(src / "etc")
    for name in ("a", "b", "c"):
        for version in (1, 2) if name == "a" else (1,):
            (src / "etc" / "version").write_text(f"{name} {version}\n" * version)
            lg("commit", src, "-t", f"{name}:1", "-m", f"{name} {version}")
    return lg


def test_a_listing_after_gc_is_the_listing_before(three):
    """lg gc packs refs and lets git deltify commits, trees and configs: the listing
    reads the same rows, and a tag moved afterwards (a loose ref over a packed one)
    shows where it points now."""
    lg = three
    before = _rows(lg)
    os.unlink(os.path.join(lg.root, "cache", "sizes", "listing"))
    lg("gc")
    subprocess.run(["git", f"--git-dir={_store(lg)}", "repack", "-adfq"], check=True)
    assert not os.path.exists(os.path.join(_store(lg), "refs", "heads", "a", "1"))  # packed
    assert _rows(lg) == before
    lg("tag", "b:1", "a:1")
    after = {(r["name"], r["tag"]): r["id"] for r in _rows(lg)}
    assert after[("a", "1")] == after[("b", "1")] != {(r["name"], r["tag"]): r["id"] for r in before}[("a", "1")]


@pytest.mark.parametrize("content", [
    b"not marshal at all",
    marshal.dumps((1, [])),
    marshal.dumps((2, {})),
    marshal.dumps("a string"),
], ids=["garbage", "not-a-dict", "other-format", "other-shape"])
def test_a_damaged_listing_cache_is_an_empty_one(three, content):
    lg = three
    before = _rows(lg)
    path = os.path.join(lg.root, "cache", "sizes", "listing")
    with open(path, "wb") as f:
        f.write(content)
    assert _rows(lg) == before
    assert _rows(lg) == before  # and the file written again is read


def test_a_tampered_record_is_read_again_from_the_store(three):
    """A record of another shape (a size that is a string, labels that are not pairs of
    strings) is not shown: that image is summarised again from its commit."""
    lg = three
    before = _rows(lg)
    path = os.path.join(lg.root, "cache", "sizes", "listing")
    with open(path, "rb") as f:
        fmt, records = marshal.loads(f.read())
    first, second, third = sorted(records)
    records[first] = (1, 0, "big", ())
    records[second] = (1, 0, 5, (("k", 1),))
    records[third] = (1, 0, 5)
    with open(path, "wb") as f:
        f.write(marshal.dumps((fmt, records)))
    assert _rows(lg) == before


class _Root:
    def __init__(self, path):
        self._path = path

    def cache_dir(self, kind: str) -> str:
        return os.path.join(self._path, kind)


class _Repo:
    def __init__(self, path):
        self.root = _Root(path)


def test_an_image_is_read_once_then_listed_from_the_cache(tmp_path, monkeypatch):
    """In process: the first listing summarises each commit from the store, the next
    reads none; a commit new to the listing is read, and the file keeps SPARE others."""
    read: list[bytes] = []

    def summarise(repo, oid):
        read.append(oid)
        return listing.Summary(1_700_000_000, 60, len(read), (("k", "v"),))

    monkeypatch.setattr(listing, "summarise", summarise)
    monkeypatch.setattr(listing, "SPARE", 1)
    repo = _Repo(tmp_path)
    ids = [bytes([n]) * 20 for n in range(4)]

    def listed(oids):
        cache = listing.ListingCache(repo)
        out = [cache.get(oid) for oid in oids]
        cache.save()
        return out

    first = listed(ids[:3])
    assert read == ids[:3]
    assert listed(ids[:3]) == first and read == ids[:3]
    listed([ids[3]])  # keeps ids[3] and one spare
    read.clear()
    listed(ids)
    assert len(read) == 2  # two of the first three were dropped
