"""lg bisect, lg rebase and lg squash (issue 17), run as a user would.

Images are hand-made trees committed with ``lg commit DIR`` on top of the busybox
fixture; every expected answer (the first bad version, the merged tree, the merged
dpkg status) is written out here from how the versions were made, not computed by
lg's code. Candidates and ldconfig run in real containers (--network none).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess

import pytest

from .treecompare import describe, differences

pytestmark = pytest.mark.root

CHECK = 'test -e /untestable && exit 125; test ! -e /broken'
LIBS = "/lib/x86_64-linux-gnu"


def _commit(lg, directory, tag: str, message: str, parent: str | None = None) -> str:
    args = ["commit", directory, "-t", tag, "-m", message] + (["--parent", parent] if parent else [])
    return lg.out(*args).strip().splitlines()[-1]


def _configure(lg, tag: str, change: str, message: str) -> None:
    """A version of ``tag`` that changes only its config (lg commit CONTAINER -c)."""
    lg("create", "--name", "cfg", "--network", "none", tag, "true")
    try:
        lg("commit", "cfg", "-t", tag, "-c", change, "-m", message)
    finally:
        lg("rm", "cfg")


def _refs(lg) -> dict[str, str]:
    out = subprocess.run(["git", "--git-dir", os.path.join(lg.root, "store.git"), "for-each-ref",
                          "--format=%(refname) %(objectname)"], capture_output=True, text=True, check=True).stdout
    return dict(line.split() for line in out.splitlines())


def _chain(lg, tmp_path, busybox_rootfs, count: int, broken_from: int, untestable=(), hog=(),
           tag: str = "chain:latest") -> list[str]:
    """``count`` versions v1..vN on one tag: /broken from ``broken_from`` on, /untestable
    in ``untestable``, /hog (which makes the check eat memory) in ``hog``."""
    d = tmp_path / "chain"
    shutil.copytree(busybox_rootfs, d, symlinks=True)
    ids = []
    for i in range(1, count + 1):
        (d / "version").write_text(f"{i}\n")
        for name, present in (("broken", i >= broken_from), ("untestable", i in untestable), ("hog", i in hog)):
            if present:
                (d / name).write_text("x\n")
            elif (d / name).exists():
                (d / name).unlink()
        ids.append(_commit(lg, str(d), tag, f"v{i}"))
    return ids


def _bisect_run(lg, *flags, command=CHECK, check=True):
    return lg("bisect", "run", "--rm", "--network", "none", *flags, "sh", "-c", command, check=check, timeout=300)


def _trials(proc) -> list[str]:
    return [line for line in proc.stderr.decode().splitlines() if line.startswith("lg bisect run:")]


def test_bisect_run_over_a_chain_finds_the_planted_file(lg, tmp_path, busybox_rootfs):
    ids = _chain(lg, tmp_path, busybox_rootfs, 16, broken_from=11)
    before = _refs(lg)
    out = lg.out("bisect", "start", "chain:latest", "chain:latest~15")
    assert out.startswith("Bisecting:")
    proc = _bisect_run(lg)
    out = proc.stdout.decode()
    assert f"{ids[10]} is the first bad version" in out
    assert " A /broken" in out and " M /version" in out  # its diff stat
    assert len(_trials(proc)) <= math.ceil(math.log2(15)) + 1
    assert lg.out("ps", "-aq") == ""  # --rm
    log = lg.out("bisect", "log").splitlines()
    assert f"lg bisect bad {ids[10]}" in log and f"lg bisect good {ids[0]}" in log
    after = _refs(lg)
    assert {r: v for r, v in after.items() if "/bisect/" not in r} == before  # no tag moved
    lg("bisect", "reset")
    assert not any("/bisect/" in r for r in _refs(lg)) and not os.path.exists(os.path.join(lg.root, "bisect.json"))
    assert "no bisect in progress" in lg.fails("bisect", "good", code=1)


def test_bisect_run_steps_over_skipped_versions(lg, tmp_path, busybox_rootfs):
    ids = _chain(lg, tmp_path, busybox_rootfs, 12, broken_from=9, untestable=(6, 7))
    lg("bisect", "start", ids[-1], ids[0])
    proc = _bisect_run(lg)
    assert f"{ids[8]} is the first bad version" in proc.stdout.decode()
    verdicts = [line.rsplit(" ", 1)[-1] for line in _trials(proc)]
    assert "skip" in verdicts
    assert f"lg bisect skip {ids[5]}" in lg.out("bisect", "log").splitlines()
    lg("bisect", "reset")
    # Skipped versions around the first bad one: it can only be narrowed to them.
    ids = _chain(lg, tmp_path / "again", busybox_rootfs, 6, broken_from=4, untestable=(3, 4), tag="skips:1")
    lg("bisect", "start", ids[-1], ids[0])
    out = _bisect_run(lg).stdout.decode()
    assert "could be any of" in out and ids[2] in out and ids[3] in out
    lg("bisect", "reset")


def test_bisect_run_over_a_reflog(lg, tmp_path, busybox_rootfs):
    """The tag moved through versions that are no chain (each its own first version)."""
    d = tmp_path / "flat"
    shutil.copytree(busybox_rootfs, d, symlinks=True)
    ids = []
    for i in range(1, 9):
        (d / "version").write_text(f"{i}\n")
        if i == 6:
            (d / "broken").write_text("x\n")
        ids.append(_commit(lg, str(d), f"build:{i}", f"release {i}"))
        lg("tag", f"build:{i}", "app:latest")
    with pytest.raises(AssertionError, match="not an ancestor"):
        lg("bisect", "start", "app:latest", "build:1")
    lg("bisect", "start", "--reflog", "app:latest")
    lg("rmi", *[f"build:{i}" for i in range(1, 9)], "app:latest")  # its refs keep the versions alive
    lg("gc")
    proc = _bisect_run(lg)
    assert f"{ids[5]} is the first bad version" in proc.stdout.decode()
    assert len(_trials(proc)) <= math.ceil(math.log2(7)) + 1
    lg("bisect", "reset")


def test_bisect_run_with_an_oom_killed_candidate(lg, tmp_path, busybox_rootfs):
    """/hog in v4 (the first candidate) makes the check run out of --memory 16m."""
    ids = _chain(lg, tmp_path, busybox_rootfs, 8, broken_from=7, hog=(4,))
    command = 'test -e /hog && x=$(head -c 64000000 /dev/zero | tr "\\0" a); ' + CHECK
    lg("bisect", "start", ids[-1], ids[0])
    proc = _bisect_run(lg, "--memory", "16m", command=command, check=False)
    assert proc.returncode == 1, proc.stderr
    assert f"version {ids[3][:12]} exited with 137" in proc.stderr.decode()
    assert f"lg bisect bad {ids[3]}" not in lg.out("bisect", "log")  # stopped, nothing marked
    proc = _bisect_run(lg, "--memory", "16m", "--signal-is-bad", command=command)
    assert f"{ids[3]} is the first bad version" in proc.stdout.decode()
    assert f"{ids[3][:12]} exited 137: bad" in proc.stderr.decode()
    lg("bisect", "reset")


def test_bisect_stops_when_lg_cannot_start_a_candidate(lg, tmp_path, busybox_rootfs):
    ids = _chain(lg, tmp_path, busybox_rootfs, 4, broken_from=3)
    lg("bisect", "start", ids[-1], ids[0])
    assert "a bisect is in progress" in lg.fails("bisect", "start", ids[-1], ids[0], code=1)
    err = lg.fails("bisect", "run", "--rm", "--network", "none", "--user", "nosuchuser", "true", code=125)
    assert "nosuchuser" in err
    assert "skip" not in lg.out("bisect", "log")
    lg("bisect", "reset")


# -- rebase and squash ---------------------------------------------------------------------------


@pytest.fixture
def trees(tmp_path, busybox_rootfs):
    base = tmp_path / "base"
    shutil.copytree(busybox_rootfs, base, symlinks=True)
    (base / "etc" / "app.conf").write_text("setting=1\n")
    (base / "etc" / "shared").write_text("base\n")
    os.makedirs(base / "var" / "lib" / "dpkg")
    (base / "var" / "lib" / "dpkg" / "status").write_text(
        "Package: base-files\nStatus: install ok installed\nVersion: 12\n\n"
        "Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.36-1\n")
    return tmp_path


def test_rebase_onto_a_base_with_an_unrelated_change(lg, trees):
    base, app = trees / "base", trees / "app"
    _commit(lg, str(base), "base:1", "base 1")
    shutil.copytree(base, app, symlinks=True)
    (app / "srv").mkdir()
    (app / "srv" / "app.py").write_text("print('v1')\n")
    _commit(lg, str(app), "app:1", "app 1", parent="base:1")
    (app / "etc" / "motd").write_text("patched\n")  # the new base has this very change
    dropped = _commit(lg, str(app), "app:1", "app 1b")
    (app / "srv" / "app.py").write_text("print('v2')\n")
    (app / "etc" / "shared").write_text("app\n")  # content here, mode in the new base
    _commit(lg, str(app), "app:1", "app 2")
    _configure(lg, "app:1", "ENV MODE=app", "app 3")
    old_app = lg.out("inspect", "--format", "{{.Id}}", "app:1").strip()
    # The new base: an unrelated file, a chmod and an owner on the file the app edits.
    (base / "etc" / "motd").write_text("patched\n")
    os.chmod(base / "etc" / "shared", 0o600)
    os.chown(base / "etc" / "shared", 0, 42)
    (base / "bin" / "old-tool").write_text("gone\n")
    _commit(lg, str(base), "base:2", "base 2", parent="base:1")
    os.unlink(base / "bin" / "old-tool")
    _commit(lg, str(base), "base:2", "base 2b")
    _configure(lg, "base:2", "ENV BASE=2", "base 2c")
    out = lg.out("rebase", "--onto", "base:2", "base:1", "app:1", "-t", "app:2")
    assert "tagged app:2" in out
    assert f"{dropped[:12]} dropped: the new base has its changes already" in out
    assert lg.out("inspect", "--format", "{{.Id}}", "app:1").strip() == old_app  # only -t moved
    chain = [json.loads(lg.out("show", "--json", f"app:2~{i}"))["message"].strip() for i in range(7)]
    assert chain == ["app 3", "app 2", "app 1", "base 2c", "base 2b", "base 2", "base 1"], chain
    expected = trees / "expected"
    shutil.copytree(base, expected, symlinks=True)
    (expected / "srv").mkdir()
    (expected / "srv" / "app.py").write_text("print('v2')\n")
    (expected / "etc" / "shared").write_text("app\n")
    os.chmod(expected / "etc" / "shared", 0o600)
    os.chown(expected / "etc" / "shared", 0, 42)
    shutil.copystat(app / "srv", expected / "srv")
    got = trees / "got"
    lg("checkout", "app:2", str(got))
    want, have = describe(expected, mtimes=False), describe(got, mtimes=False)
    del want[b"."], have[b"."]  # the checkout's own directory is lg checkout's to make
    assert not differences(want, have), differences(want, have)
    env = json.loads(lg.out("show", "--json", "app:2"))["config"]["Env"]
    assert "MODE=app" in env and "BASE=2" in env, env


def test_rebase_merges_dpkg_status_and_regenerates_ld_so_cache(lg, trees):
    """The base upgrades libc6 and adds a library; the app installs a package with
    another: dpkg's status keeps both, ldconfig indexes both, and the result runs."""
    base, app = trees / "base", trees / "app"
    os.makedirs(base / "sbin", exist_ok=True)
    shutil.copy("/sbin/ldconfig", base / "sbin" / "ldconfig")
    os.makedirs(base / LIBS[1:])
    shutil.copy(os.path.realpath(f"{LIBS}/libz.so.1"), base / LIBS[1:] / "libz.so.1")
    subprocess.run(["/sbin/ldconfig", "-r", str(base)], check=True)
    _commit(lg, str(base), "base:1", "base 1")
    shutil.copytree(base, app, symlinks=True)
    status = app / "var" / "lib" / "dpkg" / "status"
    status.write_text(status.read_text() + "\nPackage: libbz2\nStatus: install ok installed\n"
                      "Architecture: amd64\nVersion: 1.0.8\n")
    shutil.copy(os.path.realpath(f"{LIBS}/libbz2.so.1.0"), app / LIBS[1:] / "libbz2.so.1.0")
    subprocess.run(["/sbin/ldconfig", "-r", str(app)], check=True)
    _commit(lg, str(app), "app:1", "install libbz2", parent="base:1")
    (app / "hello").write_text("hi\n")
    _commit(lg, str(app), "app:1", "app files")
    status = base / "var" / "lib" / "dpkg" / "status"
    status.write_text(status.read_text().replace("2.36-1", "2.36-9"))
    shutil.copy(os.path.realpath(f"{LIBS}/liblzma.so.5"), base / LIBS[1:] / "liblzma.so.5")
    subprocess.run(["/sbin/ldconfig", "-r", str(base)], check=True)
    _commit(lg, str(base), "base:2", "upgrade libc6", parent="base:1")
    out = lg.out("rebase", "--onto", "base:2", "base:1", "app:1")
    assert "/var/lib/dpkg/status: merged record by record" in out
    assert "/etc/ld.so.cache: regenerated by ldconfig" in out
    assert "tagged app:1" in out  # IMAGE is a tag: it moves, as git rebase moves a branch
    assert lg.out("cat", "app:1", "/var/lib/dpkg/status") == (
        "Package: base-files\nStatus: install ok installed\nVersion: 12\n\n"
        "Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.36-9\n\n"
        "Package: libbz2\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.0.8\n")
    cache = lg.out("run", "--rm", "--network", "none", "app:1", "/sbin/ldconfig", "-p")
    for lib in ("libz.so.1", "libbz2.so.1.0", "liblzma.so.5"):
        assert f"{lib} (libc6,x86-64) => {LIBS}/{lib}" in cache
    assert lg.out("run", "--rm", "--network", "none", "app:1", "cat", "/hello") == "hi\n"
    assert lg.out("ps", "-aq") == ""  # ldconfig's container is gone


