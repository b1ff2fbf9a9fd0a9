"""Image names and their refs (store/names.py), tree entry names (store/treenames.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from layergit.errors import UsageError
from layergit.store import names, treenames
from layergit.store.names import ImageName

# -- image names ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, name, tag",
    [
        ("app", "app", "latest"),
        ("app:1.0", "app", "1.0"),
        ("team/app:v1_rc-2", "team/app", "v1_rc-2"),
        ("a.b__c-d---e", "a.b__c-d---e", "latest"),
        ("localhost:5000/app", "localhost:5000/app", "latest"),
        ("localhost:5000/team/app:v1", "localhost:5000/team/app", "v1"),
        ("Registry.Example.com/app:X", "Registry.Example.com/app", "X"),
        ("app:" + "t" * 128, "app", "t" * 128),
    ],
)
def test_parse_accepts_docker_names(text, name, tag):
    assert names.parse(text) == ImageName(name, tag)
    assert names.looks_like_name(text)


@pytest.mark.parametrize(
    "text",
    ["", "App", "app:", "app:-x", "app:.x", "app:" + "t" * 129, "app@sha256:" + "0" * 64, "/app", "app/",
     "a..b", "a_-b", "-app", "app/-x", "a b", "a" * 256, "app:1:2", "localhost:port/app", "app\n", "app:v1\n",
     "app:\u0661"],
)
def test_parse_refuses_what_docker_refuses(text):
    with pytest.raises(UsageError) as info:
        names.parse(text)
    assert "\n" not in str(info.value)
    assert not names.looks_like_name(text)


@pytest.mark.parametrize(
    "image, ref",
    [
        (ImageName("app"), "refs/heads/app/latest"),
        (ImageName("localhost:5000/team/app", "1"), "refs/heads/localhost%3A5000/team/app/1"),
        (ImageName("app", "x.lock"), "refs/heads/app/x%2Elock"),
        (ImageName("app", "a..b"), "refs/heads/app/a%2E%2Eb"),
        (ImageName("app", "v1."), "refs/heads/app/v1%2E"),
        (ImageName("app", "v1.2"), "refs/heads/app/v1.2"),  # a lone dot is fine in git
    ],
)
def test_ref_escapes_what_git_refuses(image, ref):
    assert image.ref == ref
    assert names.from_ref(ref) == image


@pytest.mark.parametrize(
    "ref", ["refs/layergit/containers/abc", "refs/heads/noslash", "refs/heads/App/latest", "refs/heads/app/-x", "HEAD"]
)
def test_from_ref_ignores_refs_that_are_not_images(ref):
    assert names.from_ref(ref) is None


_tags = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", fullmatch=True)
_components = st.from_regex(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+){0,2}", fullmatch=True)
_domains = st.sampled_from(["", "localhost:5000/", "registry.example.com/", "r-1.example:443/"])


@given(_domains, st.lists(_components, min_size=1, max_size=3), _tags)
def test_every_name_maps_to_a_ref_and_back(domain, path, tag):
    image = names.parse(f"{domain}{'/'.join(path)}:{tag}")
    assert names.from_ref(image.ref) == image
    component_rules(image.ref)


def component_rules(ref: str) -> None:
    """What git check-ref-format demands of each component."""
    for component in ref.split("/"):
        assert component and ":" not in component and ".." not in component
        assert not component.endswith(".lock") and not component.endswith(".") and not component.startswith(".")


# -- tree entry names ----------------------------------------------------------------------------

# The examples of docs/format.md, "Entry names".
DOC_EXAMPLES = [
    (b".git", b"%%2Egit"),
    (b".lgmeta", b"%%2Elgmeta"),
    (b"%off", b"%%25off"),
    (b"a\nb", b"%a%0Ab"),
    (b"\xff.bin", b"%%FF.bin"),
    (b"a\\.git", b"%a%5C.git"),
]


@pytest.mark.parametrize("name, stored", DOC_EXAMPLES)
def test_escaping_examples_of_the_format(name, stored):
    assert treenames.encode(name) == stored
    assert treenames.decode(stored) == name


@pytest.mark.parametrize(
    "name",
    [b"passwd", b"bin", b".bashrc", b"...", b"git", b".gi", "caf\u00e9".encode(), "\u65e5\u672c".encode(), b"a b",
     b"-rf", b"toolongname~1", b"a\\b"],
)
def test_ordinary_names_are_stored_verbatim(name):
    assert not treenames.needs_escape(name)
    assert treenames.encode(name) == name


@pytest.mark.parametrize(
    "name",
    [b".git", b".GIT", b".Git", b".gitmodules", b".gitignore", ".git\u200c".encode(), "\ufeff.git".encode(),
     b"git~1", b"GIT~1", b"x~1", b"gitmod~2", b"gi7eba~1 ", b"git~1..", b"x\\.git", b"x\\git~1", b"%", b"%41",
     b".lgmeta", b"tab\there", b"del\x7f", b"\x00", b"\xc3\x28"],
)
def test_names_git_treats_specially_are_escaped(name):
    stored = treenames.encode(name)
    assert stored.startswith(b"%") and stored != name
    assert treenames.decode(stored) == name


@given(st.binary(min_size=1, max_size=40))
def test_decoding_inverts_encoding(name):
    assert treenames.decode(treenames.encode(name)) == name


@given(st.binary(min_size=1, max_size=40))
def test_stored_names_are_safe_for_git(name):
    stored = treenames.encode(name)
    text = stored.decode("utf-8")  # always valid UTF-8
    assert not any(b < 0x20 or b == 0x7F for b in stored)
    assert stored != treenames.META_NAME_B
    if stored != name:  # escaped: a leading "." and every backslash are %XX
        assert stored.startswith(b"%") and not stored.startswith(b"%.") and b"\\" not in stored
    assert not treenames._git_special(text)


@given(st.binary(min_size=1, max_size=40).filter(lambda n: not n.startswith(b"%")))
def test_names_not_starting_with_percent_decode_to_themselves(stored):
    assert treenames.decode(stored) == stored


def test_cache_keys_are_64_hex_digits_under_their_prefix():
    key = "ab" * 32
    assert names.cache_key(names.BUILD_CACHE_PREFIX + key) == key
    assert names.cache_key(names.remote_cache_ref("ci", key), f"{names.REMOTE_CACHE_PREFIX}ci/") == key
    for bad in ("AB" * 32, "ab" * 31, "ab" * 32 + "\n", "../" + key, "ab" * 33):
        assert names.cache_key(names.BUILD_CACHE_PREFIX + bad) is None
    assert names.cache_key("refs/heads/" + key) is None
