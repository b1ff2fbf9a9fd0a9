"""The metadata blob (store/meta.py): the format of docs/format.md, both ways, and nothing else."""

from __future__ import annotations

import os
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from layergit.errors import CorruptStore, LgError
from layergit.store import meta as M
from layergit.store import treenames

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ID_LIMIT = (1 << 32) - 1


def line(text: str) -> bytes:
    return M.HEADER + text.encode("utf-8", "surrogateescape") + b"\n"


# -- the format document ----------------------------------------------------------------------


def doc_example() -> bytes:
    """The example blob of docs/format.md, "The metadata blob" (a code block, tabs as written)."""
    with open(os.path.join(REPO, "docs", "format.md"), encoding="utf-8") as f:
        text = f.read()
    section = text.split("### The metadata blob", 1)[1]
    block = re.search(r"```\n(.*?)```", section, re.S)
    assert block, "docs/format.md lost its example blob"
    return block.group(1).encode()


def test_the_documented_example_reads_and_writes_back_line_for_line():
    blob = doc_example()
    entries = M.decode_blob(blob)
    assert entries[b"ping"].xattrs == (("security.capability", bytes.fromhex("0100000200200000" + "00" * 12)),)
    assert entries[b"null"].rdev == (1, 3) and entries[b"sh"].link == b"/bin/busybox"
    assert entries[b"etc"].mtime_ns == 1732800000_123456789
    for text in blob.splitlines()[1:]:
        name = text.partition(b"\t")[0]
        assert M.format_line(name, entries[name]) == text + b"\n"
    assert sorted(M.encode_blob(entries).splitlines()) == sorted(blob.splitlines())


@pytest.mark.parametrize(
    "ns, text",
    [(0, "0.000000000"), (1, "0.000000001"), (-1, "-1.999999999"), (-1_000_000_000, "-1.000000000"),
     (1732800000_123456789, "1732800000.123456789")],
)
def test_mtime_seconds_are_floored_and_nanoseconds_never_negative(ns, text):
    assert M.format_mtime(ns) == text
    assert M.decode_blob(line(f"x\tf 0644 0:0 {text}"))[b"x"].mtime_ns == ns


@pytest.mark.parametrize(
    "value, written",
    [
        (b"hello", '"hello"'),
        (b"", '""'),
        (b"!~", '"!~"'),
        (b"a b", "0sYSBi"),
        (b'say "hi"', "0sc2F5ICJoaSI="),
        (b"back\\slash", "0sYmFja1xzbGFzaA=="),
        (b"\x00", "0sAA=="),
        (b"line\n", "0sbGluZQo="),  # a final newline is not printable either
        ("\u00e9".encode(), "0sw6k="),
    ],
)
def test_xattr_values_are_quoted_text_or_base64(value, written):
    m = M.EntryMeta("f", 0o644, 0, 0, 0, xattrs=(("user.k", value),))
    assert M.format_line(b"x", m) == f"x\tf 0644 0:0 0.000000000 xattr.user.k={written}\n".encode()
    assert M.decode_blob(M.HEADER + M.format_line(b"x", m))[b"x"] == m


@pytest.mark.parametrize(
    "link, written",
    [
        (b"/bin/busybox", "/bin/busybox"),
        (b"/a b/c=d", "/a%20b/c%3Dd"),
        (b"/100%", "/100%25"),
        (b"/\xff\t", "/%FF%09"),
        (b"/@:+,!$&'()*;[]^{|}#_.-~", "/@:+,!$&'()*;[]^{|}#_.-~"),
    ],
)
def test_link_paths_escape_all_but_the_safe_characters(link, written):
    m = M.EntryMeta("f", 0o644, 0, 0, 0, link=link)
    assert M.format_line(b"x", m) == f"x\tf 0644 0:0 0.000000000 link={written}\n".encode()
    assert M.decode_blob(M.HEADER + M.format_line(b"x", m))[b"x"].link == link


def test_fields_come_in_the_documented_order():
    m = M.EntryMeta("c", 0o4755, 1, 2, 0, rdev=(4, 5), link=b"/l", xattrs=(("a.b c", b"1"), ("trusted.x", b"2")))
    assert M.format_line(b"n", m) == b'n\tc 4755 1:2 0.000000000 link=/l rdev=4:5 xattr.a.b%20c="1" xattr.trusted.x="2"\n'


