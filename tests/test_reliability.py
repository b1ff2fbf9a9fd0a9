"""Crash and concurrency safety of the store.

A commit killed at any moment leaves its tag at the old or the new commit (never a
broken or half-written ref, never a store git or lg fsck complains about); racing
commits on one tag all land or fail cleanly; gc running alongside commits never
drops anything a tag names; and metadata corruption is caught by lg fsck.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# -- helpers -----------------------------------------------------------------------


def run_lg(root: str, *args, timeout: float = 120) -> subprocess.CompletedProcess:
    env = dict(os.environ, LG_ROOT=root, COLUMNS="200")
    env.pop("LG_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "cli", *map(str, args)], capture_output=True, env=env, cwd=REPO, timeout=timeout)


def git(root: str, *args: str, input: bytes | None = None, check: bool = True) -> subprocess.CompletedProcess:
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.com", GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.com")
    proc = subprocess.run(["git", "-C", os.path.join(root, "store.git"), *args], input=input, capture_output=True, env=env, timeout=120)
    if check and proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {proc.stderr.decode(errors='replace')}")
    return proc


def git_out(root: str, *args: str, input: bytes | None = None) -> str:
    return git(root, *args, input=input).stdout.decode().strip()


def one_line_failure(proc: subprocess.CompletedProcess) -> str:
    err = proc.stderr.decode(errors="replace").strip()
    assert proc.returncode != 0
    assert err and len(err.splitlines()) == 1, f"expected one line on stderr, got {err!r}"
    return err


class Processes:
    """Started subprocesses, killed (whole process group) on exit whatever happened."""

    def __init__(self):
        self.procs: list[subprocess.Popen] = []

    def start(self, root: str, *args) -> subprocess.Popen:
        env = dict(os.environ, LG_ROOT=root, COLUMNS="200")
        env.pop("LG_DEBUG", None)
        proc = subprocess.Popen([sys.executable, "-m", "cli", *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=REPO, start_new_session=True)
        self.procs.append(proc)
        return proc

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for proc in self.procs:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            try:
                proc.communicate(timeout=30)
            except Exception:
                pass


def fsck_both(root: str) -> None:
    """lg fsck and git fsck --strict both pass (run side by side: each reads the whole store)."""
    result = {}
    t = threading.Thread(target=lambda: result.setdefault("git", git(root, "fsck", "--strict", "--no-progress", check=False)))
    t.start()
    try:
        proc = run_lg(root, "fsck", "--json")
    finally:
        t.join()
    report = json.loads(proc.stdout or b"{}")
    assert proc.returncode == 0 and report.get("ok"), f"lg fsck: {proc.stdout.decode()} {proc.stderr.decode()}"
    g = result["git"]
    assert g.returncode == 0, f"git fsck --strict: {g.stdout.decode()} {g.stderr.decode()}"
    assert b"error" not in g.stderr.lower() and b"warning" not in g.stderr.lower(), g.stderr.decode()


def ref_value(root: str, ref: str) -> str | None:
    proc = git(root, "rev-parse", "--verify", "-q", ref + "^{commit}", check=False)
    return proc.stdout.decode().strip() if proc.returncode == 0 else None


def write_tree(path: str, files: dict[str, bytes]) -> str:
    for rel, data in files.items():
        full = os.path.join(path, rel)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "wb") as f:
            f.write(data)
    return path


@pytest.fixture(scope="session")
def big_tree(tmp_path_factory) -> str:
    """About 150 MB of incompressible files (150 x 1 MiB in 3 directories, plus small ones), made once per session."""
    root = str(tmp_path_factory.mktemp("big") / "tree")
    rnd = os.urandom(1 << 20)
    for d in range(3):
        os.makedirs(os.path.join(root, f"d{d}"))
        for i in range(50):
            with open(os.path.join(root, f"d{d}", f"f{i:02d}"), "wb") as f:
                # unique per file, so every file is its own blob
                f.write(os.urandom(64) + rnd[64:])
    small = os.path.join(root, "small")
    os.makedirs(small)
    for i in range(200):
        with open(os.path.join(small, f"s{i:03d}"), "w") as f:
            f.write(f"small file {i}\n")
    os.symlink("d0/f00", os.path.join(root, "link"))
    return root


# -- (a) SIGKILL at any moment of a commit ---------------------------------------------


def test_sigkill_during_commit_leaves_old_or_new(tmp_path, big_tree):
    """SIGKILL at ~15 moments spread over a whole 150 MB commit: the tag is always at its old value or at the
    complete new commit, lg fsck and git fsck --strict pass, no ref lock is left behind, and the next commit works."""
    tiny = write_tree(str(tmp_path / "tiny"), {"etc/hostname": b"tiny\n"})
    tiny2 = write_tree(str(tmp_path / "tiny2"), {"etc/hostname": b"tiny2\n"})
    ref = "refs/heads/big/latest"

    # One clean run: how long a whole commit takes, and which rootfs tree it must produce.
    measure = str(tmp_path / "measure")
    t0 = time.monotonic()
    proc = run_lg(measure, "commit", big_tree, "-t", "big", "-m", "measure")
    duration = time.monotonic() - t0
    assert proc.returncode == 0, proc.stderr
    expected_rootfs = git_out(measure, "rev-parse", f"{proc.stdout.decode().strip()}:rootfs")
    shutil.rmtree(measure)

    # A template root whose tag already has a value (the "old" one).
    template = str(tmp_path / "template")
    assert run_lg(template, "commit", tiny, "-t", "big", "-m", "old").returncode == 0
    old = ref_value(template, ref)

    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    n = 15
    delays = [duration * (i + rng.random()) / n for i in range(n)]
    delays[0] = 0.0  # also: killed before it could do anything
    outcomes = []
    gc_checked = False
    for i, delay in enumerate(delays):
        root = str(tmp_path / f"root{i}")
        shutil.copytree(template, root, symlinks=True)
        message = f"killed commit {i}"
        with Processes() as ps:
            p = ps.start(root, "commit", big_tree, "-t", "big", "-m", message)
            time.sleep(delay)
            finished = p.poll() is not None
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.communicate(timeout=60)
        where = f"(iteration {i}, delay {delay:.3f}s of {duration:.3f}s, seed {seed})"

        # The ref is readable and at the old value or the whole new commit.
        listing = git(root, "for-each-ref", "--format=%(refname) %(objectname)", check=False)
        assert listing.returncode == 0, f"for-each-ref failed {where}: {listing.stderr.decode()}"
        now = ref_value(root, ref)
        assert now is not None, f"{ref} is broken or gone {where}"
        if now == old:
            assert not (finished and p.returncode == 0), f"commit exited 0 but its tag did not move {where}"
            outcomes.append("old")
        else:
            outcomes.append("new (had finished)" if finished else "new")
            assert git_out(root, "log", "-1", "--format=%P", now) == old, where
            assert git_out(root, "log", "-1", "--format=%B", now) == message, where
            assert git_out(root, "rev-parse", f"{now}:rootfs") == expected_rootfs, where
        locks = [os.path.join(d, f) for d, _, fs in os.walk(os.path.join(root, "store.git")) for f in fs if f.endswith(".lock")]
        assert not locks, f"stale lock files {locks} {where}"

        fsck_both(root)

        # Interrupted writes leave only temporary files, which lg gc removes.
        pack_dir = os.path.join(root, "store.git", "objects", "pack")
        if not gc_checked and now == old and any(f.startswith("tmp_pack_lg_") for f in os.listdir(pack_dir)):
            gc_checked = True
            assert run_lg(root, "gc").returncode == 0
            assert not [f for f in os.listdir(pack_dir) if f.startswith("tmp_")], os.listdir(pack_dir)
            report = json.loads(run_lg(root, "fsck", "--json").stdout)
            assert report["ok"] and not report["notes"], report

        # And the store keeps working: the next commit stacks on whatever the tag holds.
        after = run_lg(root, "commit", tiny2, "-t", "big", "-m", "after")
        assert after.returncode == 0, f"commit after kill failed {where}: {after.stderr.decode()}"
        assert git_out(root, "log", "-1", "--format=%P", after.stdout.decode().strip()) == now, where
        shutil.rmtree(root)
    print(f"seed {seed}: commit takes {duration:.2f}s; outcomes {outcomes}")
    assert "old" in outcomes


def test_sigkill_during_first_commit_of_a_new_root(tmp_path):
    """Killed while creating the store and its first image: the root is either without that image or has all of it,
    and lg works on it afterwards."""
    src = write_tree(str(tmp_path / "src"), {f"f{i}": os.urandom(1 << 16) for i in range(32)})
    rng = random.Random()
    for i in range(3):
        root = str(tmp_path / f"root{i}")
        with Processes() as ps:
            p = ps.start(root, "commit", src, "-t", "first")
            time.sleep(rng.uniform(0.05, 0.3))
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.communicate(timeout=60)
        proc = run_lg(root, "commit", src, "-t", "first", "--allow-empty")
        assert proc.returncode == 0, proc.stderr
        assert run_lg(root, "images", "--json").returncode == 0
        fsck_both(root)


def test_a_store_left_half_made_by_a_killed_lg_is_cleared(tmp_path):
    """The store is made under ``store.git.init-PID`` and renamed into place; an lg killed
    before the rename leaves that directory. The next lg takes the root as its own, removes
    what the dead process left (never a live one's) and makes the store."""
    dead = subprocess.Popen(["true"])
    dead.wait()
    root = tmp_path / "root"
    (root / f"store.git.init-{dead.pid}" / "objects").mkdir(parents=True)
    (root / f"store.git.init-{os.getpid()}").mkdir()  # alive: another lg making it right now
    src = write_tree(str(tmp_path / "src"), {"f": b"x"})
    proc = run_lg(str(root), "commit", src, "-t", "first")
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in root.iterdir() if p.name.startswith("store.git")) == \
        ["store.git", f"store.git.init-{os.getpid()}"]


