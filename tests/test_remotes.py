"""lg remote, push, fetch and pull against real git peers on loopback.

Two lg roots (A pushes, B pulls) and a bare repository between them, reached as a
path, as ``file://`` and through ``git daemon`` (``git://``); what B gets must be
what A has: the same commit ids and tag names, a reflog entry for the move, a
checkout equal entry by entry, a clean ``lg fsck``. Hostile remotes are made with
plain git (objects lg would never write) and must change nothing in B.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import time

import pytest

from .conftest import Lg, cleanup_root
from .treecompare import assert_same_tree
from .trees import write as _write


def write(path, data: bytes = b"", mode: int | None = None) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    return _write(path, data, mode)


def bare(path) -> str:
    subprocess.run(["git", "init", "-q", "--bare", str(path)], check=True)
    return str(path)


def gitc(git_dir: str, *args: str, input: bytes | None = None) -> bytes:
    return subprocess.run(["git", "--git-dir", git_dir, *args], input=input, check=True,
                          capture_output=True).stdout


def object_count(git_dir: str) -> int:
    out = gitc(git_dir, "cat-file", "--batch-all-objects", "--batch-check")
    return len(out.splitlines())


def refs(git_dir: str) -> dict[str, str]:
    out = gitc(git_dir, "for-each-ref", "--format=%(refname) %(objectname)").decode()
    return dict(line.split() for line in out.splitlines())


def store_state(lg: Lg) -> tuple:
    """What a failed pull must leave exactly as it was: refs, packs, loose objects, tmp/."""
    store = os.path.join(lg.root, "store.git")
    files = sorted(os.path.relpath(os.path.join(d, f), store)
                   for d, _, fs in os.walk(os.path.join(store, "objects")) for f in fs)
    return refs(store), files, sorted(os.listdir(os.path.join(lg.root, "tmp")))


@pytest.fixture
def lg_b(tmp_path):
    runner = Lg(str(tmp_path / "lgroot-b"))
    yield runner
    cleanup_root(runner)


@pytest.fixture
def small_tree(tmp_path):
    src = tmp_path / "src"
    write(src / "etc" / "hostname", b"box\n")
    write(src / "bin" / "tool", b"#!/bin/sh\necho tool\n", mode=0o755)
    for i in range(10):
        write(src / "data" / f"f{i}", f"file {i}\n".encode() * 100)
    os.symlink("tool", src / "bin" / "link")
    return src


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen) -> None:
    for _ in range(100):
        if proc.poll() is not None:
            raise AssertionError(f"server exited: {proc.stderr.read().decode() if proc.stderr else ''}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on {port}")


@pytest.fixture
def git_daemon(tmp_path):
    """git daemon on 127.0.0.1 serving tmp_path/served, pushes enabled; stopped at the end."""
    base = tmp_path / "served"
    base.mkdir()
    port = free_port()
    proc = subprocess.Popen(["git", "daemon", "--reuseaddr", "--export-all", "--enable=receive-pack",
                             f"--base-path={base}", "--listen=127.0.0.1", f"--port={port}", str(base)],
                            stderr=subprocess.PIPE)
    try:
        wait_port(port, proc)
        yield base, f"git://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def checkout_same(a: Lg, b: Lg, rev: str, tmp_path) -> None:
    a("checkout", rev, str(tmp_path / "co-a"))
    b("checkout", rev, str(tmp_path / "co-b"))
    assert_same_tree(tmp_path / "co-a", tmp_path / "co-b")


@pytest.mark.parametrize("form", ["path", "file"])
def test_push_then_pull_through_a_bare_repository(lg, lg_b, small_tree, tmp_path, form):
    remote = bare(tmp_path / "remote.git")
    url = remote if form == "path" else f"file://{remote}"
    lg("commit", small_tree, "-t", "app:1", "-m", "first")
    write(small_tree / "etc" / "hostname", b"changed\n")
    lg("commit", small_tree, "-t", "app:1", "-m", "second")
    lg("remote", "add", "origin", url)
    assert f"origin\t{url}".encode() in gitc(os.path.join(lg.root, "store.git"), "remote", "-v")
    lg("push", "origin", "app:1")
    tip = refs(os.path.join(lg.root, "store.git"))["refs/heads/app/1"]
    assert refs(remote)["refs/heads/app/1"] == tip
    out = lg_b.out("pull", url, "app:1")
    assert "app:1" in out
    b_store = os.path.join(lg_b.root, "store.git")
    assert refs(b_store)["refs/heads/app/1"] == tip
    history = ["log", "--format=%H %an %ae %at %s", "refs/heads/app/1"]
    assert gitc(b_store, *history) == gitc(os.path.join(lg.root, "store.git"), *history)
    reflog = (tmp_path / "lgroot-b" / "store.git" / "logs" / "refs" / "heads" / "app" / "1").read_text()
    assert reflog.count("\n") == 1 and tip in reflog and "pull:" in reflog
    checkout_same(lg, lg_b, "app:1", tmp_path)
    (tmp_path / "older").mkdir()
    checkout_same(lg, lg_b, "app:1~1", tmp_path / "older")
    assert "ok" in lg_b.out("fsck") and "ok" in lg.out("fsck")


def test_second_push_sends_only_the_new_objects(lg, lg_b, small_tree, tmp_path):
    remote = bare(tmp_path / "remote.git")
    lg("commit", small_tree, "-t", "app:1")
    lg("remote", "add", "origin", remote)
    lg("push", "origin", "app:1")
    before = object_count(remote)
    write(small_tree / "data" / "f3", b"one file changed\n")
    lg("commit", small_tree, "-t", "app:1")
    out = lg.out("push", "origin", "app:1", "--json")
    # the commit, its tree, rootfs, data/ and their metadata blob, the new file: 6
    assert object_count(remote) - before == 6
    assert '"objects": 6' in out
    lg_b("pull", remote, "app:1")
    before_b = object_count(os.path.join(lg_b.root, "store.git"))
    write(small_tree / "data" / "f4", b"another\n")
    lg("commit", small_tree, "-t", "app:1")
    lg("push", "origin", "app:1")
    lg_b("pull", remote, "app:1")
    assert object_count(os.path.join(lg_b.root, "store.git")) - before_b == 6
    assert lg.out("push", "origin", "app:1").startswith("app:1\tup to date")


def test_divergence_is_refused_both_ways(lg, lg_b, small_tree, tmp_path):
    remote = bare(tmp_path / "remote.git")
    lg("commit", small_tree, "-t", "app:1")
    lg("push", remote, "app:1")
    lg_b("pull", remote, "app:1")
    write(small_tree / "a", b"from A\n")
    lg("commit", small_tree, "-t", "app:1")
    lg("push", remote, "app:1")
    write(small_tree / "a", b"from B\n")
    lg_b("commit", small_tree, "-t", "app:1")
    on_remote = refs(remote)
    err = lg_b.fails("push", remote, "app:1", code=1)
    assert "pull first" in err and refs(remote) == on_remote
    state = store_state(lg_b)
    err = lg_b.fails("pull", remote, "app:1", code=1)
    assert "diverged" in err and store_state(lg_b)[0] == state[0]
    lg_b("push", "--force", remote, "app:1")
    assert refs(remote)["refs/heads/app/1"] == refs(os.path.join(lg_b.root, "store.git"))["refs/heads/app/1"]


def test_fetch_names_remote_tracking_images(lg, lg_b, small_tree, tmp_path):
    remote = bare(tmp_path / "remote.git")
    lg("commit", small_tree, "-t", "app:1")
    lg("commit", small_tree, "-t", "other:2")
    lg("push", remote, "--all")
    lg_b("remote", "add", "origin", remote)
    lg_b("fetch", "origin")
    listed = lg_b.out("images", "--remote")
    assert "origin/app" in listed and "origin/other" in listed
    assert lg_b.out("images").count("\n") == 1  # the header: no local image yet
    tip = refs(remote)["refs/heads/app/1"]
    assert lg_b.out("inspect", "origin/app:1").count(tip) >= 1
    lg_b("tag", "origin/app:1", "app:1")
    assert refs(os.path.join(lg_b.root, "store.git"))["refs/heads/app/1"] == tip
    lg_b("tag", "app:1", "origin/app:1")  # a local image of the same name wins, with a warning
    assert b"local image is used" in lg_b("inspect", "origin/app:1").stderr
    lg_b("rmi", "origin/app:1")
    gitc(remote, "update-ref", "-d", "refs/heads/other/2")
    assert "origin/other:2\tgone" in lg_b.out("fetch", "origin")
    assert "1 remote-tracking" in lg_b.out("remote", "rm", "origin")
    assert lg_b.out("images", "--remote").count("\n") == 1


def test_git_daemon_push_and_pull(lg, lg_b, busybox_rootfs, git_daemon):
    base, url = git_daemon
    bare(base / "images.git")
    lg("commit", busybox_rootfs, "-t", "bb:1")
    lg("push", f"{url}/images.git", "bb:1")
    lg_b("pull", f"{url}/images.git", "bb:1")
    assert lg_b.out("run", "--rm", "--network", "none", "bb:1", "echo", "pulled").strip() == "pulled"


def test_remote_commands_and_bad_operands(lg, tmp_path):
    remote = bare(tmp_path / "remote.git")
    lg("remote", "add", "origin", remote)
    lg("remote", "add", "far", "git@example.org:team/images.git")
    assert '"name": "far"' in lg.out("remote", "ls", "--json")
    assert "already exists" in lg.fails("remote", "add", "origin", remote, code=1)
    assert "invalid remote name" in lg.fails("remote", "add", "Bad/Name", remote, code=2)
    assert "option" in lg.fails("remote", "add", "x", "--upload-pack=touch /tmp/pwned", code=2)
    assert "helpers" in lg.fails("remote", "add", "x", "ext::sh -c touch% /tmp/pwned", code=2)
    assert "not a configured remote" in lg.fails("push", "nosuch", "app:1", code=2)
    # any other first operand is a registry image (Docker's form): nothing listens on port 1
    assert "localhost:1" in lg.fails("pull", "localhost:1/debian:bookworm", code=1)
    assert "not supported" in lg.fails("fetch", "git@example.org:x.git", code=2)
    empty = tmp_path / "not-a-repo"
    empty.mkdir()
    assert "not a git repository" in lg.fails("pull", str(empty), "app:1", code=1)
    assert "127.0.0.1" in lg.fails("fetch", f"git://127.0.0.1:{free_port()}/x.git", code=1)
    assert "no image" in lg.fails("pull", remote, "app:1", code=1)
    lg("remote", "rm", "far")
    assert "no such remote" in lg.fails("remote", "rm", "far", code=1)
    assert "far" not in lg.out("remote", "ls")


# -- hostile remotes -----------------------------------------------------------------


def _commit(git_dir: str, tree: str, ref: str) -> str:
    env = dict(os.environ, GIT_AUTHOR_NAME="x", GIT_AUTHOR_EMAIL="x@x", GIT_COMMITTER_NAME="x",
               GIT_COMMITTER_EMAIL="x@x")
    oid = subprocess.run(["git", "--git-dir", git_dir, "commit-tree", tree, "-m", "hostile"], env=env,
                         check=True, capture_output=True).stdout.decode().strip()
    gitc(git_dir, "update-ref", ref, oid)
    return oid


def _blob(git_dir: str, data: bytes) -> str:
    return gitc(git_dir, "hash-object", "-w", "--stdin", input=data).decode().strip()


def _tree(git_dir: str, entries: list[tuple[str, str, bytes]]) -> str:
    """A tree written raw (``--literally``), so it may hold what git's own tools refuse."""
    body = b"".join(mode.encode() + b" " + name + b"\0" + bytes.fromhex(oid)
                    for mode, oid, name in sorted(entries, key=lambda e: e[2]))
    return subprocess.run(["git", "--git-dir", git_dir, "hash-object", "-w", "-t", "tree", "--literally",
                           "--stdin"], input=body, check=True, capture_output=True).stdout.decode().strip()


