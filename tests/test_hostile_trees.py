"""Checkout never writes outside its destination, whatever the store holds.

Hostile image commits are written straight into the store with git plumbing (raw
tree objects via ``git hash-object -t tree --literally``, so names git itself would
refuse are possible) under ``refs/heads/evil/NAME``. For each, ``lg checkout`` must
either fail with one clear line and remove what it created, or produce a result
that is contained in the destination. Around the destination sit a sentinel
directory that must stay empty, victim files whose link count and content must not
change, and /etc/passwd, which must be untouched.

The last tests check the other direction: capturing a source tree never follows
its symlinks out of it.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import shutil
import stat
import subprocess
import sys
import time
import zlib

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

BLOB, EXEC, LINK, TREE, GITLINK = b"100644", b"100755", b"120000", b"40000", b"160000"


# -- crafting objects --------------------------------------------------------------------


def _git(lg, *args: str, input: bytes | None = None) -> str:
    env = dict(os.environ, GIT_AUTHOR_NAME="evil", GIT_AUTHOR_EMAIL="evil@example.com", GIT_COMMITTER_NAME="evil", GIT_COMMITTER_EMAIL="evil@example.com")
    proc = subprocess.run(["git", "-C", os.path.join(lg.root, "store.git"), *args], input=input, capture_output=True, env=env)
    assert proc.returncode == 0, f"git {' '.join(args)}: {proc.stderr.decode(errors='replace')}"
    return proc.stdout.decode().strip()


def blob(lg, data: bytes) -> bytes:
    return bytes.fromhex(_git(lg, "hash-object", "-w", "--stdin", input=data))


def raw_tree(lg, entries: list[tuple[bytes, bytes, bytes]]) -> bytes:
    """A tree object written byte for byte from (mode, name, raw id), in the order given, however hostile."""
    data = b"".join(mode + b" " + name + b"\0" + oid for mode, name, oid in entries)
    return bytes.fromhex(_git(lg, "hash-object", "-t", "tree", "--literally", "-w", "--stdin", input=data))


def meta(*lines: bytes, root: bytes | None = b".\td 0755 0:0 1600000000.000000000") -> bytes:
    """A .lgmeta blob text (format version 1) from entry lines ("name\\tTYPE MODE UID:GID MTIME [k=v...]")."""
    body = ([root] if root else []) + list(lines)
    return b"lgmeta 1\n" + b"".join(line + b"\n" for line in body)


def rootfs(lg, entries: list[tuple[bytes, bytes, bytes]], meta_text: bytes) -> bytes:
    """A snapshot directory: the given git entries plus a .lgmeta blob."""
    return raw_tree(lg, entries + [(BLOB, b".lgmeta", blob(lg, meta_text))])


def image(lg, name: str, rootfs_id: bytes, config: bytes = b"{}\n") -> str:
    """Wrap a rootfs tree as an image commit at refs/heads/evil/NAME; returns the revision to check out."""
    top = raw_tree(lg, [(BLOB, b"config.json", blob(lg, config)), (TREE, b"rootfs", rootfs_id)])
    commit = _git(lg, "commit-tree", top.hex(), "-m", f"evil {name}")
    _git(lg, "update-ref", f"refs/heads/evil/{name}", commit)
    return f"evil:{name}"


F = b"f 0644 0:0 1600000000.000000000"
D = b"d 0755 0:0 1600000000.000000000"
L = b"l 0777 0:0 1600000000.000000000"


# -- the surroundings and what must not change ---------------------------------------------


def _fingerprint(path: str) -> tuple:
    st = os.lstat(path)
    with open(path, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    return (st.st_ino, st.st_nlink, st.st_size, st.st_mtime_ns, st.st_ctime_ns, stat.S_IMODE(st.st_mode), st.st_uid, digest)


class Arena:
    """tmp/ holds victim.txt, SENTINEL/ (must stay empty), outside/victim2.txt and work/ (parent of DEST)."""

    def __init__(self, tmp_path):
        self.top = tmp_path / "arena"
        self.top.mkdir()
        self.victim = self.top / "victim.txt"
        self.victim.write_text("victim\n")
        self.sentinel = self.top / "SENTINEL"
        self.sentinel.mkdir()
        (self.top / "outside").mkdir()
        self.victim2 = self.top / "outside" / "victim2.txt"
        self.victim2.write_text("victim2\n")
        self.work = self.top / "work"
        self.work.mkdir()
        self.dest = self.work / "out"
        self.before = self._state()

    def _state(self) -> dict:
        listing = sorted(os.path.relpath(os.path.join(d, n), self.top) for d, ds, fs in os.walk(self.top) for n in ds + fs if not os.path.join(d, n).startswith(str(self.dest)))
        return {
            "listing": listing,
            "victim": _fingerprint(str(self.victim)),
            "victim2": _fingerprint(str(self.victim2)),
            "passwd": _fingerprint("/etc/passwd"),
            "sentinel": os.listdir(self.sentinel),
            "sentinel_mode": os.lstat(self.sentinel)[:7],
            }

    def assert_untouched(self) -> None:
        after = self._state()
        assert after["sentinel"] == [], f"something was written into the sentinel: {after['sentinel']}"
        assert after["passwd"] == self.before["passwd"], "/etc/passwd changed (content, mode, owner or link count)"
        assert after["victim"] == self.before["victim"], "a file outside the destination changed or gained a hardlink"
        assert after["victim2"] == self.before["victim2"], "a file outside the destination changed or gained a hardlink"
        assert after == self.before

    def assert_contained(self, also: tuple = ()) -> None:
        """Every hardlinked file in DEST has all its links inside DEST (or in ``also``: the cache of checkout -H)."""
        counts: dict[tuple, list] = {}
        for top in (self.dest, *also):
            for d, ds, fs in os.walk(top):
                for n in ds + fs:
                    st = os.lstat(os.path.join(d, n))
                    if not stat.S_ISDIR(st.st_mode):
                        counts.setdefault((st.st_dev, st.st_ino), []).append((os.path.join(d, n), st.st_nlink))
        for paths in counts.values():
            inside = [p for p, _ in paths if p.startswith(str(self.dest))]
            if inside:
                assert len(paths) == paths[0][1], f"{inside[0]} has {paths[0][1]} links but only {len(paths)} inside the checkout"


def checkout_hostile(lg, arena: Arena, rev: str, dest=None, hardlink: bool = False) -> subprocess.CompletedProcess:
    """Check out ``rev`` (with -H: from the materialised cache); on failure insist on one line and no
    leftovers, on success on containment."""
    dest = dest or arena.dest
    pre_existing = os.path.isdir(dest)
    try:
        proc = lg("checkout", *(["-H"] if hardlink else []), rev, dest, check=False, timeout=60)
        print(f"lg checkout {rev}: exit {proc.returncode} {proc.stderr.decode(errors='replace').strip()}")
        if proc.returncode != 0:
            err = proc.stderr.decode(errors="replace").strip()
            assert err and len(err.splitlines()) == 1, f"expected one line on stderr, got {err!r}"
            if pre_existing:
                assert os.listdir(dest) == [], f"failed checkout left {os.listdir(dest)} in {dest} ({err})"
            else:
                assert not os.path.lexists(dest), f"failed checkout left {dest} behind ({err})"
        arena.assert_untouched()
        if proc.returncode == 0:
            arena.assert_contained(also=(os.path.join(lg.root, "cache"),) if hardlink else ())
        return proc
    finally:
        # never leave a hardlink to a host file lying around, whatever happened
        if os.path.lexists(dest):
            for d, ds, _ in os.walk(dest):
                for n in ds:
                    if not os.path.islink(os.path.join(d, n)):
                        os.chmod(os.path.join(d, n), 0o700)
            shutil.rmtree(dest, ignore_errors=True)


@pytest.fixture(scope="session")
def seed_root(tmp_path_factory) -> str:
    """A layergit root holding one ordinary image, made by lg once per session."""
    top = tmp_path_factory.mktemp("hostile-seed")
    (top / "src").mkdir()
    (top / "src" / "hello").write_text("hello\n")
    env = dict(os.environ, LG_ROOT=str(top / "root"))
    subprocess.run([sys.executable, "-m", "cli", "commit", str(top / "src"), "-t", "seed"], check=True, capture_output=True, env=env, cwd=REPO)
    return str(top / "root")


@pytest.fixture
def arena(lg, tmp_path, seed_root):
    """This test's own root (a copy of the seed store) and the arena around the destination."""
    shutil.copytree(seed_root, lg.root, symlinks=True)
    return Arena(tmp_path)


