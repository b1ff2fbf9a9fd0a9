"""Fuzzing the tar reader (fs/tarlayer.py), in memory: a layer or rootfs tar, whole or
damaged, plain or compressed, is read into entries and applied to a snapshot, or refused
with one line; it never escapes as another exception and never runs long."""

from __future__ import annotations

import io

from hypothesis import given
from hypothesis import strategies as st

from layergit.errors import LgError
from layergit.fs import tarlayer
from layergit.store.mutable import MutableTree

from ..unit.memstore import MemStore
from . import fuzz, outcome
from .tarbytes import compressed, mutated, tar_bytes


def _read_and_apply(data: bytes, whiteouts: bool) -> bytes:
    store = MemStore()
    limits = tarlayer.Limits(max_bytes=64 << 20, max_entries=10_000)
    entries = tarlayer.read_tar(tarlayer.decompressed(io.BytesIO(data), limits), store, limits, whiteouts)
    tree = MutableTree.empty(store)
    tarlayer.apply_layer(tree, entries)
    return tree.write(store)


@fuzz(300)
@given(tar_bytes(), st.booleans())
def test_tar_streams(data, whiteouts):
    result = outcome(_read_and_apply, data, whiteouts)
    assert isinstance(result, (bytes, LgError))


@fuzz(100)
@given(tar_bytes(), st.sampled_from(["gzip", "xz", "zstd"]), st.data())
def test_compressed_tar_streams(data, how, draw):
    blob = draw.draw(mutated(compressed(data, how)))
    result = outcome(_read_and_apply, blob, True)
    assert isinstance(result, (bytes, LgError))
