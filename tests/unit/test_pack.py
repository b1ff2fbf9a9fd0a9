"""Packs written by store/pack.py and read back by store/packread.py, in a temporary directory."""

from __future__ import annotations

import os
import shutil
import subprocess
import types

import pytest

from layergit.store import pack, packread
from layergit.store.rawobj import OBJ_BLOB, OBJ_COMMIT, OBJ_TREE, object_id


def written(tmp_path, objects) -> tuple[str, dict[bytes, tuple[int, bytes]]]:
    writer = pack.PackWriter(str(tmp_path))
    ids = {writer.add(t, d): (t, d) for t, d in objects}
    path = writer.finish(fsync=False)
    assert path is not None
    return path, ids


OBJECTS = [
    (OBJ_BLOB, b""),
    (OBJ_BLOB, b"hello\n"),
    (OBJ_TREE, b""),
    (OBJ_COMMIT, b"tree " + b"0" * 40 + b"\n\nm\n"),
    (OBJ_BLOB, b"x" * 15),
    (OBJ_BLOB, b"x" * 16),
    (OBJ_BLOB, os.urandom(4095)),  # zlib below this size
    (OBJ_BLOB, os.urandom(4096)),  # ISA-L from here on
    (OBJ_BLOB, b"compressible " * 100_000),
]


def test_every_object_reads_back_with_its_type_and_size(tmp_path):
    _, ids = written(tmp_path, OBJECTS)
    reader = packread.PackReader(str(tmp_path))
    for oid, (obj_type, data) in ids.items():
        assert oid == object_id(obj_type, data)
        assert reader.read(oid) == (obj_type, data)
        assert reader.header(oid) == (obj_type, len(data))
    assert reader.read(b"\0" * 20) is None and reader.header(b"\xff" * 20) is None