# -- (b) racing commits on one tag ---------------------------------------------------------


@pytest.mark.parametrize("n, existing", [(2, True), (8, True), (8, False)], ids=["2-existing", "8-existing", "8-new-tag"])
def test_racing_commits_on_one_tag_lose_nothing(lg, tmp_path, n, existing):
    """n commits of different trees started together on one tag: each exits 0 or fails with one line, every
    successful commit is in the tag's history with its own tree, and the store stays clean."""
    chunk = os.urandom(4 << 20)
    sources = []
    for i in range(n):
        sources.append(write_tree(str(tmp_path / f"src{i}"), {"who": f"{i}\n".encode(), "data/blob": os.urandom(32) + chunk, "data/x": f"x{i}".encode()}))
    base = None
    if existing:
        base_src = write_tree(str(tmp_path / "base"), {"who": b"base\n"})
        base = lg.out("commit", base_src, "-t", "race:tag").strip()
    with Processes() as ps:
        procs = [ps.start(lg.root, "commit", src, "-t", "race:tag", "-m", f"racer {i}") for i, src in enumerate(sources)]
        results = [p.communicate(timeout=120) + (p.returncode,) for p in procs]
    ok = {}
    for i, (out, err, rc) in enumerate(results):
        if rc == 0:
            ok[i] = out.decode().strip()
        else:
            text = err.decode(errors="replace").strip()
            assert text and len(text.splitlines()) == 1, f"racer {i} failed messily: {text!r}"
    assert ok, "no racer succeeded"
    log = json.loads(lg.out("log", "race:tag", "--json"))
    ids = [e["id"] for e in log]
    for i, oid in ok.items():
        assert oid in ids, f"racer {i}'s commit {oid} was lost from race:tag"
        assert git_out(lg.root, "show", f"{oid}:rootfs/who") == str(i)
        assert next(e for e in log if e["id"] == oid)["message"] == f"racer {i}"
    assert len(ids) == len(ok) + (1 if existing else 0), (ids, ok)
    if existing:
        assert ids[-1] == base
    assert len(set(ok.values())) == len(ok)
    fsck_both(lg.root)
    failures = [r[1].decode().strip() for r in results if r[2] != 0]
    print(f"{len(ok)} of {n} racers landed; failures: {failures}")