def _image(git_dir: str, rootfs_entries, ref: str, config: bytes = b"{}\n") -> str:
    rootfs = _tree(git_dir, rootfs_entries)
    top = _tree(git_dir, [("100644", _blob(git_dir, config), b"config.json"), ("40000", rootfs, b"rootfs")])
    return _commit(git_dir, top, ref)


META_ROOT = b"lgmeta 1\n.\td 0755 0:0 0.000000000\n"


@pytest.mark.parametrize("attack", ["dotdot", "lying-meta", "not-an-image", "bad-config"])
def test_hostile_remote_changes_nothing(lg, tmp_path, attack):
    remote = bare(tmp_path / "evil.git")
    f = _blob(remote, b"payload\n")
    if attack == "dotdot":
        meta = _blob(remote, META_ROOT)
        _image(remote, [("100644", meta, b".lgmeta"), ("100644", f, b"..")], "refs/heads/app/1")
    elif attack == "lying-meta":  # says "etc" is a directory; the tree holds a file there
        meta = _blob(remote, META_ROOT + b"etc\td 0755 0:0 0.000000000\n")
        _image(remote, [("100644", meta, b".lgmeta"), ("100644", f, b"etc")], "refs/heads/app/1")
    elif attack == "not-an-image":
        _commit(remote, _tree(remote, [("100644", f, b"README")]), "refs/heads/app/1")
    else:
        meta = _blob(remote, META_ROOT)
        _image(remote, [("100644", meta, b".lgmeta")], "refs/heads/app/1", config=b'{"Env": "PATH=/x"}')
    lg("images")  # the root exists
    state = store_state(lg)
    err = lg.fails("pull", remote, "app:1", code=1)
    expected = {"dotdot": "hasDotdot", "lying-meta": "disagrees with metadata",
                "not-an-image": "is not an image", "bad-config": "Env must be a list"}[attack]
    assert expected in err, err
    assert store_state(lg) == state


