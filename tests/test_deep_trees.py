"""Trees nested deeper than Python recurses, through every path lg has (issue 12).

A container can make a directory thousands of levels deep in seconds (each level is
one mkdir), and an archive can list one; every walk lg does (capture, checkout, the
materialised cache, diff, removal, tar read and write, fsck) must go through 1,200
levels, more than Python's recursion limit and more than PATH_MAX allows as a path,
with a bounded number of open fds: every command here runs with RLIMIT_NOFILE at 64,
where holding one fd per level would fail. Deeper than git reads (core.maxTreeDepth:
2,047 levels below an image's /) is refused on commit and import with one line,
leaving no ref and no pack behind; a container's layer that deep is still removed.

The trees are made with dirfd-relative mkdir (a path that deep cannot be named), on
tmpfs where there is one, and removed with layergit.removal (shutil.rmtree recurses).
"""

from __future__ import annotations

import io
import json
import os
import resource
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator

import pytest

from layergit.removal import remove_tree

from . import runtime_helpers
from .conftest import Lg, cleanup_root
from .runtime_helpers import IMAGE, RuntimeLg, assert_nothing_left, runtime_template, snapshot  # noqa: F401

DEEP = 1200  # over sys.getrecursionlimit() (1,000), under git's 2,047
TOO_DEEP = 5000
FDS = 64  # RLIMIT_NOFILE for lg in these tests: far fewer fds than levels


def _few_fds() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (FDS, FDS))


def lg_few(lg: Lg, *args, **kw):
    """lg with RLIMIT_NOFILE at FDS."""
    return lg(*args, preexec_fn=_few_fds, **kw)


def make_chain(path: str, depth: int, content: bytes = b"bottom\n") -> None:
    """``path``/d/d/.../d/f: ``depth`` directories, then a file; a file beside every
    hundredth directory too, so each level is not only a directory."""
    os.mkdir(path)
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for level in range(1, depth + 1):
            os.mkdir("d", dir_fd=fd)
            sub = os.open("d", os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = sub
            if level % 100 == 0:
                _write(fd, "level", b"%d\n" % level)
        _write(fd, "f", content)
    finally:
        os.close(fd)


def _write(dirfd: int, name: str, data: bytes) -> None:
    with open(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644, dir_fd=dirfd), "wb") as f:
        f.write(data)


