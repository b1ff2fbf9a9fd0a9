"""Hostile archives: ``lg import`` either refuses them cleanly or contains them.

Every archive here is built by fixtures.archives (no binary blobs) and imported
with the real ``lg import`` into a store that already holds an image. For each one
the :class:`Guard` proves the issue's promises from the outside:

* a refusal is exactly one line on stderr, a non-zero exit, and a store left as it
  was: same refs (``git for-each-ref``), same object and pack files, nothing left in
  the root's tmp dir, no new files in the root;
* an accepted archive is contained: whatever its names and links say, the result
  is inside the image (``lg checkout`` and look), and the host is untouched;
* in every case nothing is written outside the store: a sentinel directory that
  hostile symlinks point at keeps its exact description (tests.treecompare), so
  do ``/etc/passwd``, the working directory lg ran in and an absolute escape path;
  and ``lg fsck`` (and plain ``git fsck --strict``, which the design promises)
  passes afterwards.

Where either outcome is acceptable the test says so (``either``); where only a
refusal makes sense (digests that lie, bombs, truncation) it uses ``must_fail``.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import stat
import subprocess
import tarfile
import uuid

import pytest

from fixtures import archives as A

from .conftest import Lg
from .treecompare import describe

HOST_FILES = ("/etc/passwd",)


def _host_fact(path: str) -> tuple:
    st = os.lstat(path)
    with open(path, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    return (st.st_ino, st.st_mode, st.st_uid, st.st_gid, st.st_mtime_ns, st.st_nlink, digest)


def _files_below(root: str) -> list[str]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        out += [os.path.relpath(os.path.join(dirpath, n), root) for n in dirnames + filenames]
    return sorted(out)


@pytest.fixture(scope="session")
def seeded_root(tmp_path_factory) -> str:
    """A layergit root holding one ordinary image (base:1), copied into each test's root.

    Hostile imports then land in a store with history, so "left unchanged" means
    something, and seeding costs one import per session instead of one per test.
    """
    work = tmp_path_factory.mktemp("seed")
    root = str(work / "root")
    path = A.docker_archive(A.three_layers(), repo_tags=["base:1"]).write_tar(work / "base.tar")
    Lg(root)("import", path)
    return root


class Guard:
    """One test's store, sentinel and host facts, and the checks every import must pass."""

    def __init__(self, lg: Lg, tmp_path, seed: str):
        self.lg = lg
        shutil.copytree(seed, lg.root, symlinks=True)
        self.sentinel = tmp_path / "sentinel"
        (self.sentinel / "sub").mkdir(parents=True)
        (self.sentinel / "keep").write_bytes(b"host file: must never be read into an image or changed\n")
        self.cwd = tmp_path / "cwd"
        self.cwd.mkdir()
        self.archives = tmp_path / "archives"
        self.archives.mkdir()
        self.checkouts = tmp_path / "checkouts"
        self.checkouts.mkdir()
        # An absolute path no legitimate run creates: hostile absolute names aim at it.
        self.escape = f"/lg-escape-{uuid.uuid4().hex[:12]}"
        self.host_before = self.host_state()
        self.store_before = self.store_state()

    # -- paths -----------------------------------------------------------------

    @property
    def S(self) -> str:
        """The sentinel's absolute path, as symlink targets use it."""
        return str(self.sentinel)

    @property
    def S_rel(self) -> str:
        """The sentinel's path without the leading slash, as it appears inside an image."""
        return self.S.lstrip("/")

    @property
    def store(self) -> str:
        return os.path.join(self.lg.root, "store.git")

    # -- archives --------------------------------------------------------------

    def save(self, data, name: str) -> str:
        path = self.archives / name
        if isinstance(data, A.Layout):
            data.write_tar(path)
        else:
            path.write_bytes(data)
        return str(path)

    def docker(self, name: str, *layers: list, **kw) -> str:
        """A docker-archive of these layers (entry lists), tagged hostile/NAME:1."""
        kw.setdefault("repo_tags", [f"hostile/{name}:1"])
        return self.save(A.docker_archive([A.layer_tar(entries) for entries in layers], **kw), name + ".tar")

    def rootfs(self, name: str, entries: list, compression: str | None = None) -> str:
        return self.save(A.compress(A.layer_tar(entries), compression), name + ".rootfs.tar")

    # -- state -----------------------------------------------------------------

    def host_state(self) -> tuple:
        return (
            describe(str(self.sentinel)),
            {p: _host_fact(p) for p in HOST_FILES},
            sorted(os.listdir(self.cwd)),
            os.path.lexists(self.escape),
        )

    def store_state(self) -> tuple:
        refs = subprocess.run(["git", "-C", self.store, "for-each-ref"], check=True, capture_output=True, text=True).stdout
        top = sorted(n for n in os.listdir(self.lg.root) if n != "tmp")
        return refs, _files_below(os.path.join(self.store, "objects")), top

    def assert_host_unchanged(self) -> None:
        after = self.host_state()
        assert after[0] == self.host_before[0], "the sentinel directory outside the store changed"
        assert after[1] == self.host_before[1], "a host file changed"
        assert after[2] == self.host_before[2], f"lg wrote into its working directory: {after[2]}"
        assert not after[3], f"{self.escape} was created on the host"

    def assert_store_unchanged(self) -> None:
        refs, objects, top = self.store_state()
        assert refs == self.store_before[0], f"refs changed:\n{self.store_before[0]}\n->\n{refs}"
        assert objects == self.store_before[1], f"objects or packs changed: {sorted(set(objects) ^ set(self.store_before[1]))}"
        assert top == self.store_before[2], f"new files in the root: {sorted(set(top) - set(self.store_before[2]))}"
        tmp = os.path.join(self.lg.root, "tmp")
        assert not os.path.isdir(tmp) or not os.listdir(tmp), f"left behind in tmp: {os.listdir(tmp)}"

    def assert_no_special_files_in_root(self) -> None:
        """Device nodes and fifos are metadata in the store, never inodes on the host."""
        for dirpath, dirnames, filenames in os.walk(self.lg.root):
            for n in dirnames + filenames:
                mode = os.lstat(os.path.join(dirpath, n)).st_mode
                assert not (stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode)), f"special file {dirpath}/{n} created"

    def assert_fsck(self) -> None:
        proc = self.lg("fsck", check=False)
        assert proc.returncode == 0, f"lg fsck failed after the import:\n{proc.stdout.decode()}{proc.stderr.decode()}"
        git = subprocess.run(["git", "-C", self.store, "fsck", "--strict", "--no-dangling"], capture_output=True, text=True)
        assert git.returncode == 0, f"git fsck --strict failed after the import:\n{git.stdout}{git.stderr}"

    # -- outcomes --------------------------------------------------------------

    def run(self, path: str, *args):
        return self.lg("import", path, *args, check=False, cwd=self.cwd)

    def must_fail(self, path: str, *args) -> str:
        err = self.lg.fails("import", path, *args, cwd=self.cwd)
        assert "Traceback" not in err and "internal error" not in err, err
        self.assert_store_unchanged()
        self.assert_host_unchanged()
        self.assert_no_special_files_in_root()
        self.assert_fsck()
        return err

    def must_succeed(self, path: str, *args, tag: str) -> str:
        proc = self.run(path, *args)
        assert proc.returncode == 0, proc.stderr.decode()
        return self._contained(tag)

    def either(self, path: str, *args, tag: str) -> str | None:
        """Refused cleanly (None) or imported and contained (the checkout's path)."""
        proc = self.run(path, *args)
        print(f"outcome: {'refused: ' + proc.stderr.decode().strip() if proc.returncode else 'imported'}")
        if proc.returncode != 0:
            err = proc.stderr.decode()
            assert err.strip() and len(err.strip().splitlines()) == 1, f"expected one line on stderr, got: {err!r}"
            assert "internal error" not in err, err
            self.assert_store_unchanged()
            self.assert_host_unchanged()
            self.assert_no_special_files_in_root()
            self.assert_fsck()
            return None
        return self._contained(tag)

    def _contained(self, tag: str) -> str:
        self.assert_host_unchanged()
        self.assert_no_special_files_in_root()
        self.assert_fsck()
        dest = str(self.checkouts / tag.replace("/", "_").replace(":", "_"))
        self.lg("checkout", tag, dest, cwd=self.cwd)
        self.assert_host_unchanged()
        return dest


@pytest.fixture
def guard(lg, tmp_path, seeded_root) -> Guard:
    return Guard(lg, tmp_path, seeded_root)


def inside(co: str, path: str) -> str:
    """``path`` (image-absolute) inside checkout ``co``, every parent a real directory.

    Proves a write landed in the image where a chroot would have put it, and that
    reaching it from the checkout follows no symlink.
    """
    parts = [p for p in path.split("/") if p]
    cur = co
    for p in parts[:-1]:
        cur = os.path.join(cur, p)
        assert stat.S_ISDIR(os.lstat(cur).st_mode), f"{cur} is not a real directory"
    return os.path.join(cur, parts[-1])


