"""--since/--until values as Docker reads them."""

from __future__ import annotations

import pytest

from layergit.errors import UsageError
from layergit.porcelain.timespec import duration, parse, stamp

NOW = 1_800_000_000.0


@pytest.mark.parametrize("text,seconds", [
    ("10m", 600), ("1h30m", 5400), ("90s", 90), ("1.5h", 5400), ("250ms", 0.25), ("2h0m1s", 7201),
])
def test_go_durations(text, seconds):
    assert duration(text) == pytest.approx(seconds)
    assert parse(text, "--since", NOW) == pytest.approx(NOW - seconds)


@pytest.mark.parametrize("text", ["", "10", "m", "10x", "1h 2m", "-5m"])
def test_not_durations(text):
    assert duration(text) is None


@pytest.mark.parametrize("text,expected", [
    ("2026-12-01T10:00:00Z", 1796119200.0),
    ("2026-12-01T12:00:00+02:00", 1796119200.0),
    ("2026-12-01T10:00:00.5Z", 1796119200.5),
    ("1796119200", 1796119200.0),
    ("1796119200.25", 1796119200.25),
])
def test_times(text, expected):
    assert parse(text, "--since", NOW) == expected


@pytest.mark.parametrize("text", ["yesterday", "2026-13-01", "10 minutes", "now-1h"])
def test_bad_times_are_one_line(text):
    with pytest.raises(UsageError, match="invalid --until value") as info:
        parse(text, "--until", NOW)
    assert "\n" not in str(info.value)


def test_log_stamps():
    assert stamp("2026-12-01T10:00:00.123456Z") == pytest.approx(1796119200.123456)
    assert stamp("") is None
