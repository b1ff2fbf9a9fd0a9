"""Fuzzing revision and image name parsing (store/revisions.py, store/names.py) against a
real store holding one image of three commits: ``NAME[:TAG]``, ids and id prefixes, ``~N`` and
``^N`` suffixes, ref names read back from a store. A revision names a commit of the store or
is one line; a name parses or is one line, and a parsed name round-trips through its ref."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fixtures import archives as A
from layergit.porcelain.importer import import_archive
from layergit.porcelain.repo import open_repo
from layergit.store import names, revisions

from . import fuzz, outcome

_NAME_CHARS = st.sampled_from(list("abcz09._-/:@%~^ ") + ["__", "--", "..", "\u00e9", "\n", "A", "localhost:5000/"])
_TEXT_NAMES = st.lists(_NAME_CHARS, max_size=30).map("".join)


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    work = tmp_path_factory.mktemp("fuzz-revs")
    repo = open_repo(str(work / "root"))
    path = A.docker_archive(A.three_layers(), repo_tags=["base:1", "base:latest"]).write_tar(work / "base.tar")
    import_archive(repo, path)
    return repo


@st.composite
def revs(draw, tip: str) -> str:
    known = st.sampled_from(["base", "base:1", "base:latest", tip, tip[:4], tip[:12]])
    base = draw(st.one_of(
        known, known, known,
        st.sampled_from(["base:2", tip[:3], tip.upper()[:8], "", "-"]),
        st.text("0123456789abcdef", min_size=1, max_size=41),
        _TEXT_NAMES,
    ))
    suffixes = draw(st.lists(st.one_of(
        st.sampled_from(["~", "^", "~0", "^0", "^2", "~3", "~~", "^^"]),
        st.tuples(st.sampled_from("~^"), st.text("0123456789", min_size=1, max_size=30)).map("".join),
        st.sampled_from(["~" + "9" * 5000, "^" + "1" * 4500]),
    ), max_size=4))
    return base + "".join(suffixes) + draw(st.sampled_from(["", "", " ", "\n"]))


@fuzz(300)
@given(st.data())
def test_revisions(repo, data):
    tip = repo.store.ref("refs/heads/base/1").hex()
    rev = data.draw(revs(tip))
    result = outcome(revisions.resolve, repo.store, rev)
    if isinstance(result, bytes):
        assert repo.store.has(result)


@fuzz(500)
@given(st.one_of(_TEXT_NAMES, st.text(max_size=300)))
def test_image_names(text):
    image = outcome(names.parse, text)
    if isinstance(image, names.ImageName):
        assert names.from_ref(image.ref) == image


@fuzz(300)
@given(st.one_of(_TEXT_NAMES.map(lambda t: "refs/heads/" + t), st.text(max_size=60)))
def test_refs_read_back_as_names(ref):
    image = names.from_ref(ref)
    assert image is None or names.looks_like_name(str(image))


_DIGEST = "sha256:" + "ab" * 32


@fuzz(500)
@given(st.one_of(_TEXT_NAMES, st.text(max_size=300), _TEXT_NAMES.map(lambda t: f"{t}@{_DIGEST}")))
def test_registry_references(text):
    """Docker's reference grammar (registry/reference.py): a reference or one line; what it
    names locally is a name lg can store, and it prints back to the same reference."""
    from layergit.registry.reference import Reference, parse

    ref = outcome(parse, text)
    if isinstance(ref, Reference):
        assert names.looks_like_name(ref.local())
        assert parse(str(ref)) == ref


@fuzz(300)
@given(st.one_of(_TEXT_NAMES.map(lambda t: f"{t}@{_DIGEST}"), _TEXT_NAMES, st.text(max_size=100)))
def test_digest_references(text):
    pinned = outcome(names.split_digest, text)
    if isinstance(pinned, tuple):
        assert names.from_digest_ref(names.digest_ref(*pinned)) == pinned
