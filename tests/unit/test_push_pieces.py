"""The pieces of a push made while uploading: the spool an upload follows, the thread
that compresses a layer (its pieces in order and unchanged, its errors surfaced or
not as the caller's state asks); and the names a half-made store may leave."""

from __future__ import annotations

import os
import threading

import pytest

from layergit.errors import LgError
from layergit.fs.spool import Spool, SpoolFailed
from layergit.porcelain.exporter import _Offloaded
from layergit.root import is_init_leftover


class Pieces:
    """A writer that keeps what it is given, piece by piece; fails from piece ``fail_at``."""

    def __init__(self, fail_at: int | None = None):
        self.got: list[bytes] = []
        self.fail_at = fail_at

    def write(self, data: bytes) -> int:
        if self.fail_at is not None and len(self.got) >= self.fail_at:
            raise OSError(28, "No space left on device")
        self.got.append(data)
        return len(data)


def test_the_compressor_gets_every_piece_in_order_and_as_cut():
    out = Pieces()
    sent = [os.urandom(n) for n in (512, 1, 70_000, 3 << 20, 512, 0, 9)] * 5
    offloaded = _Offloaded(out)
    for piece in sent:
        offloaded.write(piece)
    offloaded.close()
    assert out.got == sent  # the same cuts: ISA-L's output depends on them


@pytest.mark.parametrize("megabytes", [20, 1])  # surfaced by a later write, or only by close()
def test_a_failing_compressor_fails_the_layer(megabytes):
    offloaded = _Offloaded(Pieces(fail_at=0))
    with pytest.raises(OSError, match="No space"):
        try:  # as exporter.layer uses it
            for _ in range(megabytes):
                offloaded.write(bytes(1 << 20))
        except BaseException:
            offloaded.close(failing=True)
            raise
        offloaded.close()
    assert not offloaded._thread.is_alive()


def test_a_layer_given_up_keeps_its_own_error_and_compresses_no_more():
    out = Pieces(fail_at=0)
    offloaded = _Offloaded(out)
    offloaded.write(bytes(2 << 20))  # a batch the failing compressor refuses
    offloaded.close(failing=True)  # raises nothing: the caller's error is the one on its way
    assert out.got == [] and not offloaded._thread.is_alive()


def test_an_interrupted_close_waits_for_the_compressor_however_often_it_is_interrupted(interrupts):
    """The layer's file closes once close() returns: the compressor must not still be
    writing to it, whatever Ctrl-Cs come while close waits (the first is raised). What
    is queued behind the batch being written is not compressed: the layer is given up."""
    writing, release = threading.Event(), threading.Event()

    class Slow(Pieces):
        def write(self, data: bytes) -> int:
            writing.set()
            release.wait(10)
            return super().write(data)

    out = Slow()
    offloaded = _Offloaded(out)
    for _ in range(3):  # batches: the thread starts writing the first
        offloaded.write(bytes(1 << 20))
    interrupts.send(3, when=writing, then=release.set)
    with pytest.raises(KeyboardInterrupt), interrupts.armed():
        offloaded.close()
    assert offloaded._ended.is_set() and release.is_set() and len(out.got) == 1


def test_a_spool_gives_what_is_written_and_waits_for_the_rest(tmp_path):
    path = tmp_path / "layer"
    path.write_bytes(b"")
    spool = Spool(str(path))
    got: list[bytes] = []

    def read() -> None:
        offset = 0
        while data := spool.chunk(offset, 4):
            got.append(data)
            offset += len(data)

    reader = threading.Thread(target=read)
    reader.start()
    with open(path, "ab") as f:
        for part in (b"abcd", b"efgh", b"ij"):
            f.write(part)
            f.flush()
            spool.wrote(f.tell())
    spool.finish("sha256:x", 10)
    reader.join(5)
    assert b"".join(got) == b"abcdefghij" and spool.digest() == "sha256:x" and spool.size() == 10
    spool.close()


def test_a_failed_spool_stops_its_reader_and_a_short_file_is_an_error(tmp_path):
    path = tmp_path / "layer"
    path.write_bytes(b"abc")
    spool = Spool(str(path))
    spool.wrote(3)
    spool.fail()
    with pytest.raises(SpoolFailed):
        spool.chunk(0, 10)
    spool.close()
    spool = Spool(str(path))
    spool.finish("sha256:x", 10)  # says 10, holds 3: never sent as a whole layer
    with pytest.raises(LgError, match="ended at 3 of 10"):
        spool.chunk(0, 10)
    spool.close()


@pytest.mark.parametrize("name, leftover", [
    ("store.git.init-123", True), ("store.git.init-", False), ("store.git.init-12a", False),
    ("store.git.init-²", False), ("store.git.init-" + "9" * 30, False), ("store.git", False),
    ("other.init-1", False),
])
def test_what_names_a_half_made_store(name, leftover):
    assert is_init_leftover(name) is leftover
