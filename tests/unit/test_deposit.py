"""fs.cache.FarmDeposit.blob: a file's bytes go to the store and into the farm under
the key of the blob id the store gave those very bytes, whichever path they take."""

from __future__ import annotations

import os
import threading

import pytest

from layergit.fs.cache import FarmDeposit, _key
from layergit.store.rawobj import CHUNK, STREAM_FROM

from .memstore import MemStore, meta


def _farm_file(farm: str, oid: bytes, m) -> bytes:
    key = _key(oid, m)
    with open(os.path.join(farm, key[:2], key[2:]), "rb") as f:
        return f.read()


def _pieces(data: bytes):
    return lambda: (data[i:i + CHUNK] for i in range(0, len(data), CHUNK))


@pytest.mark.parametrize("size", [0, 100, FarmDeposit.DEFER_BELOW + 1, STREAM_FROM + 5])
def test_every_path_deposits_what_the_store_hashed(tmp_path, size):
    store, farm = MemStore(), str(tmp_path / "objects")
    m = meta("f", uid=os.getuid(), gid=os.getgid())
    data = os.urandom(size)
    deposit = FarmDeposit(None, farm)
    oid = deposit.blob(store, m, size, lambda: data, _pieces(data))
    deposit.close()
    assert store.read_blob(oid) == data
    assert _farm_file(farm, oid, m) == data


def test_a_small_file_that_grew_while_read_is_kept_as_read(tmp_path):
    """``whole()`` gave more than the announced size, past the queue's bound (put_file
    refuses a grown file itself; another reader may not): stored and deposited as
    read, no crash."""
    store, farm = MemStore(), str(tmp_path / "objects")
    m = meta("f", uid=os.getuid(), gid=os.getgid())
    grown = os.urandom(FarmDeposit.DEFER_BELOW * 2)
    deposit = FarmDeposit(None, farm)
    oid = deposit.blob(store, m, 100, lambda: grown, _pieces(grown))
    deposit.close()
    assert store.read_blob(oid) == grown and _farm_file(farm, oid, m) == grown


def test_a_stream_that_is_not_its_size_deposits_nothing(tmp_path):
    store, farm = MemStore(), str(tmp_path / "objects")
    m = meta("f", uid=os.getuid(), gid=os.getgid())
    short = os.urandom(STREAM_FROM)
    deposit = FarmDeposit(None, farm)
    with pytest.raises(ValueError):
        deposit.blob(store, m, STREAM_FROM + 1, lambda: short, _pieces(short))
    deposit.close()
    assert [f for _, _, files in os.walk(farm) for f in files] == []


def test_an_abandoned_deposit_keeps_the_callers_failure(tmp_path, monkeypatch):
    """Queued files are dropped, not written: a full disk meeting them must not replace
    the failure that stopped the import or commit. A clean close does report it."""
    store, farm = MemStore(), str(tmp_path / "objects")
    m = meta("f", uid=os.getuid(), gid=os.getgid())
    started, release, written = threading.Event(), threading.Event(), []

    def full(meta, data, oid):
        written.append(data)
        started.set()
        release.wait(10)
        raise OSError(28, "No space left on device")

    deposit = FarmDeposit(None, farm)
    monkeypatch.setattr(deposit, "_put", full)
    with pytest.raises(KeyError):
        try:
            for i in range(3):
                deposit.blob(store, m, 1, lambda i=i: b"%d" % i, _pieces(b""))
            started.wait(10)
            raise KeyError("the caller's own failure")
        except BaseException:
            release.set()
            deposit.abandon()
            raise
    assert written == [b"0"]  # the one in progress when the caller failed; the rest dropped

    deposit = FarmDeposit(None, farm)
    monkeypatch.setattr(deposit, "_put", full)
    deposit.blob(store, m, 1, lambda: b"x", _pieces(b""))
    with pytest.raises(OSError, match="No space"):
        deposit.close()