def test_refs_that_are_not_images_are_ignored_and_counted(lg, lg_b, small_tree, tmp_path):
    remote = bare(tmp_path / "mixed.git")
    lg("commit", small_tree, "-t", "app:1")
    lg("push", remote, "app:1")
    code = _commit(remote, _tree(remote, [("100644", _blob(remote, b"code\n"), b"main.c")]), "refs/heads/main")
    gitc(remote, "update-ref", "refs/tags/v1", code)
    gitc(remote, "update-ref", "refs/heads/Weird/UPPER", code)
    proc = lg_b("pull", remote, "app:1")
    assert b"3 ref(s) of the remote are not layergit images" in proc.stderr
    assert list(refs(os.path.join(lg_b.root, "store.git"))) == ["refs/heads/app/1"]


# -- lg serve --------------------------------------------------------------------------


@pytest.fixture
def lg_serve(lg):
    """Start ``lg serve`` on a free loopback port for ``lg``'s root; SIGTERM at the end,
    which must stop it cleanly (128 + 15) with no backend left behind."""
    started = []

    def start(*flags: str) -> str:
        port = free_port()
        proc = subprocess.Popen([lg.python, "-m", "cli", "serve", "--listen", f"127.0.0.1:{port}", *flags],
                                env=lg.env(), stderr=subprocess.PIPE)
        started.append(proc)
        wait_port(port, proc)
        return f"http://127.0.0.1:{port}"

    yield start
    for proc in started:
        proc.terminate()
        assert proc.wait(timeout=10) == 128 + 15
        log = proc.stderr.read().decode() if proc.stderr else ""
        assert "serving" in log and "GET /info/refs?service=git-upload-pack" in log, log


