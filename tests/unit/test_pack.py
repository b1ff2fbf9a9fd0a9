"""Packs written by store/pack.py and read back by store/packread.py, in a temporary directory."""

from __future__ import annotations

import errno
import os
import re
import shutil
import subprocess
import threading
import time
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


def test_a_delta_whose_base_is_not_before_it_is_refused(tmp_path):
    """An OFS_DELTA pointing at itself or past its pack's start (a damaged or hostile
    pack) is not followed: read raises ValueError, on which the store asks libgit2 (which
    says what is wrong), and header answers None."""
    path, ids = written(tmp_path, [(OBJ_BLOB, b"base")])
    with open(path, "rb") as f:
        first = f.read()[12]
    _patch(path, 12, bytes([(first & 0x8F) | (6 << 4)]))  # OFS_DELTA, its "distance" the data's first byte
    reader = packread.PackReader(str(tmp_path))
    oid = next(iter(ids))
    with pytest.raises(ValueError, match="not an earlier object"):
        reader.read(oid)
    assert reader.header(oid) is None


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


def _dirty_pages(path: str) -> int:
    """The dirty pages of a file, from Linux's cachestat (6.5): what the kernel, not the
    writer, says of them. Skips where there is no such call (an older kernel, a seccomp
    filter) or no write-back at all (tmpfs: its pages are never dirty)."""
    import ctypes

    fs_type = subprocess.run(["stat", "-f", "-c", "%T", path], capture_output=True, text=True, check=True).stdout
    if fs_type.strip() in ("tmpfs", "ramfs"):
        pytest.skip(f"{path} is on {fs_type.strip()}, which writes nothing back")
    libc = ctypes.CDLL(None, use_errno=True)
    span = (ctypes.c_uint64 * 2)(0, 0)  # offset, length (0: to the end)
    stat = (ctypes.c_uint64 * 5)()  # cache, dirty, writeback, evicted, recently evicted
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.syscall(451, fd, span, stat, 0) != 0:
            err = ctypes.get_errno()
            if err in (errno.ENOSYS, errno.EPERM):
                pytest.skip(f"no cachestat here ({os.strerror(err)}): Linux 6.5 has it")
            raise OSError(err, "cachestat")
    finally:
        os.close(fd)
    return stat[1]