def test_the_pack_is_installed_read_only_with_its_index_and_no_temporary_file(tmp_path):
    path, _ = written(tmp_path, OBJECTS[:2])
    base = path[: -len(".pack")]
    assert sorted(os.listdir(tmp_path)) == sorted([os.path.basename(base) + ".idx", os.path.basename(path)])
    assert all(os.stat(base + ext).st_mode & 0o777 == 0o444 for ext in (".idx", ".pack"))


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_git_verifies_the_pack_and_its_index(tmp_path):
    path, ids = written(tmp_path, OBJECTS)
    proc = subprocess.run(["git", "verify-pack", "-v", path[: -len(".pack")] + ".idx"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    listed = {line.split()[0] for line in proc.stdout.splitlines() if len(line.split()) >= 5}
    assert listed == {oid.hex() for oid in ids}


def test_an_object_is_packed_once(tmp_path):
    writer = pack.PackWriter(str(tmp_path))
    first = writer.add(OBJ_BLOB, b"same")
    assert writer.add(OBJ_BLOB, b"same") == first and len(writer) == 1 and first in writer
    writer.abort()


def test_an_empty_or_aborted_pack_leaves_nothing(tmp_path):
    assert pack.PackWriter(str(tmp_path)).finish() is None
    writer = pack.PackWriter(str(tmp_path))
    writer.add(OBJ_BLOB, b"gone")
    writer.abort()
    assert os.listdir(tmp_path) == []


def test_a_pack_added_later_is_found(tmp_path):
    reader = packread.PackReader(str(tmp_path))
    assert reader.read(object_id(OBJ_BLOB, b"late")) is None
    _, ids = written(tmp_path, [(OBJ_BLOB, b"late")])
    assert reader.read(next(iter(ids))) == (OBJ_BLOB, b"late")


def test_a_missing_pack_directory_reads_as_empty(tmp_path):
    assert packread.PackReader(str(tmp_path / "nowhere")).read(b"\1" * 20) is None


@pytest.mark.parametrize("size", [0, 1, 15, 16, 127, 2047, 2048, 1 << 20, (1 << 35) + 3])
@pytest.mark.parametrize("obj_type", [OBJ_COMMIT, OBJ_TREE, OBJ_BLOB, 6, 7])
def test_object_headers_decode_to_what_was_encoded(obj_type, size):
    header = pack._object_header(obj_type, size)
    assert packread.parse_header(header + b"data") == (obj_type, size, len(header))


def _patch(path: str, offset: int, data: bytes) -> None:
    os.chmod(path, 0o644)
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(data)


def test_deltas_are_left_to_libgit2(tmp_path):
    """A deltified object (after git gc) reads as None: the caller falls back to libgit2."""
    path, ids = written(tmp_path, [(OBJ_BLOB, b"base")])
    with open(path, "rb") as f:
        first = f.read()[12]
    _patch(path, 12, bytes([(first & 0x8F) | (6 << 4)]))  # OFS_DELTA
    reader = packread.PackReader(str(tmp_path))
    oid = next(iter(ids))
    assert reader.read(oid) is None and reader.header(oid) is None


@pytest.mark.parametrize("data", [b"small object", os.urandom(8192)], ids=["zlib", "isal"])
def test_a_corrupt_deflate_stream_raises_inflate_error(tmp_path, data):
    path, ids = written(tmp_path, [(OBJ_BLOB, data)])
    header = len(pack._object_header(OBJ_BLOB, len(data)))
    _patch(path, 12 + header, b"\xff\xff\xff\xff")
    with pytest.raises(packread.PackReader.InflateError):
        packread.PackReader(str(tmp_path)).read(next(iter(ids)))


def test_an_index_of_another_version_is_ignored(tmp_path):
    path, ids = written(tmp_path, [(OBJ_BLOB, b"v1 index")])
    _patch(path[: -len(".pack")] + ".idx", 4, b"\0\0\0\x03")
    assert packread.PackReader(str(tmp_path)).read(next(iter(ids))) is None


def test_a_pack_gone_from_the_directory_is_forgotten_at_the_next_refresh(tmp_path):
    """gc may repack and prune: a reader that kept a removed pack would vouch for objects
    the store no longer has, and a writer would then skip writing them."""
    path, ids = written(tmp_path, OBJECTS[:3])
    reader = packread.PackReader(str(tmp_path))
    reader.refresh()
    assert all(reader.contains(oid) for oid in ids)
    base = path[:-len(".pack")] if path.endswith(".pack") else path
    for suffix in (".idx", ".pack"):
        os.unlink(base + suffix)
    written(tmp_path, [(OBJ_BLOB, b"another pack\n")])
    assert reader.refresh()
    assert not any(reader.contains(oid) for oid in ids)


def _many(count: int, size: int) -> list[tuple[int, bytes]]:
    """Enough distinct objects to fill several of the deflate thread's batches."""
    return [(OBJ_BLOB, i.to_bytes(4, "big") * (size // 4)) for i in range(count)]


def test_objects_deflated_in_the_background_land_whole_and_in_order_with_streams(tmp_path):
    """Whole objects go to the deflate thread in batches; a streamed object in between
    waits for those before it; git verifies every one, and each reads back."""
    from layergit.store.rawobj import CHUNK

    objects = _many(3 * (pack._BATCH_BYTES // 4096) + 7, 4096)
    writer = pack.PackWriter(str(tmp_path))
    ids = {writer.add(t, d): (t, d) for t, d in objects[:len(objects) // 2]}
    assert writer._deflater is not None, "the first batches went to the thread"
    big = bytes(range(256)) * (3 * CHUNK // 256)  # (incompressible streams are read as big files)
    streamed = writer.add_stream(OBJ_BLOB, len(big), (big[i:i + CHUNK] for i in range(0, len(big), CHUNK)),
                                 lambda _oid: False)
    ids[streamed] = (OBJ_BLOB, big)
    ids.update({writer.add(t, d): (t, d) for t, d in objects[len(objects) // 2:]})
    path = writer.finish(fsync=False)
    proc = subprocess.run(["git", "verify-pack", "-v", path[: -len(".pack")] + ".idx"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert {line.split()[0] for line in proc.stdout.splitlines() if len(line.split()) >= 5} == {o.hex() for o in ids}
    reader = packread.PackReader(str(tmp_path))
    assert all(reader.read(oid) == (t, d) for oid, (t, d) in ids.items())


def test_an_aborted_pack_stops_its_deflate_thread_and_leaves_nothing(tmp_path):
    writer = pack.PackWriter(str(tmp_path))
    for t, d in _many(2 * (pack._BATCH_BYTES // 4096), 4096):
        writer.add(t, d)
    deflater = writer._deflater
    assert deflater is not None
    writer.abort()
    assert deflater.stopped and os.listdir(tmp_path) == []