def depth_to_root(path) -> int:
    return len(os.path.abspath(path).strip("/").split("/"))


# -- names that would leave the directory -----------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [b"..", b".", b"%%2E%2E", b"%%2E", b"%..%2Fescaped", b"../escaped", b"", b"%%00"],
    ids=lambda n: n.decode(errors="replace") or "empty",
)
@pytest.mark.parametrize("kind", ["file", "dir"])
def test_hostile_tree_entry_names(lg, arena, name, kind):
    """Tree entries named '..', '.', '', with '/' or their %-escaped forms are refused (or at worst contained)."""
    hello = blob(lg, b"escaped!\n")
    if kind == "file":
        entries = [(BLOB, name, hello)]
        line = name + b"\t" + F
    else:
        inner = rootfs(lg, [(BLOB, b"escaped", hello)], meta(b"escaped\t" + F, root=None))
        entries = [(TREE, name, inner)]
        line = name + b"\t" + D
    for with_meta in (True, False) if kind == "file" else (True,):
        rev = image(lg, f"name-{kind}-{int(with_meta)}", rootfs(lg, entries, meta(line) if with_meta else meta()))
        proc = checkout_hostile(lg, arena, rev)
        assert not (arena.work / "escaped").exists() and not (arena.top / "escaped").exists()
        if name in (b"..", b".", b"%%2E%2E", b"%%2E", b"", b"%%00"):
            assert proc.returncode != 0, f"{name!r} was accepted"