def test_serve_clone_and_pull(lg, lg_b, small_tree, tmp_path, lg_serve):
    lg("commit", small_tree, "-t", "app:1")
    lg("tag", "app:1", "app:2")
    url = lg_serve()
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", "--bare", url + "/", str(clone)], check=True, capture_output=True)
    assert sorted(refs(str(clone))) == ["refs/heads/app/1", "refs/heads/app/2"]
    lg_b("pull", url, "app:1")
    checkout_same(lg, lg_b, "app:1", tmp_path)
    err = subprocess.run(["git", "--git-dir", os.path.join(lg.root, "store.git"), "push", url + "/",
                          "app/1:refs/heads/app/3"], capture_output=True).stderr
    assert b"403" in err and "refs/heads/app/3" not in refs(os.path.join(lg.root, "store.git"))


def test_serve_accepts_checked_pushes(lg, lg_b, small_tree, tmp_path, lg_serve):
    lg("images")
    # No --max-pack: the store's layergit.maxPack bounds what a push may bring.
    gitc(os.path.join(lg.root, "store.git"), "config", "layergit.maxPack", "100k")
    url = lg_serve("--allow-push")
    write(small_tree / "noise", os.urandom(200_000))
    lg_b("commit", small_tree, "-t", "big:1")
    assert lg_b.fails("push", url, "big:1", code=1)
    os.unlink(small_tree / "noise")
    lg_b("commit", small_tree, "-t", "app:1")
    lg_b("push", url, "app:1")
    store = os.path.join(lg.root, "store.git")
    assert refs(store)["refs/heads/app/1"] == refs(os.path.join(lg_b.root, "store.git"))["refs/heads/app/1"]
    assert "push" in (tmp_path / "lgroot" / "store.git" / "logs" / "refs" / "heads" / "app" / "1").read_text()
    assert "ok" in lg.out("fsck")
    evil = bare(tmp_path / "evil.git")
    bad = _commit(evil, _tree(evil, [("100644", _blob(evil, b"x\n"), b"README")]), "refs/heads/app/2")
    proc = subprocess.run(["git", "--git-dir", evil, "push", url + "/", f"{bad}:refs/heads/app/2",
                           f"{bad}:refs/heads/main"], capture_output=True)
    assert proc.returncode != 0 and b"lg: refused:" in proc.stderr
    assert sorted(refs(store)) == ["refs/heads/app/1"]
    assert subprocess.run(["git", "--git-dir", store, "cat-file", "-e", bad]).returncode != 0  # not admitted


