"""The three-way tree merge of lg rebase (store/merge3.py), on trees in memory.

Each expected result is a snapshot written out by hand; canonical trees make "the
same tree" one id comparison."""

from __future__ import annotations

import pytest

from layergit.store import merge3
from layergit.store.mutable import Inode

from .memstore import MemStore, directory, file, meta, symlink
from .memstore import snapshot as build


class CountingStore(MemStore):
    """A MemStore that remembers which trees were read."""

    def __init__(self) -> None:
        super().__init__()
        self.read: list[bytes] = []

    def tree(self, oid):
        self.read.append(oid)
        return super().tree(oid)


@pytest.fixture
def store():
    return CountingStore()


def base_entries(store, **override):
    entries = {
        "/etc/passwd": file(store, b"root:x:0:0\n"),
        "/etc/conf": file(store, b"a=1\n"),
        "/bin/sh": symlink(store, b"busybox"),
        "/bin/busybox": file(store, b"ELF", mode=0o755),
        "/usr/share/doc/a/README": file(store, b"docs"),
        "/usr/lib/big/one": file(store, b"1"),
    }
    entries.update({k.replace("__", "/"): v for k, v in override.items()})
    return {k: v for k, v in entries.items() if v is not None}


def snap(store, **override):
    return build(store, base_entries(store, **override))


def merge(store, b, o, t, resolve=None):
    return merge3.merge_trees(store, store, b, o, t, resolve)


def test_changes_on_different_paths_are_combined(store):
    b = snap(store)
    o = snap(store, __etc__conf=file(store, b"a=2\n"), __etc__motd=file(store, b"hi\n"))
    t = snap(store, __bin__busybox=None, __srv__app=file(store, b"app"))
    result = merge(store, b, o, t)
    assert result.conflicts == []
    want = snap(store, __etc__conf=file(store, b"a=2\n"), __etc__motd=file(store, b"hi\n"),
                __bin__busybox=None, __srv__app=file(store, b"app"))
    assert result.tree == want


def test_aspects_merge_separately(store):
    """Ours chmods and tags a file, theirs rewrites and chowns it: one entry with all four."""
    b = snap(store)
    o = snap(store, __etc__conf=file(store, b"a=1\n", mode=0o600, xattrs=(("user.tag", b"x"),)))
    t = snap(store, __etc__conf=file(store, b"a=9\n", uid=7, gid=7))
    result = merge(store, b, o, t)
    assert result.conflicts == []
    assert result.tree == snap(store, __etc__conf=file(store, b"a=9\n", mode=0o600, uid=7, gid=7,
                                                       xattrs=(("user.tag", b"x"),)))


def test_same_change_on_both_sides_is_no_conflict(store):
    b = snap(store)
    o = snap(store, __etc__conf=file(store, b"same\n"))
    assert merge(store, b, o, snap(store, __etc__conf=file(store, b"same\n"))).tree == o


def test_mtime_never_conflicts_and_theirs_wins(store):
    b = snap(store)
    o = snap(store, __etc__conf=file(store, b"a=1\n", mtime_ns=5))
    t = snap(store, __etc__conf=file(store, b"a=1\n", mtime_ns=9))
    assert merge(store, b, o, t).tree == t


def test_conflicts_are_all_reported(store):
    b = snap(store)
    o = snap(store, __etc__conf=file(store, b"ours\n"), __etc__passwd=file(store, b"root:x:0:0\n", mode=0o600),
             __bin__busybox=None, __new=file(store, b"o"), __bin__sh=file(store, b"now a file"))
    t = snap(store, __etc__conf=file(store, b"theirs\n"), __etc__passwd=file(store, b"root:x:0:0\n", mode=0o640),
             __bin__busybox=file(store, b"ELF2", mode=0o755), __new=file(store, b"t"),
             __bin__sh=directory())
    result = merge(store, b, o, t)
    assert result.tree is None
    assert [(c.path, c.what) for c in result.conflicts] == [
        (b"/bin/busybox", ("deleted by ours, changed by theirs",)),
        (b"/bin/sh", ("type changed",)),
        (b"/etc/conf", ("content",)),
        (b"/etc/passwd", ("mode",)),
        (b"/new", ("added on both sides",)),
    ]


