"""The root's layout: every path under it comes from Root, as docs/format.md lists them."""

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
