"""Tar bytes for fuzzing, written header by header: tarfile's writer refuses most of what an
importer must survive (bad checksums, octal fields that are not octal, PAX records that lie
about their length, GNU sparse maps that overlap), so headers are packed here, their checksum
right unless asked otherwise, and then mutated as bytes."""

from __future__ import annotations

import gzip
import lzma
import tarfile

import zstandard
from hypothesis import strategies as st

_TYPES = [b"0", b"\0", b"1", b"2", b"3", b"4", b"5", b"6", b"7", b"S", b"L", b"K", b"x", b"g", b"X", b"V", b"D", b"M", b"Z"]
_NAMES = st.one_of(
    st.sampled_from(["a", "a/b", "./a", "/abs", "..", "a/../../b", "dir/", ".wh.a", "d/.wh..wh..opq", ".wh..wh.plnk",
                     "etc/passwd", "GNUSparseFile.0/f", "x" * 150, ""]),
    st.text(st.characters(codec="utf-8", exclude_characters="\0"), max_size=12),
)
_PAX_KEYS = ["path", "linkpath", "size", "mtime", "uid", "gid", "uname", "hdrcharset", "GNU.sparse.map", "GNU.sparse.size",
             "GNU.sparse.realsize", "GNU.sparse.major", "GNU.sparse.minor", "GNU.sparse.name", "GNU.sparse.numblocks",
             "GNU.sparse.offset", "GNU.sparse.numbytes", "SCHILY.xattr.user.a", "SCHILY.xattr.", "SCHILY.xattr.security.capability",
             "SCHILY.xattr.user.\u00e9", "comment"]
_PAX_VALUES = st.one_of(
    st.text("0123456789", min_size=1, max_size=12),
    st.sampled_from(["0", "1", "-1", "1.5", "0,10,20,5", "10,0", "5,5,0,5", "99999999999999", "1" * 30, "x", "", "BINARY",
                     "a/b", "../x", "1.0", "0.1"]),
    st.lists(st.integers(0, 5000), max_size=8).map(lambda xs: ",".join(map(str, xs))),
    st.text(max_size=10),
)


def _octal(value: int | bytes, width: int) -> bytes:
    if isinstance(value, bytes):
        return value[:width].ljust(width, b"\0")
    return (b"%0*o" % (width - 1, value))[-(width - 1):] + b"\0"


def _number(width: int):
    return st.one_of(st.integers(0, 8 ** (width - 1) - 1), st.binary(max_size=width), st.sampled_from([b"\x80" + b"\xff" * (width - 1)]))


@st.composite
def header(draw, data_size: int, types: list[bytes] = _TYPES) -> bytes:
    """One 512-byte header; the size field usually tells the truth about ``data_size``."""
    name = draw(_NAMES).encode("utf-8", "surrogateescape")[:100]
    size = data_size if draw(st.integers(0, 5)) else draw(_number(12))
    fields = [
        name.ljust(100, b"\0"),
        _octal(draw(_number(8)), 8), _octal(draw(_number(8)), 8), _octal(draw(_number(8)), 8),
        _octal(size, 12), _octal(draw(_number(12)), 12),
        b" " * 8,
        draw(st.sampled_from(types)),
        draw(_NAMES).encode("utf-8", "surrogateescape")[:100].ljust(100, b"\0"),
        draw(st.sampled_from([b"ustar\x0000", b"ustar  \0", b"\0" * 8, b"junkjunk"])),
        b"\0" * 64,
        _octal(draw(_number(8)), 8), _octal(draw(_number(8)), 8),
    ]
    block = bytearray(b"".join(fields).ljust(512, b"\0"))
    if block[156:157] == b"S" and draw(st.booleans()):  # old GNU sparse: four (offset, size) slots, extended flag
        for i in range(4):
            block[386 + 24 * i: 410 + 24 * i] = _octal(draw(_number(12)), 12) + _octal(draw(_number(12)), 12)
        block[482] = draw(st.sampled_from([0, 1]))
        block[483:495] = _octal(draw(_number(12)), 12)
    checksum = sum(block) if draw(st.integers(0, 9)) else draw(st.integers(0, 99999))
    block[148:156] = b"%06o\0 " % (checksum & 0o777777)
    return bytes(block)


