"""Git's object formats written and parsed without libgit2 (store/rawobj.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from layergit.errors import UsageError
from layergit.store import rawobj as R

EMPTY_TREE = bytes.fromhex("4b825dc642cb6eb9a060e54bf8d69288fbee4904")


@pytest.mark.parametrize(
    "obj_type, data, hexid",
    [
        (R.OBJ_BLOB, b"", "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"),
        (R.OBJ_BLOB, b"hello\n", "ce013625030ba8dba906f756967f9e9ca394464a"),
        (R.OBJ_TREE, b"", "4b825dc642cb6eb9a060e54bf8d69288fbee4904"),
    ],
)
def test_object_ids_are_gits(obj_type, data, hexid):
    assert R.object_id(obj_type, data).hex() == hexid


def test_a_commit_hashes_as_git_hashes_it():
    """The id ``git hash-object -t commit`` gives these exact bytes."""
    sig = R.Signature("Alice Example", "alice@example.org", 1700000000, -90)
    raw = R.commit_bytes(EMPTY_TREE, [], sig, sig, "first")
    assert raw == (
        b"tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n"
        b"author Alice Example <alice@example.org> 1700000000 -0130\n"
        b"committer Alice Example <alice@example.org> 1700000000 -0130\n\nfirst\n"
    )
    assert R.object_id(R.OBJ_COMMIT, raw).hex() == "ae61e0bab62fd99908be015455270263acba7bc0"


def test_trees_sort_as_git_sorts_them():
    """A subtree sorts as if its name ended in "/": after "a.b" ("." < "/"), before "a0"."""
    blob, tree = b"\1" * 20, b"\2" * 20
    entries = [(b"a0", R.MODE_BLOB, blob), (b"a", R.MODE_TREE, tree), (b"a.b", R.MODE_BLOB, blob), (b"a-b", R.MODE_EXEC, blob)]
    raw = R.tree_bytes(entries)
    assert [name for name, _, _ in R.parse_tree(raw)] == [b"a-b", b"a.b", b"a", b"a0"]
    assert raw.startswith(b"100755 a-b\0")
    assert b"40000 a\0" + tree in raw  # git writes tree modes without a leading zero


def test_a_file_sorts_before_its_dotted_siblings():
    blob = b"\1" * 20
    raw = R.tree_bytes([(b"a.b", R.MODE_BLOB, blob), (b"a", R.MODE_LINK, blob)])
    assert [name for name, _, _ in R.parse_tree(raw)] == [b"a", b"a.b"]


_entry_names = st.binary(min_size=1, max_size=10).filter(lambda n: b"\0" not in n and b"/" not in n)
_modes = st.sampled_from([R.MODE_BLOB, R.MODE_EXEC, R.MODE_LINK, R.MODE_TREE])


@given(st.dictionaries(_entry_names, st.tuples(_modes, st.binary(min_size=20, max_size=20)), max_size=8))
def test_parse_tree_inverts_tree_bytes(entries):
    items = [(name, mode, oid) for name, (mode, oid) in entries.items()]
    parsed = R.parse_tree(R.tree_bytes(items))
    assert sorted(parsed) == sorted(items)
    assert R.tree_bytes(parsed) == R.tree_bytes(items)


@pytest.mark.parametrize("offset, text", [(0, b"+0000"), (-90, b"-0130"), (345, b"+0545"), (-720, b"-1200"), (840, b"+1400")])
def test_signature_offsets(offset, text):
    sig = R.Signature("A", "a@b", 1, offset)
    assert sig.to_bytes() == b"A <a@b> 1 " + text
    assert R._parse_signature(sig.to_bytes()) == sig


@pytest.mark.parametrize(
    "text, name, email",
    [("Alice <alice@example.org>", "Alice", "alice@example.org"), ("  Bob Smith   <b@x> ", "Bob Smith", "b@x"),
     ("Zoë <z@x>", "Zoë", "z@x")],
)
def test_author_syntax(text, name, email):
    sig = R.Signature.parse(text, when=1700000000)
    assert (sig.name, sig.email, sig.time) == (name, email, 1700000000)


@pytest.mark.parametrize("text", ["Alice", "<a@x>", "Alice <a@x> tail", "Alice a@x>", "Alice <a@x", "A\n <a@x>", "A <a\0@x>"])
def test_bad_authors_are_usage_errors(text):
    with pytest.raises(UsageError):
        R.Signature.parse(text)


@pytest.mark.parametrize("message, author", [
    ("bad \udcff", "A <a@x>"),  # a byte that is not UTF-8, from argv (surrogateescape)
    ("lone \ud800", "A <a@x>"),  # a lone surrogate, as JSON can hold one
    ("fine", "A\udcff <a@x>"),
    ("fine", "A <a\udcff@x>"),
])
def test_text_that_is_not_utf8_is_a_usage_error(message, author):
    sig = R.Signature.parse(author, when=1700000000)
    with pytest.raises(UsageError, match="is not valid UTF-8") as caught:
        R.commit_bytes(b"\0" * 20, [], sig, sig, message)
    assert "\n" not in str(caught.value)


_text = st.text(alphabet=st.characters(blacklist_characters="<>\n\0", blacklist_categories=("Cs",)), min_size=1, max_size=12)
_sigs = st.builds(
    R.Signature,
    _text.map(str.strip).filter(bool),
    _text.map(str.strip),
    st.integers(0, 1 << 40),
    st.integers(-24 * 60 + 1, 24 * 60 - 1),
)


@given(st.binary(min_size=20, max_size=20), st.lists(st.binary(min_size=20, max_size=20), max_size=3), _sigs, _sigs,
       st.text(min_size=0, max_size=40).filter(lambda m: "\r" not in m))
def test_parse_commit_inverts_commit_bytes(tree, parents, author, committer, message):
    raw = R.commit_bytes(tree, parents, author, committer, message)
    got_tree, got_parents, got_author, got_committer, got_message = R.parse_commit(raw)
    assert (got_tree, list(got_parents)) == (tree, parents)
    assert (got_author, got_committer) == (author, committer)
    assert got_message == (message if message.endswith("\n") else message + "\n")


@pytest.mark.parametrize(
    "raw",
    [b"", b"author A <a> 1 +0000\ncommitter A <a> 1 +0000\n\nm\n", b"tree " + b"00" * 20 + b"\n\nno signatures\n"],
    ids=["empty", "no-tree", "no-author"],
)
def test_malformed_commits_are_refused(raw):
    with pytest.raises(ValueError):
        R.parse_commit(raw)
