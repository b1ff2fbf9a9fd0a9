"""The tar reader (fs/tarread.py) against tarfile, the reference for what writers put in
an archive: every header field, in every format tarfile writes, reads back the same;
and the stream is consumed exactly (sizes, padding, extended headers, the end)."""

from __future__ import annotations

import io
import tarfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from layergit.fs.tarread import TarBoundError, TarError, TarReader

FORMATS = {"ustar": tarfile.USTAR_FORMAT, "gnu": tarfile.GNU_FORMAT, "pax": tarfile.PAX_FORMAT}

_names = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\0/"), min_size=1, max_size=40)
_paths = st.lists(_names, min_size=1, max_size=8).map("/".join).filter(lambda p: p not in (".", ".."))
_members = st.lists(
    st.tuples(
        _paths,
        st.sampled_from([tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.CHRTYPE,
                         tarfile.FIFOTYPE]),
        st.integers(0, 0o7777),
        st.integers(0, 2_000_000),  # uid: over ustar's 7 octal digits needs pax or base-256
        st.integers(0, 2**33 - 1),  # mtime
        st.binary(max_size=3000),
        _paths,  # link target
        st.integers(0, 4095),  # device major
    ),
    max_size=12,
)


def _write(members, fmt: int) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt) as tar:
        for name, kind, mode, uid, mtime, data, target, major in members:
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.uid, info.gid, info.mtime = kind, mode, uid, uid // 3, mtime
            info.devmajor = info.devminor = major
            if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE):
                info.linkname = target
            content = data if kind == tarfile.REGTYPE else None
            info.size = len(data) if content is not None else 0
            tar.addfile(info, io.BytesIO(content) if content is not None else None)
    return out.getvalue()


def _ours(data: bytes) -> list[tuple]:
    reader = TarReader(io.BytesIO(data))
    out = []
    for m in reader:
        content = b"".join(iter(lambda: reader.read(1000), b""))
        dev = (m.devmajor, m.devminor) if m.type in (b"3", b"4") else None
        out.append((m.name, m.type, m.mode, m.uid, m.gid, m.mtime_ns // 10**9, m.linkname, dev, content))
    return out


def _reference(data: bytes) -> list[tuple]:
    out = []
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for m in tar:
            f = tar.extractfile(m) if m.isreg() else None
            dev = (m.devmajor, m.devminor) if m.type in (b"3", b"4") else None
            out.append((m.name, m.type, m.mode, m.uid, m.gid, int(m.mtime), m.linkname, dev,
                        f.read() if f else b""))
    return out


@settings(max_examples=60, deadline=None)
@given(_members, st.sampled_from(sorted(FORMATS)))
def test_every_field_reads_as_tarfile_reads_it(members, fmt):
    try:
        data = _write(members, FORMATS[fmt])
    except ValueError:  # a name or number this format cannot hold
        return
    assert _ours(data) == _reference(data)


def test_pax_xattrs_fractional_times_and_globals():
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT,
                      pax_headers={"uid": "77"}) as tar:  # a global header: every member's owner
        info = tarfile.TarInfo("f")
        info.pax_headers = {"SCHILY.xattr.user.b": "2", "SCHILY.xattr.user.a": "\udcff1", "mtime": "-1.5"}
        tar.addfile(info, io.BytesIO(b""))
        tar.addfile(tarfile.TarInfo("g"), io.BytesIO(b""))
    reader = TarReader(io.BytesIO(out.getvalue()))
    f, g = list(reader)
    assert f.xattrs == (("user.a", b"\xff1"), ("user.b", b"2"))
    assert f.mtime_ns == -1_500_000_000
    assert f.uid == g.uid == 77


def test_content_left_unread_is_skipped_and_the_end_found():
    data = _write([("a", tarfile.REGTYPE, 0o644, 0, 0, b"x" * 1500, "", 0),
                   ("b", tarfile.REGTYPE, 0o644, 0, 0, b"y", "", 0)], tarfile.PAX_FORMAT)
    reader = TarReader(io.BytesIO(data + b"trailing data after the end is not read"))
    a, b = list(reader)
    assert (a.offset, a.offset_data, b.offset) == (0, 512, 2048)


@pytest.mark.parametrize("seekable", [False, True])
def test_a_stream_cut_inside_content_or_a_header_is_truncated(seekable):
    data = _write([("a", tarfile.REGTYPE, 0o644, 0, 0, b"x" * 1500, "", 0)], tarfile.USTAR_FORMAT)
    for cut, message in ((1000, "truncated inside 'a'"), (300, "truncated at byte 0")):
        with pytest.raises(TarError, match=message):
            list(TarReader(io.BytesIO(data[:cut]), seekable=seekable))
    with pytest.raises(TarError, match="empty"):
        list(TarReader(io.BytesIO(b"")))


def test_a_bad_checksum_is_a_corrupt_header_where_it_is():
    data = bytearray(_write([("a", tarfile.REGTYPE, 0o644, 0, 0, b"x", "", 0)] * 2, tarfile.USTAR_FORMAT))
    data[1024 + 148] ^= 1
    with pytest.raises(TarError, match="corrupt tar header at byte 1024"):
        list(TarReader(io.BytesIO(bytes(data))))


def test_extended_headers_are_refused_before_they_are_read():
    class Counting(io.BytesIO):
        most = 0

        def read(self, n=-1):
            Counting.most = max(Counting.most, n)
            return super().read(n)

    info = tarfile.TarInfo("f")
    info.pax_headers = {"comment": "c" * (2 << 20)}
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(info, io.BytesIO(b""))
    with pytest.raises(TarBoundError, match="more than 1048576 bytes"):
        list(TarReader(Counting(out.getvalue())))
    assert Counting.most <= 1 << 16
