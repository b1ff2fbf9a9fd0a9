"""No other user of the host reads an image's files through a layergit root.

The review's finding: the root and store.git were 0755, so any local user read every
image's files (/etc/shadow, keys baked into a layer) with plain git, and the same
files again, unpacked, in the cache and in containers' layers. The attack is played
here by uid 65534 against a root under a directory everyone may walk into (as
/var/lib is): through the store (git and the pack files), the materialised cache and
a container's writable layer, on a root made now and on one an older lg left
world-readable, which the next command tightens with one notice.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile

import pytest

from .conftest import Lg, cleanup_root
from .trees import NOBODY, write

pytestmark = pytest.mark.root
KEY = b"API_KEY=sk-live-0123456789\n"
NOTE = b"written by the container\n"
TOP = ("store.git", "cache", "tmp", "containers", "networks", "volumes", "run")


@pytest.fixture
def lg_shared():
    """lg on a root inside a 0755 directory of root's: every user can walk up to it."""
    parent = tempfile.mkdtemp(prefix="lg-private-", dir="/tmp")
    os.chmod(parent, 0o755)
    runner = Lg(os.path.join(parent, "root"))
    try:
        yield runner
    finally:
        cleanup_root(runner)
        shutil.rmtree(parent)


@pytest.fixture
def targets(lg_shared, busybox_copy) -> dict[str, str]:
    """An image with a world-readable key file, materialised, and an exited container
    that wrote a file into its layer: the paths the attack goes for."""
    lg = lg_shared
    write(os.path.join(busybox_copy, "etc", "api-key"), KEY, mode=0o644)
    lg("commit", busybox_copy, "-t", "secret")
    lg("run", "--name", "keeper", "secret", "sh", "-c", f"printf '{NOTE.decode().strip()}\\n' > /note")
    (tree,) = [n for n in os.listdir(os.path.join(lg.root, "cache", "rootfs")) if not n.startswith(".")]
    (cid,) = [n for n in os.listdir(os.path.join(lg.root, "containers")) if len(n) == 64]
    return {
        "rootfs": os.path.join(lg.root, "cache", "rootfs", tree),
        "container": os.path.join(lg.root, "containers", cid),
        "pack": os.path.join(lg.root, "store.git", "objects", "pack"),
    }


def as_nobody(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), user=NOBODY, group=NOBODY, extra_groups=[], capture_output=True,
                          cwd="/", env={"PATH": os.environ["PATH"], "HOME": "/nonexistent"})


def stolen(lg: Lg, paths: dict[str, str]) -> dict[str, bool]:
    """What uid 65534 got, attack by attack: True where it listed or read the image's files."""
    def read(*args: str, want: bytes) -> bool:
        proc = as_nobody(*args)
        return proc.returncode == 0 and want in proc.stdout

    def lists(path: str) -> bool:
        return as_nobody("ls", path).returncode == 0

    store = os.path.join(lg.root, "store.git")
    git = ["git", "-c", "safe.directory=*", "--git-dir", store]
    return {
        "git cat-file": read(*git, "cat-file", "-p", "refs/heads/secret/latest:rootfs/etc/api-key", want=KEY),
        "list packs": lists(paths["pack"]),
        "read a pack": as_nobody("sh", "-c", f"cat {paths['pack']}/*.pack").returncode == 0,
        "list the cached rootfs": lists(os.path.join(paths["rootfs"], "etc")),
        "read the cached rootfs": read("cat", os.path.join(paths["rootfs"], "etc", "api-key"), want=KEY),
        "list the container": lists(os.path.join(paths["container"], "upper")),
        "read the container's layer": read("cat", os.path.join(paths["container"], "upper", "note"), want=NOTE),
    }