@pytest.mark.parametrize("name", [b"..", b"%%2E%2E", b"%%2E%2E%2FSENTINEL%2Ffifo", b"../SENTINEL/fifo", b"a\x00b", b"%%2E", b"%a%2Fb"])
def test_hostile_metadata_only_names(lg, arena, name):
    """Fifos, sockets and devices exist only as metadata lines: their names are checked like tree entries."""
    rev = image(lg, "metaname", rootfs(lg, [], meta(name + b"\tp 0644 0:0 0.000000000")))
    proc = checkout_hostile(lg, arena, rev)
    assert proc.returncode != 0


# -- hardlinks ------------------------------------------------------------------------------------


def _hardlink_image(lg, tag: str, link: bytes, leader_entries=(), leader_lines=()) -> str:
    data = blob(lg, b"pwned\n")
    entries = list(leader_entries) + [(BLOB, b"zz-link", data)]
    lines = list(leader_lines) + [b"zz-link\t" + F + b" link=" + link]
    return image(lg, tag, rootfs(lg, entries, meta(*lines)))


@pytest.mark.parametrize("hardlink", [False, True], ids=["copy", "checkout-H"])
def test_hardlink_leader_outside_via_dotdot(lg, arena, hardlink):
    """A link= leader that climbs out with '..' (/../../victim.txt) must not hardlink a file outside DEST into it."""
    rev = _hardlink_image(lg, "hl-victim", b"/../../victim.txt")
    checkout_hostile(lg, arena, rev, hardlink=hardlink)


@pytest.mark.parametrize("hardlink", [False, True], ids=["copy", "checkout-H"])
def test_hardlink_leader_etc_passwd(lg, arena, hardlink):
    """link=/../../../../etc/passwd (with enough '..' to reach /) must leave /etc/passwd's inode alone."""
    ups = b"/.." * (depth_to_root(arena.dest) + 2)
    rev = _hardlink_image(lg, "hl-passwd", ups + b"/etc/passwd")
    checkout_hostile(lg, arena, rev, hardlink=hardlink)