@pytest.mark.parametrize("packed", [False, True], ids=["loose", "packed"])
def test_ref_moved_between_check_and_update_is_a_retryable_conflict(lg, tmp_path, packed):
    """Store.set_ref's compare-and-swap: the caller read the tag at b, then another writer (git itself) moved it
    before set_ref took the ref's lock. The compare under the lock must refuse with a Conflict (which commit
    retries on top of the new tip), not overwrite the other writer's update, whether the ref was a loose file
    or only a line in packed-refs (after git pack-refs, as lg gc leaves it). An unmoved packed ref updates."""
    from layergit.errors import Conflict
    from layergit.store.store import Store

    a = lg.out("commit", write_tree(str(tmp_path / "a"), {"f": b"a"}), "-t", "cas").strip()
    b = lg.out("commit", write_tree(str(tmp_path / "b"), {"f": b"b"}), "-t", "cas").strip()
    path = os.path.join(lg.root, "store.git")
    name = "refs/heads/cas/latest"
    if packed:
        git(lg.root, "pack-refs", "--all", "--prune")
        assert not os.path.exists(os.path.join(path, name))
    store = Store.open(path)
    assert store.ref(name) == bytes.fromhex(b)  # what the caller read
    new = bytes.fromhex(git_out(lg.root, "commit-tree", f"{b}^{{tree}}", "-p", b, "-m", "mine"))
    git(lg.root, "update-ref", "-m", "someone else", name, a, b)  # the other writer, between read and update
    with pytest.raises(Conflict):
        store.set_ref(name, new, bytes.fromhex(b), "mine")
    assert ref_value(lg.root, name) == a  # the other writer's update stands
    if packed:  # and a ref that did not move is updated over its packed line, as git would
        git(lg.root, "pack-refs", "--all", "--prune")
        store.set_ref(name, new, bytes.fromhex(a), "mine")
        assert ref_value(lg.root, name) == new.hex()
        assert git_out(lg.root, "reflog", "show", "--format=%H", name).split()[0] == new.hex()
    fsck_both(lg.root)


