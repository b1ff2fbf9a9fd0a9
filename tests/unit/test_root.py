"""The root's layout: every path under it comes from Root, as docs/format.md lists them."""

import os
import stat

import pytest

from layergit import root
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
    assert (r.run, r.monitor_sock, r.monitor_lock, r.monitor_log) == (
        "/r/run", "/r/run/monitor.sock", "/r/run/monitor.lock", "/r/run/monitor.log")


def test_resolve_is_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert Root.resolve("rel").path == str(tmp_path / "rel")


@pytest.mark.skipif(os.geteuid() != 0, reason="gives the root to another user")
def test_a_users_root_is_private_to_them(tmp_path, monkeypatch):
    """A root an ordinary user owns is 0700, not root's 0711, and the one notice names what changed."""
    told: list[str] = []
    monkeypatch.setattr(root, "on_notice", told.append)
    path = tmp_path / "r"
    path.mkdir(mode=0o755)
    os.chmod(path, 0o755)
    os.chown(path, 65534, 65534)
    Root(str(path)).secure()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o700
    assert told == [f"made {path} private (the root 0755 to 0700): other users could read images through it"]
    assert sorted(os.listdir(path)) == ["cache", "containers", "networks", "run", "tmp"]
    Root(str(path)).secure()
    assert len(told) == 1
