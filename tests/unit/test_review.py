"""The pure parts of reviewing (porcelain/review.py, porcelain/waste.py) on snapshots in memory:
which versions changed a path, blame's line matching, symlinks resolved inside the image,
and the waste buckets, each figure written out by hand."""

from __future__ import annotations

import pytest

from layergit.errors import LgError, NotFound
from layergit.porcelain import review, waste

from .memstore import T0, MemStore, directory, file, symlink
from .memstore import snapshot as build

PASSWD = b"root:x:0:0\n"


@pytest.fixture
def store():
    return MemStore()


def base(store, **override):
    entries = {
        "/etc": directory(),
        "/etc/passwd": file(store, PASSWD),
        "/etc/passwd-": file(store, PASSWD),
        "/etc/hosts": file(store, b"127.0.0.1 localhost\n"),
        "/bin/sh": file(store, b"ELF", mode=0o755),
    }
    return build(store, {**entries, **override})


def change(store, old, new, path, include_mtime=False):
    trees = review._Trees(store)
    return review.path_change(trees, old, new, review.path_parts(path), include_mtime)


@pytest.mark.parametrize("path, override, expected", [
    ("/etc/passwd", {"/etc/hosts": lambda s: file(s, b"::1 localhost\n")}, ()),  # a sibling changed
    ("/etc/passwd", {"/etc/passwd-": lambda s: file(s, PASSWD, mode=0o600)}, ()),  # a name it prefixes
    ("/etc/passwd", {"/etc/passwd": lambda s: file(s, PASSWD, mode=0o600)}, ("mode",)),
    ("/etc/passwd", {"/etc/passwd": lambda s: file(s, PASSWD + b"x\n", uid=7)}, ("content", "owner")),
    ("/etc/passwd", {"/etc/passwd": lambda s: file(s, PASSWD, mtime_ns=T0 + 1)}, ()),
    ("/etc/passwd", {"/etc/passwd": lambda s: symlink(s, b"passwd-")}, ("type",)),
    ("/etc/passwd", {"/etc": lambda s: directory(mode=0o700)}, ()),  # its directory's own metadata
    ("/etc", {"/etc": lambda s: directory(mode=0o700)}, ("mode",)),
    ("/etc", {"/etc/hosts": lambda s: file(s, b"")}, ("content",)),
    ("/etc", {"/etc/hosts": lambda s: file(s, b"127.0.0.1 localhost\n", mtime_ns=T0 + 1)}, ()),
    ("/", {"/bin/sh": lambda s: file(s, b"ELF", mode=0o700)}, ("content",)),
    ("/nope", {"/bin/sh": lambda s: file(s, b"")}, ()),
])
def test_path_change(store, path, override, expected):
    old = base(store)
    new = base(store, **{k: make(store) for k, make in override.items()})
    assert change(store, old, new, path) == expected


def test_path_change_added_deleted_and_mtime(store):
    old = base(store)
    gone = build(store, {"/etc/hosts": file(store, b"127.0.0.1 localhost\n")})
    assert change(store, old, gone, "/etc/passwd") == ("deleted",)
    assert change(store, gone, old, "/etc/passwd") == ("added",)
    assert change(store, None, old, "/etc/passwd") == ("added",)
    assert change(store, None, old, "/etc/nope") == ()
    touched = base(store, **{"/etc/passwd": file(store, PASSWD, mtime_ns=T0 + 1)})
    assert change(store, old, touched, "/etc/passwd", include_mtime=True) == ("mtime",)


def test_path_parts_stay_below_root():
    assert review.path_parts("/a/./b//c/") == [b"a", b"b", b"c"]
    assert review.path_parts("../../etc/../etc/passwd") == [b"etc", b"passwd"]
    assert review.path_parts("/") == []


def test_blame_carries_matched_lines_only():
    older = [b"a", b"b", b"c"]
    newer = [b"z", b"a", b"c", b"d"]
    pending = {0: 10, 1: 11, 2: 12, 3: 13}
    carried = review._carry(older, newer, pending)
    assert carried == {0: 11, 2: 12}  # a and c were there before, at older's lines 0 and 2
    assert pending == {0: 10, 3: 13}  # z and d stay with the newer version


def test_resolve_follows_symlinks_inside_the_image(store):
    root = base(store, **{
        "/etc/abs": symlink(store, b"/etc/passwd"),
        "/etc/up": symlink(store, b"../../../../../etc"),
        "/etc/loop": symlink(store, b"loop"),
        "/etc/hostfile": symlink(store, b"/root/.ssh/id_rsa"),
    })
    trees = review._Trees(store)
    for path in ("/etc/abs", "/etc/up/passwd", "/etc/up/up/abs"):
        parts, node = review.resolve(trees, root, path)
        assert parts == [b"etc", b"passwd"] and node.oid == file(store, PASSWD).oid
    assert review.resolve(trees, root, "/etc/abs", follow_last=False)[1].meta.kind == "l"
    with pytest.raises(LgError, match="too many levels"):
        review.resolve(trees, root, "/etc/loop")
    with pytest.raises(NotFound):
        review.resolve(trees, root, "/etc/hostfile")
    with pytest.raises(NotFound, match="not a directory"):
        review.resolve(trees, root, "/etc/passwd/x")


def test_waste_buckets(store):
    big, small = b"B" * 100, b"s" * 30
    v1 = build(store, {"/a": file(store, big), "/b": file(store, small), "/d/x": file(store, b"x" * 7)})
    v2 = build(store, {"/a": file(store, big, uid=1), "/b": file(store, small), "/d/x": file(store, b"x" * 7),
                       "/c": file(store, small)})  # chown a, add c (b's content)
    v3 = build(store, {"/a": file(store, b"new"), "/c": file(store, small)})  # rewrite a, drop b and d/
    counter = waste.count(store, [("1", "one", v1), ("2", "two", v2), ("2b", "config only", v2), ("3", "three", v3)])
    report = counter.report("3", None, None)
    assert [layer.shipped for layer in report.layers] == [137, 130, 3]
    assert report.wasted == {"overwritten": 100, "metadata": 100, "resent": 0, "deleted": 37}
    assert report.kept == 33 and report.duplicate == 0
    assert report.squash_saves == 237 == 270 - 33
    assert {p.path: (p.wasted, p.copies) for p in report.paths} == {
        "/a": (200, 2), "/b": (30, 1), "/d/x": (7, 1)}
    # dive's figures: per path, the smallest size over the sum of sizes (a whiteout is 0):
    # a 100+100+3, b 30+0, c 30, d/x 7+0 (d/ whited out as a whole, x not again)
    assert report.dive_efficiency == pytest.approx((3 + 0 + 30 + 7 + 0) / (203 + 30 + 30 + 7 + 0))
    assert report.dive_wasted == 203 + 30


def test_waste_of_a_new_hardlink_counts_its_leader_resent(store):
    data = file(store, b"D" * 50)
    v1 = build(store, {"/data": data})
    v2 = build(store, {"/data": data, "/link": data})
    report = waste.count(store, [("1", "one", v1), ("2", "two", v2)]).report("2", None, None)
    assert [layer.shipped for layer in report.layers] == [50, 50]  # the link brings /data along
    assert report.wasted["resent"] == 50 and report.kept == 50
