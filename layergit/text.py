"""Text from outside lg (a process's command line, a file name, an image's strings),
made safe to print on a terminal.

A terminal obeys the control characters in what it prints: ESC starts sequences
that move the cursor, retitle the window, rewrite what was printed before or, on
some terminals, answer back into the input; C1 controls (U+0080-U+009F) do the same
without ESC. Both functions here show every C0 control, DEL and C1 control as an
escape instead, and so do undecodable bytes carried as surrogates
(``surrogateescape``) and any other lone surrogate (which no UTF-8 stream can hold).
One table, so that an escape means the same wherever lg prints it:

- ``\\e`` for ESC, ``\\xNN`` for the other C0 controls and DEL;
- ``\\u0080``-``\\u009f`` for C1 controls, so that U+009B (CSI) never reads like the
  byte 0x9B, which is not UTF-8 and shows as ``\\x9b``;
- ``\\uNNNN`` for other lone surrogates.

:func:`printable` applies the table alone: for messages and error lines, where a
reader needs to see what is there. :func:`quoted` is for names (paths, tags) that
must stay unambiguous: as git does with ``core.quotePath``, a name that needs any
escape, or holds ``"`` or ``\\``, is shown whole in double quotes with ``\\`` and
``"`` escaped too; any other name is shown as it is.
"""

from __future__ import annotations

import functools


@functools.cache
def _escapes() -> dict[int, str]:
    """printable()'s table: built on first use, not at import, where its 2,200 entries
    cost every lg command a millisecond, printing or not."""
    table = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F)}
    table[0x1B] = "\\e"
    table.update({c: f"\\u{c:04x}" for c in (*range(0x80, 0xA0), *range(0xD800, 0xE000))})
    table.update({c: f"\\x{c - 0xDC00:02x}" for c in range(0xDC80, 0xDD00)})  # bytes 0x80-0xff
    return table


@functools.cache
def _quoted() -> dict[int, str]:
    return {**_escapes(), ord("\\"): "\\\\", ord('"'): '\\"'}


def _text(text: str | bytes) -> str:
    return text.decode("utf-8", "surrogateescape") if isinstance(text, bytes) else text


def printable(text: str | bytes) -> str:
    """``text`` with its control characters (C0, DEL, C1) shown as escapes; bytes are
    read as UTF-8, what does not decode shown as ``\\xNN``."""
    return _text(text).translate(_escapes())


def quoted(name: str | bytes) -> str:
    """``name`` as it is when it needs no escape; else in double quotes, escaped (C-style,
    with :func:`printable`'s escapes), so that no two names ever show the same."""
    name = _text(name)
    shown = name.translate(_quoted())
    return name if shown == name else f'"{shown}"'


def kind_of(value: object) -> str:
    """A JSON or YAML value's type as an error message names it ("a map", "null")."""
    return {dict: "a map", list: "a list", str: "a string", bool: "a boolean", int: "a number",
            float: "a number", type(None): "null"}.get(type(value), type(value).__name__)