# -- names ------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["../escape", "a/../../escape", "./../../../escape", "a/b/../../../../escape", ".."])
@pytest.mark.parametrize("fmt", ["layer", "rootfs"])
def test_dotdot_names(guard, name, fmt):
    """Names with ``..`` never reach above the image root: refused, or kept inside the image."""
    entries = [A.directory("a"), A.directory("a/b"), A.file(name, b"escaped\n")]
    tag = "hostile/dotdot:1"
    path = guard.docker("dotdot", entries) if fmt == "layer" else guard.rootfs("dotdot", entries)
    co = guard.either(path, *(["-t", tag] if fmt == "rootfs" else []), tag=tag)
    assert not os.path.lexists(guard.sentinel.parent / "escape")
    if co is not None:
        assert not os.path.lexists(os.path.join(os.path.dirname(co), "escape"))


def test_pax_path_with_dotdot(guard):
    """A PAX ``path`` record overrides the header name: ``..`` hidden there is caught too."""
    entry = A.raw("innocent", data=b"escaped\n", pax={"path": "../../escape"})
    co = guard.either(guard.docker("paxpath", [entry]), tag="hostile/paxpath:1")
    if co is not None:
        assert not os.path.lexists(os.path.join(os.path.dirname(co), "escape"))


@pytest.mark.parametrize("fmt", ["layer", "rootfs"])
def test_absolute_names_are_relative_to_the_image_root(guard, fmt):
    """``/etc/passwd`` in an archive is the image's /etc/passwd, never the host's."""
    entries = [A.file("/etc/passwd", b"image passwd\n"), A.file(guard.escape, b"x"), A.file("//double//slash", b"y")]
    tag = "hostile/absolute:1"
    path = guard.docker("absolute", entries) if fmt == "layer" else guard.rootfs("absolute", entries)
    co = guard.either(path, *(["-t", tag] if fmt == "rootfs" else []), tag=tag)
    if co is not None:
        with open(inside(co, "/etc/passwd"), "rb") as f:
            assert f.read() == b"image passwd\n"
        assert os.path.isfile(inside(co, guard.escape))
        assert os.path.isfile(inside(co, "/double/slash"))


def test_reserved_and_git_names_are_contained(guard):
    """Names layergit or git treat specially (the metadata entry, ``.git``, escaped look-alikes)
    are ordinary files in the image and cannot corrupt the store."""
    entries = [
        A.file(".lgmeta", b"lgmeta 1\n.\td 0777 0:0 0\n"),
        A.directory("d"),
        A.file("d/.lgmeta", b"not metadata\n"),
        A.file(".git/config", b"[core]\n\tbare = false\n"),
        A.file(".git/hooks/post-checkout", b"#!/bin/sh\ntouch /tmp/pwned\n", mode=0o755),
        A.file("%2Egit", b"percent\n"),
        A.file("a\nb", b"newline\n"),
    ]
    co = guard.must_succeed(guard.docker("reserved", entries), tag="hostile/reserved:1")
    for name, data in ((".lgmeta", b"lgmeta 1\n.\td 0777 0:0 0\n"), ("d/.lgmeta", b"not metadata\n"), (".git/config", b"[core]\n\tbare = false\n"), ("%2Egit", b"percent\n"), ("a\nb", b"newline\n")):
        with open(os.path.join(co, name), "rb") as f:
            assert f.read() == data, name
    exported = guard.lg("export", "hostile/reserved:1", "--format", "rootfs", "-o", "-").stdout
    assert tarfile.open(fileobj=io.BytesIO(exported)).getmember(".").mode == 0o755  # not the fake .lgmeta's 0777


# -- whiteouts --------------------------------------------------------------------


@pytest.mark.parametrize("name", [".wh.", "a/.wh."])
def test_bare_whiteout(guard, name):
    """A whiteout naming nothing (``.wh.``) must not delete the directory holding it."""
    co = guard.either(guard.docker("barewh", [A.directory("a"), A.file("a/f", b"x")], [A.raw(name, mode=0)]), tag="hostile/barewh:1")
    if co is not None:
        assert os.path.isfile(os.path.join(co, "a", "f"))


def test_whiteout_of_dotdot(guard):
    """``.wh..`` would whiteout ``..``: it must not delete the parent, nor anything else."""
    co = guard.either(guard.docker("whdotdot", [A.directory("a"), A.file("a/f", b"x"), A.file("top", b"t")], [A.raw("a/.wh..", mode=0)]), tag="hostile/whdotdot:1")
    if co is not None:
        assert os.path.isfile(os.path.join(co, "a", "f")) and os.path.isfile(os.path.join(co, "top"))


def test_whiteouts_through_symlinks(guard):
    """Whiteouts whose parent is a symlink (absolute, relative-escaping, to the sentinel) act inside
    the image or not at all: the host files they name survive."""
    lower = [
        A.directory("etc"),
        A.file("etc/passwd", b"image passwd\n"),
        A.symlink("lnk", guard.S),
        A.symlink("el", "/etc"),
        A.symlink("up", "../../../../../../../../.."),
    ]
    upper = [A.whiteout("lnk/keep"), A.whiteout("el/passwd"), A.whiteout("up/etc/hostname"), A.whiteout(f"up/{guard.S_rel}/sub"), A.opaque("lnk")]
    co = guard.either(guard.docker("whsym", lower, upper), tag="hostile/whsym:1")
    if co is not None:
        for link in ("lnk", "el", "up"):
            assert os.path.islink(os.path.join(co, link)), f"{link} should still be a symlink"
        # resolved inside the image, /el/passwd is the image's /etc/passwd
        assert not os.path.lexists(os.path.join(co, "etc", "passwd"))


# -- symlinks followed by writes ----------------------------------------------------


def _assert_write_inside(guard: Guard, co: str | None, where: str) -> None:
    if co is not None:
        with open(inside(co, where), "rb") as f:
            assert f.read() == b"evil\n"


def test_write_through_symlink_same_layer(guard):
    """A symlink to the host sentinel, then a file below it: the file lands in the image's copy of
    that path, never in the sentinel."""
    co = guard.either(guard.docker("symwrite", [A.symlink("lnk", guard.S), A.file("lnk/evil", b"evil\n")]), tag="hostile/symwrite:1")
    _assert_write_inside(guard, co, guard.S + "/evil")


def test_write_through_symlink_across_layers(guard):
    """Layer N plants the link, layer N+1 writes through it (the classic layered escape)."""
    co = guard.either(guard.docker("symwrite2", [A.symlink("lnk", guard.S)], [A.directory("lnk/sub"), A.file("lnk/sub/evil", b"evil\n")]), tag="hostile/symwrite2:1")
    _assert_write_inside(guard, co, guard.S + "/sub/evil")


def test_write_through_relative_escaping_symlink(guard):
    """``up -> ../../../..`` climbs above the image root: inside the image ``..`` stops at /."""
    co = guard.either(guard.docker("relup", [A.symlink("up", "../" * 12), A.file(f"up/{guard.S_rel}/evil", b"evil\n")]), tag="hostile/relup:1")
    _assert_write_inside(guard, co, guard.S + "/evil")


def test_write_through_symlink_in_rootfs_tarball(guard):
    """The same escape in a plain rootfs tarball (no layers, no whiteouts)."""
    path = guard.rootfs("symrootfs", [A.symlink("lnk", guard.S), A.file("lnk/evil", b"evil\n")])
    co = guard.either(path, "-t", "hostile/symrootfs:1", tag="hostile/symrootfs:1")
    _assert_write_inside(guard, co, guard.S + "/evil")


@pytest.mark.parametrize(
    "links, write, lands",
    [
        ([("a", "b"), ("b", "{S}")], "a/evil", "{S}/evil"),  # two absolute hops
        ([("a", "b/../../../../.."), ("b", "c"), ("c", ".")], "a/{S_rel}/evil", "{S}/evil"),  # relative hops adding up to an escape
        ([("a", "b/sub"), ("b", "{S}")], "a/evil", "{S}/sub/evil"),  # a hop into a subdirectory of the target
    ],
    ids=["abs-abs", "rel-rel", "into-sub"],
)
def test_two_hop_symlink_escapes(guard, links, write, lands):
    """Chains of symlinks resolve inside the image at every hop."""
    fmt = dict(S=guard.S, S_rel=guard.S_rel)
    entries = [A.symlink(name, target.format(**fmt)) for name, target in links] + [A.file(write.format(**fmt), b"evil\n")]
    co = guard.either(guard.docker("twohop", entries), tag="hostile/twohop:1")
    _assert_write_inside(guard, co, lands.format(**fmt))


def test_symlink_loop(guard):
    """A loop (a -> b -> a) with a write below it: refused or contained, never a hang."""
    co = guard.either(guard.docker("loop", [A.symlink("a", "b"), A.symlink("b", "a"), A.file("a/evil", b"evil\n")]), tag="hostile/loop:1")
    if co is not None:
        assert os.path.islink(os.path.join(co, "a"))