@pytest.mark.parametrize("hardlink", [False, True], ids=["copy", "checkout-H"])
def test_hardlink_leader_outside_via_escaped_dotdot(lg, arena, hardlink):
    """The same climb spelled with stored-name escapes (%%2E%2E decodes to .., %-quoted again in the link field)."""
    rev = _hardlink_image(lg, "hl-escaped", b"/%25%252E%252E/%25%252E%252E/victim.txt")
    checkout_hostile(lg, arena, rev, hardlink=hardlink)


@pytest.mark.parametrize("hardlink", [False, True], ids=["copy", "checkout-H"])
def test_hardlink_through_symlink_directory(lg, arena, hardlink):
    """A symlink d -> outside/ followed by link=/d/victim2.txt: the leader is not reached through the symlink."""
    target = str(arena.top / "outside").encode()
    rev = _hardlink_image(lg, "hl-through-symlink", b"/d/victim2.txt", [(LINK, b"d", blob(lg, target))], [b"d\t" + L])
    checkout_hostile(lg, arena, rev, hardlink=hardlink)


@pytest.mark.parametrize("hardlink", [False, True], ids=["copy", "checkout-H"])
def test_hardlink_to_symlink_pointing_outside(lg, arena, hardlink):
    """A hardlink whose leader is a symlink to a file outside links the symlink, never the file it points to."""
    target = str(arena.victim).encode()
    link_blob = blob(lg, target)
    entries = [(LINK, b"s", link_blob), (LINK, b"t", link_blob)]
    rev = image(lg, "hl-symlink", rootfs(lg, entries, meta(b"s\t" + L, b"t\t" + L + b" link=/s")))
    proc = checkout_hostile(lg, arena, rev, hardlink=hardlink)
    # also with the hardlink claiming to be a regular file
    rev = _hardlink_image(lg, "hl-symlink-as-file", b"/s", [(LINK, b"s", link_blob)], [b"s\t" + L])
    checkout_hostile(lg, arena, rev, hardlink=hardlink)
    assert proc.returncode == 0  # a legitimate hardlinked symlink still checks out


def test_hardlink_to_directory_or_missing(lg, arena):
    """Leaders that are directories, '..', '/' or missing entries fail cleanly."""
    sub = rootfs(lg, [], meta(root=None))
    for i, link in enumerate([b"/sub", b"/..", b"/", b"/missing", b"/sub/..", b"//victim.txt"]):
        rev = _hardlink_image(lg, f"hl-odd-{i}", link, [(TREE, b"sub", sub)], [b"sub\t" + D])
        checkout_hostile(lg, arena, rev)


# -- names that alias after decoding, symlink then write through it ---------------------------------------


def test_symlink_then_directory_with_same_real_name(lg, arena):
    """'d' (a symlink to SENTINEL) and '%d' (which decodes to 'd', a directory with a file): nothing lands in SENTINEL."""
    inner = rootfs(lg, [(BLOB, b"pwned", blob(lg, b"pwned\n"))], meta(b"pwned\t" + F, root=None))
    entries = [(LINK, b"d", blob(lg, str(arena.sentinel).encode())), (TREE, b"%d", inner)]
    rev = image(lg, "alias-dir", rootfs(lg, entries, meta(b"d\t" + L, b"%d\t" + D)))
    checkout_hostile(lg, arena, rev)


@pytest.mark.parametrize("second", ["file", "fifo", "symlink"])
def test_symlink_then_entry_with_same_real_name(lg, arena, second):
    """A dangling symlink into SENTINEL and a second entry decoding to the same name: nothing is created through it."""
    link_blob = blob(lg, str(arena.sentinel / "created").encode())
    entries = [(LINK, b"d", link_blob)]
    lines = [b"d\t" + L]
    if second == "file":
        entries.append((BLOB, b"%d", blob(lg, b"pwned\n")))
        lines.append(b"%d\t" + F)
    elif second == "fifo":
        lines.append(b"%d\tp 0644 0:0 0.000000000")
    else:
        entries.append((LINK, b"%d", blob(lg, b"elsewhere")))
        lines.append(b"%d\t" + L)
    rev = image(lg, f"alias-{second}", rootfs(lg, entries, meta(*lines)))
    checkout_hostile(lg, arena, rev)