def test_conflicting_rebase_stops_and_moves_nothing(lg, trees):
    base, app = trees / "base", trees / "app"
    _commit(lg, str(base), "base:1", "base 1")
    shutil.copytree(base, app, symlinks=True)
    (app / "etc" / "app.conf").write_text("setting=app\n")
    os.chmod(app / "etc" / "shared", 0o640)
    (app / "var" / "lib" / "dpkg" / "status").write_text(
        (app / "var" / "lib" / "dpkg" / "status").read_text().replace("2.36-1", "2.36-1+app"))
    _commit(lg, str(app), "app:1", "app 1", parent="base:1")
    (base / "etc" / "app.conf").write_text("setting=base\n")
    os.chmod(base / "etc" / "shared", 0o600)
    (base / "var" / "lib" / "dpkg" / "status").write_text(
        (base / "var" / "lib" / "dpkg" / "status").read_text().replace("2.36-1", "2.36-9"))
    (base / "etc" / "motd").write_text("fine\n")
    _commit(lg, str(base), "base:2", "base 2", parent="base:1")
    before = _refs(lg)
    packs = sorted(os.listdir(os.path.join(lg.root, "store.git", "objects", "pack")))
    proc = lg("rebase", "--onto", "base:2", "base:1", "app:1", "-t", "app:2", check=False)
    assert proc.returncode == 1
    err = proc.stderr.decode()
    conflicts = sorted(line for line in err.splitlines() if line.startswith("CONFLICT"))
    assert conflicts == [
        "CONFLICT /etc/app.conf: content",
        "CONFLICT /etc/shared: mode",
        "CONFLICT /var/lib/dpkg/status: /var/lib/dpkg/status: libc6:amd64 changed on both sides",
    ], err
    assert "nothing was tagged" in err
    assert _refs(lg) == before
    assert sorted(os.listdir(os.path.join(lg.root, "store.git", "objects", "pack"))) == packs
    # Rules resolve them: the app's side everywhere but the conf file.
    out = lg.out("rebase", "--onto", "base:2", "base:1", "app:1", "-t", "app:2",
                 "--prefer", "theirs", "--prefer", "/etc/app.conf=ours")
    assert "tagged app:2" in out
    assert lg.out("cat", "app:2", "/etc/app.conf") == "setting=base\n"
    assert "Version: 2.36-1+app" in lg.out("cat", "app:2", "/var/lib/dpkg/status")
    assert lg.out("cat", "app:2", "/etc/motd") == "fine\n"
    assert lg.out("ls", "-l", "app:2", "/etc/shared").startswith("-rw-r-----")
    assert "--prefer" in lg.fails("rebase", "--onto", "base:2", "base:1", "app:1", "--prefer", "mine", code=2)
    assert "not an ancestor" in lg.fails("rebase", "--onto", "base:1", "base:2", "app:1", code=2)