@pytest.mark.parametrize("name", [".", "/", "./", "//"])
def test_symlink_named_root(guard, name):
    """A symlink whose name is ``.`` or ``/`` would turn the image root into a link to the host."""
    co = guard.either(guard.docker("dotlink", [A.symlink(name, guard.S), A.file("evil", b"evil\n")]), tag="hostile/dotlink:1")
    if co is not None:
        assert stat.S_ISDIR(os.lstat(co).st_mode)
        _assert_write_inside(guard, co, "/evil")


# -- hardlinks --------------------------------------------------------------------


@pytest.mark.parametrize("target", ["../../../../../etc/passwd", "/etc/passwd", "etc/../../etc/passwd", "{S}/keep"])
def test_hardlink_to_outside(guard, target):
    """A hardlink can only name an entry of the image: never a host file's content."""
    target = target.format(S=guard.S)
    co = guard.either(guard.docker("hardout", [A.hardlink("hl", target)]), tag="hostile/hardout:1")
    if co is not None:
        hl = os.path.join(co, "hl")
        assert not os.path.isfile(hl) or open(hl, "rb").read() not in (open("/etc/passwd", "rb").read(), (guard.sentinel / "keep").read_bytes())


def test_hardlink_to_absolute_path_inside_image(guard):
    """``/etc/passwd`` as a hardlink target is the image's file: same content, same inode group."""
    co = guard.either(guard.docker("hardabs", [A.directory("etc"), A.file("etc/passwd", b"image passwd\n"), A.hardlink("hl", "/etc/passwd")]), tag="hostile/hardabs:1")
    if co is not None:
        assert open(os.path.join(co, "hl"), "rb").read() == b"image passwd\n"
        assert os.lstat(os.path.join(co, "hl")).st_ino == os.lstat(os.path.join(co, "etc", "passwd")).st_ino


def test_hardlink_through_symlinked_parent(guard):
    """``d -> SENTINEL`` then a hardlink to ``d/keep``: the image has no such file, the host's is not taken."""
    co = guard.either(guard.docker("hardviasym", [A.symlink("d", guard.S), A.hardlink("hl", "d/keep")]), tag="hostile/hardviasym:1")
    if co is not None:
        hl = os.path.join(co, "hl")
        assert not os.path.isfile(hl) or open(hl, "rb").read() != (guard.sentinel / "keep").read_bytes()


def test_hardlink_to_symlink(guard):
    """A hardlink to a symlink pointing outside is (at most) another name for that symlink."""
    co = guard.either(guard.docker("hardsym", [A.symlink("sl", "/etc/passwd"), A.hardlink("hl", "sl")]), tag="hostile/hardsym:1")
    if co is not None:
        assert os.path.islink(os.path.join(co, "hl")) and os.readlink(os.path.join(co, "hl")) == "/etc/passwd"


def test_hardlink_to_directory_or_itself(guard):
    """Hardlinks to a directory, to themselves or to a later entry cannot be made."""
    for i, entries in enumerate([[A.directory("d"), A.hardlink("hl", "d")], [A.hardlink("hl", "hl")], [A.hardlink("hl", "later"), A.file("later", b"x")]]):
        guard.either(guard.docker(f"harddir{i}", entries), tag=f"hostile/harddir{i}:1")


# -- metadata entries and changing types ----------------------------------------------


def test_directory_entry_redeclaring_symlink_to_outside(guard):
    """A directory entry (mode, owner, xattr) for a path that is a symlink to the host sentinel
    changes the image only: the sentinel keeps its mode, owner and xattrs."""
    meta = dict(mode=0o777, uid=1234, gid=4321, xattrs={"user.evil": b"1"})
    lower = [A.symlink("etc", guard.S), A.symlink("keep", guard.S + "/keep")]
    upper = [A.directory("etc", **meta), A.file("keep", b"replaced\n", **meta), A.directory("etc/sub", **meta)]
    co = guard.either(guard.docker("metasym", lower, upper), tag="hostile/metasym:1")
    if co is not None:
        st = os.lstat(os.path.join(co, "etc"))
        assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o777 and st.st_uid == 1234
        assert open(os.path.join(co, "keep"), "rb").read() == b"replaced\n"


def test_same_layer_directory_entry_on_symlink(guard):
    """The same within one layer, and through a symlinked parent (``lnk/`` then ``lnk/sub/``)."""
    entries = [A.symlink("lnk", guard.S), A.directory("lnk/sub", mode=0o700, uid=99), A.directory("lnk", mode=0o700, uid=99)]
    co = guard.either(guard.docker("metasym2", entries), tag="hostile/metasym2:1")
    if co is not None:
        assert stat.S_ISDIR(os.lstat(os.path.join(co, "lnk")).st_mode)


def test_duplicate_entries_changing_type(guard):
    """dir -> symlink -> file for one name: the last entry wins, as in tar, and nothing goes
    through the short-lived symlink."""
    entries = [A.directory("x"), A.file("x/inner", b"i"), A.symlink("x", guard.S), A.file("x", b"final\n")]
    co = guard.either(guard.docker("duptype", entries), tag="hostile/duptype:1")
    if co is not None:
        assert stat.S_ISREG(os.lstat(os.path.join(co, "x")).st_mode)
        assert open(os.path.join(co, "x"), "rb").read() == b"final\n"


def test_duplicate_entries_file_dir_symlink_then_write(guard):
    """file -> dir -> symlink to the sentinel, then a write below it: inside the image."""
    entries = [A.file("y", b"f"), A.directory("y"), A.symlink("y", guard.S), A.file("y/evil", b"evil\n")]
    co = guard.either(guard.docker("duptype2", entries), tag="hostile/duptype2:1")
    _assert_write_inside(guard, co, guard.S + "/evil")


# -- device nodes -------------------------------------------------------------------


@pytest.mark.root
def test_device_nodes_are_metadata(guard):
    """Device nodes and fifos become metadata: none is created on the host by the import
    (not even at an absolute path or below a symlink to the sentinel); a checkout makes them
    inside the checkout, with the right numbers."""
    devname = f"/dev/lg-evil-{uuid.uuid4().hex[:8]}"
    entries = [
        A.directory("dev"),
        A.chardev("dev/null2", 1, 3),
        A.blockdev("dev/sda9", 8, 9),
        A.fifo("dev/fifo"),
        A.chardev(devname, 1, 5),
        A.symlink("hostdev", guard.S),
        A.chardev("hostdev/mem", 1, 1),
    ]
    co = guard.either(guard.docker("devices", entries), tag="hostile/devices:1")
    assert not os.path.lexists(devname)
    if co is not None:
        st = os.lstat(os.path.join(co, "dev", "null2"))
        assert stat.S_ISCHR(st.st_mode) and (os.major(st.st_rdev), os.minor(st.st_rdev)) == (1, 3)
        st = os.lstat(os.path.join(co, "dev", "sda9"))
        assert stat.S_ISBLK(st.st_mode) and (os.major(st.st_rdev), os.minor(st.st_rdev)) == (8, 9)
        assert stat.S_ISFIFO(os.lstat(os.path.join(co, "dev", "fifo")).st_mode)
        st = os.lstat(inside(co, guard.S + "/mem"))
        assert stat.S_ISCHR(st.st_mode) and (os.major(st.st_rdev), os.minor(st.st_rdev)) == (1, 1)


# -- bombs and limits ----------------------------------------------------------------


@pytest.fixture(scope="module")
def bomb(tmp_path_factory) -> tuple[str, str]:
    """200 MB of zeros in one file, gzipped (under 1 MB), and its honest diff_id; built once.

    The diff_id is honest so that only the size limit can stop the import.
    """
    path = tmp_path_factory.mktemp("bomb") / "bomb.tar.gz"
    path.write_bytes(A.zero_bomb(200_000_000))
    h = hashlib.sha256()
    with gzip.open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return str(path), "sha256:" + h.hexdigest()


def test_gzip_bomb_rootfs(guard, bomb):
    """A gzip bomb as a rootfs tarball stops at --max-bytes with a clean error and no spool left."""
    err = guard.must_fail(bomb[0], "-t", "hostile/bomb:1", "--max-bytes", "10000000")
    assert "max-bytes" in err


@pytest.mark.parametrize("fmt", ["docker-archive", "oci"])
def test_gzip_bomb_as_layer(guard, bomb, fmt):
    """The same bomb as the second layer of an image: the first layer's objects must not stay
    behind either."""
    with open(bomb[0], "rb") as f:
        blob = f.read()
    first = A.layer_tar([A.file("ok", b"fine\n")])
    kw = dict(diff_ids=[A.sha256(first), bomb[1]], raw_blobs={1: blob})
    if fmt == "oci":
        layout = A.oci_layout([first, b""], ref_name="bomb", **kw)
    else:
        layout = A.docker_archive([first, b""], repo_tags=["hostile/bomb:1"], **kw)
    err = guard.must_fail(guard.save(layout, "bomb-image.tar"), "--max-bytes", "10000000")
    assert "max-bytes" in err