def test_max_pack_splits_a_long_history(lg, lg_b, small_tree, tmp_path):
    remote = bare(tmp_path / "remote.git")
    for i in range(3):
        write(small_tree / "data" / f"big{i}", os.urandom(600_000))
        lg("commit", small_tree, "-t", "app:1", "-m", f"version {i}")
    assert "invalid --max-pack" in lg.fails("push", remote, "app:1", "--max-pack", "lots", code=2)
    out = lg.out("push", remote, "app:1", "--max-pack", "700k")
    assert "in 3 pushes" in out
    assert refs(remote)["refs/heads/app/1"] == refs(os.path.join(lg.root, "store.git"))["refs/heads/app/1"]
    lg_b("pull", remote, "app:1")
    assert "ok" in lg_b.out("fsck")


def test_a_remote_that_sends_too_much_is_stopped(lg, lg_b, tmp_path):
    src = tmp_path / "big"
    write(src / "noise", os.urandom(4 << 20))
    remote = bare(tmp_path / "remote.git")
    lg("commit", src, "-t", "big:1")
    lg("push", remote, "big:1")
    lg_b("images")
    state = store_state(lg_b)
    err = lg_b.fails("pull", remote, "big:1", "--max-pack", "1m", code=1)
    assert "sent more than 1048576 bytes" in err
    assert store_state(lg_b) == state
    # Without --max-pack the store's layergit.maxPack (default 32 GiB) bounds a fetch.
    gitc(os.path.join(lg_b.root, "store.git"), "config", "layergit.maxPack", "2m")
    err = lg_b.fails("fetch", remote, "big:1", code=1)
    assert "sent more than 2097152 bytes" in err
    assert store_state(lg_b) == state
    lg_b("pull", remote, "big:1", "--max-pack", "8m")


def test_a_pack_that_lands_between_the_watchers_looks_is_measured_after(lg, tmp_path, monkeypatch):
    """The size watcher looks every 50 ms; a local remote's 4 MiB pack can land whole
    between two looks (the CI run that found this). The fetch measures the quarantine
    once git is done, so the bound holds whatever the watcher saw: here it sees nothing."""
    from layergit.transport import gitcli

    src = tmp_path / "big"
    write(src / "noise", os.urandom(4 << 20))
    remote = bare(tmp_path / "remote.git")
    lg("commit", src, "-t", "big:1")
    lg("push", remote, "big:1")
    quarantine = tmp_path / "quarantine.git"
    subprocess.run(["git", "init", "-q", "--bare", str(quarantine)], check=True)
    monkeypatch.setattr(gitcli, "_watch", lambda *_args: None)
    with pytest.raises(gitcli.RemoteError, match="sent more than 2097152 bytes"):
        gitcli.fetch(str(quarantine), remote, ["refs/heads/big/1"], max_bytes=2 << 20)
    gitcli.fetch(str(quarantine), remote, ["refs/heads/big/1"], max_bytes=8 << 20)


