"""The fast pack reader against a damaged index or pack, and the store's verifying reads.

The fast reader trusts the .idx to say where an object is; Store.verifying() is what
checkout and the materialised cache read through, and it checks every object against
its id. Packs are written by store/pack.py into a bare directory: no libgit2 here.
"""

from __future__ import annotations

import os
import struct
import zlib

import pytest

from layergit.errors import CorruptStore
from layergit.store import meta as M
from layergit.store import pack, packread
from layergit.store.rawobj import OBJ_BLOB, OBJ_TREE, STREAM_FROM
from layergit.store.store import Store

OBJECTS = [(OBJ_BLOB, b"root:x:0:0:root:/root:/bin/sh\n"), (OBJ_BLOB, b"root:x:0:\n"),
           (OBJ_TREE, b""), (OBJ_BLOB, os.urandom(9000))]


def store_with_pack(tmp_path) -> tuple[Store, str, list[bytes]]:
    pack_dir = tmp_path / "objects" / "pack"
    pack_dir.mkdir(parents=True)
    writer = pack.PackWriter(str(pack_dir))
    ids = [writer.add(t, d) for t, d in OBJECTS]
    path = writer.finish(fsync=False)
    assert path is not None
    return Store(str(tmp_path)), path[: -len(".pack")] + ".idx", ids


def patch(path: str, at: int, data: bytes) -> None:
    os.chmod(path, 0o644)
    with open(path, "r+b") as f:
        f.seek(at)
        f.write(data)


def offset_at(idx: str, oid: bytes) -> int:
    """Where ``oid``'s 32-bit offset is in a version 2 index."""
    with open(idx, "rb") as f:
        data = f.read()
    count = struct.unpack_from(">I", data, 8 + 255 * 4)[0]
    ids = [data[1032 + 20 * i: 1052 + 20 * i] for i in range(count)]
    return 1032 + 24 * count + 4 * ids.index(oid)


def swap(idx: str, a: bytes, b: bytes) -> None:
    with open(idx, "rb") as f:
        data = f.read()
    at_a, at_b = offset_at(idx, a), offset_at(idx, b)
    patch(idx, at_a, data[at_b: at_b + 4])
    patch(idx, at_b, data[at_a: at_a + 4])


def test_verifying_reads_return_every_object(tmp_path):
    store, _, ids = store_with_pack(tmp_path)
    checked = store.verifying()
    assert [checked.read(oid) for oid in ids] == OBJECTS


def test_swapped_offsets_are_caught_by_the_verifying_store_only(tmp_path):
    """The attack: each id now points at the other's data. The plain store (every
    lg run's config read) still trusts the index; the verifying one names the object."""
    store, idx, (passwd, group, *_) = store_with_pack(tmp_path)
    swap(idx, passwd, group)
    assert store.read(passwd) == OBJECTS[1]
    checked = store.verifying()
    for oid in (passwd, group):
        with pytest.raises(CorruptStore, match=f"object {oid.hex()} is corrupt in the store: its content"):
            checked.read(oid)
    with pytest.raises(CorruptStore, match=passwd.hex()):
        checked.read_blob(passwd)


def test_streamed_blobs_are_checked_in_any_store(tmp_path):
    """open_blob (a checkout's files, an export's) hashes what it passes on and fails at
    the end, with the same line, whether or not the store is the verifying one."""
    store, idx, (passwd, group, *_) = store_with_pack(tmp_path)
    swap(idx, passwd, group)
    for reader in (store, store.verifying()):
        _, chunks = reader.open_blob(passwd)
        with pytest.raises(CorruptStore, match=f"object {passwd.hex()} is corrupt in the store: its content"):
            b"".join(chunks)


def test_verifying_is_a_view_sharing_the_reader(tmp_path):
    store, _, ids = store_with_pack(tmp_path)
    checked = store.verifying()
    assert checked._packs is store._packs and checked.path == store.path
    assert not store._verify and checked._verify


def test_an_index_pointing_outside_its_pack_is_not_followed(tmp_path):
    """An offset past the pack's end was an IndexError ("internal error"); it is now the
    reader's ValueError (the store falls back to libgit2, which reports it), and the
    header answers None."""
    _, idx, (passwd, *_) = store_with_pack(tmp_path)
    patch(idx, offset_at(idx, passwd), struct.pack(">I", 0x7FFFFFF0))
    reader = packread.PackReader(os.path.dirname(idx))
    with pytest.raises(ValueError, match="outside its pack"):
        reader.read(passwd)
    assert reader.header(passwd) is None