def read_chain(path: str) -> tuple[int, bytes]:
    """(levels of d below ``path``, content of the f at the bottom)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    depth = 0
    try:
        while "d" in os.listdir(fd):
            sub = os.open("d", os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = sub
            depth += 1
        with open(os.open("f", os.O_RDONLY | os.O_NOFOLLOW, dir_fd=fd), "rb") as f:
            return depth, f.read()
    finally:
        os.close(fd)


def chain_path(depth: int) -> str:
    return "/" + "/".join(["d"] * depth) + "/f"


def show(lg: Lg, rev: str) -> dict:
    return json.loads(lg.out("show", rev, "--json"))


def pack_files(lg: Lg) -> list[str]:
    return sorted(os.listdir(os.path.join(lg.root, "store.git", "objects", "pack")))


@pytest.fixture
def scratch(tmp_path):
    """Where this test's root and trees go: on tmpfs when there is one (on this disk
    every mkdir and unlink of thousands costs I/O), removed with layergit.removal."""
    path = tempfile.mkdtemp(prefix="lg-deep-", dir="/dev/shm" if os.path.isdir("/dev/shm") else tmp_path)
    yield path
    remove_tree(path)


@pytest.fixture
def deep(scratch) -> Iterator[Lg]:
    """lg with its own root in ``scratch``."""
    lg = Lg(os.path.join(scratch, "root"))
    yield lg
    cleanup_root(lg)


@pytest.fixture
def deep_rt(scratch, runtime_template) -> Iterator[RuntimeLg]:
    """As runtime_helpers.rt (a root holding bb:latest, materialised), in ``scratch``."""
    root = os.path.join(scratch, "root")
    subprocess.run(["cp", "-a", runtime_template, root], check=True)
    r = RuntimeLg(root)
    yield r
    runtime_helpers.cleanup_root(r)


def test_a_1200_level_directory_goes_through_every_path(deep, scratch):
    lg = deep
    src = os.path.join(scratch, "src")
    make_chain(src, DEEP)
    lg_few(lg, "commit", src, "-t", "deep:1")
    remove_tree(src)
    make_chain(src, DEEP, b"changed\n")
    lg_few(lg, "commit", src, "-t", "deep:2")

    lg_few(lg, "checkout", "deep:2", os.path.join(scratch, "co"))
    assert read_chain(os.path.join(scratch, "co")) == (DEEP, b"changed\n")
    lg_few(lg, "checkout", "-H", "deep:1", os.path.join(scratch, "co-H"))  # through the materialised cache
    assert read_chain(os.path.join(scratch, "co-H")) == (DEEP, b"bottom\n")

    changes = lg_few(lg, "diff", "--name-status", "deep:1", "deep:2").stdout.decode().splitlines()
    assert f"M\t{chain_path(DEEP)}" in changes
    added = lg_few(lg, "diff", "--name-status", "deep:1").stdout.decode().splitlines()
    assert len(added) == DEEP + 1 + DEEP // 100 and f"A\t{chain_path(DEEP)}" in added

    for fmt in ("rootfs", "docker-archive"):
        archive = os.path.join(scratch, f"deep.{fmt}.tar")
        lg_few(lg, "export", "deep:2", "--format", fmt, "-o", archive)
        lg_few(lg, "import", archive, "-t", f"back:{fmt}")
        assert show(lg, f"back:{fmt}")["rootfs"] == show(lg, "deep:2")["rootfs"]  # metadata-exact round trip

    assert "ok" in lg_few(lg, "fsck").stdout.decode()
    lg("rmi", "deep:1")
    lg_few(lg, "gc")
    assert "ok" in lg_few(lg, "fsck").stdout.decode()
    assert read_chain(os.path.join(scratch, "co")) == (DEEP, b"changed\n")


@pytest.mark.root
def test_a_container_makes_1200_levels_then_is_diffed_committed_and_removed(deep_rt, scratch):
    """The attack from inside: a container builds the tree (cd -P, as busybox's logical
    cd gives up at PATH_MAX) and lg diff, commit, run and rm must still work."""
    rt = deep_rt
    levels = "/".join(["d"] * 400)
    script = 'for i in 1 2 3; do mkdir -p "$1" && cd -P "$1" || exit 1; done; echo bottom > f'
    before = snapshot(rt)
    rt("run", "--name", "deep", IMAGE, "sh", "-c", script, "sh", levels, timeout=120)
    changes = lg_few(rt, "diff", "--name-status", "deep").stdout.decode().splitlines()
    assert len(changes) == DEEP + 1 and changes[-1] == f"A\t{chain_path(DEEP)}"
    lg_few(rt, "commit", "deep", "-t", "deep:c")
    read = f"cd {levels} && cd {levels} && cat {levels}/f"
    assert rt.out("run", "--rm", "deep:c", "sh", "-c", read, timeout=120) == "bottom\n"  # materialised, mounted
    lg_few(rt, "checkout", "deep:c", os.path.join(scratch, "co"))
    assert read_chain(os.path.join(scratch, "co")) == (DEEP, b"bottom\n")
    lg_few(rt, "rm", "deep")
    assert_nothing_left(rt, before)


def test_5000_levels_are_refused_on_commit(deep, scratch):
    lg = deep
    make_chain(os.path.join(scratch, "small"), 3)
    lg("commit", os.path.join(scratch, "small"), "-t", "ok:1")  # a store that holds something already
    make_chain(os.path.join(scratch, "src"), TOO_DEEP)
    packs = pack_files(lg)
    err = lg_few(lg, "commit", os.path.join(scratch, "src"), "-t", "deep:1", check=False)
    assert err.returncode == 1
    line = err.stderr.decode()
    assert line.count("\n") == 1 and "is 2048 directories deep; git reads at most 2047" in line, line
    assert "deep" not in lg.out("images") and pack_files(lg) == packs


def test_5000_levels_are_refused_on_import(deep, scratch):
    """A tar that lists 5,000 nested directories (names of 10,000 bytes, in PAX headers)."""
    lg = deep
    archive = os.path.join(scratch, "deep.tar")
    with tarfile.open(archive, "w", format=tarfile.PAX_FORMAT) as tar:
        for level in range(1, TOO_DEEP + 1):
            info = tarfile.TarInfo("/".join(["d"] * level))
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        info = tarfile.TarInfo("/".join(["d"] * TOO_DEEP) + "/f")
        tar.addfile(info, io.BytesIO(b""))
    make_chain(os.path.join(scratch, "small"), 3)
    lg("commit", os.path.join(scratch, "small"), "-t", "ok:1")
    packs = pack_files(lg)
    err = lg.fails("import", archive, "-t", "deep:1", code=1)
    assert "is 2048 directories deep; git reads at most 2047" in err
    assert "deep" not in lg.out("images")
    assert pack_files(lg) == packs


@pytest.mark.root
def test_a_container_layer_5000_levels_deep_is_refused_and_removed(deep_rt):
    rt = deep_rt
    levels = "/".join(["d"] * 500)
    script = 'for i in 1 2 3 4 5 6 7 8 9 10; do mkdir -p "$1" && cd -P "$1" || exit 1; done; echo bottom > f'
    before = snapshot(rt)
    rt("run", "--name", "deep", IMAGE, "sh", "-c", script, "sh", levels, timeout=120)
    packs = pack_files(rt)
    err = rt.fails("commit", "deep", "-t", "deep:c", code=1, preexec_fn=_few_fds)
    assert "is 2048 directories deep" in err and "deep" not in rt.out("images")
    assert pack_files(rt) == packs
    lg_few(rt, "rm", "-f", "deep")
    assert_nothing_left(rt, before)


def test_a_walk_holds_few_fds_and_stops_where_the_tree_was_moved_under_it(scratch):
    """safeio.DirStack, the walks' fds: a 1,200-level walk holds WINDOW of them, and a
    directory whose fd was let go is reopened as '..' of its child only if it is still
    the same inode: a child moved elsewhere meanwhile (a racing process, a container)
    stops the walk instead of taking it into the new place."""
    from layergit.errors import LgError
    from layergit.fs.safeio import WINDOW, DirStack, open_dir

    make_chain(os.path.join(scratch, "t"), DEEP)
    os.mkdir(os.path.join(scratch, "elsewhere"))
    top = os.open(os.path.join(scratch, "t"), os.O_RDONLY | os.O_DIRECTORY)
    fds = len(os.listdir("/proc/self/fd"))
    try:
        with DirStack(top) as dirs:
            while len(dirs) < DEEP:
                dirs.push(open_dir(dirs.fd, b"d"), b"d")
                assert len(os.listdir("/proc/self/fd")) <= fds + WINDOW
            while len(dirs) > 3:
                dirs.pop()
            assert os.path.samestat(os.fstat(dirs.fd), os.stat(os.path.join(scratch, "t", "d", "d", "d")))
            for _ in range(WINDOW + 3):
                dirs.push(open_dir(dirs.fd, b"d"), b"d")
            # Levels 3 to 6 are let go now; level 4 moves from under level 3, so on the way
            # back up, '..' of level 4 is 'elsewhere', not level 3.
            os.rename(os.path.join(scratch, "t", "d", "d", "d", "d"), os.path.join(scratch, "elsewhere", "d"))
            with pytest.raises(LgError, match="was moved while being read"):
                while len(dirs) > 3:
                    dirs.pop()
        assert len(os.listdir("/proc/self/fd")) == fds  # every fd but the root's closed
    finally:
        os.close(top)