def test_squash_keeps_the_tree_and_sets_the_parent(lg, trees):
    base, app = trees / "base", trees / "app"
    base_id = _commit(lg, str(base), "base:1", "base 1")
    shutil.copytree(base, app, symlinks=True)
    for i in range(3):
        (app / f"file{i}").write_text(f"{i}\n")
        _commit(lg, str(app), "app:1", f"step {i}", parent="base:1" if i == 0 else None)
    out = lg.out("squash", "app:1", "--onto", "base:1", "-t", "app:flat")
    assert "3 versions folded" in out
    git = ["git", "--git-dir", os.path.join(lg.root, "store.git")]
    tree = subprocess.run(git + ["rev-parse", "refs/heads/app/1^{tree}", "refs/heads/app/flat^{tree}"],
                          capture_output=True, text=True, check=True).stdout.split()
    assert tree[0] == tree[1]
    parents = subprocess.run(git + ["rev-list", "--parents", "-n", "1", "refs/heads/app/flat"],
                             capture_output=True, text=True, check=True).stdout.split()
    assert parents[1:] == [base_id]
    assert lg.out("diff", "--name-status", "app:flat").split() == ["A", "/file0", "A", "/file1", "A", "/file2"]
    assert "not an ancestor" in lg.fails("squash", "base:1", "--onto", "app:1", "-t", "x:1", code=1)


