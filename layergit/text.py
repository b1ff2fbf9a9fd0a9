"""Text from outside lg (a process's command line, a file name, an image's strings),
made safe to print on a terminal.

A terminal obeys the control characters in what it prints: ESC starts sequences
that move the cursor, retitle the window, rewrite what was printed before or, on
some terminals, answer back into the input; C1 controls (U+0080-U+009F) do the same
without ESC. :func:`printable` shows every C0 control, DEL and C1 control as an
escape instead, as git does for paths (``\\e`` for ESC, ``\\xNN`` for the rest), and
undecodable bytes carried as surrogates (``surrogateescape``) as ``\\xNN`` too.
"""

from __future__ import annotations

_ESCAPES = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F, *range(0x80, 0xA0))}
_ESCAPES[0x1B] = "\\e"
_ESCAPES.update({c: f"\\x{c - 0xDC00:02x}" for c in range(0xDC80, 0xDD00)})  # bytes 0x80-0xff


def printable(text: str | bytes) -> str:
    """``text`` with its control characters (C0, DEL, C1) shown as escapes; bytes are
    read as UTF-8, what does not decode shown as ``\\xNN``."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "surrogateescape")
    return text.translate(_ESCAPES)