@pytest.mark.parametrize("existing", [True, False], ids=["update", "create"])
def test_locked_ref_is_a_retryable_conflict(lg, tmp_path, existing):
    """While another writer holds NAME.lock (git's ref lock), Store.set_ref raises Conflict, the error commit_dir
    retries on; and lg commit then fails with a clear line that names the image, not a raw libgit2 message."""
    from layergit.errors import Conflict
    from layergit.store.store import Store

    a = lg.out("commit", write_tree(str(tmp_path / "a"), {"f": b"a"}), "-t", "other").strip()
    name = "refs/heads/locked/latest"
    if existing:
        git(lg.root, "update-ref", name, a)
    path = os.path.join(lg.root, "store.git")
    lock = os.path.join(path, name + ".lock")
    os.makedirs(os.path.dirname(lock), exist_ok=True)
    with open(lock, "w") as f:
        f.write("in progress\n")
    try:
        store = Store.open(path)
        new = bytes.fromhex(git_out(lg.root, "commit-tree", f"{a}^{{tree}}", "-m", "mine"))
        with pytest.raises(Conflict) as refused:
            store.set_ref(name, new, bytes.fromhex(a) if existing else None, "mine")
        assert f"remove {lock}" in str(refused.value)  # what git says too: nothing tells a live holder
        past = time.time() - 3600
        os.utime(lock, (past, past))
        with pytest.raises(Conflict):  # however old: only a caller that keeps other writers out breaks one
            store.set_ref(name, new, bytes.fromhex(a) if existing else None, "mine")
        proc = run_lg(lg.root, "commit", write_tree(str(tmp_path / "b"), {"f": b"b"}), "-t", "locked")
        err = one_line_failure(proc)
        assert "locked" in err and "failed to lock file" not in err, err
    finally:
        os.unlink(lock)
    assert ref_value(lg.root, name) == (a if existing else None)


