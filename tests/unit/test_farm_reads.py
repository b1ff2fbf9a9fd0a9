"""fs.farm.FarmReads: an export's file bytes read from the farm, each object checked
against its blob id before its first byte is used. An object edited in place (through a
``checkout -H`` link) is passed over, so the caller reads the pack; a good one, small or
big and sparse, comes through byte for byte, and no descriptor outlives the read."""

from __future__ import annotations

import os

import pytest

from layergit.errors import CorruptStore
from layergit.fs import farm as fs_farm
from layergit.store import meta as M
from layergit.store.rawobj import OBJ_BLOB, STREAM_FROM, object_id

MIB = 1 << 20
META = M.EntryMeta("f", 0o644, 0, 0, 0)


def _place(objects, data: bytes, meta: M.EntryMeta = META) -> bytes:
    """Put ``data`` in the farm under its entry's key; returns its blob id."""
    oid = object_id(OBJ_BLOB, data)
    key = fs_farm._key(oid, meta)
    os.makedirs(objects / key[:2], exist_ok=True)
    (objects / key[:2] / key[2:]).write_bytes(data)
    return oid


def _read(reader) -> bytes:
    out = b"".join(bytes(reader.read(MIB)) for _ in range(reader.size // MIB + 2))
    reader.finish()
    return out


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture
def farm(tmp_path):
    objects = tmp_path / "objects"
    objects.mkdir()
    reads = fs_farm.FarmReads(str(objects))
    yield objects, reads
    reads.close()


@pytest.mark.parametrize("size", [0, 100, STREAM_FROM - 1, STREAM_FROM + 3 * MIB + 7])
def test_a_good_object_comes_through(farm, size):
    objects, reads = farm
    data = bytearray(size)
    data[: min(size, MIB)] = os.urandom(min(size, MIB))  # the rest zeros: holes in a big one
    data[-min(size, 5):] = b"tail!"[: min(size, 5)]
    oid = _place(objects, bytes(data))
    reader = reads.open(oid, META)
    assert reader is not None and reader.size == size
    assert _read(reader) == bytes(data)


@pytest.mark.parametrize("size", [100, STREAM_FROM + MIB])
def test_an_object_edited_in_place_is_passed_over(farm, size):
    objects, reads = farm
    data = os.urandom(size)
    oid = _place(objects, data)
    key = fs_farm._key(oid, META)
    with open(objects / key[:2] / key[2:], "r+b") as f:  # as a -H checkout's owner could
        f.seek(size // 2)
        f.write(b"edited")
    before = _fds()
    assert reads.open(oid, META) is None
    assert _fds() == before


def test_other_metadata_missing_objects_and_non_files_are_passed_over(farm):
    objects, reads = farm
    oid = _place(objects, b"content\n")
    assert reads.open(oid, M.EntryMeta("f", 0o755, 0, 0, 0)) is None  # another key
    missing = object_id(OBJ_BLOB, b"nowhere\n")
    assert reads.open(missing, META) is None
    for i, kind in enumerate(["dir", "symlink"]):
        data = f"{kind} {i}\n".encode()
        oid = object_id(OBJ_BLOB, data)
        key = fs_farm._key(oid, META)
        os.makedirs(objects / key[:2], exist_ok=True)
        target = objects / key[:2] / key[2:]
        if kind == "dir":
            target.mkdir()
        else:
            (objects / "elsewhere").write_bytes(data)
            target.symlink_to(objects / "elsewhere")
        assert reads.open(oid, META) is None, kind


def test_a_big_object_is_held_open_only_until_the_next(tmp_path):
    objects = tmp_path / "objects"
    big = _place(objects, os.urandom(STREAM_FROM + 1))
    small = _place(objects, b"small\n")
    before = _fds()
    reads = fs_farm.FarmReads(str(objects))
    reader = reads.open(big, META)
    assert reader is not None and _fds() == before + 2  # the farm's directory and the object
    _read(reader)
    assert reads.open(small, META) is not None and _fds() == before + 1
    assert reads.open(big, META) is not None
    reads.close()
    assert _fds() == before


def test_a_big_object_changed_after_its_check_fails_the_read(farm):
    """The owner of a ``-H`` checkout racing an export: the object passed its first-pass
    check, then changed at the same size before it streamed. The second pass hashes it
    again, so the read fails instead of handing on bytes that are not the blob."""
    objects, reads = farm
    data = os.urandom(STREAM_FROM + MIB)
    oid = _place(objects, data)
    reader = reads.open(oid, META)
    assert reader is not None
    key = fs_farm._key(oid, META)
    with open(objects / key[:2] / key[2:], "r+b") as f:
        f.seek(len(data) - 10)
        f.write(b"raced!")
    with pytest.raises(CorruptStore, match="does not match its id"):
        _read(reader)
