"""Revision syntax (store/revisions.py): names, short ids, ~N and ^N, resolved against a fake store."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from layergit.errors import NotFound, UsageError
from layergit.store import revisions


@pytest.mark.parametrize(
    "rev, base, suffixes",
    [
        ("app", "app", []),
        ("app:1", "app:1", []),
        ("app~", "app", ["~"]),
        ("app^", "app", ["^"]),
        ("app~2^1", "app", ["~2", "^1"]),
        ("app:1^^", "app:1", ["^", "^"]),
        ("cafe1234~10", "cafe1234", ["~10"]),
        ("app^0", "app", ["^0"]),
        ("~1", "~1", []),  # nothing before the suffix: not a suffix
        ("app~x", "app~x", []),
        ("app~\u0661", "app~\u0661", []),  # only ASCII digits count
    ],
)
def test_suffixes_split_off_the_end(rev, base, suffixes):
    assert revisions._split_suffixes(rev) == (base, suffixes)


def _split_by_regex(rev: str) -> tuple[str, list[str]]:
    """The reading the one-pass _split_suffixes keeps: one anchored regex search per suffix."""
    suffixes: list[str] = []
    while (m := re.search(r"([~^][0-9]*)\Z", rev)) and m.start() > 0:
        suffixes.append(m.group(1))
        rev = rev[: m.start()]
    return rev, suffixes[::-1]


@given(st.text(alphabet="ab:~^09\u0661", max_size=24))
def test_suffixes_split_as_a_regex_reads_them(rev):
    assert revisions._split_suffixes(rev) == _split_by_regex(rev)


def oid(n: int) -> bytes:
    return bytes([n]) * 20


@dataclass
class Commit:
    parents: tuple[bytes, ...]


class FakeStore:
    """Refs and commits: c1 <- c2 <- c3, and c4 merging c3 and c2; "cafe" is an image name."""

    def __init__(self):
        self.commits = {oid(1): Commit(()), oid(2): Commit((oid(1),)), oid(3): Commit((oid(2),)),
                        oid(4): Commit((oid(3), oid(2))), bytes.fromhex("cafe" + "00" * 18): Commit(())}
        self.refs = {"refs/heads/app/latest": oid(4), "refs/heads/app/1": oid(2), "refs/heads/cafe/latest": oid(1)}

    def ref(self, name):
        return self.refs.get(name)

    def expand_prefix(self, prefix):
        hits = [o for o in self.commits if o.hex().startswith(prefix)]
        return hits[0] if len(hits) == 1 else None

    def commit(self, o):
        if o not in self.commits:
            raise NotFound(f"no commit {o.hex()}")
        return self.commits[o]


@pytest.mark.parametrize(
    "rev, want",
    [
        ("app", oid(4)),
        ("app:latest", oid(4)),
        (" app:1 ", oid(2)),
        ("app~1", oid(3)),
        ("app^", oid(3)),
        ("app^2", oid(2)),
        ("app~2", oid(2)),
        ("app~3", oid(1)),
        ("app^2~1", oid(1)),
        ("app^0", oid(4)),
        ("app~0", oid(4)),
        ("0303", oid(3)),
        ("03" * 20, oid(3)),
        ("cafe", oid(1)),  # the image called cafe wins over the commit whose id starts with cafe
        ("cafe00", bytes.fromhex("cafe" + "00" * 18)),
    ],
)
def test_resolve(rev, want):
    assert revisions.resolve(FakeStore(), rev) == want


@pytest.mark.parametrize(
    "rev, error, text",
    [
        ("app~4", NotFound, "has no parent #1"),
        ("app^3", NotFound, "has no parent #3"),
        ("app:2", NotFound, "no such image or revision"),
        ("0909", NotFound, "no such image or revision"),
        ("App!", UsageError, "invalid revision"),
        ("app\n:1", UsageError, "invalid revision"),
        ("app~" + "9" * 5000, UsageError, "has at most 9 digits"),  # int() refuses 4,300 digits and more
        ("app^" + "9" * 10, UsageError, "has at most 9 digits"),
        ("app~999999999", NotFound, "has no parent #1"),  # 9 digits: walked, to where history starts
        ("app~" + "0" * 5000 + "1", UsageError, "invalid revision 'app~00000"),  # quoted short
        ("app" + "~" * 100_000, NotFound, "has no parent #1"),
        ("a" * 5000, UsageError, "invalid revision"),
    ],
)
def test_resolve_fails_in_one_line(rev, error, text):
    with pytest.raises(error) as info:
        revisions.resolve(FakeStore(), rev)
    assert text in str(info.value) and "\n" not in str(info.value) and len(str(info.value)) < 200
