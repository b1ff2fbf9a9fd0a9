"""Big objects in pieces: the pack writer's streaming add, the pack reader's streaming
inflate, and fs/content.py reading and writing files chunk by chunk with their holes."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from layergit.errors import LgError
from layergit.fs import content
from layergit.store import pack, packread
from layergit.store.rawobj import CHUNK, OBJ_BLOB, STREAM_FROM, object_id

from .memstore import MemStore

BIG = STREAM_FROM + 12345  # streamed, and not a whole number of chunks
PATTERN = os.urandom(1 << 16)


def big_content(zero_from: int = BIG // 2, zero_to: int = BIG // 2 + 3 * CHUNK) -> bytes:
    """Incompressible data with a run of zeros in the middle (a hole, once on disk)."""
    data = bytearray((PATTERN * (BIG // len(PATTERN) + 1))[:BIG])
    data[zero_from:zero_to] = bytes(zero_to - zero_from)
    return bytes(data)


def pieces(data: bytes, size: int = 777_777):
    """Chunks of an awkward size, as a reader of some other stream would give them."""
    for i in range(0, len(data), size):
        yield data[i: i + size]


def never(_oid: bytes) -> bool:
    return False


def verify_pack(path: str) -> set[str]:
    proc = subprocess.run(["git", "verify-pack", "-v", path[: -len(".pack")] + ".idx"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return {line.split()[0] for line in proc.stdout.splitlines() if len(line.split()) >= 5}


needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


@needs_git
def test_a_streamed_object_has_git_s_id_and_reads_back_in_pieces(tmp_path):
    data = big_content()
    writer = pack.PackWriter(str(tmp_path))
    oid = writer.add_stream(OBJ_BLOB, len(data), pieces(data), never)
    small = writer.add(OBJ_BLOB, b"small")
    path = writer.finish(fsync=False)
    assert oid == object_id(OBJ_BLOB, data)
    assert verify_pack(path) == {oid.hex(), small.hex()}
    obj_type, size, chunks = packread.PackReader(str(tmp_path)).open(oid)
    got = list(chunks)
    assert (obj_type, size) == (OBJ_BLOB, len(data)) and b"".join(got) == data
    assert len(got) > 1 and max(map(len, got)) <= CHUNK


@needs_git
def test_a_duplicate_is_cut_off_again(tmp_path):
    """Known to the store, or already in this pack: the record written is truncated away."""
    data = big_content()
    writer = pack.PackWriter(str(tmp_path))

    def size() -> int:
        writer._settle()  # the deflate thread writes every object, streamed ones too: wait for it
        writer._file.flush()
        return os.path.getsize(writer._tmp)

    writer.add(OBJ_BLOB, b"before")
    before = size()
    oid = object_id(OBJ_BLOB, data)
    assert writer.add_stream(OBJ_BLOB, len(data), pieces(data), lambda o: o == oid) == oid
    assert oid not in writer
    assert size() == before
    writer.add_stream(OBJ_BLOB, len(data), pieces(data), never)
    once = size()
    assert once > before
    assert writer.add_stream(OBJ_BLOB, len(data), pieces(data), never) == oid
    assert size() == once and len(writer) == 2
    assert verify_pack(writer.finish(fsync=False)) == {oid.hex(), object_id(OBJ_BLOB, b"before").hex()}


def failing(data: bytes):
    yield data[:CHUNK]
    raise LgError("the source went away")


@needs_git
@pytest.mark.parametrize("source, size", [
    (lambda d: pieces(d[:-1]), BIG),       # shorter than announced
    (lambda d: pieces(d + b"x"), BIG),     # longer
    (failing, BIG),                        # the reader fails
], ids=["short", "long", "error"])
def test_a_stream_that_goes_wrong_leaves_a_well_formed_pack(tmp_path, source, size):
    data = big_content()
    writer = pack.PackWriter(str(tmp_path))
    kept = writer.add(OBJ_BLOB, b"kept")
    with pytest.raises((ValueError, LgError)):
        writer.add_stream(OBJ_BLOB, size, source(data), never)
    after = writer.add(OBJ_BLOB, b"after")
    assert verify_pack(writer.finish(fsync=False)) == {kept.hex(), after.hex()}


@needs_git
def test_a_chunk_that_could_change_under_the_deflate_thread_is_refused(tmp_path):
    """The deflate thread reads a chunk after add_stream has moved on: a writable
    buffer (reused by its reader) could be deflated with other bytes than were hashed."""
    data = big_content()
    writer = pack.PackWriter(str(tmp_path))
    kept = writer.add(OBJ_BLOB, b"kept")
    rest = bytearray(data[CHUNK:])
    for changeable in (rest, memoryview(rest), memoryview(rest).toreadonly()):  # read-only is not unchanging
        with pytest.raises(TypeError, match="bytes or views of bytes"):
            writer.add_stream(OBJ_BLOB, len(data), [data[:CHUNK], changeable], never)
    views = [memoryview(data)[i:i + CHUNK] for i in range(0, len(data), CHUNK)]  # views of bytes are fine
    oid = writer.add_stream(OBJ_BLOB, len(data), views, never)
    assert verify_pack(writer.finish(fsync=False)) == {kept.hex(), oid.hex()}


@needs_git
def test_a_streamed_record_whose_ending_never_came_is_cut_off_by_what_follows(tmp_path, monkeypatch):
    """A second Ctrl-C can land while add_stream queues the cut of a record it gave up:
    the record is left begun. What the pack writes next (a batch, another stream, the
    finish) cuts it off first, so no object is indexed where the file does not hold it."""
    data = big_content()
    writer = pack.PackWriter(str(tmp_path))
    kept = writer.add(OBJ_BLOB, b"kept")
    real_submit = pack.Background.submit

    def lost_cut(self, job):
        if getattr(job, "__name__", "") == "cut":
            raise KeyboardInterrupt  # the ending is not queued
        real_submit(self, job)

    monkeypatch.setattr(pack.Background, "submit", lost_cut)
    with pytest.raises(KeyboardInterrupt):
        writer.add_stream(OBJ_BLOB, len(data), failing(data), never)
    monkeypatch.undo()
    after = [writer.add(OBJ_BLOB, b"after %d" % i * 5000) for i in range(400)]  # batches for the thread
    oid = writer.add_stream(OBJ_BLOB, len(data), pieces(data), never)
    assert verify_pack(writer.finish(fsync=False)) == {kept.hex(), oid.hex(), *(a.hex() for a in after)}


def test_a_failure_of_the_deflate_thread_inside_a_record_is_raised_once(tmp_path, monkeypatch):
    """A full disk while the thread writes a streamed record: the failure comes back to
    the caller as it was (not chained to another), and the pack aborts to nothing."""
    import errno

    data = big_content()
    writer = pack.PackWriter(str(tmp_path))
    writes = []

    def full(self, chunk):
        writes.append(len(chunk))
        if len(writes) == 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self._append(self._deflate.compress(chunk))

    monkeypatch.setattr(pack._Streamed, "more", full)
    with pytest.raises(OSError) as raised:
        writer.add_stream(OBJ_BLOB, len(data), pieces(data, CHUNK), never)
        writer.finish(fsync=False)
    assert raised.value.errno == errno.ENOSPC and raised.value.__context__ is None
    writer.abort()
    assert os.listdir(tmp_path) == []


def test_a_corrupt_streamed_object_fails_while_it_is_read(tmp_path):
    data = big_content()
    writer = pack.PackWriter(str(tmp_path))
    oid = writer.add_stream(OBJ_BLOB, len(data), pieces(data), never)
    path = writer.finish(fsync=False)
    os.chmod(path, 0o644)
    with open(path, "r+b") as f:
        f.seek(os.path.getsize(path) // 2)
        f.write(b"\xff" * 64)
    with pytest.raises(packread.InflateError):
        for _ in packread.PackReader(str(tmp_path)).open(oid)[2]:
            pass


def sparse_file(path, data: bytes) -> None:
    """``data`` written with its all-zero chunks left as holes."""
    with open(path, "wb") as f:
        for i in range(0, len(data), CHUNK):
            piece = data[i: i + CHUNK]
            if piece.count(0) == len(piece):
                f.seek(len(piece), os.SEEK_CUR)
            else:
                f.write(piece)
        f.truncate(len(data))


def test_a_sparse_file_reads_back_whole_with_its_holes_as_zeros(tmp_path):
    data = big_content(CHUNK, 4 * CHUNK) + bytes(3 * CHUNK)  # a hole inside and one at the end
    sparse_file(tmp_path / "f", data)
    fd = os.open(tmp_path / "f", os.O_RDONLY)
    try:
        got = b"".join(bytes(c) for c in content.file_chunks(fd, len(data), b"f"))
        assert got == data
        assert content.file_blob_id(fd, b"f") == object_id(OBJ_BLOB, data)
    finally:
        os.close(fd)


def test_a_file_that_changes_size_while_read_is_an_error(tmp_path):
    data = big_content()
    (tmp_path / "f").write_bytes(data)
    fd = os.open(tmp_path / "f", os.O_RDWR)
    try:
        chunks = content.file_chunks(fd, len(data), b"f")
        next(chunks)
        os.ftruncate(fd, len(data) // 2)
        with pytest.raises(LgError, match="changed size while being read"):
            for _ in chunks:
                pass
        os.ftruncate(fd, len(data) + 1)
        with pytest.raises(LgError, match="changed size while being read"):
            for _ in content.file_chunks(fd, len(data), b"f"):
                pass
    finally:
        os.close(fd)


def test_a_small_file_that_grows_while_read_is_refused_not_read_on(tmp_path):
    """A process appending to a file as lg reads it (a log in a committed directory, or a
    file fed on purpose) is refused as soon as the read passes the size lg opened it
    with: memory stays bounded by that size."""
    path = tmp_path / "log"
    path.write_bytes(b"x" * 100)
    read = []

    class Appender:  # stands where the farm deposit does: between the open and the read
        def blob(self, writer, meta, size, whole, pieces):
            with open(path, "ab") as f:
                f.write(b"y" * (1 << 20))
            read.append(whole)
            return writer.put_blob(whole())

    dirfd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with pytest.raises(LgError, match="log changed size while being read"):
            content.put_file(MemStore(), dirfd, b"log", os.stat(path), Appender(), lambda xattrs: None)
    finally:
        os.close(dirfd)
    assert read  # the read happened after the append


class ChunkStore:
    """Hands a blob out in CHUNK pieces, as the store does for a big one."""

    def __init__(self, data: bytes):
        self.data = data

    def open_blob(self, _oid: bytes):
        return len(self.data), pieces(self.data, CHUNK)


def test_written_blobs_keep_their_holes(tmp_path):
    data = big_content(CHUNK, 5 * CHUNK) + bytes(2 * CHUNK + 5)
    with open(tmp_path / "out", "wb") as f:
        assert content.write_blob(ChunkStore(data), b"", f.fileno()) == len(data)
    assert (tmp_path / "out").read_bytes() == data
    st = os.stat(tmp_path / "out")
    assert st.st_blocks * 512 <= len(data) - 5 * CHUNK  # the 4 + 2 chunks of zeros are holes


def test_the_blob_reader_gives_exact_reads_and_drains(tmp_path):
    data = big_content()
    reader = content.BlobReader(len(data), pieces(data, CHUNK))
    assert reader.size == len(data)
    assert len(reader.read(10)) == 10 and len(reader.read(CHUNK)) == CHUNK
    reader.finish()
    assert reader.read(5) == b""