def test_absolute_and_climbing_symlinks_are_just_symlinks(lg, arena):
    """Symlinks to / and ../../.. are created as symlinks inside DEST (contained); nothing follows them."""
    entries = [(LINK, b"root", blob(lg, b"/")), (LINK, b"up", blob(lg, b"../../..")), (LINK, b"s", blob(lg, str(arena.sentinel).encode()))]
    rev = image(lg, "symlinks", rootfs(lg, entries, meta(b"root\t" + L, b"s\t" + L, b"up\t" + L)))
    proc = checkout_hostile(lg, arena, rev)
    assert proc.returncode == 0, proc.stderr


# -- metadata types that disagree with git modes ---------------------------------------------------------


@pytest.mark.parametrize(
    "mode, kind",
    [
        (BLOB, b"c 0666 0:0 0.000000000 rdev=1:3"),
        (BLOB, b"b 0660 0:0 0.000000000 rdev=8:0"),
        (BLOB, b"p 0644 0:0 0.000000000"),
        (BLOB, b"d 0755 0:0 0.000000000"),
        (BLOB, b"l 0777 0:0 0.000000000"),
        (LINK, b"f 0644 0:0 0.000000000"),
        (LINK, b"d 0755 0:0 0.000000000"),
        (TREE, b"f 0644 0:0 0.000000000"),
        (TREE, b"l 0777 0:0 0.000000000"),
        (GITLINK, b"f 0644 0:0 0.000000000"),
        (GITLINK, b"d 0755 0:0 0.000000000"),
        (None, b"f 0644 0:0 0.000000000"),
        (None, b"d 0755 0:0 0.000000000"),
        (None, b"l 0777 0:0 0.000000000"),
        (EXEC, b"s 0755 0:0 0.000000000"),
    ],
    ids=lambda v: v.decode().split(" ")[0] if isinstance(v, bytes) and b" " in v else (v.decode() if v else "none"),
)
def test_metadata_type_disagrees_with_git_mode(lg, arena, mode, kind):
    """An entry whose metadata type contradicts its git mode (or that lacks the git entry its type needs) is refused."""
    entries = []
    if mode == TREE:
        entries.append((mode, b"x", rootfs(lg, [], meta(root=None))))
    elif mode == GITLINK:
        entries.append((mode, b"x", bytes.fromhex("12" * 20)))
    elif mode is not None:
        entries.append((mode, b"x", blob(lg, str(arena.sentinel / "x").encode())))
    rev = image(lg, "typeclash", rootfs(lg, entries, meta(b"x\t" + kind)))
    proc = checkout_hostile(lg, arena, rev)
    assert proc.returncode != 0


@pytest.mark.parametrize("root_owner", ["caller", "image"])
def test_device_nodes_and_odd_root_metadata_are_contained(lg, arena, root_owner):
    """Device nodes, setuid modes and foreign owners are created inside DEST only; root '.'
    metadata applies to DEST. DEST's owner is the caller's (root here), not the image
    root's 4242 (which would let uid 4242 into the setuid file), unless --root-owner image
    asks for it: this test asserted 4242 before DEST's owner became the host's decision."""
    entries = [(BLOB, b"suid", blob(lg, b"#!/bin/sh\n"))]
    lines = [b"null\tc 0666 0:0 0.000000000 rdev=1:3", b"disk\tb 0600 0:0 0.000000000 rdev=7:0", b"suid\tf 4755 12345:54321 0.000000000", b"fifo\tp 0600 0:0 0.000000000"]
    rev = image(lg, "devices", rootfs(lg, entries, meta(*lines, root=b".\td 0700 4242:4242 0.000000000")))
    dest = arena.dest
    proc = lg("checkout", "--root-owner", root_owner, rev, dest, check=False)
    try:
        assert proc.returncode == 0, proc.stderr
        assert stat.S_ISCHR(os.lstat(dest / "null").st_mode) and stat.S_ISBLK(os.lstat(dest / "disk").st_mode)
        assert os.lstat(dest / "suid").st_mode & 0o7777 == 0o4755 and os.lstat(dest / "suid").st_uid == 12345
        owner = 4242 if root_owner == "image" else os.geteuid()
        assert os.lstat(dest).st_uid == owner and os.lstat(dest).st_mode & 0o7777 == 0o700
        assert os.lstat(dest).st_mtime_ns == 0  # the rest of the root's metadata is the image's
        arena.assert_contained()
        arena.assert_untouched()
    finally:
        shutil.rmtree(dest, ignore_errors=True)


