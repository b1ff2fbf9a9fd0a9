"""fs.farm.copy_object: a farm object copied by the kernel into a checkout's file. A big
object keeps its holes (only its data extents are copied), as writing it from the
store keeps them; every object arrives byte for byte, across filesystems too."""

from __future__ import annotations

import errno
import os

import pytest

from layergit.fs import farm
from layergit.store.rawobj import STREAM_FROM

MIB = 1 << 20


def _sparse(path, size: int, extents: list[tuple[int, bytes]]) -> None:
    with open(path, "wb") as f:
        for at, data in extents:
            f.seek(at)
            f.write(data)
        f.truncate(size)


def _copied(src_path, dest_path) -> None:
    src = os.open(src_path, os.O_RDONLY)
    out = os.open(dest_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        assert farm.copy_object(src, out, os.fstat(src).st_size) == os.fstat(src).st_size
    finally:
        os.close(src)
        os.close(out)


@pytest.mark.parametrize("tail", ["hole", "data"])
def test_a_big_object_keeps_its_holes(tmp_path, tail):
    size = STREAM_FROM + 8 * MIB
    extents = [(0, os.urandom(MIB)), (STREAM_FROM // 2, b"in the middle" * 1000)]
    if tail == "data":
        extents.append((size - 100, os.urandom(100)))
    _sparse(tmp_path / "src", size, extents)
    src_blocks = os.stat(tmp_path / "src").st_blocks
    if src_blocks * 512 > 4 * MIB:
        pytest.skip("this filesystem does not keep holes")
    _copied(tmp_path / "src", tmp_path / "out")
    assert (tmp_path / "out").read_bytes() == (tmp_path / "src").read_bytes()
    assert os.stat(tmp_path / "out").st_blocks <= src_blocks + 2 * MIB // 512


def test_a_big_object_all_hole_is_its_size_of_zeros(tmp_path):
    _sparse(tmp_path / "src", STREAM_FROM, [])
    _copied(tmp_path / "src", tmp_path / "out")
    assert os.stat(tmp_path / "out").st_size == STREAM_FROM
    assert (tmp_path / "out").read_bytes() == bytes(STREAM_FROM)


@pytest.mark.parametrize("size", [0, 1, MIB + 3, STREAM_FROM + MIB])
def test_without_copy_file_range_sendfile_copies_the_same(tmp_path, monkeypatch, size):
    """Across filesystems copy_file_range fails with EXDEV: each range goes by sendfile."""
    def refuse(src, out, pos, count):
        raise OSError(errno.EXDEV, "cross-device")

    monkeypatch.setattr(farm, "_copy_file_range", refuse)
    data = os.urandom(min(size, MIB))
    _sparse(tmp_path / "src", size, [(0, data), (size - len(data), data)] if size else [])
    _copied(tmp_path / "src", tmp_path / "out")
    assert (tmp_path / "out").read_bytes() == (tmp_path / "src").read_bytes()


def test_an_object_cut_short_while_copied_is_an_error(tmp_path):
    (tmp_path / "src").write_bytes(b"x" * 100)
    src = os.open(tmp_path / "src", os.O_RDONLY)
    out = os.open(tmp_path / "out", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        with pytest.raises(farm.LgError, match="shorter"):
            farm.copy_object(src, out, 200)
    finally:
        os.close(src)
        os.close(out)


def test_a_big_object_cut_short_is_an_error_not_zeros(tmp_path):
    """The farm object lost its end after the size was read: the copy must fail, not pad
    the checkout's file with zeros up to the size the blob has."""
    _sparse(tmp_path / "src", STREAM_FROM, [(0, os.urandom(MIB))])
    src = os.open(tmp_path / "src", os.O_RDONLY)
    out = os.open(tmp_path / "out", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        with pytest.raises(farm.LgError, match="shorter"):
            farm.copy_object(src, out, STREAM_FROM + MIB)
    finally:
        os.close(src)
        os.close(out)
