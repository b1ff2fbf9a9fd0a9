"""Metadata-exact snapshots: what goes into ``lg commit`` comes out of ``lg checkout``.

Every test builds a source directory, commits it, checks it out into a new directory
and compares the two entry by entry (type, full mode, owner, mtime to the nanosecond,
content / link target / device number, xattrs, hardlink groups) with
tests.treecompare.assert_same_tree. As root, a checkout must also be silent: any
warning would mean something was skipped.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import stat
import subprocess
import sys
from contextlib import contextmanager

import pytest

from . import trees
from .treecompare import assert_same_tree, describe, differences


def _user_xattrs_or_skip(path):
    if not trees.xattrs_supported(path, "user"):
        pytest.skip("the filesystem under tmp_path does not support user.* xattrs")


# -- 1. regular files -----------------------------------------------------------


def test_regular_files(lg, tmp_path):
    """Empty, binary (every byte value), text, CRLF and executable files keep content and mode."""
    src = tmp_path / "src"
    trees.make_regular(src)
    trees.roundtrip(lg, src, tmp_path / "out")
    out = tmp_path / "out" / "all-bytes"
    assert out.read_bytes() == (src / "all-bytes").read_bytes()
    assert set(out.read_bytes()) == set(range(256))
    assert (tmp_path / "out" / "empty").stat().st_size == 0


@pytest.mark.slow
def test_100mb_file(lg, tmp_path):
    """A 100 MB incompressible file comes back byte for byte (same size, same digest)."""
    src = tmp_path / "src"
    src.mkdir()
    chunk = os.urandom(1 << 20)
    with open(src / "big.bin", "wb") as f:
        for i in range(100):
            f.write(chunk[i:] + chunk[:i])  # 100 distinct MiB without 100 MiB of urandom
    os.utime(src / "big.bin", ns=(1, 1_700_000_000_123_456_789))
    trees.roundtrip(lg, src, tmp_path / "out")
    assert (tmp_path / "out" / "big.bin").stat().st_size == 100 << 20


@pytest.mark.parametrize("source", ["farm", "store"])
def test_sparse_file(lg, tmp_path, source):
    """A 50 MB sparse file with a few bytes in the middle reads the same after checkout
    and keeps its holes, whether the checkout copies the commit's farm object or
    writes the blob from the store."""
    src = tmp_path / "src"
    src.mkdir()
    trees.make_sparse(src / "sparse", 50 * 1024 * 1024)
    assert os.stat(src / "sparse").st_blocks * 512 < 1024 * 1024, "source is not sparse on this filesystem"
    lg("commit", src, "-t", "sparse:1")
    if source == "store":
        trees.forget_the_farm(lg)
    lg("checkout", "sparse:1", tmp_path / "out", "--mode", trees.root_mode(src), "--root-owner", "image")
    assert_same_tree(src, tmp_path / "out")
    with open(tmp_path / "out" / "sparse", "rb") as f:
        f.seek(25 * 1024 * 1024)
        assert f.read(24) == b"in the middle of nowhere"
    assert os.stat(tmp_path / "out" / "sparse").st_size == 50 * 1024 * 1024
    assert os.stat(tmp_path / "out" / "sparse").st_blocks * 512 <= 4 * 1024 * 1024, "the holes were filled"


# -- 2. directories -------------------------------------------------------------


def test_directories(lg, tmp_path):
    """Empty directories (also nested), 50-deep nesting and 255-byte names survive."""
    src = tmp_path / "src"
    trees.make_dirs(src, depth=50)
    trees.roundtrip(lg, src, tmp_path / "out")
    deep = tmp_path / "out" / "deep"
    for i in range(50):
        deep = deep / f"d{i:02d}"
    assert (deep / "bottom").read_bytes() == b"50 levels down\n"
    assert os.listdir(deep / "empty-at-the-bottom") == []
    assert os.listdir(tmp_path / "out" / "empty") == []
    assert os.path.isfile(tmp_path / "out" / ("L" * 251 + ".txt"))


# -- 3. symlinks ----------------------------------------------------------------


def test_symlinks(lg, tmp_path, outside):
    """Relative, absolute, dangling, looping and directory symlinks are stored as links:
    never followed, never descended into, with their exact target bytes."""
    src = tmp_path / "src"
    trees.make_symlinks(src, outside)
    image = trees.roundtrip(lg, src, tmp_path / "out")
    out = tmp_path / "out"
    for name in ("absolute", "to-dir", "outside-dir", "outside-file", "dangling", "self-loop"):
        assert os.path.islink(out / name), name
    assert os.readlink(out / "absolute") == "/etc/passwd"
    # The store holds links, not what they point at: no copy of /etc/passwd or of the
    # outside directory, and nothing below the symlinked directories.
    entries = {row[3]: row for row in trees.lg_tree_entries(lg, image)}
    for name in (b"absolute", b"outside-dir", b"outside-file", b"to-dir", b"to-root"):
        assert entries[name][0] == "120000", entries[name]
    assert not any(p.startswith((b"outside-dir/", b"to-dir/", b"to-root/")) for p in entries)
    blob = trees.git(lg, "cat-file", "blob", entries[b"absolute"][2]).stdout
    assert blob == b"/etc/passwd"
    secret = b"outside the tree: must never be captured\n"
    for _, kind, oid, _ in entries.values():
        if kind == "blob":
            assert trees.git(lg, "cat-file", "blob", oid).stdout != secret


# -- 4. hardlinks ---------------------------------------------------------------


def test_hardlinks(lg, tmp_path):
    """Hardlinks within a directory, across directories, under escaped names, and
    hardlinked fifos and symlinks come back as one inode per group."""
    src = tmp_path / "src"
    trees.make_hardlinks(src)
    trees.roundtrip(lg, src, tmp_path / "out")
    out = os.fsencode(tmp_path / "out")

    def ino(*parts):
        return os.lstat(os.path.join(out, *parts)).st_ino

    assert ino(b"a", b"one") == ino(b"a", b"two") == ino(b"b", b"three") == ino(b"c", b"deeper", b"four")
    assert os.lstat(os.path.join(out, b"a", b"one")).st_nlink == 4
    assert ino(b"%esc", b".git") == ino(b"\xff-dir", b"\xfe link") == ino(b"a", b"zz-escaped-leader")
    assert ino(b"b", b"pair-1") == ino(b"b", b"pair-2") != ino(b"a", b"one")
    assert ino(b"b", b"alone") != ino(b"a", b"one")
    assert ino(b"fifo") == ino(b"b", b"fifo-link")
    assert ino(b"sym") == ino(b"c", b"sym-link")


@pytest.mark.root
def test_hardlink_leader_in_locked_directory(lg, tmp_path):
    """A hardlink whose first name is inside a 0000 directory is still recreated
    (as root; see test_nonroot_checkout_hardlink_leader_in_locked_directory)."""
    src = tmp_path / "src"
    trees.locked_leader_tree(src)
    trees.roundtrip(lg, src, tmp_path / "out")


# -- 5. fifos, sockets, device nodes --------------------------------------------


def test_fifos_and_sockets(lg, tmp_path):
    """Fifos and unix sockets (bound, then closed; or mknod'ed) come back as such."""
    src = tmp_path / "src"
    trees.make_specials(src, devices=False)
    trees.roundtrip(lg, src, tmp_path / "out")
    assert stat.S_ISFIFO(os.lstat(tmp_path / "out" / "fifo").st_mode)
    assert stat.S_ISSOCK(os.lstat(tmp_path / "out" / "sock").st_mode)


@pytest.mark.root
def test_device_nodes(lg, tmp_path):
    """Character and block device nodes keep their type, mode and major:minor,
    including numbers beyond the old 8-bit encoding."""
    src = tmp_path / "src"
    trees.make_specials(src, devices=True)
    trees.roundtrip(lg, src, tmp_path / "out")
    st = os.lstat(tmp_path / "out" / "big-numbers")
    assert stat.S_ISCHR(st.st_mode) and (os.major(st.st_rdev), os.minor(st.st_rdev)) == (4000, 1_000_000)
    st = os.lstat(tmp_path / "out" / "loop0")
    assert stat.S_ISBLK(st.st_mode) and (os.major(st.st_rdev), os.minor(st.st_rdev)) == (7, 0)


# -- 6. mode bits ---------------------------------------------------------------


@pytest.mark.root
def test_mode_bits(lg, tmp_path):
    """setuid, setgid, sticky, 0000 files, 0000 and 0555 directories with contents,
    odd modes like 0651 and 07777 come back bit for bit; children of a setgid
    directory do not pick up its bit or group."""
    src = tmp_path / "src"
    trees.make_modes(src)
    os.chmod(src, 0o710)  # the root directory's own mode counts too
    trees.roundtrip(lg, src, tmp_path / "out")
    assert stat.S_IMODE(os.lstat(tmp_path / "out" / "all-bits").st_mode) == 0o7777
    assert stat.S_IMODE(os.lstat(tmp_path / "out" / "locked-0000").st_mode) == 0
    assert stat.S_IMODE(os.lstat(tmp_path / "out").st_mode) == 0o710


# -- 7. owners ------------------------------------------------------------------


@pytest.mark.root
def test_owners(lg, tmp_path):
    """uid/gid without passwd entries (54321:43210), ids above 2**31, and owners of
    symlinks, fifos, devices and directories; setuid survives the chown."""
    src = tmp_path / "src"
    trees.make_owners(src)
    os.chown(src, trees.ODD_UID, trees.ODD_GID)
    trees.roundtrip(lg, src, tmp_path / "out")
    st = os.lstat(tmp_path / "out" / "huge-owner")
    assert (st.st_uid, st.st_gid) == (trees.HUGE_ID, trees.HUGE_ID + 1)
    st = os.lstat(tmp_path / "out" / "setuid-odd")
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (trees.ODD_UID, 0o6755)


# -- 8. mtimes ------------------------------------------------------------------


def test_mtimes_to_the_nanosecond(lg, tmp_path):
    """mtimes survive to the nanosecond on files, symlinks (not their targets), fifos,
    directories and the root itself, including 0, before 1970 and after 2038."""
    src = tmp_path / "src"
    trees.make_mtimes(src)
    for name, ns in trees.MTIMES.items():
        if os.lstat(src / os.fsdecode(name)).st_mtime_ns != ns:
            pytest.skip(f"this filesystem cannot store mtime {ns}")
    trees.roundtrip(lg, src, tmp_path / "out")
    out = tmp_path / "out"
    assert os.lstat(out / "float-unfriendly").st_mtime_ns == 1_234_567_890_123_456_789
    assert os.lstat(out / "before-epoch").st_mtime_ns == -1_500_000_001
    assert os.lstat(out / "link").st_mtime_ns == 1_111_111_111_111_111_111
    assert os.lstat(out / "dir").st_mtime_ns == 1_300_000_000_000_000_003
    assert os.lstat(out).st_mtime_ns == 1_200_000_000_000_000_009


def test_mtimes_everywhere(lg, tmp_path, outside):
    """With a distinct nanosecond mtime on every entry of a mixed tree, all come back."""
    src = tmp_path / "src"
    trees.make_regular(src / "regular")
    trees.make_symlinks(src / "symlinks", outside)
    trees.make_hardlinks(src / "hardlinks")
    trees.make_specials(src / "specials", devices=False)
    trees.set_mtimes_bottom_up(src)
    trees.roundtrip(lg, src, tmp_path / "out")


# -- 9. xattrs ------------------------------------------------------------------


def test_user_xattrs(lg, tmp_path):
    """user.* xattrs with empty, binary, quoted, multi-line and non-ASCII values and
    names with spaces, '=' and '%' survive on files, directories and hardlinks."""
    _user_xattrs_or_skip(tmp_path)
    src = tmp_path / "src"
    trees.make_user_xattrs(src)
    os.setxattr(src, "user.on-the-root", b"root dir")
    trees.roundtrip(lg, src, tmp_path / "out")
    f = os.fsencode(tmp_path / "out" / "file")
    for key, value in trees.USER_XATTRS:
        assert os.getxattr(f, key) == value, key


@pytest.mark.root
def test_trusted_xattrs(lg, tmp_path):
    """trusted.* xattrs (overlayfs uses them) survive on files, directories, symlinks,
    fifos and device nodes."""
    if not trees.xattrs_supported(tmp_path, "trusted"):
        pytest.skip("no trusted.* xattrs on this filesystem")
    src = tmp_path / "src"
    trees.make_trusted_xattrs(src)
    trees.roundtrip(lg, src, tmp_path / "out")
    link = os.fsencode(tmp_path / "out" / "link")
    assert os.getxattr(link, "trusted.on-a-symlink", follow_symlinks=False) == b"1"


@pytest.mark.root
def test_file_capabilities(lg, tmp_path):
    """security.capability survives on files owned by someone else and on setuid files:
    checkout must chown before it sets capabilities (chown clears them)."""
    if not trees.xattrs_supported(tmp_path, "security"):
        pytest.skip("no security.* xattrs on this filesystem")
    src = tmp_path / "src"
    trees.make_capabilities(src)
    trees.roundtrip(lg, src, tmp_path / "out")
    out = tmp_path / "out"
    assert os.getxattr(out / "ping", "security.capability") == trees.CAP_RAW
    assert os.getxattr(out / "setuid-with-caps", "security.capability") == trees.CAP_MIXED
    st = os.lstat(out / "ping")
    assert (st.st_uid, st.st_gid) == (trees.ODD_UID, trees.ODD_GID)
    getcap = subprocess.run(["getcap", str(out / "ping")], capture_output=True, text=True) if os.path.exists("/usr/sbin/getcap") else None
    if getcap is not None and getcap.returncode == 0:
        assert "cap_net_raw" in getcap.stdout and "ep" in getcap.stdout, getcap.stdout


# -- 10. names ------------------------------------------------------------------


def test_special_names(lg, tmp_path):
    """Names git refuses or treats specially (.git directories, .gitmodules as file and
    symlink, .GIT, git~1, HFS/NTFS look-alikes, backslashes), non-UTF-8 bytes, the
    reserved .lgmeta, leading %, control characters, leading dashes and unicode all
    come back under their exact bytes (what git makes of the stored names is
    tests/test_store_git.py's business)."""
    src = tmp_path / "src"
    trees.make_special_names(src)
    trees.roundtrip(lg, src, tmp_path / "out")
    out = os.fsencode(tmp_path / "out")
    assert sorted(os.listdir(os.fsencode(src))) == sorted(os.listdir(out))
    for name in trees.SPECIAL_FILE_NAMES:
        assert os.path.isfile(os.path.join(out, name)), name
    assert os.path.islink(os.path.join(out, b"gitmodules-link", b".gitmodules"))
    assert open(os.path.join(out, b".git", b"HEAD"), "rb").read() == b"ref: refs/heads/master\n"
    assert os.path.isdir(os.path.join(out, b".lgmeta-dir", b".lgmeta"))


# -- everything at once -----------------------------------------------------------


@pytest.mark.root
@pytest.mark.parametrize("crowd", [False, True], ids=["one-writer", "two-writers"])
def test_everything_at_once(lg, tmp_path, outside, crowd):
    """All of the above side by side in one tree round-trips exactly (hardlink leaders,
    escaping and metadata blobs interact across directories); also beside a crowd of
    files, which two processes check out."""
    src = tmp_path / "src"
    trees.make_everything(src, outside, privileged=True)
    if crowd:
        trees.make_crowd(src / "crowd")
    trees.roundtrip(lg, src, tmp_path / "out")


@pytest.mark.root
def test_copy_checkout_from_the_cache_farm_is_exact(lg, tmp_path, outside):
    """A copy checkout of an image whose files the cache farm holds (here after a
    hardlinked checkout) copies them from the farm, and is as exact as one from the
    store; a farm object that is not the size of its blob is not used."""
    src = tmp_path / "src"
    trees.make_everything(src, outside, privileged=True)
    trees.roundtrip(lg, src, tmp_path / "first")
    lg("checkout", "--hardlink", "fidelity:latest", tmp_path / "linked")  # fills the farm
    farm = os.path.join(lg.root, "cache", "objects")
    objects = [os.path.join(d, n) for d, _, names in os.walk(farm) for n in names]
    assert objects, "the hardlinked checkout put nothing in the farm"
    regular = tmp_path / "linked" / "regular" / "text"
    assert os.stat(regular).st_nlink > 1  # the farm's object itself
    # Damage the object behind one regular file: another size than its blob's.
    with open(regular, "ab") as f:
        f.write(b"grown in the farm")
    proc = lg("checkout", "fidelity:latest", tmp_path / "copy", "--mode", trees.root_mode(src),
              "--root-owner", "image")
    assert proc.stderr == b""
    trees.assert_same_tree(src, tmp_path / "copy")


@pytest.mark.root
@pytest.mark.parametrize("crowd", [False, True], ids=["one-writer", "two-writers"])
def test_a_hardlinked_checkout_is_exact_the_first_time_and_cloned_after(lg, tmp_path, outside, crowd):
    """checkout -H of a commit materialises it once, then clones the cached rootfs
    (fs.cache.RootfsClone; two processes beside a crowd of files): both checkouts are
    the source entry by entry, and the clone links the very inodes the first one did.
    (Files alike in content and every bit of metadata share one farm inode, as
    ostree's do: so hardlink groups are compared between the checkouts, not with the
    source.)"""
    src = tmp_path / "src"
    trees.make_everything(src, outside, privileged=True)
    if crowd:
        trees.make_crowd(src / "crowd")
    lg("commit", src, "-t", "fidelity:latest")
    flags = ["--mode", trees.root_mode(src), "--root-owner", "image"]
    for name in ("first", "clone"):
        proc = lg("checkout", "-H", "fidelity:latest", tmp_path / name, *flags)
        assert proc.stderr == b""
        unlinked = [{path: entry[:-1] for path, entry in describe(tree).items()} for tree in (src, tmp_path / name)]
        assert not differences(*unlinked)
    trees.assert_same_tree(tmp_path / "first", tmp_path / "clone")
    for top, _dirs, files in os.walk(tmp_path / "first"):
        for name in files:
            first = os.path.join(top, name)
            clone = os.path.join(tmp_path / "clone", os.path.relpath(first, tmp_path / "first"))
            assert os.lstat(first).st_ino == os.lstat(clone).st_ino, first


@pytest.mark.root
def test_a_hardlinked_checkout_copies_a_file_whose_inode_has_all_its_links(lg, tmp_path):
    """A farm inode at the filesystem's link limit (ext4: 65,000, reached by a file
    that many images and checkouts share) cannot take one more name: the checkout
    gives that file a copy of its own, exact, and checks out everything else."""
    limit = os.pathconf(tmp_path, "PC_LINK_MAX")
    if limit > 100_000:
        pytest.skip(f"this filesystem allows {limit} links to an inode: the limit cannot be reached here")
    src = tmp_path / "src"
    os.makedirs(src / "etc")
    (src / "etc" / "shared").write_bytes(b"one inode for everybody\n")
    (src / "etc" / "other").write_bytes(b"another\n")
    os.chmod(src / "etc" / "shared", 0o640)
    lg("commit", src, "-t", "links:1")
    lg("checkout", "-H", "links:1", tmp_path / "first")
    shared = tmp_path / "first" / "etc" / "shared"
    filler = tmp_path / "filler"
    os.mkdir(filler)
    fd = os.open(filler, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for n in range(limit - os.lstat(shared).st_nlink):
            os.link(shared, str(n), dst_dir_fd=fd)
    finally:
        os.close(fd)
    with pytest.raises(OSError) as full:
        os.link(shared, filler / "one-more")
    assert full.value.errno == errno.EMLINK
    proc = lg("checkout", "-H", "links:1", tmp_path / "second", "--mode", trees.root_mode(src))
    assert proc.stderr == b""
    trees.assert_same_tree(src, tmp_path / "second")
    copy = os.lstat(tmp_path / "second" / "etc" / "shared")
    assert copy.st_ino != os.lstat(shared).st_ino and copy.st_nlink == 1
    assert os.lstat(tmp_path / "second" / "etc" / "other").st_ino == os.lstat(tmp_path / "first" / "etc" / "other").st_ino


@pytest.mark.root
def test_a_cached_tree_whose_build_warned_is_walked_not_cloned(lg, tmp_path, monkeypatch):
    """A cached tree whose build left something out (here told by its .warned- file, as
    a host that refuses device nodes would leave it) is never cloned: checkout -H walks
    the snapshot, which says again what it cannot make. gc drops the file with its tree."""
    from layergit import api
    from layergit.fs import cache as fs_cache
    from layergit.fs.checkout import CheckoutPolicy
    from layergit.porcelain.checkout import cache

    src = tmp_path / "src"
    os.makedirs(src / "etc")
    (src / "etc" / "motd").write_text("hello\n")
    lg("commit", src, "-t", "warned:1")
    repo = api.open_repo(lg.root)
    img = repo.image_at("warned:1")
    built = api.materialise(repo, "warned:1")
    assert cache(repo)._materialised(repo.store, img.rootfs) == (built, [])
    marker = os.path.join(os.path.dirname(built), f".warned-{img.rootfs.hex()}")
    with open(marker, "w") as f:
        f.write("cannot create device nodes without privileges; skipped them\n")
    assert cache(repo)._materialised(repo.store, img.rootfs)[1] == [
        "cannot create device nodes without privileges; skipped them"]

    def no_clone(*_args):
        raise AssertionError("a tree whose build warned was cloned")

    monkeypatch.setattr(fs_cache, "RootfsClone", no_clone)
    cache(repo).hardlink_checkout(repo.store, img.rootfs, str(tmp_path / "walked"), CheckoutPolicy())
    assert (tmp_path / "walked" / "etc" / "motd").read_text() == "hello\n"
    lg("rmi", "warned:1")
    lg("gc")
    assert not os.path.exists(built) and not os.path.exists(marker)


def test_recommit_of_checkout_is_identical(lg, tmp_path, outside):
    """Committing the checkout again gives the very same rootfs tree id: the snapshot
    is canonical and checkout loses nothing the store records."""
    src = tmp_path / "src"
    trees.make_regular(src / "regular")
    trees.make_symlinks(src / "symlinks", outside)
    trees.make_hardlinks(src / "hardlinks")
    trees.make_specials(src / "specials", devices=os.geteuid() == 0)
    trees.make_mtimes(src / "mtimes")
    trees.make_special_names(src / "names")
    first = trees.roundtrip(lg, src, tmp_path / "out")
    second = lg.out("commit", tmp_path / "out", "-t", "again:latest").strip()

    def tree(rev):
        return trees.git(lg, "rev-parse", f"{rev}:rootfs").stdout.strip()

    assert tree(first) == tree(second)


def test_recommit_sees_changes_the_stat_cache_could_hide(lg, tmp_path):
    """A second commit of the same directory (whose files are old enough for the stat
    cache to trust them) still picks up a same-size rewrite with the old mtime put
    back, an xattr-only change, a chmod and a hardlink added, and checks out exactly."""
    import time

    src = tmp_path / "src"
    src.mkdir()
    for name in ("rewrite", "xattr", "chmod", "link"):
        trees.write(src / name, f"{name} v1\n".encode())
    time.sleep(1.2)  # older than the cache's racy-clean window
    lg("commit", src, "-t", "cache:latest")
    st = os.stat(src / "rewrite")
    with open(src / "rewrite", "r+b") as f:
        f.write(b"REWRITE")
    os.utime(src / "rewrite", ns=(st.st_atime_ns, st.st_mtime_ns))
    assert os.stat(src / "rewrite").st_size == st.st_size
    if trees.xattrs_supported(tmp_path, "user"):
        os.setxattr(src / "xattr", "user.new", b"1")
    os.chmod(src / "chmod", 0o4711)
    os.link(src / "link", src / "link2")
    trees.roundtrip(lg, src, tmp_path / "out", tag="cache:latest")


def test_recommit_sees_directory_changes_the_stat_cache_could_hide(lg, tmp_path):
    """Whole directories come from the stat cache when they and every entry are as
    remembered. Each change that could leave a directory looking the same is played:
    an entry added and removed with the directory's mtime put back, a directory
    replaced by a new one of the same name and mtime, a chmod of a directory, one
    deep file rewritten (its ancestors' trees change, nothing else), and the
    directory holding a hardlink's first name renamed past the other name, so that
    the link's leader moves to a directory whose entries did not change."""
    import time

    src = tmp_path / "src"
    for d in ("a/deep/er", "b", "gone", "mode", "same"):
        (src / d).mkdir(parents=True)
    trees.write(src / "a/deep/er/file", b"v1\n")
    trees.write(src / "a/leader", b"linked\n")
    os.link(src / "a/leader", src / "b/follower")
    trees.write(src / "gone/f", b"old dir\n")
    trees.write(src / "same/f", b"same\n")
    time.sleep(1.2)  # older than the cache's racy-clean window
    lg("commit", src, "-t", "dirs:latest")
    lg("commit", src, "-t", "dirs:latest", "--allow-empty")  # now every directory is in the cache

    st = os.stat(src / "same")
    trees.write(src / "same/new", b"x\n")
    os.unlink(src / "same/new")
    os.utime(src / "same", ns=(st.st_atime_ns, st.st_mtime_ns))
    st = os.stat(src / "gone")
    shutil.rmtree(src / "gone")
    (src / "gone").mkdir()
    trees.write(src / "gone/f", b"new dir\n")
    os.utime(src / "gone/f", ns=(st.st_atime_ns, st.st_mtime_ns))
    os.utime(src / "gone", ns=(st.st_atime_ns, st.st_mtime_ns))
    os.chmod(src / "mode", 0o700)
    trees.write(src / "a/deep/er/file", b"v2\n")
    os.rename(src / "a", src / "c")  # b/follower is now the first name of the pair
    time.sleep(1.2)  # old enough again: the cache would trust these states
    trees.roundtrip(lg, src, tmp_path / "out", tag="dirs:latest")


def test_recommit_with_a_tampered_stat_cache(lg, tmp_path):
    """The stat cache is a file under the lg root: one rewritten with another shape (here a
    listing that names ``..``, so the parent directory would be captured into the tree,
    and then records that are not tuples) is not believed; the commit is exact."""
    import hashlib
    import marshal
    import time

    src = tmp_path / "src"
    (src / "d").mkdir(parents=True)
    trees.write(src / "d/f", b"inside\n")
    trees.write(tmp_path / "secret", b"outside\n")
    time.sleep(1.2)  # older than the cache's racy-clean window
    lg("commit", src, "-t", "tamper:latest")
    cache = os.path.join(lg.root, "cache", "stat", hashlib.sha1(os.fsencode(os.path.realpath(src))).hexdigest())
    with open(cache, "rb") as f:
        fmt, files, dirs = marshal.loads(f.read())
    key, names, found, tree = dirs[b""]
    with open(cache, "wb") as f:
        f.write(marshal.dumps((fmt, files, {**dirs, b"": (key, sorted([*names, b".."]), found, tree)})))
    trees.roundtrip(lg, src, tmp_path / "out", tag="tamper2:latest")
    with open(cache, "wb") as f:
        f.write(marshal.dumps((fmt, {p: 0 for p in files}, {p: 0 for p in dirs})))
    trees.roundtrip(lg, src, tmp_path / "out2", tag="tamper3:latest")


# -- 13. unprivileged -------------------------------------------------------------


NO_USERNS = os.path.join(os.path.dirname(__file__), "no_userns.py")


def _nobody_lg(home, *args, userns: bool = False):
    """``lg ARGS`` as uid 65534 with HOME (and so the default layergit root) in ``home``.

    Without ``userns`` the host refuses 65534 user namespaces (no_userns.py), so lg
    works as the plain user: what these tests check is that path, where owners,
    devices and privileged xattrs cannot be kept and lg says so.
    """
    guard = [] if userns else [NO_USERNS]
    argv = [sys.executable, *guard, "-m", "cli", *map(str, args)]
    return trees.run_as_nobody(argv, trees.nobody_env(home), cwd=home)


@contextmanager
def _nobody_checkout(lg, rev, userns: bool = False, *flags: str):
    """Hand a copy of root's store to 65534 (at its default root) and let it check out
    ``rev`` (with ``flags``); yields (process, destination)."""
    with trees.nobody_dir() as home:
        lgroot = os.path.join(home, ".local", "share", "layergit")
        os.makedirs(lgroot, mode=0o700)  # as lg makes a user's root: a wider one would be tightened, with a notice
        subprocess.run(["cp", "-a", os.path.join(lg.root, "store.git"), os.path.join(lgroot, "store.git")], check=True)
        trees.chown_tree(os.path.join(home, ".local"), trees.NOBODY, trees.NOBODY)
        dest = os.path.join(home, "out")
        yield _nobody_lg(home, "checkout", *flags, rev, dest, userns=userns), dest


def _nobody_or_skip():
    import shutil

    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root and setpriv to become uid 65534")


def _expected_for_nobody(src_desc: dict, drop_devices: bool = True) -> dict:
    """What an unprivileged checkout of ``src`` can reproduce: everything but owners
    (all become 65534), device nodes (skipped; except 0:0 character devices, the
    overlayfs whiteout, which Linux lets anyone create) and non-user xattrs."""
    out = {}
    for path, (kind, mode, _uid, _gid, mtime, content, xattrs, group) in src_desc.items():
        if drop_devices and (stat.S_ISCHR(kind) or stat.S_ISBLK(kind)) and not (stat.S_ISCHR(kind) and content == (0, 0)):
            continue
        xattrs = tuple(x for x in xattrs if x[0].startswith("user."))
        out[path] = (kind, mode, trees.NOBODY, trees.NOBODY, mtime, content, xattrs, group)
    return out


@pytest.mark.root
@pytest.mark.parametrize("userns", [False, True], ids=["plain-user", "in-its-namespace"])
def test_nonroot_commit_and_checkout_own_tree(tmp_path, userns):
    """An unprivileged user (65534, default root under $XDG_DATA_HOME) commits a tree it
    owns and checks it out exactly, without warnings: content, modes (setuid and
    setgid on its own files, sticky), mtimes, symlinks, hardlinks, fifos, sockets and
    user.* xattrs. As the plain user (user namespaces refused) the image records
    65534; in its user namespace, where 65534 is root, the image records root, as a
    rootless podman's layers do, and the checkout is 65534's again on disk."""
    _nobody_or_skip()
    with trees.nobody_dir() as home:
        src = os.path.join(home, "src")
        trees.make_regular(os.path.join(src, "regular"))
        trees.make_symlinks(os.path.join(src, "symlinks"), "/nonexistent")
        trees.make_hardlinks(os.path.join(src, "hardlinks"))
        trees.make_specials(os.path.join(src, "specials"), devices=False)
        trees.make_mtimes(os.path.join(src, "mtimes"))
        trees.make_special_names(os.path.join(src, "names"))
        if trees.xattrs_supported(src, "user"):
            trees.make_user_xattrs(os.path.join(src, "xattrs"))
        trees.chown_tree(src, trees.NOBODY, trees.NOBODY)
        for name, mode in (("setuid", 0o4755), ("setgid", 0o2755), ("odd", 0o651)):
            trees.write(os.path.join(src, name), name.encode(), mode=None)
            os.chown(os.path.join(src, name), trees.NOBODY, trees.NOBODY)
            os.chmod(os.path.join(src, name), mode)
        os.mkdir(os.path.join(src, "sticky"))
        os.chown(os.path.join(src, "sticky"), trees.NOBODY, trees.NOBODY)
        os.chmod(os.path.join(src, "sticky"), 0o1777)
        trees.set_mtimes_bottom_up(src)
        os.chmod(src, trees.NEW_CHECKOUT_MODE)

        proc = _nobody_lg(home, "commit", src, "-t", "mine:v1", "-m", "unprivileged commit", userns=userns)
        assert proc.returncode == 0, proc.stderr.decode(errors="replace")
        assert os.path.isdir(os.path.join(home, ".local", "share", "layergit", "store.git")), "default non-root root not used"
        listing = json.loads(_nobody_lg(home, "ls", "--json", "mine:v1", userns=userns).stdout)
        owners = {(e["uid"], e["gid"]) for e in listing}
        assert owners == {(0, 0) if userns else (trees.NOBODY, trees.NOBODY)}, owners
        proc = _nobody_lg(home, "checkout", "mine:v1", os.path.join(home, "out"), userns=userns)
        assert proc.returncode == 0, proc.stderr.decode(errors="replace")
        assert proc.stderr == b"", proc.stderr
        assert_same_tree(src, os.path.join(home, "out"))


@pytest.mark.root
def test_without_user_namespaces_containers_are_refused_in_one_line():
    """Where the host refuses 65534 user namespaces, the store still works as the plain
    user, but a container (and lg unshare) is refused in one line with the host's
    reason, and nothing is left of it."""
    _nobody_or_skip()
    with trees.nobody_dir() as home:
        src = os.path.join(home, "src")
        os.mkdir(src)
        trees.write(os.path.join(src, "hello"), b"hello\n")
        trees.chown_tree(src, trees.NOBODY, trees.NOBODY)
        assert _nobody_lg(home, "commit", src, "-t", "tiny").returncode == 0
        for args in (("run", "--rm", "--network", "none", "tiny", "/hello"), ("create", "tiny", "/hello"),
                     ("unshare", "true")):
            proc = _nobody_lg(home, *args)
            err = proc.stderr.decode(errors="replace")
            assert proc.returncode != 0 and len(err.splitlines()) == 1, err
            assert "without root needs a user namespace" in err and "Operation not permitted" in err, err
        ps = _nobody_lg(home, "ps", "-a", "-q")
        assert ps.returncode == 0 and ps.stdout == b"", ps


def _root_tree_for_nobody(src) -> None:
    """A tree only root can make: other owners, device nodes, trusted.* and
    security.capability xattrs, next to things anyone can restore."""
    os.makedirs(src)
    trees.make_regular(os.path.join(src, "regular"))
    trees.make_owners(os.path.join(src, "owners"))
    trees.make_specials(os.path.join(src, "specials"), devices=True)
    trees.make_hardlinks(os.path.join(src, "hardlinks"))
    trees.make_mtimes(os.path.join(src, "mtimes"))
    if trees.xattrs_supported(src, "trusted"):
        trees.make_trusted_xattrs(os.path.join(src, "trusted"))
    d = os.path.join(src, "userx")
    os.mkdir(d)
    for i in range(3):
        f = trees.write(os.path.join(d, f"f{i}"), b"user xattrs %d\n" % i, mode=0o640)
        os.setxattr(f, "user.i", b"%d" % i)
        os.chown(f, trees.ODD_UID + i, trees.ODD_GID)
        os.chmod(f, 0o4640 if i == 0 else 0o640)
    caps = os.path.join(src, "caps")
    os.mkdir(caps)
    for name in ("ping", "ping6"):  # two files: still one warning
        f = trees.write(os.path.join(caps, name), b"%s\n" % name.encode(), mode=0o755)
        os.setxattr(f, "security.capability", trees.CAP_RAW)
    # locked directories with contents: modes are restored after the contents
    locked = os.path.join(src, "locked")
    os.mkdir(locked)
    trees.write(os.path.join(locked, "f"), b"f\n", mode=0o000)
    os.chmod(locked, 0o000)
    trees.set_mtimes_bottom_up(src)


def _root_tree_committed(lg, tmp_path) -> str:
    """``_root_tree_for_nobody`` in tmp_path, committed by root as rooty:v1; its path."""
    _nobody_or_skip()
    if not trees.xattrs_supported(tmp_path, "user"):
        pytest.skip("no user.* xattrs here")
    src = str(tmp_path / "src")
    _root_tree_for_nobody(src)
    os.chmod(src, trees.NEW_CHECKOUT_MODE)
    lg("commit", src, "-t", "rooty:v1", "-m", "made by root")
    return src


@pytest.mark.root
def test_nonroot_checkout_of_root_tree(lg, tmp_path):
    """An unprivileged user checks out a tree root committed (other owners, device
    nodes, trusted.* and security.capability xattrs): the checkout succeeds, warns
    once per kind of problem (not once per file), and everything else is exact:
    content, modes, mtimes, symlinks, hardlinks, fifos, sockets and user.* xattrs."""
    src = _root_tree_committed(lg, tmp_path)
    with _nobody_checkout(lg, "rooty:v1") as (proc, dest):
        err = proc.stderr.decode(errors="replace")
        assert proc.returncode == 0, err
        lines = err.splitlines()
        assert all(line.startswith("lg: warning:") for line in lines), err
        assert len(lines) == len(set(lines)), f"a warning was repeated:\n{err}"
        for word in ("owner", "device", "trusted", "security"):
            assert any(word in line for line in lines), f"no warning mentions {word}:\n{err}"
        assert len(lines) == 4, f"expected one warning per kind (owners, devices, trusted.*, security.*):\n{err}"
        diffs = differences(_expected_for_nobody(describe(src)), describe(dest))
        assert not diffs, "unprivileged checkout differs:\n" + "\n".join(diffs)


@pytest.mark.root
def test_nonroot_checkout_of_root_tree_in_a_single_id_namespace(lg, tmp_path):
    """The same tree checked out by 65534 where the host allows user namespaces but
    gives 65534 no subordinate ids: lg works in a namespace mapping only root, so
    root's entries become 65534's on disk, file capabilities are kept (as the
    namespace's, which the kernel stores with 65534 as their root), and what the
    map cannot hold (other owners, devices, trusted.*) is one warning each, after the
    one notice that the map is a single id."""
    src = _root_tree_committed(lg, tmp_path)
    with _nobody_checkout(lg, "rooty:v1", userns=True) as (proc, dest):
        err = proc.stderr.decode(errors="replace")
        assert proc.returncode == 0, err
        lines = err.splitlines()
        assert len(lines) == 4 and all(line.startswith("lg: warning:") for line in lines), err
        assert "no subordinate ids" in lines[0], err
        for word in ("owners outside the user namespace", "device", "trusted"):
            assert any(word in line for line in lines[1:]), f"no warning mentions {word}:\n{err}"
        assert not any("security" in line for line in lines), err
        expected = _expected_for_nobody(describe(src))
        for path in (b"caps/ping", b"caps/ping6"):
            kind, mode, uid, gid, mtime, content, _, group = expected[path]
            caps = (("security.capability", trees.cap_v3(trees.CAP_RAW, trees.NOBODY)),)
            expected[path] = (kind, mode, uid, gid, mtime, content, caps, group)
        diffs = differences(expected, describe(dest))
        assert not diffs, "checkout in a single-id namespace differs:\n" + "\n".join(diffs)


@pytest.mark.root
def test_nonroot_checkout_keeps_user_xattrs_on_read_only_entries(lg, tmp_path):
    """user.* xattrs on read-only files (0444, 0555, 0000) and a read-only directory
    (0555) survive an unprivileged checkout of a tree the user owns, without any
    warning: the xattrs must be set while the entry is still writable."""
    _nobody_or_skip()
    if not trees.xattrs_supported(tmp_path, "user"):
        pytest.skip("no user.* xattrs here")
    src = tmp_path / "src"
    src.mkdir()
    for name, mode in (("ro-file", 0o444), ("zero-file", 0o000), ("rx-file", 0o555)):
        f = trees.write(src / name, name.encode() + b"\n")
        os.setxattr(f, "user.tag", name.encode())
        os.chmod(f, mode)
    d = src / "ro-dir"
    d.mkdir()
    trees.write(d / "inner", b"inner\n")
    os.setxattr(d, "user.tag", b"ro-dir")
    os.chmod(d, 0o555)
    trees.chown_tree(src, trees.NOBODY, trees.NOBODY)
    os.chmod(src, trees.NEW_CHECKOUT_MODE)
    lg("commit", src, "-t", "ro:v1")
    with _nobody_checkout(lg, "ro:v1") as (proc, dest):
        err = proc.stderr.decode(errors="replace")
        assert proc.returncode == 0, err
        diffs = differences(describe(src), describe(dest))
        assert not diffs and not err, f"stderr: {err!r}\ndifferences:\n" + "\n".join(diffs)


@pytest.mark.root
@pytest.mark.parametrize("crowd", [False, True], ids=["one-writer", "two-writers"])
def test_nonroot_checkout_hardlink_leader_in_locked_directory(lg, tmp_path, crowd):
    """Unprivileged checkout of a tree the user owns where a hardlink's first name is in
    a 0000 directory: the second name is still linked (directory modes must not lock
    the checkout out of its own tree before the links are made), also where two
    processes write the checkout and the links wait for both."""
    _nobody_or_skip()
    src = tmp_path / "src"
    trees.nobodys_locked_tree(src, crowd)
    lg("commit", src, "-t", "locked:v1")
    with _nobody_checkout(lg, "locked:v1") as (proc, dest):
        assert proc.returncode == 0, proc.stderr.decode(errors="replace")
        assert proc.stderr == b"", proc.stderr
        assert_same_tree(src, dest)


@pytest.mark.root
def test_nonroot_checkout_of_a_locked_directory_inside_a_locked_one(lg, tmp_path):
    """A 0000 directory holding a 0500 one holding a file: an unprivileged checkout
    gives each its mode, the inner one first (the outer one's mode shuts the user out)."""
    _nobody_or_skip()
    src = tmp_path / "src"
    inner = src / "outer" / "inner"
    inner.mkdir(parents=True)
    trees.write(inner / "file", b"deep inside\n")
    os.chmod(inner, 0o500)
    os.chmod(src / "outer", 0)
    trees.chown_tree(src, trees.NOBODY, trees.NOBODY)
    os.chmod(src, trees.NEW_CHECKOUT_MODE)
    lg("commit", src, "-t", "nested:v1")
    with _nobody_checkout(lg, "nested:v1") as (proc, dest):
        assert proc.returncode == 0, proc.stderr.decode(errors="replace")
        assert_same_tree(src, dest)


@pytest.mark.root
def test_nonroot_hardlinked_checkout_of_a_crowd_with_locked_directories(lg, tmp_path):
    """An unprivileged -H checkout links farm objects the walk makes (FarmWriter, by two
    processes for a crowd of files): directories locked to their owner (0500, 0000)
    are finished last, and the tree is the source's but for which files share an
    inode (alike files share one farm object, as ostree's do)."""
    _nobody_or_skip()
    src = tmp_path / "src"
    trees.nobodys_locked_tree(src, crowd=True)
    lg("commit", src, "-t", "crowd:v1")
    with _nobody_checkout(lg, "crowd:v1", False, "-H") as (proc, dest):
        assert proc.returncode == 0, proc.stderr.decode(errors="replace")
        assert proc.stderr == b"", proc.stderr
        unlinked = [{path: entry[:-1] for path, entry in describe(tree).items()} for tree in (src, dest)]
        assert not differences(*unlinked)
        assert os.lstat(os.path.join(dest, "z", "follower")).st_ino == \
            os.lstat(os.path.join(dest, "a-locked", "leader")).st_ino


@pytest.mark.root
def test_nonroot_checkout_hardlinked_device_nodes(lg, tmp_path):
    """A device node with two names, checked out without privileges: the node is
    skipped with one warning and its second name does not abort the checkout."""
    _nobody_or_skip()
    src = tmp_path / "src"
    src.mkdir()
    os.mknod(src / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    os.link(src / "null", src / "null-again")
    trees.write(src / "regular", b"still here\n")
    lg("commit", src, "-t", "devlinks:v1")
    with _nobody_checkout(lg, "devlinks:v1") as (proc, dest):
        err = proc.stderr.decode(errors="replace")
        assert proc.returncode == 0, err
        assert "device" in err, err
        assert len([line for line in err.splitlines() if "device" in line]) == 1, err
        assert open(os.path.join(dest, "regular"), "rb").read() == b"still here\n"