def pack_objects(git_dir: str) -> dict[str, set[str]]:
    """Each pack of a remote and the ids it holds. The remote keeps every push as the pack
    it came in (receive.unpackLimit=1), so a new pack is exactly what one push sent."""
    pack_dir = os.path.join(git_dir, "objects", "pack")
    packs = {}
    for name in os.listdir(pack_dir):
        if name.endswith(".idx"):
            with open(os.path.join(pack_dir, name), "rb") as f:
                out = subprocess.run(["git", "show-index"], stdin=f, capture_output=True, check=True).stdout
            packs[name] = {line.split()[1].decode() for line in out.splitlines()}
    return packs


def test_a_rebuild_on_the_same_base_sends_only_what_differs(lg, small_tree, tmp_path):
    """Two builds on one base, each copying a directory of the base (``cp -a``, as a RUN
    step does) and differing in one file: the second push sends none of the copy, which
    the remote already holds (git's default sparse walk sent such copies again: 6.2 MB
    where 55 kB do, for a minbase image rebuilt with --no-cache, bench scenario 21)."""
    remote = bare(tmp_path / "remote.git")
    gitc(remote, "config", "receive.unpackLimit", "1")
    lg("commit", small_tree, "-t", "base:1")
    (small_tree / "opt").mkdir()
    subprocess.run(["cp", "-a", str(small_tree / "data"), str(small_tree / "opt" / "copy")], check=True)
    write(small_tree / "stamp", b"build 1\n")
    lg("commit", small_tree, "-t", "app:1", "--parent", "base:1")
    write(small_tree / "stamp", b"build 2\n")
    lg("commit", small_tree, "-t", "app:2", "--parent", "base:1")
    lg("push", remote, "base:1", "app:1")
    before = pack_objects(remote)
    out = lg.out("push", remote, "app:2", "--json")
    (sent,) = [ids for name, ids in pack_objects(remote).items() if name not in before]
    store = os.path.join(lg.root, "store.git")
    copy = set(gitc(store, "rev-list", "--objects", "refs/heads/app/2:rootfs/opt/copy").decode().split())
    assert copy and not sent & copy
    stamp = gitc(store, "rev-parse", "refs/heads/app/2:rootfs/stamp").decode().strip()
    assert stamp in sent and len(sent) <= 8 and '"objects": 7' in out


def cache_refs(lg: Lg, prefix: str = "refs/layergit/") -> dict[str, str]:
    return {ref: oid for ref, oid in refs(os.path.join(lg.root, "store.git")).items()
            if ref.startswith(prefix) and "cache" in ref}


def ran(build_output: str) -> bool:
    """Whether the build's RUN step printed its line (plain progress: ``#2 1.526 ran``)."""
    return re.search(r"^#\d+ \d+\.\d{3} ran$", build_output, re.M) is not None


