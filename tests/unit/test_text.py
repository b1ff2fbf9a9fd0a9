"""printable(): untrusted text made safe for a terminal (layergit/text.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from layergit.text import printable

CONTROLS = {chr(c) for c in (*range(0x20), 0x7F, *range(0x80, 0xA0))}


@pytest.mark.parametrize(
    "raw, shown",
    [
        ("lg gc", "lg gc"),
        ("\x1b]0;owned\x07", "\\e]0;owned\\x07"),  # retitle the terminal
        ("\x1b[2J\x1b[H", "\\e[2J\\e[H"),  # clear the screen
        ("\x9b31m", "\\x9b31m"),  # C1 CSI: the same without ESC
        ("a\rb\nc\td\x00\x7f", "a\\x0db\\x0ac\\x09d\\x00\\x7f"),
        ("caf\u00e9 \u2603 \u00a0", "caf\u00e9 \u2603 \u00a0"),  # printable non-ASCII stays
        (b"x\xff\xc2\x9b\x1b", "x\\xff\\x9b\\e"),  # bytes: undecodable as \xNN, C1 as UTF-8 too
    ],
)
def test_printable(raw, shown):
    assert printable(raw) == shown


@given(st.text())
def test_printable_leaves_no_control_character(text):
    out = printable(text)
    assert not CONTROLS & set(out)
    if not CONTROLS & set(text):
        assert out == text


@given(st.binary())
def test_printable_bytes_are_always_printable(data):
    out = printable(data)
    assert not CONTROLS & set(out)
    out.encode("utf-8")  # no lone surrogates left: it can be written to any UTF-8 stream