def test_a_big_pack_goes_to_the_disk_as_it_grows_not_all_at_its_fsync(tmp_path):
    """finish's fsync must not write a pulled image's whole pack at the end: the disk
    writes are started every _WRITE_BACK_BYTES, where a batch of deflated objects or a
    streamed object ends, so at most the last stretch is still dirty (24 MiB, all dirty
    without it)."""
    from layergit.store.rawobj import CHUNK

    most = (pack._WRITE_BACK_BYTES + (2 << 20)) // os.sysconf("SC_PAGE_SIZE")  # a stretch and a batch
    writer = pack.PackWriter(str(tmp_path))
    try:
        for _ in range(3 * pack._WRITE_BACK_BYTES // (1 << 20)):
            writer.add(OBJ_BLOB, os.urandom(1 << 20))  # incompressible: the pack grows as much
        writer.pending()  # written whole, the deflate thread stopped
        (tmp,) = os.listdir(tmp_path)
        assert _dirty_pages(str(tmp_path / tmp)) <= most
        big = os.urandom(3 * pack._WRITE_BACK_BYTES)
        writer.add_stream(OBJ_BLOB, len(big), (big[i:i + CHUNK] for i in range(0, len(big), CHUNK)),
                          lambda _oid: False)
        writer.pending()  # the deflate thread writes a streamed object too: wait for it
        assert _dirty_pages(str(tmp_path / tmp)) <= most, "after the streamed object"
    finally:
        writer.abort()


def test_an_aborted_pack_stops_its_deflate_thread_and_leaves_nothing(tmp_path):
    writer = pack.PackWriter(str(tmp_path))
    for t, d in _many(2 * (pack._BATCH_BYTES // 4096), 4096):
        writer.add(t, d)
    deflater = writer._deflater
    assert deflater is not None
    writer.abort()
    assert deflater.stopped and os.listdir(tmp_path) == []


# -- deltas: what git gc and fetches leave in a store ------------------------------------


@pytest.fixture(scope="module")
def deltified(tmp_path_factory):
    """A bare repository that git itself repacked with deltas: twenty versions of a
    config, a text file and their trees, chains up to 20 deep (pack.depth), a REF_DELTA
    pack beside the OFS_DELTA one. Returns (objects dir, {id: (type, data)} as git says)."""
    top = tmp_path_factory.mktemp("deltas")
    work = top / "work"
    work.mkdir()
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@t", GIT_CONFIG_NOSYSTEM="1", HOME=str(top))

    def git(*args, cwd=work, **kw):
        return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, **kw).stdout

    git("init", "-q")
    lines = [f"line {n} of a file that changes a little each version\n" for n in range(400)]
    for version in range(20):  # changes pile up: each version is nearest its neighbours, so chains form
        (work / "config.json").write_text('{"Labels": {"v": "%d"}, "Env": ["A=1"], "Cmd": ["sh"]}\n' % version)
        lines[version * 7] = f"LINE {version} was changed in this version\n"
        lines.append(f"and a line added by version {version}\n")
        (work / "text").write_text("".join(lines))
        git("add", "-A")
        git("commit", "-q", "-m", f"version {version}")
    git("repack", "-adfq", "--depth=50", "--window=50")
    bare = top / "ref-delta"
    git("clone", "-q", "--bare", str(work), str(bare), cwd=top)  # a second pack, by index-pack
    listing = git("cat-file", "--batch-all-objects", "--batch-check=%(objectname) %(objecttype)", text=True)
    kinds = {"blob": OBJ_BLOB, "tree": OBJ_TREE, "commit": OBJ_COMMIT}
    objects = {}
    for line in listing.splitlines():
        name, kind = line.split()
        objects[bytes.fromhex(name)] = (kinds[kind], git("cat-file", kind, name))
    packs = work / ".git" / "objects" / "pack"
    verify = git("verify-pack", "-v", *map(str, packs.glob("*.idx")), text=True)
    longest = max(int(n) for n in re.findall(r"chain length = (\d+):", verify))
    assert longest >= 5, verify[-400:]  # deltas on deltas are there to read
    return str(packs), objects


def test_a_repacked_store_reads_whole_and_deltified_objects_as_git_does(deltified):
    packs, objects = deltified
    reader = packread.PackReader(packs)
    for oid, (obj_type, data) in objects.items():
        assert reader.read(oid) == (obj_type, data), oid.hex()
        assert reader.header(oid) == (obj_type, len(data)), oid.hex()
        got = reader.open(oid)
        assert got is not None and (got[0], got[1], b"".join(got[2])) == (obj_type, len(data), data)


def test_a_delta_chain_longer_than_the_reader_follows_is_left_to_libgit2(deltified, monkeypatch):
    """Past _CHAIN_MAX (and in a REF_DELTA loop a hostile pack could hold) the reader
    answers None, and the store reads the object through libgit2 instead."""
    packs, objects = deltified
    monkeypatch.setattr(packread, "_CHAIN_MAX", 1)
    answers = {oid: packread.PackReader(packs).read(oid) for oid in objects}  # no bases kept between
    assert any(answer is None for answer in answers.values())  # chains of 2 and more
    for oid, answer in answers.items():
        assert answer is None or answer == objects[oid]
        assert packread.PackReader(packs).header(oid) in (None, (objects[oid][0], len(objects[oid][1])))


def _delta(source: int, target: int, *ops: bytes) -> bytes:
    def size(n: int) -> bytes:
        out = bytearray()
        while True:
            out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
            n >>= 7
            if not n:
                return bytes(out)

    return size(source) + size(target) + b"".join(ops)


@pytest.mark.parametrize("delta, why", [
    (_delta(5, 3, b"\x91\x04\x03"), "copies from beyond its base"),  # offset 4, 3 bytes of 5
    (_delta(6, 3, b"\x91\x00\x03"), "base is not the size"),
    (_delta(5, 2, b"\x03abc"), "more than the size"),
    (_delta(5, 4, b"\x03abc"), "less than the size"),
    (_delta(5, 3, b"\x05ab"), "insert runs off its end"),
    (_delta(5, 3, b"\x00"), "reserved instruction"),
    (_delta(5, 3, b"\x91\x00"), "middle of an instruction"),
    (b"\xff" * 12, "past 64 bits"),
])
def test_a_hostile_delta_is_refused_not_followed(delta, why):
    with pytest.raises(ValueError, match=why):
        packread.apply_delta(b"12345", delta)


def test_a_delta_copies_and_inserts():
    # copy 3 bytes at offset 1, insert "xy", copy 64 KiB (size 0) of a 64 KiB base
    assert packread.apply_delta(b"abcde", _delta(5, 5, b"\x91\x01\x03", b"\x02xy")) == b"bcdxy"
    base = bytes(range(256)) * 256
    assert packread.apply_delta(base, _delta(len(base), len(base), b"\x80")) == base


def test_an_object_bigger_than_the_reader_rebuilds_is_left_to_libgit2(deltified, monkeypatch):
    """A delta claims its size; what claims _REBUILD_MAX or more (a hostile 4 KB delta can
    claim 256 MiB) is not rebuilt here: read and header answer None, and libgit2 reads it."""
    packs, objects = deltified
    monkeypatch.setattr(packread, "_REBUILD_MAX", 4096)
    reader = packread.PackReader(packs)
    answers = {oid: reader.read(oid) for oid in objects}

    def is_delta(oid: bytes) -> bool:
        pack, offset = reader._locate(oid)
        return pack.header(offset)[0] in packread._DELTA_TYPES

    big = [oid for oid, (_, data) in objects.items() if len(data) >= 4096 and is_delta(oid)]
    assert big and all(answers[oid] is None and reader.header(oid) is None for oid in big)
    for oid, answer in answers.items():
        assert answer is None or answer == objects[oid]


# -- a pack being sealed: read before it has its index and name -------------------------


def test_a_pending_pack_reads_every_object_while_the_writer_seals_it(tmp_path):
    """pending() settles the deflate thread; the objects then read back (whole, by
    header, streamed) from the temporary file, still from it once finish() has written
    the count, the trailer and the index and renamed it, and from the installed pack."""
    from layergit.store.rawobj import CHUNK, STREAM_FROM

    writer = pack.PackWriter(str(tmp_path))
    ids = {writer.add(t, d): (t, d) for t, d in OBJECTS + _many(2 * (pack._BATCH_BYTES // 4096), 4096)}
    big = os.urandom(STREAM_FROM + 5)
    oid = writer.add_stream(OBJ_BLOB, len(big), (big[i:i + CHUNK] for i in range(0, len(big), CHUNK)),
                            lambda _oid: False)
    ids[oid] = (OBJ_BLOB, big)
    pending = packread.PackReader(str(tmp_path)).with_pending(writer.pending())
    assert writer._deflater is None, "settled: every object is in the file"

    def check(reader):
        for oid, (obj_type, data) in ids.items():
            assert reader.contains(oid)
            assert reader.header(oid) == (obj_type, len(data))
            if len(data) < STREAM_FROM:  # a bigger one is streamed (Store.open_blob), never read whole
                assert reader.read(oid) == (obj_type, data)
            got = reader.open(oid)
            assert got is not None and (got[0], got[1], b"".join(got[2])) == (obj_type, len(data), data)
        assert reader.read(b"\0" * 20) is None and not reader.contains(b"\0" * 20)

    check(pending)
    path = writer.finish(fsync=False)
    check(pending)  # its file renamed and sealed under it
    assert path is not None and not [n for n in os.listdir(tmp_path) if n.startswith("tmp_")]
    installed = packread.PackReader(str(tmp_path))
    installed.refresh()
    check(installed)


def test_a_store_reads_what_its_writer_wrote_while_the_pack_is_sealed(tmp_path):
    from layergit.store.store import Store

    store = Store.open(str(tmp_path / "store.git"))
    with store.writer() as writer:
        blob = writer.put_blob(b"target")
        tree = writer.put(OBJ_TREE, b"100644 f\0" + blob)
        with writer.sealing() as (written, _seal):
            assert written.read_blob(blob) == b"target" and written.tree(tree) == [(b"f", 0o100644, blob)]
            assert written.verifying().read_blob(blob) == b"target"
            written._packs.refresh()  # the pack may be installed by now, or not
            assert written.read_blob(blob) == b"target", "a refresh keeps the pending pack"
    store._packs.refresh()
    assert store.has_seen(blob) and store.read_blob(blob) == b"target"
    packs = tmp_path / "store.git" / "objects" / "pack"
    assert sorted(p.suffix for p in packs.iterdir()) == [".idx", ".pack"]


def _held_sealing(monkeypatch) -> tuple[threading.Event, threading.Event]:
    """Hold PackWriter.finish once the pack is hashed and closed, before its index is
    written and both are renamed: (entered, release)."""
    entered, release = threading.Event(), threading.Event()
    index_bytes = pack.PackWriter._index_bytes

    def held(self, pack_sum: bytes) -> bytes:
        entered.set()
        release.wait(10)
        return index_bytes(self, pack_sum)

    monkeypatch.setattr(pack.PackWriter, "_index_bytes", held)
    return entered, release


@pytest.mark.parametrize("stop", ["error", "ctrl-c"])
def test_a_failure_while_the_pack_is_sealed_waits_for_the_sealing(tmp_path, monkeypatch, interrupts, stop):
    """The block fails (an error, or Ctrl-C and two more while lg waits) while finish()
    is between the pack's hashing and its renames: the pack is given up, and the
    writer's abort must come after finish, which stops before its renames. An abort
    beside it removed the pack under finish, which then left a stray index, or a pack
    without one that gc does not sweep."""
    from layergit.store.store import Store

    entered, release = _held_sealing(monkeypatch)
    store = Store.open(str(tmp_path / "store.git"))
    failure = RuntimeError if stop == "error" else KeyboardInterrupt
    interrupts.send(0 if stop == "error" else 2, when=entered, then=release.set)
    with pytest.raises(failure), interrupts.armed():
        with store.writer() as writer:
            blob = writer.put_blob(b"x" * 100_000)
            with writer.sealing() as (_view, seal):
                seal()
                entered.wait(10)
                raise failure
    assert release.is_set(), "the sealing was waited for"
    assert list((tmp_path / "store.git" / "objects" / "pack").iterdir()) == []
    store._packs.refresh()
    assert not store.has(blob)


def test_the_sealing_thread_starts_when_the_block_says_or_at_its_end(tmp_path):
    """seal() starts the one sealing thread (a second call does nothing); a block that
    never calls it is sealed as it ends; one that fails first leaves nothing, waits for
    nothing and started no thread."""
    from layergit.store.store import Store

    def sealers() -> int:
        return sum(t.name == "pack-seal" for t in threading.enumerate())

    store = Store.open(str(tmp_path / "store.git"))
    packs = tmp_path / "store.git" / "objects" / "pack"
    with store.writer() as writer:
        blob = writer.put_blob(b"sealed when asked")
        with writer.sealing() as (written, seal):
            assert sealers() == 0, "no thread before seal()"
            seal()
            seal()
            assert sealers() == 1
            assert written.read_blob(blob) == b"sealed when asked"
    with store.writer() as writer:
        writer.put_blob(b"sealed at the end")
        with writer.sealing():
            pass
    assert sorted(p.suffix for p in packs.iterdir()) == [".idx", ".idx", ".pack", ".pack"]
    deadline = time.monotonic() + 10
    while sealers():  # each has said it ended; its thread may take a moment more to go
        assert time.monotonic() < deadline
        time.sleep(0.01)
    with pytest.raises(RuntimeError, match="the block failed"):
        with store.writer() as writer:
            lost = writer.put_blob(b"never sealed")
            with writer.sealing():
                raise RuntimeError("the block failed")
    assert len(list(packs.iterdir())) == 4 and sealers() == 0
    store._packs.refresh()
    assert store.read_blob(blob) == b"sealed when asked" and not store.has(lost)


def test_a_pack_given_up_stops_its_sealing_before_the_hashing_ends(tmp_path, monkeypatch):
    """give_up from another thread: finish stops at its next MiB of hashing, installs
    nothing, and abort leaves nothing, instead of hashing and syncing the whole pack."""
    writer = pack.PackWriter(str(tmp_path))
    for _ in range(16):
        writer.add(OBJ_BLOB, os.urandom(1 << 20))
    writer.pending()
    hashed = []
    real_sha1 = pack.hashlib.sha1

    class Counting:
        def __init__(self):
            self._sha = real_sha1()

        def update(self, data):
            hashed.append(len(data))
            if len(hashed) == 2:
                writer.give_up()  # as the main thread does, the block having failed
            self._sha.update(data)

        def digest(self):
            return self._sha.digest()

    monkeypatch.setattr(pack.hashlib, "sha1", Counting)
    with pytest.raises(pack.GivenUp):
        writer.finish()
    assert len(hashed) == 2, "stopped at the next MiB"
    writer.abort()
    assert os.listdir(tmp_path) == []


def test_a_full_disk_while_the_pack_is_sealed_fails_once_and_leaves_nothing(tmp_path, monkeypatch):
    from layergit.store.store import Store

    def full(self, pack_sum: bytes) -> bytes:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(pack.PackWriter, "_index_bytes", full)
    store = Store.open(str(tmp_path / "store.git"))
    read = []
    with pytest.raises(OSError) as raised:
        with store.writer() as writer:
            blob = writer.put_blob(b"x" * 100_000)
            with writer.sealing() as (written, _seal):
                read.append(written.read_blob(blob))
    assert raised.value.errno == errno.ENOSPC and raised.value.__context__ is None, "raised once, as it came"
    assert read == [b"x" * 100_000]
    assert list((tmp_path / "store.git" / "objects" / "pack").iterdir()) == []


def test_nothing_is_written_to_a_pack_being_sealed(tmp_path):
    """An object added then would be in no index: every write is refused."""
    from layergit.store.store import Store

    store = Store.open(str(tmp_path / "store.git"))
    with store.writer() as writer:
        writer.put_blob(b"kept")
        with writer.sealing():
            for write in (lambda: writer.put_blob(b"late"), lambda: writer.put_blob_stream(4, [b"late"]),
                          lambda: writer.add(OBJ_BLOB, b"late"), lambda: writer.has(b"\0" * 20)):
                with pytest.raises(RuntimeError, match="being sealed"):
                    write()
    store._packs.refresh()
    assert store.has_seen(object_id(OBJ_BLOB, b"kept")) and not store.has_seen(object_id(OBJ_BLOB, b"late"))
