"""Tar archives read into snapshot changes (fs/tarlayer.py) and written from snapshots
(fs/tarwrite.py), in memory: a snapshot written as a tar and read back is the same
tree, and a layer applied to its parent gives its commit's tree."""

from __future__ import annotations

import gzip
import io
import lzma
import tarfile

import pytest
import zstandard
from hypothesis import example, given, settings
from hypothesis import strategies as st

from layergit.fs import tarlayer, tarwrite
from layergit.fs.tarlayer import ArchiveError, Limits
from layergit.store import meta as M
from layergit.store.mutable import Inode, MutableTree
from layergit.store.rawobj import STREAM_FROM

from .memstore import T0, MemStore, directory, file, parts, snapshot, symlink


def tar_bytes(*members: tuple[tarfile.TarInfo, bytes | None]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return out.getvalue()


def member(name: str, kind: bytes = tarfile.REGTYPE, **attrs) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = attrs.pop("mode", 0o644)
    for key, value in attrs.items():
        setattr(info, key, value)
    return info


def read(data: bytes, store=None, whiteouts=True, limits=None):
    limits = limits or Limits()
    return tarlayer.read_tar(tarlayer.decompressed(io.BytesIO(data), limits), store or MemStore(), limits, whiteouts)


# -- reading -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, expected",
    [("a/b", [b"a", b"b"]), ("/abs/x", [b"abs", b"x"]), ("./a//b/.", [b"a", b"b"]), ("", []), (".", []),
     ("caf\u00e9", ["caf\u00e9".encode()]), ("\udcff", [b"\xff"])],
)
def test_split_path(name, expected):
    assert tarlayer.split_path(name) == expected


@pytest.mark.parametrize("name", ["../x", "a/../../x", "a/..", "a\0b"])
def test_split_path_refuses_climbing_and_nul(name):
    with pytest.raises(ArchiveError):
        tarlayer.split_path(name)


def test_members_become_entries_with_exact_metadata():
    store = MemStore()
    data = tar_bytes(
        (member("etc/", tarfile.DIRTYPE, mode=0o755), None),
        (member("etc/passwd", uid=7, gid=8, mtime=5, pax_headers={"mtime": "5.000000123", "SCHILY.xattr.user.a": "1"}), b"root\n"),
        (member("bin/sh", tarfile.SYMTYPE, linkname="busybox", mode=0o777), None),
        (member("dev/null", tarfile.CHRTYPE, devmajor=1, devminor=3, mode=0o666), None),
        (member("etc/hard", tarfile.LNKTYPE, linkname="etc/passwd"), None),
        (member("etc/.wh.gone"), b""),
        (member("var/.wh..wh..opq"), b""),
    )
    entries = read(data, store)
    assert [(e.kind, b"/".join(e.parts)) for e in entries] == [
        ("d", b"etc"), ("f", b"etc/passwd"), ("l", b"bin/sh"), ("c", b"dev/null"), ("h", b"etc/hard"),
        ("wh", b"etc/gone"), ("opq", b"var")]
    passwd = entries[1]
    assert passwd.meta == M.EntryMeta("f", 0o644, 7, 8, 5_000_000_123, xattrs=(("user.a", b"1"),))
    assert store.read_blob(passwd.oid) == b"root\n"
    assert entries[2].target == b"busybox" and entries[3].meta.rdev == (1, 3) and entries[4].link == [b"etc", b"passwd"]


@pytest.mark.parametrize("pax_mtime, ns", [("-1.5", -1_500_000_000), ("-0.25", -250_000_000), ("7", 7_000_000_000)])
def test_negative_and_fractional_pax_mtimes(pax_mtime, ns):
    (entry,) = read(tar_bytes((member("x", pax_headers={"mtime": pax_mtime}), b"")))
    assert entry.meta.mtime_ns == ns


def test_without_whiteouts_a_wh_file_is_a_file():
    (entry,) = read(tar_bytes((member(".wh.x"), b"")), whiteouts=False)
    assert entry.kind == "f" and entry.parts == [b".wh.x"]


@pytest.mark.parametrize(
    "members, message",
    [
        ([(member(".wh."), b"")], "invalid whiteout"),
        ([(member("../x"), b"")], "'..'"),
        ([(member("x", tarfile.CONTTYPE), b""), (member("y", b"V"), None)], "unsupported tar type"),
        ([(member("x", pax_headers={"uid": "-1"}), b"")], "out of range"),
        ([(member("x", pax_headers={"uid": "4294967295"}), b"")], "out of range"),
        ([(member("x", pax_headers={"mtime": "1e400"}), b"")], "mtime"),
    ],
    ids=["bare-whiteout", "climbing", "volume-header", "negative-uid", "uid-minus-one", "absurd-mtime"],
)
def test_hostile_members_are_refused_in_one_line(members, message):
    with pytest.raises(ArchiveError, match=message) as info:
        read(tar_bytes(*members))
    assert "\n" not in str(info.value)


