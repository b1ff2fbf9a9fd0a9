"""Reading snapshots (store/snapshot.py) and comparing them (store/treediff.py), on trees in memory."""

from __future__ import annotations

import pytest

from layergit.errors import CorruptStore
from layergit.store import meta as M
from layergit.store import snapshot, treediff
from layergit.store.mutable import Inode, MutableTree
from layergit.store.rawobj import MODE_BLOB, MODE_TREE, OBJ_BLOB, OBJ_TREE, tree_bytes

from .memstore import T0, MemStore, directory, file, meta, symlink
from .memstore import snapshot as build


@pytest.fixture
def store():
    return MemStore()


def changes(store, a, b, include_mtime=False):
    return [(c.status, c.path.decode(), c.aspects) for c in treediff.diff_trees(store, a, b, include_mtime)]


def null(rdev=(1, 3)) -> Inode:
    return Inode(M.EntryMeta("c", 0o666, 0, 0, T0, rdev=rdev), None)


def base(store, **override):
    """A small rootfs; ``override`` replaces or adds entries by path."""
    entries = {
        "/etc": directory(),
        "/etc/passwd": file(store, b"root:x:0:0\n"),
        "/etc/hosts": file(store, b"127.0.0.1 localhost\n"),
        "/bin/sh": symlink(store, b"busybox"),
        "/bin/busybox": file(store, b"ELF", mode=0o755),
        "/dev/null": null(),
        "/var/lib/data/x": file(store, b"x"),
    }
    return build(store, {**entries, **override})


def test_identical_trees_have_no_changes(store):
    assert changes(store, base(store), base(store)) == []


PASSWD = b"root:x:0:0\n"


@pytest.mark.parametrize(
    "path, entry, aspects",
    [
        ("/etc/passwd", lambda s: file(s, PASSWD + b"new\n"), ("content",)),
        ("/etc/passwd", lambda s: file(s, PASSWD, mode=0o600), ("mode",)),
        ("/etc/passwd", lambda s: file(s, PASSWD, uid=1), ("owner",)),
        ("/etc/passwd", lambda s: file(s, PASSWD, xattrs=(("user.a", b"1"),)), ("xattrs",)),
        ("/etc/passwd", lambda s: file(s, PASSWD, mtime_ns=T0 + 1), None),  # mtimes only when asked
        ("/etc/passwd", lambda s: file(s, b"", mode=0o600, uid=5), ("content", "mode", "owner")),
        ("/bin/sh", lambda s: symlink(s, b"/bin/busybox"), ("content",)),
        ("/dev/null", lambda s: null((1, 5)), ("rdev",)),
        ("/etc", lambda s: directory(mode=0o700), ("mode",)),
    ],
    ids=["content", "chmod", "chown", "xattr", "mtime", "several", "symlink", "rdev", "dir-mode"],
)
def test_one_change_is_reported_with_its_aspects(store, path, entry, aspects):
    new = base(store, **{path: entry(store)})
    assert changes(store, base(store), new) == ([("M", path, aspects)] if aspects else [])


def test_mtimes_are_reported_when_asked(store):
    new = base(store, **{"/etc/passwd": file(store, b"root:x:0:0\n", mtime_ns=T0 + 1)})
    assert changes(store, base(store), new, include_mtime=True) == [("M", "/etc/passwd", ("mtime",))]


def test_a_directory_added_or_deleted_lists_everything_below_in_path_order(store):
    new = base(store, **{"/opt/app/bin/run": file(store, b"#!"), "/opt/app/README": file(store, b"hi")})
    added = [("A", "/opt", ()), ("A", "/opt/app", ()), ("A", "/opt/app/README", ()), ("A", "/opt/app/bin", ()),
             ("A", "/opt/app/bin/run", ())]
    assert changes(store, base(store), new) == added
    assert changes(store, new, base(store)) == [("D", p, ()) for _, p, _ in added]


def test_a_type_change_replaces_the_subtree(store):
    old = base(store)
    tree = MutableTree.load(store, old)
    tree.remove([b"var", b"lib"])
    tree.put([b"var", b"lib"], file(store, b"now a file"))
    new = tree.write(store)
    assert changes(store, old, new) == [("T", "/var/lib", ()), ("D", "/var/lib/data", ()), ("D", "/var/lib/data/x", ())]
    assert changes(store, new, old) == [("T", "/var/lib", ()), ("A", "/var/lib/data", ()), ("A", "/var/lib/data/x", ())]