# -- (c) gc alongside commits -------------------------------------------------------------


def test_gc_concurrent_with_commits_loses_nothing(lg, tmp_path):
    """lg gc running over and over while commits (and readers) run: every commit that got tagged survives whole,
    readers never fail, and fsck is clean at the end."""
    chunk = os.urandom(2 << 20)
    tags = [f"g{k}" for k in range(3)]
    garbage_src = write_tree(str(tmp_path / "garbage"), {"g": os.urandom(1 << 20)})
    lg("commit", garbage_src, "-t", "garbage")
    lg("rmi", "garbage")  # something for gc to really delete
    stop = threading.Event()
    gc_results: list[subprocess.CompletedProcess] = []
    reader_failures: list[str] = []

    def gc_loop():
        while not stop.is_set() or len(gc_results) < 3:
            gc_results.append(run_lg(lg.root, "gc"))

    def reader_loop():
        while not stop.is_set():
            for args in (("images", "--json"), ("log", "g0", "--json")):
                proc = run_lg(lg.root, *args)
                err = proc.stderr.decode()
                if proc.returncode != 0 and "no such image" not in err:
                    reader_failures.append(f"lg {' '.join(args)}: {err.strip()}")

    landed: dict[str, list[str]] = {t: [] for t in tags}
    threads = [threading.Thread(target=gc_loop), threading.Thread(target=reader_loop)]
    with Processes() as ps:
        for t in threads:
            t.start()
        try:
            for rnd in range(4):
                procs = []
                for tag in tags:
                    src = write_tree(str(tmp_path / f"src-{tag}-{rnd}"), {"round": f"{rnd}\n".encode(), "tag": tag.encode(), "blob": os.urandom(16) + chunk})
                    procs.append((tag, rnd, ps.start(lg.root, "commit", src, "-t", tag, "-m", f"{tag} round {rnd}")))
                for tag, rnd, p in procs:
                    out, err = p.communicate(timeout=120)
                    assert p.returncode == 0, f"commit {tag} round {rnd} failed: {err.decode()}"
                    landed[tag].append(out.decode().strip())
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=120)
    for r in gc_results:
        assert r.returncode == 0, r.stderr.decode()
    assert not reader_failures, reader_failures
    for tag, ids in landed.items():
        history = [e["id"] for e in json.loads(lg.out("log", tag, "--json"))]
        assert history == ids[::-1], (tag, history, ids)
        for oid in ids:
            assert git(lg.root, "cat-file", "-e", oid, check=False).returncode == 0
    fsck_both(lg.root)
    lg("gc")
    fsck_both(lg.root)
    lg("checkout", "g2", tmp_path / "out")
    assert (tmp_path / "out" / "round").read_text() == "3\n"


# -- (d) corruption is reported --------------------------------------------------------------