@pytest.mark.parametrize("damage", ["truncated", "trailer"])
def test_a_pack_that_is_not_its_index_s_is_left_alone(tmp_path, damage):
    """A pack cut short, or with another checksum than its index records, is not read
    at all by the fast reader: libgit2 refuses it too, so its objects read as missing."""
    _, idx, ids = store_with_pack(tmp_path)
    pack_path = idx[: -len(".idx")] + ".pack"
    if damage == "truncated":
        os.chmod(pack_path, 0o644)
        os.truncate(pack_path, os.path.getsize(pack_path) // 2)
    else:
        with open(pack_path, "rb") as f:
            last = f.read()[-1]
        patch(pack_path, os.path.getsize(pack_path) - 1, bytes([last ^ 0xFF]))
    reader = packread.PackReader(os.path.dirname(idx))
    assert all(reader.read(oid) is None and reader.header(oid) is None for oid in ids)


def test_a_size_that_runs_off_the_pack_is_the_reader_s_valueerror(tmp_path):
    """An object's size varint whose bytes all have their high bit set, to the pack's
    end: IndexError escaped open() ("internal error"); it is the reader's ValueError,
    which the store turns into libgit2's report, and the header answers None."""
    _, idx, (passwd, *_) = store_with_pack(tmp_path)
    pack_path = idx[: -len(".idx")] + ".pack"
    end = os.path.getsize(pack_path)
    patch(pack_path, end - 21, b"\xff" * 21)  # the last object byte and a trailer of 0xff
    patch(idx, os.path.getsize(idx) - 40, b"\xff" * 20)  # the index's copy of that trailer
    patch(idx, offset_at(idx, passwd), struct.pack(">I", end - 21))
    reader = packread.PackReader(os.path.dirname(idx))
    with pytest.raises(ValueError, match="runs off the end"):
        reader.open(passwd)
    assert reader.header(passwd) is None


def loose(store: Store, header: bytes, content: bytes, oid: bytes = b"\x5a" * 20) -> bytes:
    """A loose object file written as a hostile remote may: any header, any content, any id."""
    folder = os.path.join(store.path, "objects", oid.hex()[:2])
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, oid.hex()[2:]), "wb") as f:
        f.write(zlib.compress(header + content, 1))
    return oid


def test_a_loose_blob_longer_than_its_header_stops_at_the_announced_size(tmp_path):
    """The attack: a loose object of a few hundred KB whose header announces 9 MiB and
    which inflates to 64 MiB. The pieces stop, and CorruptStore is raised, as soon as
    more than 9 MiB arrive: a checkout never writes the other 55."""
    store, _, _ = store_with_pack(tmp_path)
    announced = 9 << 20
    oid = loose(store, b"blob %d\0" % announced, b"x" * (64 << 20))
    size, chunks = store.open_blob(oid)
    assert size == announced
    passed = 0
    with pytest.raises(CorruptStore, match=f"more than the {announced} bytes its header announces"):
        for chunk in chunks:
            passed += len(chunk)
    assert passed <= announced


def test_a_loose_header_is_read_by_itself(tmp_path):
    """Only the header of a loose object is inflated to decide whether to stream it."""
    store, _, _ = store_with_pack(tmp_path)
    big = loose(store, b"blob %d\0" % STREAM_FROM, os.urandom(STREAM_FROM))
    small = loose(store, b"blob 5\0", b"hello", b"\x5b" * 20)
    assert store._loose(small) is None  # small: libgit2 reads it whole
    kind, size, chunks = store._loose(big)
    assert (kind, size) == (OBJ_BLOB, STREAM_FROM) and sum(map(len, chunks)) == STREAM_FROM


def write(path, data: bytes) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def test_a_symbolic_ref_loop_is_corrupt_not_a_recursion(tmp_path):
    """A ref that points at itself (or a ring of them) stops after git's five hops."""
    store, _, (passwd, *_) = store_with_pack(tmp_path)
    write(os.path.join(store.path, "refs/heads/self"), b"ref: refs/heads/self\n")
    write(os.path.join(store.path, "refs/heads/a"), b"ref: refs/heads/b\n")
    write(os.path.join(store.path, "refs/heads/b"), b"ref: refs/heads/a\n")
    for name in ("refs/heads/self", "refs/heads/a"):
        with pytest.raises(CorruptStore, match=f"ref {name} is a chain of more than 5 symbolic refs"):
            store.ref(name)
    write(os.path.join(store.path, "refs/heads/real"), passwd.hex().encode() + b"\n")
    write(os.path.join(store.path, "refs/heads/to-real"), b"ref: refs/heads/real\n")
    assert store.ref("refs/heads/to-real") == passwd


@pytest.mark.parametrize("line", [b"not-hex refs/heads/x\n", b"abcd refs/heads/x\n", b"\xff\xfe refs/heads/x\n"])
def test_a_packed_refs_line_that_does_not_parse_names_the_file(tmp_path, line):
    store, _, (passwd, *_) = store_with_pack(tmp_path)
    write(os.path.join(store.path, "packed-refs"),
          b"# pack-refs with: peeled fully-peeled sorted\n" + passwd.hex().encode() + b" refs/heads/ok\n" + line)
    with pytest.raises(CorruptStore, match="packed-refs has a line that is not an object id"):
        store.refs("refs/heads/")


@pytest.mark.parametrize("target, why", [(b"", "is empty"), (b"etc\0/passwd", "holds a NUL byte")])
def test_a_symlink_target_no_symlink_can_have_is_corrupt(tmp_path, target, why):
    """symlink(2) refuses an empty target and a NUL ends one early: the store is damaged."""
    pack_dir = tmp_path / "objects" / "pack"
    pack_dir.mkdir(parents=True)
    writer = pack.PackWriter(str(pack_dir))
    bad, good = writer.add(OBJ_BLOB, target), writer.add(OBJ_BLOB, b"../etc/passwd")
    writer.finish(fsync=False)
    store = Store(str(tmp_path))
    with pytest.raises(CorruptStore, match=f"symlink target {bad.hex()} {why}"):
        M.read_link_target(store, bad)
    assert M.read_link_target(store, good) == b"../etc/passwd"
