"""Points in time as Docker's ``--since``/``--until`` take them.

An RFC 3339 timestamp (``2026-12-01T10:00:00Z``, with an offset, or a date alone), a
Unix timestamp (``1764583200``, ``1764583200.5``), or a Go duration meaning that long
ago (``10m``, ``1h30m``, ``90s``, ``1.5h``). Anything else is one UsageError.
"""

from __future__ import annotations

import re
import time
from datetime import datetime, timezone

from ..errors import UsageError

_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}


def duration(text: str) -> float | None:
    """A Go duration (``1h30m``) in seconds; None when ``text`` is not one."""
    if not text or _DURATION.sub("", text):
        return None
    return sum(float(n) * _UNIT[unit] for n, unit in _DURATION.findall(text))


def parse(text: str, flag: str, now: float | None = None) -> float:
    """``text`` as seconds since the epoch."""
    text = text.strip()
    now = time.time() if now is None else now
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    ago = duration(text)
    if ago is not None:
        return now - ago
    try:
        when = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        raise UsageError(f"invalid {flag} value {text!r}: use an RFC 3339 time (2026-12-01T10:00:00Z),"
                         " a Unix timestamp or a duration such as 10m") from None
    if when.tzinfo is None:  # Docker reads a time without a zone as local time
        when = when.astimezone()
    return when.astimezone(timezone.utc).timestamp()


def stamp(text: str) -> float | None:
    """A log line's RFC 3339 time as seconds since the epoch; None when it has none."""
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