def _craft_image(root: str, parent: str, rootfs_lines: list[str], meta: bytes, config: bytes = b"{}\n", ref: str = "refs/heads/bad/meta") -> str:
    """An image commit on top of ``parent`` whose rootfs is built from mktree lines plus a given .lgmeta blob."""
    meta_blob = git_out(root, "hash-object", "-w", "--stdin", input=meta)
    rootfs = git_out(root, "mktree", input=("".join(line + "\n" for line in rootfs_lines) + f"100644 blob {meta_blob}\t.lgmeta\n").encode())
    cfg = git_out(root, "hash-object", "-w", "--stdin", input=config)
    tree = git_out(root, "mktree", input=f"100644 blob {cfg}\tconfig.json\n040000 tree {rootfs}\trootfs\n".encode())
    commit = git_out(root, "commit-tree", tree, "-p", parent, "-m", "crafted")
    git(root, "update-ref", ref, commit)
    return commit


CORRUPTIONS = {
    "bad-type-and-mtime": b"lgmeta 1\n.\td 0755 0:0 0.000000000\nhello\tz 0644 0:0 1.5\n",
    "no-header": b"hello\tf 0644 0:0 0.000000000\n",
    "garbage-fields": b"lgmeta 1\nhello\tf 0644 0:0 0.000000000 bogus=1\n",
    "type-disagrees-with-git": b"lgmeta 1\nhello\tc 0644 0:0 0.000000000 rdev=1:3\n",
    "dangling-hardlink": b"lgmeta 1\nhello\tf 0644 0:0 0.000000000 link=/nowhere\n",
    "not-utf8": b"lgmeta 1\nhello\tf 0644 0:0 \xff\xfe\n",
    "meta-only-regular-file": b"lgmeta 1\nghost\tf 0644 0:0 0.000000000\nhello\tf 0644 0:0 0.000000000\n",
}


@pytest.mark.parametrize("kind", sorted(CORRUPTIONS))
def test_corrupt_metadata_blob_reported_by_fsck(lg, tmp_path, kind):
    """A well-formed git object holding a bad .lgmeta blob: git fsck is content, lg fsck reports it (exit 1), and
    checkout refuses it with one line, removing the directory it started."""
    src = write_tree(str(tmp_path / "src"), {"hello": b"hello\n"})
    good = lg.out("commit", src, "-t", "good").strip()
    blob = git_out(lg.root, "rev-parse", f"{good}:rootfs/hello")
    _craft_image(lg.root, good, [f"100644 blob {blob}\thello"], CORRUPTIONS[kind])
    assert git(lg.root, "fsck", "--strict", check=False).returncode == 0  # valid git: only lg can tell
    proc = run_lg(lg.root, "fsck", "--json")
    assert proc.returncode == 1, proc.stdout.decode() + proc.stderr.decode()
    report = json.loads(proc.stdout)
    assert report["ok"] is False and report["problems"]
    print(report["problems"])
    dest = tmp_path / "out"
    err = one_line_failure(run_lg(lg.root, "checkout", "bad:meta", dest))
    assert not os.path.lexists(dest), f"partial checkout left behind after: {err}"


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(c) for c in f.read().split()]
    except FileNotFoundError:
        return []