def test_bisect_state_under_fsck_and_gc(lg, tmp_path, busybox_rootfs):
    """bisect.json and its refs: fsck reads them, gc drops refs a killed start left."""
    ids = _chain(lg, tmp_path, busybox_rootfs, 3, broken_from=3)
    lg("bisect", "start", ids[-1], ids[0])
    assert "note: a bisect is in progress over 3 versions" in lg.out("fsck")
    out = lg.out("bisect", "bad")  # the proposed version, v2: then v2 is the first bad
    assert f"{ids[1]} is the first bad version" in out
    assert "the bisect is over" in lg.fails("bisect", "good", code=2)
    state = os.path.join(lg.root, "bisect.json")
    with open(state, "w") as f:
        f.write('{"version": 1, "candidates": ["../../etc"]}')
    assert "bisect.json does not read" in lg("fsck", check=False).stdout.decode()
    assert "does not read" in lg.fails("bisect", "log", code=1)
    lg("bisect", "reset")
    git = ["git", "--git-dir", os.path.join(lg.root, "store.git")]
    subprocess.run(git + ["update-ref", f"refs/layergit/bisect/{ids[0]}", ids[0]], check=True)
    assert "bisect ref(s) without a bisect in progress" in lg.out("fsck")
    lg("gc")
    assert not any("/bisect/" in r for r in _refs(lg))