@pytest.mark.root
def test_build_cache_travels_only_to_and_from_a_trusted_remote(lg, lg_b, busybox_rootfs, tmp_path):
    """A CI root builds and pushes with --build-cache; a second root that trusts the
    remote pulls it and builds the same Dockerfile without running a step; without the
    trust nothing of the cache moves and the build runs."""
    ctx = tmp_path / "ctx"
    write(ctx / "Dockerfile", b"FROM base:1\nRUN date +%s%N > /stamp; echo ran\nENV A=1\n")
    lg("commit", busybox_rootfs, "-t", "base:1")
    lg("build", "--progress", "plain", "-t", "app:1", str(ctx))
    remote = bare(tmp_path / "ci.git")
    lg("remote", "add", "ci", remote)
    err = lg.fails("push", "ci", "base:1", "app:1", "--build-cache", code=2)
    assert "lg remote set-build-cache ci true" in err and refs(remote) == {}
    lg("remote", "set-build-cache", "ci", "true")
    out = lg.out("push", "ci", "base:1", "app:1", "--build-cache")
    assert "build cache: 2 entries" in out  # the RUN and the ENV step, both in app:1's history
    assert sorted(r.rsplit("/", 1)[1] for r in refs(remote) if "build-cache" in r) == \
        sorted(r.rsplit("/", 1)[1] for r in cache_refs(lg))

    # B does not trust the remote: --build-cache is refused, a plain pull moves no cache.
    lg_b("remote", "add", "ci", remote)
    assert "not trusted" in lg_b.fails("pull", "ci", "base:1", "app:1", "--build-cache", code=2)
    lg_b("pull", "ci", "base:1", "app:1")
    assert cache_refs(lg_b) == {}

    # Trusted: the cache lands in its own namespace and the same build runs nothing.
    lg_b("remote", "set-build-cache", "ci", "true")
    assert "trusted" in lg_b.out("remote", "ls")
    assert "build cache: 2 entries" in lg_b.out("fetch", "ci", "--build-cache")
    fetched = cache_refs(lg_b, "refs/layergit/remote-cache/ci/")
    assert {r.rsplit("/", 1)[1]: o for r, o in fetched.items()} == \
        {r.rsplit("/", 1)[1]: o for r, o in cache_refs(lg, "refs/layergit/build-cache/").items()}
    out = lg_b.out("build", "--progress", "plain", "-t", "app:2", str(ctx))
    assert not ran(out) and out.count("CACHED") == 2
    store_b = os.path.join(lg_b.root, "store.git")
    assert refs(store_b)["refs/heads/app/2"] == refs(remote)["refs/heads/app/1"]
    assert "ok" in lg_b.out("fsck")

    # The entries are there but the remote is no longer trusted: lg build runs the step.
    gitc(store_b, "config", "remote.ci.lgBuildCache", "false")
    out = lg_b.out("build", "--progress", "plain", "-t", "app:3", str(ctx))
    assert ran(out) and out.count("CACHED") == 0
    assert len(cache_refs(lg_b, "refs/layergit/remote-cache/")) == 2
    # Trusted again, but the RUN step's entry names a commit that does not build on the
    # step's parent (a poisoned cache): it is not taken.
    gitc(store_b, "config", "remote.ci.lgBuildCache", "true")
    base = refs(store_b)["refs/heads/base/1"]
    (run_entry,) = [ref for ref, oid in cache_refs(lg_b, "refs/layergit/remote-cache/").items()
                    if gitc(store_b, "rev-parse", f"{oid}^").decode().strip() == base]
    for ref in cache_refs(lg_b, "refs/layergit/build-cache/"):  # what the untrusted build remembered
        gitc(store_b, "update-ref", "-d", ref)
    gitc(store_b, "update-ref", run_entry, base)
    assert ran(lg_b.out("build", "--progress", "plain", "-t", "app:3", str(ctx)))
    # Trust withdrawn by lg: the fetched entries go too.
    assert "2 fetched entries removed" in lg_b.out("remote", "set-build-cache", "ci", "false")
    assert cache_refs(lg_b, "refs/layergit/remote-cache/") == {}


def on_a_terminal(lg: Lg, *args: str) -> tuple[int, str]:
    """Run lg with stdout and stderr on a pseudo-terminal; its exit status and output."""
    import pty

    leader, follower = pty.openpty()
    try:
        proc = subprocess.Popen([lg.python, "-m", "cli", *args], env=lg.env(), stdin=subprocess.DEVNULL,
                                stdout=follower, stderr=follower)
        os.close(follower)
        out = b""
        while True:
            try:
                piece = os.read(leader, 1 << 16)
            except OSError:  # EIO: every writer closed
                break
            if not piece:
                break
            out += piece
        return proc.wait(timeout=60), out.decode(errors="replace")
    finally:
        os.close(leader)


def test_push_and_pull_show_bytes_on_a_terminal(lg, lg_b, tmp_path):
    """On a terminal, push and pull draw the pack's bytes as git counts them; piped, the
    output is the summary lines alone."""
    src = tmp_path / "big"
    write(src / "noise", os.urandom(3 << 20))
    remote = bare(tmp_path / "remote.git")
    lg("commit", src, "-t", "big:1")
    code, out = on_a_terminal(lg, "push", remote, "big:1")
    assert code == 0 and re.search(r"\d\.\d MB", out), out
    code, out = on_a_terminal(lg_b, "pull", remote, "big:1")
    assert code == 0 and re.search(r"\d\.\d MB", out), out
    piped = lg_b.out("pull", remote, "big:1", "--json")
    assert "MB" not in piped