def mode_of(path: str) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_new_root_is_private(lg_shared, targets):
    """Root's root is 0711 and everything directly under it 0700: every attack fails,
    and no command had anything to say about it."""
    assert mode_of(lg_shared.root) == 0o711
    assert {name: mode_of(os.path.join(lg_shared.root, name)) for name in TOP} == dict.fromkeys(TOP, 0o700)
    assert not any(stolen(lg_shared, targets).values()), stolen(lg_shared, targets)
    assert lg_shared("images").stderr == b""


def test_an_old_world_readable_root_is_tightened_once_with_a_notice(lg_shared, targets):
    """A root as a umask of 022 leaves it: the attack works (the finding), the next lg
    command tightens it saying so in one line, and then every attack fails; the
    notice is not repeated, and containers still run as another user."""
    lg = lg_shared
    for path in (lg.root, *(os.path.join(lg.root, n) for n in TOP), targets["rootfs"], targets["container"],
                 os.path.dirname(targets["rootfs"])):
        os.chmod(path, 0o755)
    before = stolen(lg, targets)
    assert all(before.values()), before

    notice = lg("images").stderr.decode()
    assert notice.startswith(f"lg: made {lg.root} private (the root 0755 to 0711, store.git 0755 to 0700")
    assert len(notice.splitlines()) == 1 and "other users could read images" in notice
    after = stolen(lg, targets)
    assert not any(after.values()), after
    assert mode_of(lg.root) == 0o711
    assert all(mode_of(os.path.join(lg.root, name)) == 0o700 for name in TOP)

    assert lg("images").stderr == b""
    out = lg.out("run", "--rm", "-u", "1000:1000", "secret", "sh", "-c", "echo ok > /tmp/f && cat /tmp/f /etc/api-key")
    assert out.encode() == b"ok\n" + KEY


def test_only_wider_bits_are_taken_away(lg_shared):
    """A root an admin made tighter (0750 with a group, 0700) is left as tight as it was:
    tightening never opens a way in."""
    os.makedirs(lg_shared.root, mode=0o750)
    os.chmod(lg_shared.root, 0o750)
    os.mkdir(os.path.join(lg_shared.root, "cache"), 0o700)
    notice = lg_shared("images").stderr.decode()
    assert "the root 0750 to 0710" in notice and "cache" not in notice
    assert mode_of(lg_shared.root) == 0o710


def test_a_root_that_cannot_be_used_is_one_line(lg):
    """A root whose store.git is a file, or one under /proc, is refused in one line."""
    os.makedirs(lg.root)
    with open(os.path.join(lg.root, "store.git"), "w"):
        pass
    assert f"cannot use {lg.root} as a layergit root: Not a directory" in lg.fails("images", code=1)
    assert "cannot use /proc/self/x as a layergit root" in lg.fails("--root", "/proc/self/x", "images", code=1)


def test_a_planted_cache_link_and_another_users_root_are_refused(lg_shared):
    """The review's attack: a world-writable root holding ``cache -> T`` made T 0700 and would
    have had lg write its rootfs cache into T; a root nobody owns was adopted as root's."""
    os.makedirs(lg_shared.root)
    os.chmod(lg_shared.root, 0o777)
    victim = tempfile.mkdtemp(prefix="lg-victim-", dir="/tmp")
    try:
        os.chmod(victim, 0o755)
        os.symlink(victim, os.path.join(lg_shared.root, "cache"))
        err = lg_shared.fails("images", code=1)
        assert f"cannot use {lg_shared.root} as a layergit root: its cache is a symbolic link" in err
        assert mode_of(victim) == 0o755 and os.listdir(victim) == []
    finally:
        shutil.rmtree(victim)
    os.unlink(os.path.join(lg_shared.root, "cache"))
    os.chown(lg_shared.root, NOBODY, NOBODY)
    err = lg_shared.fails("images", code=1)
    assert f"{lg_shared.root} is owned by uid {NOBODY}, not by uid 0 who runs lg" in err
    assert len(err.strip().splitlines()) == 1 and os.listdir(lg_shared.root) == []
    assert mode_of(lg_shared.root) == 0o777