def test_a_resolver_answers_or_explains(store):
    b = snap(store)
    o = snap(store, __etc__conf=file(store, b"ours\n"), __etc__passwd=file(store, b"o\n"))
    t = snap(store, __etc__conf=file(store, b"theirs\n"), __etc__passwd=file(store, b"t\n"))

    def resolve(c):
        if c.path == b"/etc/conf":
            return merge3.Resolution(c.theirs, "theirs")
        from dataclasses import replace

        return replace(c, detail="cannot")

    result = merge(store, b, o, t, resolve)
    assert result.resolved == [(b"/etc/conf", "theirs")]
    assert [(c.path, c.detail) for c in result.conflicts] == [(b"/etc/passwd", "cannot")]
    result = merge(store, b, o, t, lambda c: merge3.Resolution(c.theirs, "theirs"))
    assert result.tree == t


def test_directories_added_on_both_sides_merge_their_contents(store):
    b = snap(store)
    o = snap(store, __srv__a=file(store, b"a"))
    t = snap(store, __srv__b=file(store, b"b"))
    assert merge(store, b, o, t).tree == snap(store, __srv__a=file(store, b"a"), __srv__b=file(store, b"b"))


def test_a_subtree_no_side_changed_is_not_read(store):
    """The merge reads what the sides changed: /usr/lib, the same in all three, never."""
    b = snap(store)
    o = snap(store, __usr__share__doc__a__README=file(store, b"new docs"))
    t = snap(store, __etc__conf=file(store, b"a=2\n"), __usr__share__doc__b=file(store, b"b"))
    usr = next(oid for name, _, oid in store.tree(b) if name == b"usr")
    lib = next(oid for name, _, oid in store.tree(usr) if name == b"lib")
    store.read.clear()
    result = merge(store, b, o, t)
    assert result.tree == snap(store, __usr__share__doc__a__README=file(store, b"new docs"),
                               __etc__conf=file(store, b"a=2\n"), __usr__share__doc__b=file(store, b"b"))
    assert usr in store.read and lib not in store.read


def test_a_hardlink_whose_leader_changed_becomes_a_file(store):
    """Theirs links /srv/y to /etc/conf; ours rewrote /etc/conf: y keeps its content, not the link."""
    b = snap(store)
    o = snap(store, __etc__conf=file(store, b"new\n"))
    shared = file(store, b"a=1\n")
    t = build(store, base_entries(store, __etc__conf=shared, __srv__y=shared))
    result = merge(store, b, o, t)
    assert result.tree == snap(store, __etc__conf=file(store, b"new\n"), __srv__y=file(store, b"a=1\n"))
    kept = Inode(meta("f"), store.put_blob(b"a=1\n"))
    t2 = build(store, base_entries(store, __etc__conf=kept, __srv__y=kept))
    o2 = snap(store, __bin__extra=file(store, b"x"))
    assert merge(store, b, o2, t2).tree == build(store, base_entries(store, __etc__conf=kept, __srv__y=kept,
                                                                     __bin__extra=file(store, b"x")))


def test_a_change_ours_already_has_leaves_nothing_but_mtimes(store):
    """What lg rebase drops: theirs added what ours added too (other mtimes): not changed."""
    b = snap(store)
    o = snap(store, __etc__motd=file(store, b"hi\n", mtime_ns=5), __bin__extra=file(store, b"x"))
    t = snap(store, __etc__motd=file(store, b"hi\n", mtime_ns=9))
    result = merge(store, b, o, t)
    assert result.conflicts == [] and not result.changed
    assert result.tree == snap(store, __etc__motd=file(store, b"hi\n", mtime_ns=9), __bin__extra=file(store, b"x"))
    t2 = snap(store, __etc__motd=file(store, b"hi\n", mode=0o600))
    assert merge(store, b, o, t2).changed