@contextmanager
def _stopped_with_two_writers(lg, tmp_path) -> Iterator[tuple[subprocess.Popen, str, int]]:
    """``lg checkout`` of a crowd of 3,000 entries, stopped (its whole process group)
    once its second process exists, so what the test does next lands mid-checkout
    whatever the timing; yields (lg's process, its destination, the tree's entries).
    Started again if it ended before the stop; killed whatever happens."""
    from . import trees

    src = tmp_path / "src"
    trees.make_crowd(src, dirs=100, files=30)
    lg("commit", src, "-t", "crowd:1")
    trees.forget_the_farm(lg)  # every file inflated from the pack: a longer checkout
    entries = sum(len(dirs) + len(files) for _, dirs, files in os.walk(src))
    for attempt in range(5):
        dest = str(tmp_path / f"out-{attempt}")
        proc = subprocess.Popen([sys.executable, "-m", "cli", "checkout", "crowd:1", dest], env=lg.env(),
                                cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        try:
            deadline = time.monotonic() + 60
            while proc.poll() is None and not _children(proc.pid) and time.monotonic() < deadline:
                time.sleep(0.001)
            os.killpg(proc.pid, signal.SIGSTOP)
            if proc.poll() is None and _children(proc.pid):
                yield proc, dest, entries
                return
            os.killpg(proc.pid, signal.SIGCONT)  # it ended, or had not forked: again
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.communicate()
    pytest.fail("the checkout always ended before it could be stopped")


def _entries(top: str) -> int:
    return sum(len(dirs) + len(files) for _, dirs, files in os.walk(top))


def test_ctrl_c_while_two_processes_check_out_leaves_nothing(lg, tmp_path):
    """Ctrl-C (SIGINT to the process group, as a terminal sends it) while both processes
    of a copy checkout write (layergit.fs.pieces): lg ends with 130 and no
    process of it stays, and the destination is gone."""
    with _stopped_with_two_writers(lg, tmp_path) as (proc, dest, _):
        os.killpg(proc.pid, signal.SIGINT)
        os.killpg(proc.pid, signal.SIGCONT)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        assert not os.path.lexists(dest), "a half checkout stayed"
        with pytest.raises(ProcessLookupError):
            os.killpg(proc.pid, 0)  # no process of the group is left


def test_a_checkout_whose_parent_is_killed_stops_writing(lg, tmp_path):
    """SIGKILL to lg alone (not its group) while two processes check out: the second
    stops at its next piece (a directory of 30 files here) rather than write the whole
    tree for nobody, and lets go of the store (it shares lg's lock file)."""
    with _stopped_with_two_writers(lg, tmp_path) as (proc, dest, entries):
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        before = _entries(dest)
        os.killpg(proc.pid, signal.SIGCONT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.01)
        else:
            pytest.fail("the second process outlived lg by a minute")
        after = _entries(dest)
        assert after - before <= 2 * 31, f"the orphan wrote {after - before} of {entries} entries on"


def test_an_empty_image_checks_out(lg, tmp_path):
    """No entry at all: no piece to write, copied or hardlinked."""
    (tmp_path / "empty").mkdir()
    lg("commit", tmp_path / "empty", "-t", "empty:1")
    for flags in ([], ["-H"]):
        dest = tmp_path / f"out{len(flags)}"
        lg("checkout", *flags, "empty:1", dest)
        assert os.listdir(dest) == []


def test_non_image_commit_reported_by_fsck(lg, tmp_path):
    """A commit under refs/heads/ without config.json/rootfs is an fsck problem and a one-line error for show."""
    src = write_tree(str(tmp_path / "src"), {"hello": b"hello\n"})
    good = lg.out("commit", src, "-t", "good").strip()
    blob = git_out(lg.root, "hash-object", "-w", "--stdin", input=b"not an image\n")
    tree = git_out(lg.root, "mktree", input=f"100644 blob {blob}\tREADME\n".encode())
    git(lg.root, "update-ref", "refs/heads/bad/plain", git_out(lg.root, "commit-tree", tree, "-p", good, "-m", "plain git"))
    assert run_lg(lg.root, "fsck").returncode == 1
    one_line_failure(run_lg(lg.root, "show", "bad:plain"))
    one_line_failure(run_lg(lg.root, "log", "bad:plain"))


def test_bad_config_json_reported(lg, tmp_path):
    """config.json that is not JSON: fsck exit 1, show fails with one line."""
    src = write_tree(str(tmp_path / "src"), {"hello": b"hello\n"})
    good = lg.out("commit", src, "-t", "good").strip()
    blob = git_out(lg.root, "rev-parse", f"{good}:rootfs/hello")
    meta = git(lg.root, "cat-file", "blob", f"{good}:rootfs/.lgmeta").stdout
    _craft_image(lg.root, good, [f"100644 blob {blob}\thello"], meta, config=b"{not json", ref="refs/heads/bad/config")
    assert run_lg(lg.root, "fsck").returncode == 1
    assert "JSON" in one_line_failure(run_lg(lg.root, "show", "bad:config"))
