"""The fast pack reader against a damaged index or pack, and the store's verifying reads.

The fast reader trusts the .idx to say where an object is; Store.verifying() is what
checkout and the materialised cache read through, and it checks every object against
its id. Packs are written by store/pack.py into a bare directory: no libgit2 here.
"""

from __future__ import annotations

import os
import struct

import pytest

from layergit.errors import CorruptStore
from layergit.store import pack, packread
from layergit.store.rawobj import OBJ_BLOB, OBJ_TREE
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
