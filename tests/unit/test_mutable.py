"""The in-memory snapshot (store/mutable.py): paths resolved inside it, hardlinks kept as one inode."""

from __future__ import annotations

import pytest

from layergit.store import snapshot
from layergit.store.mutable import Dir, Inode, MutableTree, PathError

from .memstore import MemStore, directory, file, parts, symlink


@pytest.fixture
def store():
    return MemStore()


@pytest.fixture
def tree(store):
    """/usr/lib/x, /lib -> usr/lib, /abs -> /usr, /up -> ../../.., /loop -> loop, /file."""
    t = MutableTree.empty(store)
    t.put(parts("/usr/lib/x"), file(store, b"x"))
    t.put(parts("/lib"), symlink(store, b"usr/lib"))
    t.put(parts("/abs"), symlink(store, b"/usr"))
    t.put(parts("/up"), symlink(store, b"../../.."))
    t.put(parts("/loop"), symlink(store, b"loop"))
    t.put(parts("/file"), file(store, b"f"))
    return t


@pytest.mark.parametrize("path", ["/usr/lib", "/lib", "/abs/lib", "/up/usr/lib", "/usr/../usr/./lib", "/../../usr/lib"])
def test_parent_symlinks_resolve_inside_the_snapshot(tree, path):
    assert tree.resolve_dir(parts(path), create=False) is tree.get(parts("/usr/lib"))
    assert isinstance(tree.get(parts(path) + [b"x"]), Inode)


def test_the_last_component_is_never_followed(tree):
    assert tree.get(parts("/lib")).meta.kind == "l"


def test_a_symlink_loop_is_a_path_error(tree):
    with pytest.raises(PathError, match="too many levels"):
        tree.resolve_dir(parts("/loop/x"), create=False)


def test_a_file_in_the_middle_of_a_path(tree):
    assert tree.resolve_dir(parts("/file/x"), create=False) is None
    with pytest.raises(PathError, match="not a directory"):
        tree.put(parts("/file/x/y"), file(MemStore()))


def test_missing_parents_are_made_root_owned_0755(tree, store):
    tree.put(parts("/new/deep/f"), file(store))
    made = tree.get(parts("/new/deep"))
    assert isinstance(made, Dir) and (made.meta.mode, made.meta.uid) == (0o755, 0)


def test_put_a_directory_on_a_directory_keeps_its_children(tree):
    tree.put(parts("/usr"), directory(mode=0o700))
    assert tree.get(parts("/usr")).meta.mode == 0o700 and tree.get(parts("/usr/lib/x")) is not None


def test_remove_and_clear(tree):
    assert tree.remove(parts("/usr/lib/x")) and not tree.remove(parts("/usr/lib/x"))
    assert not tree.remove(parts("/nowhere/x"))
    tree.clear(parts("/usr"))
    assert tree.get(parts("/usr")).children == {}
    with pytest.raises(PathError):
        tree.remove([])


def test_the_root_stays_a_directory(tree, store):
    with pytest.raises(PathError):
        tree.put([], file(store))
    tree.put([], directory(mode=0o711))
    assert tree.root.meta.mode == 0o711


def test_hardlinks_lead_from_the_first_name_in_byte_order_and_survive_a_round_trip(store):
    t = MutableTree.empty(store)
    inode = file(store, b"shared", mode=0o755)
    for path in ("/z/link", "/b", "/a/first"):
        t.put(parts(path), inode)
    written = t.write(store)
    links = {p: n.meta.link for p, n in snapshot.walk(store, written) if n.meta.kind == "f"}
    assert links == {b"/a/first": None, b"/b": b"/a/first", b"/z/link": b"/a/first"}
    loaded = MutableTree.load(store, written)
    assert loaded.get(parts("/b")) is loaded.get(parts("/z/link")) is loaded.get(parts("/a/first"))
    assert loaded.write(store) == written


def test_hardlink_leaders_are_stored_paths(store):
    t = MutableTree.empty(store)
    inode = file(store, b"shared")
    t.put([b".git", b"x"], inode)
    t.put([b"y"], inode)
    written = t.write(store)
    assert dict((p, n.meta.link) for p, n in snapshot.walk(store, written))[b"/y"] == b"/%%2Egit/x"


def test_an_unchanged_tree_writes_the_same_id(store, tree):
    first = tree.write(store)
    again = MutableTree.load(store, first).write(store)
    assert again == first and MutableTree.load(store, None).write(store) == MutableTree.empty(store).write(store)