def test_entries_are_written_sorted_by_stored_name():
    entries = {name: M.EntryMeta("f", 0o644, 0, 0, 0) for name in (b"b", b".", b"%%2Egit", b"B", b"a")}
    names = [ln.partition(b"\t")[0] for ln in M.encode_blob(entries).splitlines()[1:]]
    assert names == [b"%%2Egit", b".", b"B", b"a", b"b"]


@pytest.mark.parametrize(
    "git_mode, kind, mode", [(0o040000, "d", 0o755), (0o120000, "l", 0o777), (0o100755, "f", 0o755), (0o100644, "f", 0o644)]
)
def test_entries_without_a_line_read_as_root_owned_defaults(git_mode, kind, mode):
    assert M.default_meta(git_mode) == M.EntryMeta(kind, mode, 0, 0, 0)


# -- round trips ---------------------------------------------------------------------------------------

_names = st.one_of(st.just(b"."), st.binary(min_size=1, max_size=12).map(treenames.encode))
_xattr_keys = st.builds(
    lambda ns, rest: ns + rest.replace(b"\0", b"_").decode("utf-8", "surrogateescape"),
    st.sampled_from(["user.", "trusted.", "security.", "x."]), st.binary(min_size=1, max_size=12))


@st.composite
def entry_metas(draw) -> M.EntryMeta:
    kind = draw(st.sampled_from(sorted(M.CHAR_TYPES)))
    rdev = None
    if kind in "cb":
        rdev = draw(st.none() | st.tuples(st.integers(0, ID_LIMIT), st.integers(0, ID_LIMIT)))
    link = None
    if kind != "d":
        link = draw(st.none() | st.binary(max_size=20).map(lambda b: b"/" + b))
    xattrs = draw(st.dictionaries(_xattr_keys, st.binary(max_size=20), max_size=3))
    return M.EntryMeta(
        kind,
        draw(st.integers(0, 0o7777)),
        draw(st.integers(0, ID_LIMIT - 1)),
        draw(st.integers(0, ID_LIMIT - 1)),
        draw(st.integers(-(1 << 70), 1 << 70)),
        rdev,
        link,
        tuple(sorted(xattrs.items())),
    )


_blobs = st.dictionaries(_names, entry_metas(), max_size=6).filter(lambda d: d.get(b".", M.DEFAULT_DIR).kind == "d") \
    if hasattr(M, "DEFAULT_DIR") else st.dictionaries(_names, entry_metas(), max_size=6).filter(
        lambda d: b"." not in d or d[b"."].kind == "d")


@given(_blobs)
def test_decoding_inverts_encoding(entries):
    assert M.decode_blob(M.encode_blob(entries)) == entries


@given(_blobs)
def test_encoding_is_canonical(entries):
    blob = M.encode_blob(entries)
    assert M.encode_blob(M.decode_blob(blob)) == blob


@st.composite
def mutated_blobs(draw) -> bytes:
    """A valid blob with one byte changed, inserted or removed: a near miss of the format."""
    blob = bytearray(M.encode_blob(draw(_blobs.filter(bool))))
    at = draw(st.integers(len(M.HEADER), len(blob) - 1))
    action = draw(st.sampled_from(["replace", "insert", "delete"]))
    byte = draw(st.sampled_from(b" \t\n%.:=-+0129aAzZ\"s\x00\xff"))
    if action == "replace":
        blob[at] = byte
    elif action == "insert":
        blob.insert(at, byte)
    else:
        del blob[at]
    return bytes(blob)


@given(mutated_blobs() | st.binary(max_size=200).map(lambda b: M.HEADER + b))
def test_anything_read_is_exactly_what_would_have_been_written(blob):
    """A near miss is refused with CorruptStore (never another exception), or it is
    itself a valid blob: each line exactly what format_line writes for what was read."""
    try:
        entries = M.decode_blob(blob)
    except CorruptStore:
        return
    lines = blob.splitlines()[1:]
    assert len(lines) == len(entries)
    for text in lines:
        name = text.partition(b"\t")[0]
        assert M.format_line(name, entries[name]) == text + b"\n"


# -- hostile and malformed blobs ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "blob",
    [
        b"",
        b"lgmeta 2\n",
        b"lgmeta 1",
        b"LGMETA 1\n",
        M.HEADER + b"x\tf 0644 0:0 0.000000000",  # no final newline
        M.HEADER + b"\n",  # an empty line
    ],
    ids=["empty", "version-2", "header-without-newline", "header-case", "no-final-newline", "empty-line"],
)
def test_malformed_blobs_are_refused(blob):
    with pytest.raises(CorruptStore):
        M.decode_blob(blob)