# -- partial checkouts are removed ---------------------------------------------------------------------


def _fails_late(lg) -> str:
    """An image whose first directory is fine and whose second holds a '..' entry: checkout fails midway."""
    good = rootfs(lg, [(BLOB, b"ok", blob(lg, b"ok\n"))], meta(b"ok\t" + F, root=None))
    bad = raw_tree(lg, [(BLOB, b"..", blob(lg, b"x\n"))])
    return image(lg, "late", rootfs(lg, [(TREE, b"a", good), (TREE, b"b", bad)], meta(b"a\t" + D, b"b\t" + D)))


def test_failed_checkout_removes_the_directory_it_created(lg, arena):
    """A checkout that fails after writing some entries removes the destination it created."""
    proc = checkout_hostile(lg, arena, _fails_late(lg))
    assert proc.returncode != 0


def test_failed_checkout_into_existing_empty_directory_leaves_it_empty(lg, arena):
    """Into an existing empty directory, a failed checkout takes back what it wrote: the directory is empty again."""
    arena.dest.mkdir()
    arena.before = arena._state()
    proc = checkout_hostile(lg, arena, _fails_late(lg), dest=arena.dest)
    assert proc.returncode != 0


# -- capture never follows symlinks out of the source ----------------------------------------------------


def test_source_symlinks_to_host_are_stored_as_links(lg, tmp_path):
    """A source with etc -> /etc, x -> /, usr -> /usr and a relative climb stores four symlinks: small and fast."""
    src = tmp_path / "src"
    src.mkdir()
    os.symlink("/etc", src / "etc")
    os.symlink("/", src / "x")
    os.symlink("/usr", src / "usr")
    (src / "sub").mkdir()
    os.symlink("../../../../../../..", src / "sub" / "up")
    t0 = time.monotonic()
    out = json.loads(lg.out("commit", src, "-t", "links", "--json"))
    elapsed = time.monotonic() - t0
    assert elapsed < 10, f"commit took {elapsed:.1f}s: it followed a symlink"
    assert out["entries"] == 5 and out["bytes"] == 0
    store = os.path.join(lg.root, "store.git")
    ls = subprocess.run(["git", "-C", store, "ls-tree", "-r", "links/latest", "--", "rootfs"], capture_output=True, text=True, check=True).stdout
    modes = {line.split("\t")[1]: line.split()[0] for line in ls.splitlines() if not line.endswith(".lgmeta")}
    assert modes == {"rootfs/etc": "120000", "rootfs/x": "120000", "rootfs/usr": "120000", "rootfs/sub/up": "120000"}
    size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(os.path.join(store, "objects")) for f in fs)
    assert size < 200_000, f"store holds {size} bytes after committing four symlinks"
    assert json.loads(lg.out("show", "links", "--json"))["size"] == 0
    dest = tmp_path / "out"
    lg("checkout", "links", dest)
    assert os.readlink(dest / "etc") == "/etc" and os.readlink(dest / "x") == "/" and os.readlink(dest / "sub" / "up") == "../../../../../../.."