def _pad(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 512)


@st.composite
def pax_records(draw) -> bytes:
    out = b""
    for key, value in draw(st.lists(st.tuples(st.sampled_from(_PAX_KEYS), _PAX_VALUES), max_size=5)):
        record = f" {key}={value}\n".encode("utf-8", "surrogateescape")
        length = len(record) + len(str(len(record)))
        length += len(str(length)) - len(str(len(record)))
        if not draw(st.integers(0, 9)):
            length = draw(st.integers(0, 200))  # a length that lies
        out += str(length).encode() + record
    return out


@st.composite
def member(draw) -> bytes:
    data = draw(st.one_of(st.binary(max_size=600), st.binary(max_size=8).map(lambda b: b * 200)))
    out = b""
    if draw(st.integers(0, 2)) == 0:  # a PAX extended header first
        records = draw(pax_records())
        out += draw(header(len(records), [b"x", b"x", b"g", b"X"])) + _pad(records)
    return out + draw(header(len(data))) + _pad(data)


@st.composite
def tar_bytes(draw) -> bytes:
    """A tar stream: hand-packed members, or one tarfile wrote, then damaged."""
    if draw(st.booleans()):
        body = b"".join(draw(st.lists(member(), max_size=5)))
    else:
        body = draw(_written_by_tarfile())
    body += b"\0" * draw(st.sampled_from([1024, 1024, 0, 512, 7]))
    return draw(mutated(body))


@st.composite
def _written_by_tarfile(draw) -> bytes:
    import io

    out = io.BytesIO()
    fmt = draw(st.sampled_from([tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT]))
    with tarfile.open(fileobj=out, mode="w", format=fmt) as tar:
        for _ in range(draw(st.integers(0, 4))):
            info = tarfile.TarInfo(draw(st.sampled_from(["a", "b/c", "b", "d/.wh.x", "l" * 120, "e/f"])))
            info.type = draw(st.sampled_from([tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.FIFOTYPE]))
            info.linkname = draw(st.sampled_from(["a", "../x", "/etc", "b/c"]))
            data = draw(st.binary(max_size=300)) if info.type == tarfile.REGTYPE else b""
            info.size = len(data)
            if fmt == tarfile.PAX_FORMAT:
                info.pax_headers = dict(draw(st.lists(st.tuples(st.sampled_from(_PAX_KEYS[8:]), _PAX_VALUES), max_size=3)))
            try:
                tar.addfile(info, io.BytesIO(data) if data else None)
            except (ValueError, UnicodeError):
                pass
    return out.getvalue()


@st.composite
def mutated(draw, data: bytes) -> bytes:
    """``data`` with a few of the damages real archives suffer: flipped bytes, a cut, a splice."""
    buf = bytearray(data)
    for _ in range(draw(st.integers(0, 3))):
        what = draw(st.sampled_from(["flip", "cut", "splice", "none", "none"]))
        if what == "flip" and buf:
            i = draw(st.integers(0, len(buf) - 1))
            buf[i] = draw(st.integers(0, 255))
        elif what == "cut":
            del buf[draw(st.integers(0, len(buf))):]
        elif what == "splice":
            i = draw(st.integers(0, len(buf)))
            buf[i:i] = draw(st.binary(min_size=1, max_size=64))
    return bytes(buf)


def compressed(data: bytes, how: str) -> bytes:
    if how == "gzip":
        return gzip.compress(data, compresslevel=1, mtime=0)
    if how == "xz":
        return lzma.compress(data)
    if how == "zstd":
        return zstandard.ZstdCompressor().compress(data)
    return data
