"""Snapshots nested deeper than Python recurses: built, read, walked and compared in
memory, and refused where git would not read them back (store/mutable.py,
store/snapshot.py, store/treediff.py)."""

from __future__ import annotations

import sys

import pytest

from layergit.errors import TooDeep
from layergit.store import snapshot, treediff
from layergit.store.mutable import MutableTree

from .memstore import MemStore, directory, file, symlink

DEEP = sys.getrecursionlimit() + 200  # 1,200: deeper than any recursive walk survives


def chain(depth: int) -> list[bytes]:
    return [b"d"] * depth + [b"f"]


def deep_tree(store: MemStore, depth: int, leaf: bytes = b"leaf") -> bytes:
    """/d/d/.../d/f with ``depth`` directories, put parent first as a tar lists them."""
    tree = MutableTree.empty(store)
    for level in range(1, depth + 1):
        tree.put([b"d"] * level, directory())
    tree.put(chain(depth), file(store, leaf))
    return tree.write(store)


def test_a_deep_tree_is_written_loaded_and_walked():
    store = MemStore()
    tree = deep_tree(store, DEEP)
    paths = [path for path, _ in snapshot.walk(store, tree)]
    assert len(paths) == DEEP + 1 and paths[-1] == b"/" + b"/".join(chain(DEEP))
    assert MutableTree.load(store, tree).write(store) == tree  # loading and writing again changes nothing


def test_a_change_at_the_bottom_of_a_deep_tree_is_one_change():
    store = MemStore()
    old, new = deep_tree(store, DEEP), deep_tree(store, DEEP, b"changed")
    changes = list(treediff.diff_trees(store, old, new))
    assert [(c.status, c.path, c.aspects) for c in changes] == [
        ("M", b"/" + b"/".join(chain(DEEP)), ("content",))
    ]


def test_a_deep_tree_added_or_deleted_lists_every_level_in_path_order():
    store = MemStore()
    empty, tree = MutableTree.empty(store).write(store), deep_tree(store, DEEP)
    added = list(treediff.diff_trees(store, empty, tree))
    assert [c.status for c in added] == ["A"] * (DEEP + 1)
    assert [c.path for c in added] == sorted(c.path for c in added)
    assert [c.status for c in treediff.diff_trees(store, tree, empty)] == ["D"] * (DEEP + 1)


def test_a_deep_directory_replaced_by_a_file_is_a_type_change_and_deletions():
    store = MemStore()
    tree = deep_tree(store, DEEP)
    flat = MutableTree.load(store, tree)
    flat.put([b"d"], file(store, b"now a file"))
    changes = list(treediff.diff_trees(store, tree, flat.write(store)))
    assert changes[0].status == "T" and changes[0].path == b"/d"
    assert {c.status for c in changes[1:]} == {"D"} and len(changes) == DEEP + 1


def test_git_depth_is_the_limit():
    """git counts the commit's tree as depth 0 and the rootfs as 1: MAX_DEPTH levels below
    / are the most a rootfs may nest, one more is refused, naming where."""
    store = MemStore()
    assert snapshot.MAX_DEPTH == snapshot.GIT_MAX_TREE_DEPTH - 1 == 2047
    deep_tree(store, snapshot.MAX_DEPTH)
    with pytest.raises(TooDeep, match=r"^/d/d/d/…/d/d is 2048 directories deep; git reads at most 2047"):
        deep_tree(store, snapshot.MAX_DEPTH + 1)


def test_nothing_deeper_than_git_reads_is_written():
    """The refusal comes on the way down, before a tree of the deep part is stored."""
    store = MemStore()
    tree = MutableTree.empty(store)
    tree.put([b"d"] * 5000, directory())
    with pytest.raises(TooDeep):
        tree.write(store)
    assert store.objects == {}


def test_the_remembered_chain_of_directories_gives_way_to_changes():
    """resolve_dir remembers the directories it last went through; a removal, a
    replacement or a symlink on the way must not be answered from that memory."""
    store = MemStore()
    tree = MutableTree.empty(store)
    tree.put([b"d"] * 50, directory())
    tree.remove([b"d", b"d"])
    assert tree.get([b"d"] * 3) is None
    tree.put([b"d"] * 3 + [b"f"], file(store))
    assert tree.get([b"d"] * 3 + [b"f"]) is not None and tree.get([b"d"] * 4) is None
    tree.put([b"d", b"d"], symlink(store, b"/e"))
    tree.put([b"d", b"d", b"x"], file(store))
    assert tree.get([b"e", b"x"]) is not None and tree.get([b"d"] * 3) is None