def test_source_given_through_a_symlink_is_read_but_inner_links_are_not_followed(lg, tmp_path):
    """The SOURCE argument itself may be a symlink (it is the user's choice); links inside it are still stored as links."""
    real = tmp_path / "real"
    real.mkdir()
    (real / "file").write_text("content\n")
    os.symlink("/etc/passwd", real / "passwd")
    os.symlink(real, tmp_path / "alias")
    out = json.loads(lg.out("commit", tmp_path / "alias", "-t", "alias", "--json"))
    assert out["entries"] == 2 and out["bytes"] == len("content\n")
    store = os.path.join(lg.root, "store.git")
    target = subprocess.run(["git", "-C", store, "cat-file", "blob", "alias/latest:rootfs/passwd"], capture_output=True, check=True).stdout
    assert target == b"/etc/passwd"


# -- what lg would hold whole --------------------------------------------------------------------


@pytest.mark.parametrize("hardlink", [False, True], ids=["copy", "checkout-H"])
def test_huge_symlink_target_is_refused_by_its_size(lg, arena, hardlink):
    """A store filled from a hostile remote can give a symlink a 64 MiB target: lg would read it
    whole to call symlink(2), which refuses more than 4095 bytes anyway. Checkout and export
    refuse it by the blob's size, in one line, before reading it."""
    target = blob(lg, b"a/" * (32 << 20))
    rev = image(lg, "longlink", rootfs(lg, [(LINK, b"l", target)], meta(b"l\t" + L)))
    proc = checkout_hostile(lg, arena, rev, hardlink=hardlink)
    err = proc.stderr.decode()
    assert proc.returncode == 1 and f"symlink target {target.hex()} is 67108864 bytes; lg reads at most 4095" in err
    out = arena.work / "longlink.tar"
    err = lg.fails("export", "--format", "rootfs", rev, "-o", out)
    assert "lg reads at most 4095" in err and not out.exists()


# -- a damaged store: one line, never "internal error" -------------------------------------------


def loose(lg, header: bytes, content: bytes = b"") -> bytes:
    """A loose object as plain git or a hostile remote may leave one: any header, any
    content, under an id that is not its hash. ``header`` None: not even zlib."""
    oid = os.urandom(20)
    folder = os.path.join(lg.root, "store.git", "objects", oid.hex()[:2])
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, oid.hex()[2:]), "wb") as f:
        f.write(zlib.compress(header + content, 9) if header is not None else b"not zlib at all" * 100)
    return oid


def _fsize_limit(limit: int):
    return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


@pytest.mark.parametrize("hardlink", [False, True], ids=["copy", "checkout-H"])
def test_a_loose_blob_longer_than_its_header_is_stopped_at_its_size(lg, arena, hardlink):
    """The attack: a loose object of about 60 KB whose header announces 9 MiB and which
    inflates to 64 MiB. Checkout (and the cache that lg run fills) stopped only after the
    last byte: 64 MiB written for a 9 MiB file, 32 GB for a 32 MB object. Under a 16 MiB
    file size limit lg must fail with one line, not be killed by SIGXFSZ."""
    oid = loose(lg, b"blob %d\0" % (9 << 20), b"x" * (64 << 20))
    rev = image(lg, "overlong", rootfs(lg, [(BLOB, b"big", oid)], meta(b"big\t" + F)))
    proc = lg("checkout", *(["-H"] if hardlink else []), rev, arena.dest, check=False, timeout=60,
              preexec_fn=_fsize_limit(16 << 20))
    err = proc.stderr.decode(errors="replace").strip()
    assert proc.returncode == 1, (proc.returncode, err)
    assert f"object {oid.hex()} is corrupt in the store: it holds more than the 9437184 bytes" in err
    assert len(err.splitlines()) == 1 and not os.path.lexists(arena.dest)
    arena.assert_untouched()