def test_from_nothing_everything_is_added(store):
    tree = build(store, {"/a": file(store), "/b/c": file(store)})
    assert changes(store, None, tree) == [("A", "/a", ()), ("A", "/b", ()), ("A", "/b/c", ())]
    assert changes(store, tree, None) == [("D", "/a", ()), ("D", "/b", ()), ("D", "/b/c", ())]


def test_changes_to_the_root_itself(store):
    a = build(store, {"/x": file(store)}, root=meta("d", mode=0o755))
    b = build(store, {"/x": file(store)}, root=meta("d", mode=0o700, uid=3))
    assert treediff.root_meta_changes(store, a, b, include_mtime=False) == ["mode", "owner"]
    assert changes(store, a, b) == []


# -- reading snapshots ---------------------------------------------------------------------------------


def raw_dir(store, entries, meta_lines=None):
    """A tree written byte for byte: (name, mode, oid) entries plus a .lgmeta blob of ``meta_lines``."""
    items = list(entries)
    if meta_lines is not None:
        text = M.HEADER + b"".join(line + b"\n" for line in meta_lines)
        items.append((b".lgmeta", MODE_BLOB, store.put(OBJ_BLOB, text)))
    return store.put(OBJ_TREE, tree_bytes(items))


F = b"f 0644 0:0 0.000000000"


def test_read_dir_gives_real_names_in_byte_order_with_their_metadata(store):
    blob = store.put_blob(b"data")
    tree = raw_dir(store, [(b"b", MODE_BLOB, blob), (b"%%2Egit", MODE_BLOB, blob), (b"a", MODE_BLOB, blob)],
                   [b".\td 0700 0:0 0.000000000", b"%%2Egit\t" + F, b"a\t" + F, b"fifo\tp 0600 0:0 0.000000000"])
    own, nodes = snapshot.read_dir(store, tree)
    assert own == M.EntryMeta("d", 0o700, 0, 0, 0)
    assert [(n.name, n.stored, n.meta.kind) for n in nodes] == [
        (b".git", b"%%2Egit", "f"), (b"a", b"a", "f"), (b"b", b"b", "f"), (b"fifo", b"fifo", "p")]
    assert nodes[2].meta == M.default_meta(0o100644)  # no line: plain git's defaults
    assert nodes[3].oid is None


@pytest.mark.parametrize("stored", [b"%%2E%2E", b"%%2E", b"%", b"%a%2Fb", b"%a%00b"])
def test_names_that_would_leave_the_directory_are_corrupt(store, stored):
    tree = raw_dir(store, [(stored, MODE_BLOB, store.put_blob(b"x"))], [])
    with pytest.raises(CorruptStore, match="unsafe file name"):
        snapshot.read_dir(store, tree)


@pytest.mark.parametrize(
    "entries, lines, message",
    [
        ([(b"x", MODE_BLOB, None)], [b"x\td 0755 0:0 0.000000000"], "disagrees"),
        ([(b"x", MODE_TREE, "tree")], [b"x\t" + F], "disagrees"),
        ([(b"x", 0o160000, None)], [], "disagrees"),  # a submodule
        ([], [b"x\t" + F], "without content"),
        ([], [b"x\td 0755 0:0 0.000000000"], "without content"),
    ],
    ids=["blob-says-dir", "tree-says-file", "gitlink", "file-without-blob", "dir-without-tree"],
)
def test_git_entries_and_metadata_must_agree(store, entries, lines, message):
    empty = raw_dir(store, [], [])
    items = [(n, m, empty if oid == "tree" else store.put_blob(b"x")) for n, m, oid in entries]
    with pytest.raises(CorruptStore, match=message):
        snapshot.read_dir(store, raw_dir(store, items, lines))


def test_only_directories_have_a_tree(store):
    tree = build(store, {"/d/f": file(store)})
    _, (d,) = snapshot.read_dir(store, tree)
    (f,) = snapshot.read_dir(store, d.tree)[1]
    with pytest.raises(CorruptStore):
        assert f.tree


def test_walk_is_depth_first_in_byte_order_of_real_names(store):
    tree = build(store, {"/b/z": file(store), "/a": file(store), "/b/.git": file(store), "/B": file(store)})
    assert [p for p, _ in snapshot.walk(store, tree)] == [b"/B", b"/a", b"/b", b"/b/.git", b"/b/z"]