def test_max_bytes_flag_raises_the_limit(guard):
    """The limit is a flag, not a wall: 2 MB of zeros fails under --max-bytes 1000000 and imports
    under --max-bytes 4000000."""
    small = guard.save(A.zero_bomb(2_000_000), "zeros.tar.gz")
    guard.must_fail(small, "-t", "hostile/zeros:1", "--max-bytes", "1000000")
    co = guard.must_succeed(small, "-t", "hostile/zeros:1", "--max-bytes", "4000000", tag="hostile/zeros:1")
    assert os.path.getsize(os.path.join(co, "zeros")) == 2_000_000


def test_max_entries(guard):
    """--max-entries counts tar entries across all layers of an image; the flag raises it."""
    many = [A.file(f"f{i:03d}", b"x") for i in range(30)]
    path = guard.rootfs("many", many)
    err = guard.must_fail(path, "-t", "hostile/many:1", "--max-entries", "10")
    assert "max-entries" in err
    layered = guard.docker("many2", many, [A.file(f"g{i:03d}", b"y") for i in range(30)])
    guard.must_fail(layered, "--max-entries", "50")
    guard.must_succeed(layered, "--max-entries", "100", tag="hostile/many2:1")


@pytest.mark.parametrize("flag", ["--max-bytes", "--max-entries"])
@pytest.mark.parametrize("value", ["0", "-5"])
def test_limit_flags_must_be_positive(guard, flag, value):
    """Nonsense limits are a usage error, before anything is read."""
    guard.must_fail(guard.rootfs("lim", [A.file("f", b"x")]), "-t", "hostile/lim:1", flag, value)


@pytest.mark.parametrize("kind", A.OVERSIZED_HEADERS)
@pytest.mark.parametrize("wrap", ["rootfs", "image-archive"])
def test_oversized_extended_header(guard, kind, wrap):
    """An extended header (pax, GNU long name, a chain of them, a sparse map) that tarfile
    would read whole is refused before it is read: 64 MiB of pax header in a 64 KB gzip
    made lg hold it all. As a rootfs and as the image archive's own tar, which detection
    reads."""
    tar = A.oversized_header(kind, 64 << 20 if kind in ("pax", "gnu-longname") else 2 << 20)
    if wrap == "rootfs":
        err = guard.must_fail(guard.save(A.compress(tar, "gzip"), f"{kind}.tar.gz"), "-t", "hostile/ext:1")
    else:
        layout = A.docker_archive([A.layer_tar([A.file("f", b"x")])], repo_tags=["hostile/ext:1"])
        path = guard.save(layout, f"{kind}-image.tar")
        with open(path, "rb") as f:
            whole = f.read()
        end = len(whole.rstrip(b"\0"))
        end += -end % 512
        guard.save(whole[:end] + tar, f"{kind}-image.tar")  # the hostile member after the image's
        err = guard.must_fail(path)
    assert "more than" in err and ("1048576 bytes" in err or "extended headers" in err), err


def test_a_large_extended_header_within_the_bound_imports(guard):
    """The bound leaves room for what real archives carry: a long path, a long link
    target and xattrs at Linux's 64 KiB value cap."""
    deep = "/".join(["d" * 200] * 15)
    entries = [A.directory("/".join(["d" * 200] * i)) for i in range(1, 15)]
    entries += [A.file(deep, b"x", xattrs={f"user.k{i}": b"v" * 60000 for i in range(4)}),
                A.symlink("l", "t" * 4000)]
    proc = guard.run(guard.rootfs("bigpax", entries), "-t", "hostile/bigpax:1")
    assert proc.returncode == 0, proc.stderr.decode()  # not checked out: tmpfs holds no such xattrs


@pytest.mark.parametrize("image", [False, True])
def test_max_entries_bounds_format_detection(guard, image):
    """Telling an image archive from a rootfs reads the tar's headers: --max-entries
    stops that too, without -t (rootfs or not) and for an image archive's own members."""
    padding = [A.file(f"p{i:05d}", b"") for i in range(3000)]
    if image:
        layout = A.docker_archive([A.layer_tar([A.file("f", b"x")])], repo_tags=["hostile/det:1"])
        for e in padding:
            layout[e.name] = e.data
        path = guard.save(layout, "det-image.tar")
    else:
        path = guard.rootfs("det", padding)
    err = guard.must_fail(path, "--max-entries", "1000")
    assert "max-entries" in err


# -- truncated and corrupt ------------------------------------------------------------


def _plain_tar() -> bytes:
    """Three files of incompressible data: truncation points fall inside real content."""
    return A.layer_tar([A.file("a", A.junk(3000, 1)), A.file("b", A.junk(3000, 2)), A.file("c", A.junk(3000, 3))])