@pytest.mark.parametrize("what", ["metadata", "tree", "commit"])
def test_oversized_metadata_trees_and_commits_are_refused_by_size(lg, arena, what):
    """lg reads a directory's .lgmeta, a tree and a commit whole; a loose object of a few
    bytes may announce 300 MB (a real one of 300 KB inflated to it and held lg run and lg
    fsck at 650 MB). Each is refused by its header's size before a byte is inflated."""
    huge = 300_000_000
    if what == "metadata":
        bad = loose(lg, b"blob %d\0" % huge)
        rev = image(lg, "hugemeta", raw_tree(lg, [(BLOB, b".lgmeta", bad)]))
        limit = 64 << 20
    elif what == "tree":
        bad = loose(lg, b"tree %d\0" % huge)
        rev = image(lg, "hugetree", rootfs(lg, [(TREE, b"sub", bad)], meta(b"sub\t" + D)))
        limit = 256 << 20
    else:
        bad = loose(lg, b"commit %d\0" % huge)
        os.makedirs(os.path.join(lg.root, "store.git", "refs", "heads", "evil"), exist_ok=True)
        with open(os.path.join(lg.root, "store.git", "refs", "heads", "evil", "hugecommit"), "w") as f:
            f.write(bad.hex() + "\n")  # update-ref would look the object up
        rev, limit = "evil:hugecommit", 16 << 20
    line = f"{what} {bad.hex()} is {huge} bytes; lg reads at most {limit}"
    proc = checkout_hostile(lg, arena, rev)
    assert proc.returncode == 1 and line in proc.stderr.decode()
    if what != "commit":
        fsck = lg("fsck", check=False, timeout=120)
        assert fsck.returncode != 0 and line in fsck.stdout.decode() + fsck.stderr.decode()
        assert b"internal error" not in fsck.stderr


@pytest.mark.parametrize("target", [b"", b"etc\0/passwd"], ids=["empty", "nul"])
@pytest.mark.parametrize("hardlink", [False, True], ids=["copy", "checkout-H"])
def test_a_symlink_target_no_symlink_can_have_is_one_line(lg, arena, target, hardlink):
    """symlink(2) refuses an empty target and an embedded NUL ("internal error:
    ValueError"); export wrote the NUL one cut short and fsck passed both. All say the
    store is damaged now, in one line."""
    bad = blob(lg, target)
    why = "is empty" if not target else "holds a NUL byte"
    line = f"symlink target {bad.hex()} {why}"
    rev = image(lg, "badlink", rootfs(lg, [(LINK, b"l", bad)], meta(b"l\t" + L)))
    proc = checkout_hostile(lg, arena, rev, hardlink=hardlink)
    assert proc.returncode == 1 and line in proc.stderr.decode()
    out = arena.work / "badlink.tar"
    assert line in lg.fails("export", "--format", "rootfs", rev, "-o", out) and not out.exists()
    fsck = lg("fsck", check=False, timeout=120)
    assert fsck.returncode != 0 and f"/l: {line}" in fsck.stdout.decode() + fsck.stderr.decode()


def test_a_loose_object_that_is_not_zlib_is_one_line(lg, arena):
    bad = loose(lg, None)
    rev = image(lg, "notzlib", rootfs(lg, [(BLOB, b"f", bad)], meta(b"f\t" + F)))
    proc = checkout_hostile(lg, arena, rev)
    err = proc.stderr.decode()
    assert proc.returncode == 1 and f"object {bad.hex()} is corrupt in the store" in err, err


def test_a_symbolic_ref_loop_and_a_bad_packed_refs_line_are_one_line(lg, arena):
    """A ref that points at itself recursed until RecursionError; a packed-refs line that
    is not hex was a ValueError. Both are CorruptStore, naming what is damaged."""
    refs = os.path.join(lg.root, "store.git", "refs", "heads", "evil")
    os.makedirs(refs, exist_ok=True)
    with open(os.path.join(refs, "loop"), "w") as f:
        f.write("ref: refs/heads/evil/loop\n")
    for command in (["images"], ["fsck"]):
        proc = lg(*command, check=False, timeout=120)
        assert proc.returncode != 0 and b"internal error" not in proc.stderr
        assert b"refs/heads/evil/loop is a chain of more than 5 symbolic refs" in proc.stdout + proc.stderr
    os.unlink(os.path.join(refs, "loop"))
    with open(os.path.join(lg.root, "store.git", "packed-refs"), "ab") as f:
        f.write(b"zz" * 20 + b" refs/heads/evil/x\n")
    err = lg.fails("images")
    assert "packed-refs has a line that is not an object id" in err