@pytest.mark.parametrize(
    "text",
    [
        "x f 0644 0:0 0.000000000",  # no tab
        "x\tf 0644 0:0",  # no mtime
        "x\tf 0644  0:0 0.000000000",  # two spaces
        "x\tf 0644 0:0 0.000000000 ",  # trailing space
        "x\tz 0644 0:0 0.000000000",  # unknown type
        "x\tF 0644 0:0 0.000000000",
        "x\tf 755 0:0 0.000000000",  # modes are four octal digits
        "x\tf 10644 0:0 0.000000000",  # file type bits smuggled into the mode
        "x\tf 0o644 0:0 0.000000000",
        "x\tf 0648 0:0 0.000000000",
        "x\tf -644 0:0 0.000000000",
        "x\tf 0644 -1:0 0.000000000",  # chown(-1) means "leave it"
        "x\tf 0644 0:-1 0.000000000",
        "x\tf 0644 4294967295:0 0.000000000",  # (uid_t)-1 again
        "x\tf 0644 4294967296:0 0.000000000",
        "x\tf 0644 00:0 0.000000000",
        "x\tf 0644 +1:0 0.000000000",
        "x\tf 0644 1_000:0 0.000000000",
        "x\tf 0644 \u0661:0 0.000000000",  # a digit, but not an ASCII one
        "x\tf 0644 0 0.000000000",
        "x\tf 0644 0:0:0 0.000000000",
        "x\tf 0644 0:0 0.5",
        "x\tf 0644 0:0 1.0000000000",
        "x\tf 0644 0:0 -0.000000001",  # -1 ns is -1.999999999
        "x\tf 0644 0:0 1e9.000000000",
        "x\tf 0644 0:0 99999999999999999999.000000000",  # beyond time_t
        "x\tf 0644 0:0 0.000000000 rdev=1:3",  # a device number on a file
        "x\tc 0644 0:0 0.000000000 rdev=1:-3",
        "x\tc 0644 0:0 0.000000000 rdev=4294967296:0",
        "x\tc 0644 0:0 0.000000000 rdev=01:3",
        "x\tc 0644 0:0 0.000000000 rdev=1",
        "x\tc 0644 0:0 0.000000000 rdev=1:3 rdev=1:3",
        "x\tc 0644 0:0 0.000000000 rdev=1:3 link=/y",  # fields out of order
        "x\td 0755 0:0 0.000000000 link=/y",  # a hardlinked directory
        "x\tf 0644 0:0 0.000000000 link=y",  # leaders are paths from the root
        "x\tf 0644 0:0 0.000000000 link=",
        "x\tf 0644 0:0 0.000000000 link=/a%2fb",  # %xx in lower case
        "x\tf 0644 0:0 0.000000000 link=/a%41",  # escaped where nothing needs it
        "x\tf 0644 0:0 0.000000000 link=/a%zz",
        "x\tf 0644 0:0 0.000000000 link=/a link=/b",
        'x\tf 0644 0:0 0.000000000 xattr.user.a="1" xattr.user.a="2"',
        'x\tf 0644 0:0 0.000000000 xattr.user.b="1" xattr.user.a="2"',
        'x\tf 0644 0:0 0.000000000 xattr.="1"',
        'x\tf 0644 0:0 0.000000000 xattr.user.a="unterminated',
        'x\tf 0644 0:0 0.000000000 xattr.user.a=unquoted',
        'x\tf 0644 0:0 0.000000000 xattr.user.a="a"b"',
        'x\tf 0644 0:0 0.000000000 xattr.user.a="\u00e9"',
        "x\tf 0644 0:0 0.000000000 xattr.user.a=0s!!!!",
        "x\tf 0644 0:0 0.000000000 xattr.user.a=0sAB==",  # stray bits in the last base64 digit
        "x\tf 0644 0:0 0.000000000 xattr.user.a=0saGk=",  # printable text goes in quotes
        "x\tf 0644 0:0 0.000000000 xattr.user.a=0sYQ",  # padding missing
        'x\tf 0644 0:0 0.000000000 xattr.user.a%00b="1"',  # names Linux cannot hold (issue 12)
        'x\tf 0644 0:0 0.000000000 xattr.%00="1"',
        'x\tf 0644 0:0 0.000000000 xattr.user.="1"',
        'x\tf 0644 0:0 0.000000000 xattr.nonamespace="1"',
        'x\tf 0644 0:0 0.000000000 xattr.user.' + "a" * 251 + '="1"',
        "x\tf 0644 0:0 0.000000000 xattr.user.big=0s" + "A" * 87384,  # 65,538 bytes
        'x\tf 0644 0:0 0.000000000 xattr.user.a',
        'x\tf 0644 0:0 0.000000000 xattr.user.a=',
        'x\tf 0644 0:0 0.000000000 xattr.user.a=""=""',
        "x\tf 0644 0:0 0.000000000 owner=0:0",  # unknown field
        "x\tf 0644 0:0 0.000000000\tmore",
        ".\tf 0644 0:0 0.000000000",  # a directory describing itself as a file
        "x\tf 0644 0:0 0.000000000\nx\tf 0600 0:0 0.000000000",  # one name, two lines
    ],
)
def test_hostile_lines_are_refused(text):
    with pytest.raises(CorruptStore) as info:
        M.decode_blob(line(text))
    assert "\n" not in str(info.value)