def _corrupt(kind: str) -> bytes:
    t = _plain_tar()
    if kind == "truncated-tar":
        return t[: 512 + 3000 + 512 + 1000]  # inside b's data
    if kind == "truncated-first-header":
        return t[:300]
    if kind == "truncated-gzip":
        gz = A.compress(t, "gzip")
        return gz[: len(gz) // 2]
    if kind == "corrupt-gzip":
        gz = bytearray(A.compress(t, "gzip"))
        gz[len(gz) // 2] ^= 0xFF
        return bytes(gz)
    if kind == "truncated-xz":
        xz = A.compress(t, "xz")
        return xz[: len(xz) // 2]
    if kind == "random-bytes":
        return A.junk(5000, 7)
    if kind == "gzip-of-random-bytes":
        return A.compress(A.junk(5000, 8), "gzip")
    if kind == "bad-checksum-first-header":
        bad = bytearray(t)
        bad[148:156] = b"0000000\0"
        return bytes(bad)
    raise ValueError(kind)


@pytest.mark.parametrize("kind", ["truncated-tar", "truncated-first-header", "truncated-gzip", "corrupt-gzip", "truncated-xz", "random-bytes", "gzip-of-random-bytes", "bad-checksum-first-header"])
def test_truncated_and_corrupt_rootfs(guard, kind):
    """Damaged rootfs tarballs are refused with one line, whatever the damage."""
    guard.must_fail(guard.save(_corrupt(kind), kind), "-t", "hostile/corrupt:1")


def test_corrupt_header_in_the_middle_is_an_error(guard):
    """A bad header checksum on the second member must not end the archive silently there:
    that would import a partial image (GNU tar reports this as an error too)."""
    t = bytearray(_plain_tar())
    second = 512 + 3072  # header of "b"
    t[second + 148 : second + 156] = b"0000000\0"
    guard.must_fail(guard.save(bytes(t), "badsum-mid.tar"), "-t", "hostile/badsum:1")


def test_truncated_zstd_is_an_error(guard):
    """A zstd stream cut short must be refused, not read as a shorter archive.

    With many small members the decompressed prefix can end exactly between two
    members; a reader that takes a truncated zstd frame for end-of-data then
    imports the first third of the files and succeeds.
    """
    t = A.layer_tar([A.file(f"f{i:04d}", A.junk(1000, i)) for i in range(600)])
    zst = A.compress(t, "zstd")
    guard.must_fail(guard.save(zst[: int(len(zst) * 0.3)], "cut.tar.zst"), "-t", "hostile/zcut:1")


def test_truncated_docker_archive(guard):
    """A docker-archive cut inside its second layer: refused, and the first layer's objects gone."""
    layout = A.docker_archive(A.three_layers(), repo_tags=["hostile/cut:1"])
    data = layout.tar()
    second = [m for m in tarfile.open(fileobj=io.BytesIO(data)) if m.name.endswith("layer.tar")][1]
    cut = data[: second.offset_data + second.size // 2]
    guard.must_fail(guard.save(cut, "cut-docker.tar"), "--format", "docker-archive")
    guard.must_fail(guard.save(cut, "cut-docker2.tar"))


# -- manifests and descriptors that point elsewhere ------------------------------------


def _outside_layer(guard: Guard) -> tuple[bytes, str]:
    """A valid layer written next to (outside) the archive directory; importing it would be a leak."""
    layer = A.layer_tar([A.file("leaked", b"read from outside the archive\n")])
    path = guard.archives / "outside-layer.tar"
    path.write_bytes(layer)
    return layer, str(path)


@pytest.mark.parametrize("how", ["dotdot", "absolute", "dotdot-in-tar"])
def test_manifest_layer_path_outside_archive(guard, how):
    """manifest.json naming a layer by ``../`` or an absolute path never reads a host file,
    even when that file is a valid layer with the right diff_id."""
    layer, outside = _outside_layer(guard)
    arch = guard.archives / "arch"
    name = {"dotdot": "../outside-layer.tar", "absolute": outside, "dotdot-in-tar": "../../../../../../../.." + outside}[how]
    layout = A.docker_archive([layer], repo_tags=["hostile/mpath:1"], layer_names=[name])
    if how == "dotdot-in-tar":
        path = guard.save(layout, "mpath.tar")
    else:
        path = layout.write_dir(arch)
    guard.must_fail(path)


@pytest.mark.parametrize("how", ["dotdot", "absolute"])
def test_manifest_config_path_outside_archive(guard, how):
    """The same for the image config named by manifest.json."""
    layer = A.layer_tar([A.file("f", b"x")])
    cfg = json.dumps(A.image_config([layer])).encode()
    outside = guard.archives / "outside-config.json"
    outside.write_bytes(cfg)
    name = "../outside-config.json" if how == "dotdot" else str(outside)
    path = A.docker_archive([layer], repo_tags=["hostile/cpath:1"], config_name=name).write_dir(guard.archives / "arch")
    guard.must_fail(path)


@pytest.mark.parametrize("what", ["layer", "manifest.json"])
def test_symlinks_in_archive_directory_pointing_outside(guard, what):
    """A docker-archive directory whose layer.tar (or manifest.json) is a symlink to a host file
    must not be read through the link."""
    layer, outside = _outside_layer(guard)
    layout = A.docker_archive([layer], repo_tags=["hostile/dirlink:1"])
    if what == "layer":
        name = next(n for n in layout if n.endswith("layer.tar"))
        layout[name] = A.Link(outside)
    else:
        real = guard.archives / "outside-manifest.json"
        real.write_bytes(layout["manifest.json"])
        layout["manifest.json"] = A.Link(str(real))
    guard.must_fail(layout.write_dir(guard.archives / "arch"))


@pytest.mark.parametrize("target", ["../../../../../../etc/passwd", "/etc/passwd", "../outside/layer.tar"])
def test_symlinks_in_archive_tar_pointing_outside(guard, target):
    """In a docker-archive tar, a layer member that is a symlink leaving the archive is refused."""
    layout = A.docker_archive([A.layer_tar([A.file("f", b"x")])], repo_tags=["hostile/tarlink:1"], diff_ids=[A.sha256(open("/etc/passwd", "rb").read())])
    name = next(n for n in layout if n.endswith("layer.tar"))
    layout[name] = A.Link(target)
    guard.must_fail(guard.save(layout, "tarlink.tar"))


@pytest.mark.parametrize("where", ["blob", "blobs-dir"])
def test_oci_layout_symlinks_pointing_outside(guard, where):
    """An OCI layout directory whose layer blob (or whole blobs/sha256) is a symlink to host
    files with the right digests: refused, nothing read through the link."""
    layer, outside = _outside_layer(guard)
    layout = A.oci_layout([layer], ref_name="hostile-ocilink")
    if where == "blob":
        layout["blobs/sha256/" + A.sha256(layer)[7:]] = A.Link(outside)
        path = layout.write_dir(guard.archives / "oci")
    else:
        real = guard.archives / "real-blobs"
        blobs = {n: v for n, v in layout.items() if n.startswith("blobs/")}
        for n in blobs:
            del layout[n]
        A.Layout({n[len("blobs/sha256/"):]: v for n, v in blobs.items()}).write_dir(real)
        layout["blobs/sha256"] = A.Link(str(real))
        path = layout.write_dir(guard.archives / "oci")
    guard.must_fail(path)


@pytest.mark.parametrize("digest", ["sha256:../../../../etc/passwd", "sha256:/etc/passwd", "sha512:" + "0" * 128, "sha256:" + "A" * 64, "../blobs/x"])
def test_oci_index_with_path_like_digests(guard, digest):
    """index.json descriptors are digests, not paths: anything that is not sha256:<64 hex> is refused."""
    layout = A.oci_layout([A.layer_tar([A.file("f", b"x")])], manifest_digest=digest)
    guard.must_fail(guard.save(layout, "ocidigest.tar"))


def test_oci_manifest_with_path_like_layer_digest(guard):
    """The same for a layer descriptor inside the manifest."""
    layout = A.oci_layout([A.layer_tar([A.file("f", b"x")])], layer_digests=["sha256:../../../../../etc/passwd"])
    guard.must_fail(guard.save(layout, "ocilayerdigest.tar"))


# -- digests and sizes that lie -----------------------------------------------------


def _two_layers() -> list[bytes]:
    return [A.layer_tar([A.file("one", b"1\n")]), A.layer_tar([A.file("two", b"2\n")])]


@pytest.mark.parametrize(
    "lie",
    [
        "layer-digest-missing-blob",
        "layer-blob-swapped",
        "layer-size",
        "config-digest",
        "config-size",
        "manifest-digest",
        "manifest-size",
        "diff-id",
        "diff-id-compressed",
        "diff-ids-count",
        "media-type",
    ],
)
def test_oci_digests_and_sizes_that_lie(guard, lie):
    """Every descriptor is checked against its blob; the lie is in the last layer, so a
    half-imported first layer would show in the store."""
    layers = _two_layers()
    other = A.layer_tar([A.file("evil", b"swapped\n")])
    kw: dict = {}
    if lie == "layer-digest-missing-blob":
        kw["layer_digests"] = {1: A.sha256(other)}
    elif lie == "layer-blob-swapped":
        kw["mutate"] = lambda files: files.__setitem__("blobs/sha256/" + A.sha256(layers[1])[7:], other)
    elif lie == "layer-size":
        kw["layer_sizes"] = {1: len(layers[1]) - 512}
    elif lie == "config-digest":
        kw["config_digest"] = A.sha256(b"{}")
    elif lie == "config-size":
        kw["config_size"] = 10
    elif lie == "manifest-digest":
        kw["manifest_digest"] = A.sha256(b"{}")
    elif lie == "manifest-size":
        kw["manifest_size"] = 1
    elif lie == "diff-id":
        kw["diff_ids"] = [A.sha256(layers[0]), A.sha256(other)]
    elif lie == "diff-id-compressed":
        kw["diff_ids"] = [A.sha256(layers[0]), A.sha256(other)]
        kw["compression"] = "gzip"
    elif lie == "diff-ids-count":
        kw["diff_ids"] = [A.sha256(layers[0])]
    elif lie == "media-type":
        kw["media_types"] = {1: "application/vnd.oci.image.layer.v1.tar+bzip2"}
    layout = A.oci_layout(layers, ref_name="lie", **kw)
    guard.must_fail(guard.save(layout, "lie.tar"))
    guard.must_fail(layout.write_dir(guard.archives / "lie-dir"))


@pytest.mark.parametrize("lie", ["diff-id", "diff-id-gzip", "diff-ids-count", "missing-layer", "missing-config", "config-not-json", "manifest-not-list"])
def test_docker_archive_that_lies(guard, lie):
    """docker-archive: diff_ids are checked against the uncompressed layers, and a manifest
    that names missing files or is not what it claims is refused."""
    layers = _two_layers()
    other = A.layer_tar([A.file("evil", b"swapped\n")])
    kw: dict = {"repo_tags": ["hostile/dlie:1"]}
    if lie == "diff-id":
        kw["diff_ids"] = [A.sha256(layers[0]), A.sha256(other)]
    elif lie == "diff-id-gzip":
        kw["diff_ids"] = [A.sha256(layers[0]), A.sha256(other)]
        kw["compression"] = "gzip"
    elif lie == "diff-ids-count":
        kw["diff_ids"] = [A.sha256(layers[0])]
    elif lie == "missing-layer":
        kw["layer_names"] = {1: "nothere/layer.tar"}
    elif lie == "missing-config":
        kw["config_name"] = "nothere.json"
    elif lie == "config-not-json":
        kw["mutate"] = lambda files: files.__setitem__(json.loads(files["manifest.json"])[0]["Config"], b"\x00not json")
    elif lie == "manifest-not-list":
        kw["mutate"] = lambda files: files.__setitem__("manifest.json", b'{"Config": "x"}')
    guard.must_fail(guard.save(A.docker_archive(layers, **kw), "dlie.tar"))


@pytest.mark.parametrize("what", ["random-bytes", "gzip-of-random-bytes", "json", "empty"])
def test_layer_that_is_not_a_tar(guard, what):
    """A layer blob that is not a tar (with honest digests, so only the parser can object)."""
    bad = {"random-bytes": A.junk(4096, 3), "gzip-of-random-bytes": A.compress(A.junk(4096, 4), "gzip"), "json": b'{"not": "a tar"}' * 40, "empty": b""}[what]
    layers = [A.layer_tar([A.file("ok", b"fine\n")]), bad]
    guard.must_fail(guard.save(A.docker_archive(layers, repo_tags=["hostile/notatar:1"]), "notatar.tar"))
    guard.must_fail(guard.save(A.oci_layout(layers, ref_name="notatar"), "notatar-oci.tar"))


def test_unsupported_member_types(guard):
    """Vendor-specific member types are refused, not guessed at (GNU sparse ones are read: below)."""
    guard.either(guard.docker("oddtype", [A.raw("weird", type=b"X", data=b"")]), tag="hostile/oddtype:1")
    guard.either(guard.docker("oddtype2", [A.raw("weird", type=b"V")]), tag="hostile/oddtype2:1")


# -- hostile configs and names ----------------------------------------------------------


def test_hostile_repo_tags(guard):
    """RepoTags that are not image names (paths, ref names, empty tags) become no refs at all;
    every ref lg creates is a well-formed git ref under refs/heads/."""
    tags = ["../../evil:tag", "refs/../x:1", "a:b:c", "UPPER:tag", "x:", ":t", "a..b:c", "x/.lock:t", "-x:t", "x@sha256:abc", "ok/name:v1"]
    path = guard.save(A.docker_archive(A.three_layers(), repo_tags=tags), "tags.tar")
    guard.either(path, tag="ok/name:v1")
    refs = subprocess.run(["git", "-C", guard.store, "for-each-ref", "--format=%(refname)"], check=True, capture_output=True, text=True).stdout.split()
    for ref in refs:
        assert ref.startswith("refs/"), ref
        assert subprocess.run(["git", "check-ref-format", ref]).returncode == 0, f"malformed ref {ref!r}"


def test_hostile_history_is_contained(guard):
    """History entries are untrusted text: a NUL or a fake header in created_by, newlines in the
    author, a date before 1970 or past 9999 must still give commits that git accepts
    (``git fsck --strict``) and ``lg fsck`` passes."""
    hist = [
        A.history("ADD base\x00hidden\nparent 0000000000000000000000000000000000000000", author="evil\nparent 1234 <a@b>\ncommitter x"),
        A.history("RUN rm /etc/motd", created="1901-01-01T00:00:00Z"),
        A.history("RUN replace www", created="99999-01-01T00:00:00Z"),
    ]
    guard.either(guard.save(A.docker_archive(A.three_layers(), hist=hist, repo_tags=["hostile/history:1"]), "history.tar"), tag="hostile/history:1")


def test_nul_in_created_by(guard):
    """The smallest case of the above: one NUL byte in a history entry's created_by."""
    hist = [A.history("RUN a\x00b"), A.history("RUN b"), A.history("RUN c")]
    guard.either(guard.save(A.docker_archive(A.three_layers(), hist=hist, repo_tags=["hostile/nul:1"]), "nul.tar"), tag="hostile/nul:1")


def test_created_before_1970(guard):
    """The smallest case of the above: a history date before the epoch."""
    hist = [A.history("RUN a", created="1969-12-31T23:59:59Z"), A.history("RUN b"), A.history("RUN c")]
    guard.either(guard.save(A.docker_archive(A.three_layers(), hist=hist, repo_tags=["hostile/epoch:1"]), "epoch.tar"), tag="hostile/epoch:1")


# -- configs whose fields have the wrong type (issue 12) ------------------------------------

NESTED = b"[" * 100_000 + b"]" * 100_000


@pytest.mark.parametrize("where", ["manifest.json", "config", "index.json", "oci-config"])
def test_deeply_nested_json(guard, where):
    """100,000 nested arrays in a manifest, an index or a config: one line, not a RecursionError."""
    layers = A.three_layers()
    if where in ("manifest.json", "config"):
        def mutate(files):
            name = "manifest.json" if where == "manifest.json" else json.loads(files["manifest.json"])[0]["Config"]
            files[name] = NESTED
        path = guard.save(A.docker_archive(layers, repo_tags=["hostile/nested:1"], mutate=mutate), "nested.tar")
    elif where == "index.json":
        path = guard.save(A.oci_layout(layers, mutate=lambda files: files.__setitem__("index.json", NESTED)), "nested.tar")
    else:
        path = guard.save(A.oci_layout(layers, mutate=lambda files: A.oci_relink(files, "config", NESTED)), "nested.tar")
    err = guard.must_fail(path)
    assert "nests arrays or objects too deeply" in err, err


BAD_CONFIGS = {
    "Env-string": ({"Env": "PATH=/bin"}, "Env must be a list of strings, not a string"),
    "Env-numbers": ({"Env": [1, 2]}, "an item of Env must be a string"),
    "Env-nul": ({"Env": ["A=b\u0000c"]}, "contains a NUL"),
    "WorkingDir-list": ({"WorkingDir": ["/srv"]}, "WorkingDir must be a string, not a list"),
    "User-number": ({"User": 0}, "User must be a string, not a number"),
    "User-map": ({"User": {"uid": 0}}, "User must be a string, not a map"),
    "Cmd-number": ({"Cmd": 5}, "Cmd must be a list of strings"),
    "Cmd-nested": ({"Cmd": [["sh"]]}, "an item of Cmd must be a string"),
    "Entrypoint-map": ({"Entrypoint": {"a": "b"}}, "Entrypoint must be a list of strings"),
    "Labels-list": ({"Labels": ["a=b"]}, "Labels must be a map of strings, not a list"),
    "Labels-value": ({"Labels": {"a": 1}}, "label 'a' must be a string"),
    "ExposedPorts-list": ({"ExposedPorts": ["80/tcp"]}, "ExposedPorts must be a map"),
    "Volumes-string": ({"Volumes": "/data"}, "Volumes must be a map"),
    "Healthcheck-string": ({"Healthcheck": "curl"}, "Healthcheck must be a map"),
    "Healthcheck-interval": ({"Healthcheck": {"Test": ["CMD", "true"], "Interval": "5s"}}, "Healthcheck.Interval"),
    "StopSignal-number": ({"StopSignal": 9}, "StopSignal must be a string"),
    "Shell-string": ({"Shell": "/bin/sh -c"}, "Shell must be a list of strings"),
    "ArgsEscaped-string": ({"ArgsEscaped": "yes"}, "ArgsEscaped must be a boolean"),
}


@pytest.mark.parametrize("case, fmt", [(case, "docker-archive") for case in sorted(BAD_CONFIGS)]
                         + [("Env-string", "oci"), ("Cmd-nested", "oci")])
def test_config_field_of_the_wrong_type(guard, case, fmt):
    """Fields whose type Docker's Go structs would refuse are refused at import, whole, with
    one line naming the field: the image never lands, so no later command meets it. (Every
    field's rules, in process: tests/unit/test_imageconfig.py.)"""
    runtime, message = BAD_CONFIGS[case]
    make = A.docker_archive if fmt == "docker-archive" else A.oci_layout
    path = guard.save(make(A.three_layers(), runtime=runtime), f"{case}.tar")
    err = guard.must_fail(path)
    assert "image config: " in err and message in err, err


def test_config_that_is_not_a_map(guard):
    config = dict(A.image_config(A.three_layers()), config=["Cmd", "sh"])
    err = guard.must_fail(guard.save(A.docker_archive(A.three_layers(), config=config, repo_tags=["hostile/cfg:1"]), "cfg.tar"))
    assert "is not a map" in err, err


@pytest.mark.parametrize("history", [1, "layer", {"created_by": "x"}])
def test_history_that_is_not_a_list(guard, history):
    """A config whose "history" is not a list (Docker's decoder refuses it too) is one line,
    not a crash, and lands nothing (found by the archive fuzzer)."""
    config = dict(A.image_config(A.three_layers()), history=history)
    err = guard.must_fail(guard.save(A.docker_archive(A.three_layers(), config=config, repo_tags=["hostile/hist:1"]), "hist.tar"))
    assert "\"history\" is not a list" in err, err


def test_config_leniencies_docker_has_are_kept(guard):
    """What Docker's types accept stays accepted: a Cmd that is one string (a StrSlice), null
    fields; and ExposedPorts/Volumes values are flattened to {} (nothing nested reaches the store)."""
    deep: object = {}
    for _ in range(500):
        deep = {"x": deep}
    runtime = {"Cmd": "/bin/sh", "Env": None, "ExposedPorts": {"80/tcp": deep}, "Volumes": {"/data": {"y": 1}}}
    guard.must_succeed(guard.save(A.docker_archive(A.three_layers(), runtime=runtime, repo_tags=["ok/lenient:1"]), "lenient.tar"), tag="ok/lenient:1")
    config = json.loads(guard.lg.out("inspect", "ok/lenient:1"))[0]["Config"]
    assert config["Cmd"] == ["/bin/sh"] and config["ExposedPorts"] == {"80/tcp": {}} and config["Volumes"] == {"/data": {}}, config
    assert "Env" not in config, config


def _git(store: str, *args: str, input: bytes | None = None) -> str:
    return subprocess.run(["git", "-C", store, *args], input=input, check=True, capture_output=True).stdout.decode().strip()


def test_bad_config_that_arrives_through_git_is_refused_on_use(guard):
    """An image commit written with plain git (as a fetch from a remote would bring it) is
    checked where lg reads it: lg inspect, lg run and lg checkout say which field, in one line."""
    store = guard.store
    rootfs = _git(store, "rev-parse", "refs/heads/base/1:rootfs")
    blob = _git(store, "hash-object", "-w", "--stdin", input=b'{"Env": "PATH=/bin", "Cmd": ["/bin/sh"]}\n')
    tree = _git(store, "mktree", input=f"100644 blob {blob}\tconfig.json\n040000 tree {rootfs}\trootfs\n".encode())
    commit = _git(store, "commit-tree", tree, "-m", "fetched")
    _git(store, "update-ref", "refs/heads/fetched/1", commit)
    for args in (["inspect", "fetched:1"], ["run", "--rm", "--network", "none", "fetched:1"], ["checkout", "fetched:1", str(guard.checkouts / "f")]):
        err = guard.lg.fails(*args)
        assert "config.json in" in err and "Env must be a list of strings" in err, (args, err)
        assert "internal error" not in err
    assert not os.path.exists(guard.checkouts / "f")


@pytest.mark.root
@pytest.mark.parametrize("key", ["abc/tcp", "99999/tcp", "0/udp", "80/sctp", "80-90/tcp"])
def test_exposed_port_that_is_not_a_port(lg, tmp_path, key):
    """ExposedPorts keys are checked where they are used, by -P: the image imports (Docker's load
    takes it too) and runs without -P; with -P, one line naming the key, exit 125, no container."""
    path = A.docker_archive(A.three_layers(), runtime={"Cmd": ["/bin/sh"], "ExposedPorts": {key: {}}}, repo_tags=["ports:1"]).write_tar(tmp_path / "p.tar")
    lg("import", path)
    err = lg.fails("run", "-P", "ports:1", code=125)
    assert f"the image exposes {key!r}" in err, err
    assert lg.out("ps", "-aq").strip() == ""


def test_history_authors(guard):
    """A history entry's author is the commit's author; an entry without one gets the neutral
    "unknown" with no email (it read "imported layer <imported layer>"), and brackets or
    newlines in an author cannot forge a second signature field."""
    hist = [A.history("ADD base"), A.history("RUN a", author="Alice <alice@example.org>"), A.history("RUN b", author="bob\n<x> <evil@example.org>")]
    guard.must_succeed(guard.save(A.docker_archive(A.three_layers(), hist=hist, repo_tags=["hostile/authors:1"]), "authors.tar"), tag="hostile/authors:1")
    authors = _git(guard.store, "log", "--format=%an|%ae|%cn|%ce", "refs/heads/hostile/authors/1").splitlines()[::-1]
    assert authors == ["unknown||unknown|", "Alice|alice@example.org|Alice|alice@example.org", "bob|x   evil@example.org|bob|x   evil@example.org"], authors
    assert "imported layer" not in guard.lg.out("log", "hostile/authors:1")


# -- xattrs Linux cannot hold (issue 12) -------------------------------------------------------

BAD_XATTRS = {
    "nul": ({"user.a\x00b": b"v"}, "contains NUL"),
    "empty-name": ({"": b"v"}, "an xattr without a name"),
    "no-namespace": ({"foo": b"v"}, "is not NAMESPACE.NAME"),
    "empty-after-namespace": ({"user.": b"v"}, "is not NAMESPACE.NAME"),
    "long-name": ({"user." + "a" * 300: b"v"}, "longer than 255 bytes"),
    "big-value": ({"user.big": b"x" * 70_000}, "larger than 65536 bytes"),
}


@pytest.mark.parametrize("case", sorted(BAD_XATTRS))
def test_xattr_records_linux_cannot_hold(guard, case):
    """PAX SCHILY.xattr records whose name or value setxattr would refuse are refused at import,
    one line naming the entry (checkout failed on them with "internal error: ValueError" or a
    bare "Numerical result out of range: 8")."""
    xattrs, message = BAD_XATTRS[case]
    err = guard.must_fail(guard.docker("xattr", [A.directory("etc"), A.file("etc/f", b"hi\n", xattrs=xattrs)]))
    assert "etc/f" in err and message in err, err


def test_xattr_records_at_the_limits_are_kept(guard):
    """The longest name Linux takes imports and reads back exactly, so does a binary value (one
    that fits in an ext4 inode's xattr block: the 64 KiB limit is tested in tests/unit/test_meta.py)."""
    xattrs = {"user." + "n" * 250: b"v", "user.bin": bytes(range(256)) * 8}
    co = guard.must_succeed(guard.docker("xattrok", [A.file("f", b"hi\n", xattrs=xattrs)]), tag="hostile/xattrok:1")
    for key, value in xattrs.items():
        assert os.getxattr(os.path.join(co, "f"), key) == value


# -- GNU sparse members (issue 12) ----------------------------------------------------------

SPARSE_FORMATS = {
    "gnu": ["--format=gnu"],
    "pax-0.0": ["--format=pax", "--sparse-version=0.0"],
    "pax-0.1": ["--format=pax", "--sparse-version=0.1"],
    "pax-1.0": ["--format=pax", "--sparse-version=1.0"],
}
MiB = 1 << 20


def _sparse_files(where) -> dict[str, bytes]:
    """Sparse files as truncate and dd make them (data runs between holes, a file that is all
    hole, a trailing hole), returned as their full contents to compare with."""
    where.mkdir()
    files = {
        "var/log/lastlog": [(0, b"head"), (3 * MiB + 5, b"middle"), (9 * MiB - 4, b"tail")],
        "allhole": [],
        "trailing-hole": [(10, b"x" * 5000)],
    }
    sizes = {"var/log/lastlog": 9 * MiB, "allhole": 3 * MiB, "trailing-hole": 6 * MiB}
    expected = {}
    for name, runs in files.items():
        path = where / name
        path.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["truncate", "-s", str(sizes[name]), str(path)], check=True)
        content = bytearray(sizes[name])
        with open(path, "r+b") as f:
            for offset, data in runs:
                f.seek(offset)
                f.write(data)
                content[offset:offset + len(data)] = data
        expected[name] = bytes(content)
    return expected


@pytest.mark.parametrize("fmt", sorted(SPARSE_FORMATS))
@pytest.mark.parametrize("how", ["rootfs", "layer"])
def test_gnu_sparse_members(guard, tmp_path, fmt, how):
    """What ``tar --sparse`` writes (old GNU type S, PAX sparse 0.0, 0.1, 1.0) imports, as a
    rootfs and as an image layer, and checks out with exact content and size."""
    expected = _sparse_files(tmp_path / "src")
    tar = tmp_path / "sparse.tar"
    subprocess.run(["tar", "--sparse", *SPARSE_FORMATS[fmt], "-C", str(tmp_path / "src"), "-cf", str(tar), *sorted(expected)], check=True)
    with tarfile.open(tar) as t:
        assert all(m.sparse is not None for m in t if m.isfile() or m.type == tarfile.GNUTYPE_SPARSE), "tar wrote no sparse members"
    if how == "rootfs":
        co = guard.must_succeed(str(tar), "-t", "sparse/x:1", tag="sparse/x:1")
    else:
        co = guard.must_succeed(guard.save(A.docker_archive([tar.read_bytes()], repo_tags=["sparse/x:1"]), "sparse-image.tar"), tag="sparse/x:1")
    for name, content in expected.items():
        path = os.path.join(co, name)
        assert os.path.getsize(path) == len(content), name
        with open(path, "rb") as f:
            assert hashlib.sha256(f.read()).digest() == hashlib.sha256(content).digest(), f"{name}: content differs"
        print(f"{name}: {os.stat(path).st_blocks * 512} bytes allocated for {len(content)}")


def _pax_sparse(realsize: int, runs: list[tuple[int, int]], stored: bytes, **extra: str) -> A.Entry:
    """A PAX 0.1 sparse member written by hand: its map can lie, which GNU tar's cannot."""
    pax = {"GNU.sparse.size": str(realsize), "GNU.sparse.numblocks": str(len(runs)),
           "GNU.sparse.map": ",".join(f"{o},{n}" for o, n in runs), "GNU.sparse.name": "sparse"}
    pax.update(extra)
    return A.raw("GNUSparseFile.0/sparse", data=stored, pax=pax)


HOSTILE_SPARSE = {
    "runs-out-of-order": (_pax_sparse(100, [(50, 10), (0, 10)], b"a" * 20), "sparse map out of order"),
    "overlapping-runs": (_pax_sparse(100, [(0, 10), (5, 10)], b"a" * 20), "sparse map out of order"),
    "run-past-the-size": (_pax_sparse(100, [(95, 10)], b"a" * 10), "past its size"),
    "more-data-than-stored": (_pax_sparse(1 << 20, [(0, 4096), (8192, 4096)], b"a" * 512), "claims more data"),
    "map-not-numbers": (_pax_sparse(100, [(0, 10)], b"a" * 10, **{"GNU.sparse.map": "0,ten"}), "corrupt tar header"),
    "realsize-not-a-number": (_pax_sparse(100, [(0, 10)], b"a" * 10, **{"GNU.sparse.size": "lots"}), "corrupt tar header"),
    "terabyte-of-holes": (_pax_sparse(1 << 40, [(0, 10)], b"a" * 10), "more than"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_SPARSE))
def test_sparse_maps_that_lie(guard, case):
    """A sparse map is checked before any content is read: runs must be in order, inside the
    file and backed by the archive's bytes, and holes count against --max-bytes (a 1 TB file of
    holes in a few KB of archive is a bomb)."""
    entry, message = HOSTILE_SPARSE[case]
    err = guard.must_fail(guard.rootfs(f"sparse-{case}", [entry]), "-t", "sparse/bad:1")
    assert message in err, err


# -- a full disk (issue 12) ------------------------------------------------------------------


@pytest.fixture
def small_root(tmp_path):
    """An lg root on a 20 MiB tmpfs of its own, holding one small image; unmounted afterwards."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=20m,mode=0700", "tmpfs", str(mnt)], check=True)
    try:
        lg = Lg(str(mnt / "root"))
        lg("import", A.docker_archive(A.three_layers(), repo_tags=["base:1"]).write_tar(tmp_path / "base.tar"))
        yield lg
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


def _root_files(root: str) -> list[str]:
    return [p for p in _files_below(root) if not p.startswith("run")]


@pytest.mark.root
@pytest.mark.parametrize("how", ["layer", "gzip-rootfs", "stdin"])
def test_full_disk_during_import(small_root, tmp_path, how):
    """ENOSPC while writing the pack (a 30 MB incompressible layer), the decompressed spool of a
    gzip rootfs or the spool of stdin: one line that says the disk is full and names what was being
    written, and nothing half-written stays (no temporary pack or spool, refs and files as before)."""
    lg, data = small_root, os.urandom(30 << 20)
    before = (_root_files(lg.root), _git(os.path.join(lg.root, "store.git"), "for-each-ref"))
    layer = A.layer_tar([A.file("big", data)])
    if how == "layer":
        path, args, where = A.docker_archive([layer], repo_tags=["big:1"]).write_tar(tmp_path / "big.tar"), [], "store.git"
    else:
        path = tmp_path / "big.tar.gz"
        path.write_bytes(gzip.compress(layer, compresslevel=1))
        args, where = ["-t", "big:1"], os.path.join("tmp", "import-")
    if how == "stdin":
        with open(tmp_path / "big.tar", "wb") as f:
            f.write(layer)
        with open(tmp_path / "big.tar", "rb") as f:
            proc = lg("import", "-", *args, check=False, stdin=f)
        assert proc.returncode != 0
        err = proc.stderr.decode()
        assert len(err.strip().splitlines()) == 1, err
    else:
        err = lg.fails("import", str(path), *args)
    assert "no space left on device while writing" in err and os.path.join(lg.root, where) in err, err
    assert "internal error" not in err and "not a readable tar" not in err, err
    assert (_root_files(lg.root), _git(os.path.join(lg.root, "store.git"), "for-each-ref")) == before
    lg("fsck")


def test_history_texts_that_are_not_strings(guard):
    """created_by and comment are strings in Docker's and OCI's schemas: anything else (a list,
    a number, a map nested hundreds deep) is passed over for the next, never printed as a repr."""
    hist = [A.history("x"), A.history("x"), A.history("x")]
    hist[0]["created_by"] = ["RUN", "a"]
    hist[0]["comment"] = "from the comment"
    hist[1]["created_by"] = 7
    hist[2]["created_by"] = json.loads("[" * 500 + "]" * 500)
    guard.must_succeed(guard.save(A.docker_archive(A.three_layers(), hist=hist, repo_tags=["hostile/texts:1"]), "texts.tar"), tag="hostile/texts:1")
    messages = _git(guard.store, "log", "--format=%s", "refs/heads/hostile/texts/1").splitlines()[::-1]
    assert messages == ["from the comment", "imported layer", "imported layer"], messages


@pytest.mark.root
@pytest.mark.parametrize("stop, ok", [("SIGFOO", False), ("SIG_DFL", False), ("99999", False), ("Signals", False),
                                      ("SIGRTMIN+3", True), ("QUIT", True), ("15", True)])
def test_stop_signal_is_checked_when_a_container_is_created(lg, tmp_path, stop, ok):
    """StopSignal is judged where Docker judges it, at create: a name that is no signal is one line
    then, not an "unknown signal" from lg stop on a container that can no longer be stopped. Real
    names pass, systemd's SIGRTMIN+3 too."""
    path = A.docker_archive(A.three_layers(), runtime={"Cmd": ["/bin/sh"], "StopSignal": stop}, repo_tags=["stop:1"]).write_tar(tmp_path / "s.tar")
    lg("import", path)
    if ok:
        lg("create", "--network", "none", "stop:1")
        assert len(lg.out("ps", "-aq").split()) == 1
    else:
        err = lg.fails("create", "--network", "none", "stop:1")
        assert f"the image's StopSignal {stop!r} is not a signal" in err, err
        assert lg.out("ps", "-aq").strip() == ""


def test_xattr_the_checkout_filesystem_cannot_hold(guard, tmp_path):
    """A 10 KB xattr is legal for Linux but more than ext4 keeps per inode (one 4 KiB block):
    checkout says so in one line naming the entry and the xattr, not "No space left on device: 8"."""
    probe = tmp_path / "probe"
    probe.write_bytes(b"")
    try:
        os.setxattr(probe, "user.probe", b"x" * 10_000)
        pytest.skip("this filesystem holds 10 KB xattrs")
    except OSError:
        pass
    proc = guard.run(guard.docker("bigxattr", [A.file("f", b"hi\n", xattrs={"user.big": b"x" * 10_000})]))
    assert proc.returncode == 0, proc.stderr
    err = guard.lg.fails("checkout", "hostile/bigxattr:1", str(guard.checkouts / "big"))
    assert "f: this filesystem cannot hold the image's 10000-byte xattr 'user.big'" in err, err



def test_xattr_value_the_kernel_refuses(guard):
    """Found by the fuzzer: a file capability the kernel does not take ("0") ended import in
    "internal error: Invalid argument" while the files went into the cache. The image is
    stored as it is; checking it out or running it says in one line what stops it."""
    proc = guard.run(guard.docker("badcap", [A.file("f", b"hi\n", xattrs={"security.capability": b"0"})]))
    assert proc.returncode == 0, proc.stderr
    err = guard.lg.fails("checkout", "hostile/badcap:1", str(guard.checkouts / "badcap"))
    assert "the kernel refuses the image's xattr 'security.capability'" in err, err
    err = guard.lg.fails("run", "--rm", "--network", "none", "hostile/badcap:1", "/f")
    assert "/f: the kernel refuses the image's xattr 'security.capability'" in err, err  # not the cache's name


@pytest.mark.parametrize("what, doc, message", [
    ("manifest", b"[1]", "is not an image manifest or index"),
    ("manifest", b'"x"', "is not an image manifest or index"),
    ("manifest", b"null", "is not an image manifest or index"),
    ("config", b"[1, 2]", "is not an image config"),
    ("config", b"5", "is not an image config"),
])
def test_oci_documents_that_are_not_objects(guard, what, doc, message):
    """Found by the fuzzer: an OCI manifest or config that is valid JSON but not an object, under
    an honest digest, ended in "internal error: AttributeError"."""
    err = guard.must_fail(guard.save(A.oci_layout(A.three_layers(), mutate=lambda files: A.oci_relink(files, what, doc)), "notobj.tar"))
    assert message in err, err


def test_annotations_and_repo_tags_of_the_wrong_type(guard):
    """An index's annotations that are not a map name no image; RepoTags that is a string rather
    than a list tags nothing (it used to tag one image per character)."""
    def annotations(files):
        index = json.loads(files["index.json"])
        index["manifests"][0]["annotations"] = ["org.opencontainers.image.ref.name", "x"]
        files["index.json"] = json.dumps(index).encode()
    guard.must_succeed(guard.save(A.oci_layout(A.three_layers(), mutate=annotations), "ann.tar"), "-t", "ok/ann:1", tag="ok/ann:1")
    def repo_tags(files):
        manifest = json.loads(files["manifest.json"])
        manifest[0]["RepoTags"] = "abc"
        files["manifest.json"] = json.dumps(manifest).encode()
    refs_before = _git(guard.store, "for-each-ref", "--format=%(refname)")
    proc = guard.run(guard.save(A.docker_archive(A.three_layers(), mutate=repo_tags), "tags.tar"))
    assert proc.returncode == 0, proc.stderr
    assert _git(guard.store, "for-each-ref", "--format=%(refname)") == refs_before


def test_empty_symlink_target(guard):
    """No filesystem holds a symlink to "": the layer is refused as Docker refuses it, naming the entry."""
    err = guard.must_fail(guard.rootfs("emptylink", [A.symlink("l", "")]), "-t", "emptylink")
    assert "entry 'l': its symlink target is empty" in err, err


@pytest.mark.parametrize("length", [4096, 10 << 20])
def test_symlink_target_longer_than_linux_allows(guard, length):
    """A tar may hold a symlink whose target no Linux filesystem can: it was stored, and every
    checkout then failed with the whole target printed. Refused at import, in one short line."""
    err = guard.must_fail(guard.rootfs("longlink", [A.symlink("l", "a" * length)]), "-t", "longlink")
    # 10 MiB is refused sooner, as a pax header over the bound on extended headers
    said = "its symlink target is 4096 bytes; Linux allows 4095" if length == 4096 else "more than 1048576 bytes"
    assert said in err and len(err) < 400, err[:400]