def test_a_truncated_or_trailing_garbage_archive_is_refused():
    data = tar_bytes((member("a"), b"x" * 2000), (member("b"), b"y"))
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        end = tar.getmembers() and tar.offset  # where the end-of-archive blocks start
    with pytest.raises(ArchiveError):
        read(data[:1536])
    with pytest.raises(ArchiveError, match="corrupt tar header"):
        read(data[:end] + b"garbage" + bytes(2000))


def test_a_member_of_stream_size_is_stored_in_pieces_whole_or_refused_when_cut():
    """Members from STREAM_FROM bytes on go through put_blob_stream, not put_blob."""
    content = bytes(range(256)) * (STREAM_FROM // 256 + 1)
    store = MemStore()
    data = tar_bytes((member("big"), content))
    [entry] = read(data, store)
    assert store.read_blob(entry.oid) == content
    with pytest.raises(ArchiveError):
        read(data[: len(data) // 2])


def test_limits_stop_an_archive_early():
    data = tar_bytes(*[(member(f"f{i}"), b"z" * 100) for i in range(20)])
    with pytest.raises(ArchiveError, match="more than 5 entries"):
        read(data, limits=Limits(max_entries=5))
    with pytest.raises(ArchiveError, match="more than 4096 bytes"):
        read(data, limits=Limits(max_bytes=4096))


@pytest.mark.parametrize("kind", ["pax", "gnu-longname", "pax-chain", "sparse-1.0", "old-gnu-sparse"])
def test_extended_headers_are_bounded_before_they_are_read(kind):
    """tarfile reads an extended header whole: over 1 MiB (or over 8 before one member)
    is refused, whatever the limits; one of 4 KiB is read past."""
    from fixtures.archives import oversized_header

    with pytest.raises(ArchiveError, match="more than (1048576 bytes|8 extended headers)"):
        read(oversized_header(kind, 2 << 20))
    try:
        read(oversized_header(kind, 4096))
    except ArchiveError as exc:  # the fixture's sparse maps repeat one run: refused later, by _check_sparse
        assert "sparse map out of order" in str(exc)


@pytest.mark.parametrize(
    "compress",
    [lambda d: d, gzip.compress, lzma.compress, lambda d: zstandard.ZstdCompressor().compress(d)],
    ids=["plain", "gzip", "xz", "zstd"],
)
def test_compression_is_detected_and_the_uncompressed_stream_digested(compress):
    import hashlib

    data = tar_bytes((member("a"), b"content"))
    stream = tarlayer.decompressed(io.BytesIO(compress(data)), Limits())
    assert stream.read() == data
    assert stream.sha256.hexdigest() == hashlib.sha256(data).hexdigest() and stream.size == len(data)


@pytest.mark.parametrize("compress", [gzip.compress, lambda d: zstandard.ZstdCompressor().compress(d)], ids=["gzip", "zstd"])
def test_truncated_compressed_data_is_an_archive_error(compress):
    packed = compress(tar_bytes((member("a"), bytes(range(256)) * 64)))
    with pytest.raises(ArchiveError):
        tarlayer.decompressed(io.BytesIO(packed[: len(packed) // 2]), Limits()).drain()


# -- applying layers -------------------------------------------------------------------------------------


def test_whiteouts_hide_only_lower_layers():
    store = MemStore()
    tree = MutableTree.load(store, snapshot(store, {"/a/old": file(store), "/b/keep": file(store)}))
    layer = read(tar_bytes((member("a/new"), b"n"), (member("a/.wh..wh..opq"), b""), (member("b/.wh.keep"), b"")), store)
    tarlayer.apply_layer(tree, layer)
    assert sorted(tree.get(parts("/a")).children) == [b"new"] and tree.get(parts("/b")).children == {}


@pytest.mark.parametrize(
    "members, message",
    [
        ([(member("x", tarfile.LNKTYPE, linkname="missing"), None)], "missing entry"),
        ([(member("d/", tarfile.DIRTYPE), None), (member("x", tarfile.LNKTYPE, linkname="d"), None)], "directory"),
        ([(member("./", tarfile.SYMTYPE, linkname="/"), None)], "image root"),
        ([(member("f"), b""), (member("f/x"), b"")], "not a directory"),
    ],
)
def test_layers_that_cannot_apply_are_archive_errors(members, message):
    store = MemStore()
    with pytest.raises(ArchiveError, match=message):
        tarlayer.apply_layer(MutableTree.empty(store), read(tar_bytes(*members), store))


# -- writing, and reading back -------------------------------------------------------------------------------


def rich_snapshot(store) -> bytes:
    shared = file(store, b"linked", mode=0o4755, uid=1000, xattrs=(("security.capability", b"\x01\x00"),))
    return snapshot(store, {
        "/etc/passwd": file(store, b"root:x:0:0\n", mtime_ns=T0 + 123),
        "/etc/.git/config": file(store, b"[core]\n"),
        "/bin/sh": symlink(store, b"busybox"),
        "/bin/busybox": shared,
        "/bin/sh2": shared,
        "/dev/null": Inode(M.EntryMeta("c", 0o666, 0, 0, -5, rdev=(1, 3)), None),
        "/dev/loop0": Inode(M.EntryMeta("b", 0o660, 0, 6, T0, rdev=(7, 0)), None),
        "/run/fifo": Inode(M.EntryMeta("p", 0o600, 0, 0, T0), None),
        "/\udcffbin": file(store, b"not utf-8"),
        "/empty": directory(mode=0o1777, xattrs=(("user.x", b"y\n"),)),
    }, root=M.EntryMeta("d", 0o700, 0, 0, T0 + 1))


def tar_of(store, write, *args) -> bytes:
    out = io.BytesIO()
    with tarwrite.pax_stream(out) as tar:
        write(tarwrite.TarWriter(tar, store), *args)
    return out.getvalue()


def test_a_snapshot_written_as_tar_reads_back_as_the_same_tree():
    store = MemStore()
    tree = rich_snapshot(store)
    back = MutableTree.empty(store)
    tarlayer.apply_layer(back, read(tar_of(store, tarwrite.write_snapshot, tree), store, whiteouts=False))
    assert back.write(store) == tree


def test_sockets_are_counted_not_written():
    store = MemStore()
    tree = snapshot(store, {"/s": Inode(M.EntryMeta("s", 0o755, 0, 0, T0), None)})
    out = io.BytesIO()
    with tarwrite.pax_stream(out) as tar:
        writer = tarwrite.TarWriter(tar, store)
        tarwrite.write_snapshot(writer, tree)
    assert writer.sockets == 1 and writer.entries == 1  # just the root


# Small random rootfs changes: a layer applied to its parent gives the new tree.
_names = st.sampled_from(["a", "b", "c", ".wh", "\u00e9"])
_paths = st.lists(_names, min_size=1, max_size=3).map(lambda p: "/" + "/".join(p))
_kinds = st.sampled_from(["f", "f2", "l", "d", "d700", "p", "gone"])


def _apply(store, tree: MutableTree, path: str, kind: str, shared: Inode) -> None:
    try:
        if kind == "gone":
            tree.remove(parts(path))
        elif kind == "f":
            tree.put(parts(path), file(store, path.encode()))
        elif kind == "f2":
            tree.put(parts(path), shared)
        elif kind == "l":
            tree.put(parts(path), symlink(store, b"../" + path.encode()))
        elif kind == "p":
            tree.put(parts(path), Inode(M.EntryMeta("p", 0o600, 0, 0, T0), None))
        else:
            tree.put(parts(path), directory(mode=0o700 if kind == "d700" else 0o755))
    except Exception as exc:  # a path through a file or a symlink: not a change one can make
        if type(exc).__name__ != "PathError":
            raise


@settings(max_examples=60)
@given(st.lists(st.tuples(_paths, _kinds), max_size=6), st.lists(st.tuples(_paths, _kinds), min_size=1, max_size=6))
# A new member of an unchanged group brings its leader along as a new file: the group's
# other members must come too, or they stay linked to the old one (found by this test).
@example(before=[("/a/a", "f"), ("/a/b/b", "f2"), ("/b/b/b", "f2")],
         changes=[("/b/a", "f2"), ("/a/b/b", "f2"), ("/b/b/b", "f2")])
def test_a_layer_applied_to_its_parent_gives_the_child(before, changes):
    store = MemStore()
    shared = file(store, b"hardlinked")
    tree = MutableTree.empty(store)
    for path, kind in before:
        _apply(store, tree, path, kind, shared)
    old = tree.write(store)
    tree = MutableTree.load(store, old)
    for path, kind in changes:
        _apply(store, tree, path, kind, shared)
    new = tree.write(store)
    layer = tar_of(store, tarwrite.write_layer, old, new)
    result = MutableTree.load(store, old)
    tarlayer.apply_layer(result, read(layer, store))
    assert result.write(store) == new
