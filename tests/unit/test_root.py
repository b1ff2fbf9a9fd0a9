"""The root's layout: every path under it comes from Root, as docs/format.md lists them."""

import os
import shutil
import stat
import tempfile

import pytest

from layergit import root
from layergit.errors import LgError
from layergit.root import Root


def test_layout_matches_format_md():
    r = Root("/r")
    assert r.store == "/r/store.git"
    assert r.gc_lock == "/r/gc.lock"
    assert r.cache_dir("rootfs") == "/r/cache/rootfs"
    assert r.tmp == "/r/tmp"
    assert r.containers == "/r/containers"
    assert r.container("a" * 64) == "/r/containers/" + "a" * 64
    assert r.container_names == "/r/containers/by-name"
    assert r.container_lock("x") == "/r/containers/locks/x"
    assert r.container_owners == "/r/containers/owners"
    assert r.container_freezers == "/r/containers/freezers"
    assert r.networks == "/r/networks"
    assert r.volumes == "/r/volumes"
    assert (r.run, r.monitor_sock, r.monitor_lock, r.monitor_log) == (
        "/r/run", "/r/run/monitor.sock", "/r/run/monitor.lock", "/r/run/monitor.log")


def test_resolve_is_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert Root.resolve("rel").path == str(tmp_path / "rel")


def _as_nobody(step) -> None:
    """Run ``step`` in a child as uid 65534 (so it meets a root of its own, or root's); the
    child's assertion failures fail the test."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.setgroups([])
            os.setresgid(65534, 65534, 65534)
            os.setresuid(65534, 65534, 65534)
            step()
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


@pytest.fixture
def shared_dir():
    """A directory every user may walk into (as /var/lib is): tmp_path is root's alone."""
    path = tempfile.mkdtemp(prefix="lg-root-", dir="/tmp")
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path)


@pytest.mark.skipif(os.geteuid() != 0, reason="plays a second user")
def test_a_users_root_is_private_to_them(shared_dir, monkeypatch):
    """A root an ordinary user owns is 0700, not root's 0711, and the one notice names what changed."""
    told: list[str] = []
    monkeypatch.setattr(root, "on_notice", told.append)
    path = os.path.join(shared_dir, "r")
    os.mkdir(path)
    os.chmod(path, 0o755)
    os.chown(path, 65534, 65534)

    def twice():
        Root(path).secure()
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o700
        assert told == [f"made {path} private (the root 0755 to 0700): other users could read images through it"]
        assert sorted(os.listdir(path)) == ["cache", "containers", "networks", "run", "tmp", "volumes"]
        Root(path).secure()
        assert len(told) == 1

    _as_nobody(twice)


@pytest.mark.skipif(os.geteuid() != 0, reason="plays a second user")
def test_a_root_another_user_owns_is_refused(shared_dir):
    """Root adopting nobody's directory would let nobody widen it again or swap its entries
    for links later; nobody adopting root's is refused the same way. Nothing is changed."""
    mine = os.path.join(shared_dir, "nobodys")
    os.mkdir(mine, 0o755)
    os.chown(mine, 65534, 65534)
    with pytest.raises(LgError, match=rf"^{mine} is owned by uid 65534, not by uid 0 who runs lg:"):
        Root(mine).secure()
    assert os.listdir(mine) == [] and stat.S_IMODE(os.stat(mine).st_mode) == 0o755
    roots = os.path.join(shared_dir, "roots")
    os.mkdir(roots, 0o755)

    def refused():
        with pytest.raises(LgError, match=rf"^{roots} is owned by uid 0, not by uid 65534 who runs lg:"):
            Root(roots).secure()

    _as_nobody(refused)
    assert os.listdir(roots) == []


@pytest.mark.parametrize("name", ["store.git", "cache", "tmp", "containers", "networks", "volumes", "run", "gc.lock"])
def test_an_entry_that_is_a_symlink_is_refused_and_its_target_untouched(tmp_path, name):
    """Whoever could write to a root once plants NAME -> a directory of the victim's: lg must
    neither chmod it (by path, a chmod follows) nor fill it."""
    target = tmp_path / "victim"
    target.mkdir()
    os.chmod(target, 0o755)
    path = tmp_path / "r"
    path.mkdir()
    os.symlink(target, path / name)
    with pytest.raises(LgError, match=rf"^cannot use {path} as a layergit root: its {name} is a symbolic link"):
        Root(str(path)).secure()
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o755 and os.listdir(target) == []


@pytest.mark.parametrize(("name", "make", "why"), [
    ("gc.lock", os.mkdir, "its gc.lock is not a file"),
    ("cache", lambda p: open(p, "w").close(), "Not a directory"),
])
def test_an_entry_of_the_wrong_type_is_refused(tmp_path, name, make, why):
    make(str(tmp_path / name))
    with pytest.raises(LgError, match=f"^cannot use {tmp_path} as a layergit root: {why}"):
        Root(str(tmp_path)).secure()
