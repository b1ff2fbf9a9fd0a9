"""printable() and quoted(): untrusted text made safe for a terminal (layergit/text.py)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from layergit.text import printable, quoted

CONTROLS = {chr(c) for c in (*range(0x20), 0x7F, *range(0x80, 0xA0))}
# any character, lone surrogates included (a JSON string can hold one), often those that escape
TRICKY = st.sampled_from(["\x1b", "\x9b", "\x7f", "\n", "\\", '"', "\udcff", "\ud800", "e", "x", "u", "9"])
ANY_TEXT = st.text(st.one_of(st.characters(exclude_categories=()), TRICKY))


@pytest.mark.parametrize(
    "raw, shown",
    [
        ("lg gc", "lg gc"),
        ("\x1b]0;owned\x07", "\\e]0;owned\\x07"),  # retitle the terminal
        ("\x1b[2J\x1b[H", "\\e[2J\\e[H"),  # clear the screen
        ("\x9b31m", "\\u009b31m"),  # C1 CSI: the same without ESC
        ("a\rb\nc\td\x00\x7f", "a\\x0db\\x0ac\\x09d\\x00\\x7f"),
        ("caf\u00e9 \u2603 \u00a0", "caf\u00e9 \u2603 \u00a0"),  # printable non-ASCII stays
        (b"x\xff\xc2\x9b\x1b", "x\\xff\\u009b\\e"),  # bytes: undecodable as \xNN, C1 as a character
        (b"\x9b", "\\x9b"),  # the byte 0x9B (not UTF-8) never reads like U+009B
        ("\ud800x\udcff", "\\ud800x\\xff"),  # lone surrogates: unencodable, so escaped too
        ("a\\e", "a\\e"),  # printable() alone does not quote: for messages, not names
    ],
)
def test_printable(raw, shown):
    assert printable(raw) == shown


@pytest.mark.parametrize(
    "raw, shown",
    [
        ("/usr/bin/ls", "/usr/bin/ls"),  # nothing to escape: as it is
        ("/caf\u00e9 [bold]x[/bold]", "/caf\u00e9 [bold]x[/bold]"),
        ("/a\x1b[1A\x1b[2K", '"/a\\e[1A\\e[2K"'),  # the escape sequence that erased a line above
        ("/a\nA /usr/bin/x", '"/a\\x0aA /usr/bin/x"'),
        (b"/\xff\xc2\x9b", '"/\\xff\\u009b"'),
        ('/say "hi"', '"/say \\"hi\\""'),  # quotes and backslashes alone quote the name too,
        ("/a\\e", '"/a\\\\e"'),  # so that a name never reads like another's escape
    ],
)
def test_quoted(raw, shown):
    assert quoted(raw) == shown


@given(ANY_TEXT)
def test_printable_leaves_no_control_character(text):
    out = printable(text)
    assert not CONTROLS & set(out)
    out.encode("utf-8")  # no lone surrogates left: it can be written to any UTF-8 stream
    if not CONTROLS & set(text) and not re.search("[\ud800-\udfff]", text):
        assert out == text


@given(st.binary())
def test_printable_bytes_are_always_printable(data):
    out = printable(data)
    assert not CONTROLS & set(out)
    out.encode("utf-8")


_UNESCAPE = re.compile(r'\\(?:(e)|x([0-9a-f]{2})|u([0-9a-f]{4})|(["\\]))')


def _unquote(shown: str) -> str:
    """The inverse of quoted(), written from its documented grammar."""
    if not shown.startswith('"'):
        return shown
    assert shown.endswith('"') and len(shown) >= 2

    def one(m: re.Match) -> str:
        esc, byte, char, literal = m.groups()
        if esc:
            return "\x1b"
        if byte:
            n = int(byte, 16)
            return chr(n) if n < 0x80 else chr(0xDC00 + n)  # 0x80-0xff: an undecodable byte
        return chr(int(char, 16)) if char else literal

    return _UNESCAPE.sub(one, shown[1:-1])


@given(ANY_TEXT)
def test_quoted_is_unambiguous_and_printable(name):
    shown = quoted(name)
    assert not CONTROLS & set(shown)
    shown.encode("utf-8")
    assert _unquote(shown) == name  # one name, one form: the original comes back


@given(st.binary())
def test_quoted_bytes_come_back_exactly(name):
    assert _unquote(quoted(name)).encode("utf-8", "surrogateescape") == name