def test_xattr_limits_are_linux_limits():
    """The longest name and the largest value Linux takes are kept; one byte more is refused."""
    name, value = "user." + "a" * 250, b"\x00" * 65536
    m = M.EntryMeta("f", 0o644, 0, 0, 0, xattrs=((name, value),))
    assert M.decode_blob(M.encode_blob({b"x": m})) == {b"x": m}
    for bad in ((name + "a", b""), ("user.a", value + b"\x00")):
        with pytest.raises(M.InvalidMetadata):
            M.EntryMeta("f", 0o644, 0, 0, 0, xattrs=(bad,))


def test_non_utf8_fields_are_refused():
    with pytest.raises(CorruptStore):
        M.decode_blob(M.HEADER + b"x\tf 0644 0:0 0.000000000 xattr.user.a=\"\xff\"\n")


@pytest.mark.parametrize(
    "text",
    [
        'x\tf 0644 0:0 0.000000000 xattr.user.a=""',  # the empty value
        "x\tf 7777 4294967294:4294967294 -9223372036854775808.000000000",
        "x\tb 0600 0:0 0.000000000 rdev=4294967295:4294967295",
        "x\tc 0000 0:0 0.000000000",  # a device without its number reads as 0:0
        "x\tp 0600 0:0 0.000000000 link=/fifo",  # hardlinked fifos exist
        "\tf 0644 0:0 0.000000000",  # an empty name is snapshot.read_dir's to refuse, with the tree's context
    ],
)
def test_edge_values_that_are_valid_are_read(text):
    entries = M.decode_blob(line(text))
    assert M.encode_blob(entries) == line(text)


def test_lines_in_any_order_are_read():
    """A blob made by hand need not be sorted; nothing depends on the order it was read in."""
    entries = M.decode_blob(line("b\tf 0644 0:0 0.000000000\na\tf 0644 0:0 0.000000000"))
    assert sorted(entries) == [b"a", b"b"]


@pytest.mark.parametrize(
    "kw",
    [
        {"kind": "x"},
        {"mode": 0o10000},
        {"mode": -1},
        {"uid": -1},
        {"gid": ID_LIMIT},
        {"mtime_ns": 1 << 100},
        {"kind": "f", "rdev": (1, 3)},
        {"kind": "c", "rdev": (1 << 32, 0)},
        {"kind": "d", "link": b"/x"},
        {"link": b"x"},
        {"xattrs": (("", b"v"),)},
    ],
)
def test_metadata_no_entry_can_have_is_refused_on_construction(kw):
    args = {"kind": "f", "mode": 0o644, "uid": 0, "gid": 0, "mtime_ns": 0, **kw}
    with pytest.raises(M.InvalidMetadata) as info:
        M.EntryMeta(**args)
    assert isinstance(info.value, LgError) and isinstance(info.value, ValueError)


@given(kind=st.sampled_from("fdlcbps"), mode=st.integers(0, 0o7777), uid=st.integers(0, 2**32 - 2),
       gid=st.integers(0, 2**32 - 2), mtime_ns=st.integers(-(2**62), 2**62), name=st.binary(max_size=20))
def test_the_plain_entry_shortcut_writes_what_the_general_form_writes(kind, mode, uid, gid, mtime_ns, name):
    """format_line's one-format path for entries without link, device or xattrs: the same
    bytes as the general formatter (negative times, odd modes, big ids included)."""
    m = M.EntryMeta(kind, mode, uid, gid, mtime_ns)
    assert M.format_line(name, m) == M._format_line(name, m)
