"""Fuzzing the metadata blob reader (store/meta.py): a blob from a store someone else wrote
(a fetched commit, a hand-edited tree) decodes to entries or is CorruptStore, one line; and
what decodes is canonical, so writing it again gives a blob that decodes to the same."""

from __future__ import annotations

import base64

from hypothesis import given
from hypothesis import strategies as st

from layergit.store import meta as M

from . import fuzz, outcome

_DIGITS = st.text("0123456789", min_size=1, max_size=25)
_NUMBERS = st.one_of(_DIGITS, st.sampled_from(["0", "-1", "4294967295", "4294967296", "1" + "0" * 5000, "01", ""]))
_TEXT = st.text(st.characters(codec="utf-8"), max_size=20)
_QUOTED = st.lists(st.sampled_from(list("abcXYZ019%./=\"\\ ~") + ["%00", "%ff", "%2F", "%zz", "\u00e9", "\t"]),
                   max_size=12).map("".join)


@st.composite
def _field(draw) -> str:
    kind = draw(st.sampled_from(["link", "rdev", "xattr", "junk"]))
    if kind == "link":
        return "link=" + draw(st.one_of(st.just("/"), _QUOTED.map(lambda t: "/" + t), _QUOTED))
    if kind == "rdev":
        return f"rdev={draw(_NUMBERS)}:{draw(_NUMBERS)}"
    if kind == "xattr":
        name = draw(st.one_of(st.sampled_from(["user.a", "user.b", "trusted.x", "security.capability", ""]), _QUOTED))
        value = draw(st.one_of(
            _QUOTED.map(lambda t: f'"{t}"'),
            st.binary(max_size=40).map(lambda b: "0s" + base64.b64encode(b).decode()),
            st.text("ABCabc0123+/=!", max_size=12).map(lambda t: "0s" + t),
            _TEXT,
        ))
        return f"xattr.{name}={value}"
    return draw(_TEXT)


@st.composite
def _line(draw) -> bytes:
    name = draw(st.one_of(st.just(b"."), st.binary(min_size=0, max_size=8).filter(lambda b: b"\n" not in b)))
    kind = draw(st.one_of(st.sampled_from(list("dflcbps")), _TEXT))
    mode = draw(st.one_of(st.text("01234567", min_size=4, max_size=4), _TEXT))
    owner = f"{draw(_NUMBERS)}:{draw(_NUMBERS)}"
    mtime = f"{draw(_NUMBERS)}.{draw(st.one_of(st.text('0123456789', min_size=9, max_size=9), _DIGITS))}"
    fields = [kind, mode, owner, mtime] + draw(st.lists(_field(), max_size=4))
    sep = draw(st.sampled_from([" ", " ", " ", "  ", "\t"]))
    return name + b"\t" + sep.join(fields).encode("utf-8", "surrogateescape")


@st.composite
def blobs(draw) -> bytes:
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=300))
    header = draw(st.sampled_from([M.HEADER] * 8 + [b"lgmeta 2\n", b"lgmeta 1", b""]))
    body = b"\n".join(draw(st.lists(_line(), max_size=6)))
    tail = draw(st.sampled_from([b"\n", b"\n", b"", b"\n\n"]))
    return header + body + (tail if body else b"")


@fuzz(300)
@given(blobs())
def test_metadata_blobs(blob):
    entries = outcome(M.decode_blob, blob)
    if isinstance(entries, dict):
        again = M.encode_blob(entries)
        assert M.decode_blob(again) == entries
