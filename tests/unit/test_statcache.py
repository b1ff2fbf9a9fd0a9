"""The stat cache file is state under the lg root like any other: one of a shape lg did
not write (truncated, from another version, tampered with) is an empty cache, never a
crash and never a listing that leads out of the directory."""

from __future__ import annotations

import marshal
import os

import pytest

from layergit.fs.capture import capture
from layergit.fs.statcache import StatCache

from .memstore import MemStore


def _cache(path: str) -> StatCache:
    cache = StatCache(path)
    cache.settled_before += 10_000_000_000  # every inode made by the test is old enough to remember
    return cache


@pytest.fixture
def tree(tmp_path):
    src = tmp_path / "src"
    (src / "d").mkdir(parents=True)
    (src / "empty").mkdir()
    (src / "d" / "f").write_bytes(b"one\n")
    (src / "g").write_bytes(b"two\n")
    os.setxattr(src / "g", "user.k", b"v") if hasattr(os, "setxattr") else None
    os.link(src / "g", src / "d" / "h")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret").write_bytes(b"not yours\n")
    return src


def _saved(path: str) -> tuple:
    with open(path, "rb") as f:
        return marshal.loads(f.read())


def test_a_cache_lg_wrote_is_believed(tree, tmp_path):
    store, path = MemStore(), str(tmp_path / "cache")
    first = capture(store, str(tree), _cache(path)).tree
    reread = _cache(path)
    assert reread._old and reread._old_dirs, "the cache lg saved must load back"
    assert reread.directory(b"", os.stat(tree)) is not None
    assert reread.directory(b"/empty", os.stat(tree / "empty")) == ([], (), reread._old_dirs[b"/empty"][3])
    assert reread.lookup(b"/g", StatCache.key(os.lstat(tree / "g"))) is not None
    assert capture(store, str(tree), reread).tree == first


def _variants(saved: tuple) -> list:
    fmt, files, dirs = saved
    path, hit = next(iter(files.items()))
    key, names, found, tree = dirs[b""]
    return [
        (fmt, [], dirs), (fmt, files, []), (fmt, {path: 5}, dirs), (fmt, {path: (hit[0],)}, dirs),
        (fmt, {path: (hit[0], "oid", hit[2])}, dirs), (fmt, {path: (hit[0], hit[1], [("k", 1)])}, dirs),
        (fmt, files, {b"": 7}), (fmt, files, {b"": (key, names, found, "tree")}),
        (fmt, files, {b"": (key, [*names, 3], found, tree)}),
        (fmt, files, {b"": (key, names, (*found[:-1], (1, 2)), tree)}),
        (fmt, files, {b"": (key, names, ((None,) * 5,), tree)}),
        (fmt, files, {b"": (key, (b"d", b"g"), found, tree)}),
        (fmt, files, {b"": (key, [b"d", "g"], found, tree)}), (fmt, files, {b"": (key, names[::-1], found, tree)}),
        (fmt, files, {b"": (key, names, tuple((f[0], b"../x", *f[2:]) for f in found), tree)}),
    ]


def test_a_cache_of_another_shape_is_an_empty_cache(tree, tmp_path):
    store, path = MemStore(), str(tmp_path / "cache")
    fresh = capture(store, str(tree), _cache(path)).tree
    saved = _saved(path)
    for variant in _variants(saved):
        with open(path, "wb") as f:
            f.write(marshal.dumps(variant))
        assert capture(store, str(tree), _cache(path)).tree == fresh, variant
    with open(path, "wb") as f:
        f.write(marshal.dumps(saved)[:-7])
    assert capture(store, str(tree), _cache(path)).tree == fresh


def test_a_remembered_listing_never_leads_out_of_the_directory(tree, tmp_path):
    """A listing naming ``..`` or a path with '/' (a tampered cache) is not believed: the
    directory is listed again, so nothing outside it can enter the tree."""
    store, path = MemStore(), str(tmp_path / "cache")
    fresh = capture(store, str(tree), _cache(path)).tree
    fmt, files, dirs = _saved(path)
    key, names, found, tree_id = dirs[b""]
    for evil in (b"..", b"../outside", b"d/f", b"."):
        listing = sorted([*names, evil])
        with open(path, "wb") as f:
            f.write(marshal.dumps((fmt, files, {**dirs, b"": (key, listing, found, tree_id)})))
        cache = _cache(path)
        assert cache.directory(b"", os.stat(tree)) is None, evil
        assert capture(store, str(tree), cache).tree == fresh


def test_a_time_past_2262_has_a_key_of_its_own(tree, tmp_path):
    """The packed key holds times in signed 64-bit nanoseconds (1678 to 2262); ext4 keeps
    times to 2446, and an image can carry one. Such a file gets a longer key, never a
    packed one, and capturing it works as for any file (a time in the future is never
    settled, so it is read again each time)."""
    late = 13_569_465_600 * 10**9  # 2400-01-01, past what 64-bit nanoseconds hold
    os.utime(tree / "d" / "f", ns=(late, late))
    st = os.lstat(tree / "d" / "f")
    if st.st_mtime_ns != late:
        pytest.skip("this filesystem does not keep times past 2262")
    key = StatCache.key(st)
    assert len(key) > 40 and key.endswith(b"%d %d" % (late, st.st_ctime_ns))
    assert len(StatCache.key(os.lstat(tree / "g"))) == 40
    store, path = MemStore(), str(tmp_path / "cache")
    first = capture(store, str(tree), _cache(path)).tree
    reread = _cache(path)
    assert reread.lookup(b"/g", StatCache.key(os.lstat(tree / "g"))) is not None
    assert capture(store, str(tree), reread).tree == first
