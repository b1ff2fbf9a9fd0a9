"""The store is a plain git repository: git can check it, clone it and read it.

DESIGN.md promises that ``git fsck --strict`` passes on the store, that ``git clone``
plus ``git log origin/NAME/TAG`` shows an image's history, and that an unchanged
directory keeps its tree id, so a commit costs what changed. These tests commit the
hardest trees tests/trees.py can build and then ask git, not layergit, about them.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from . import trees
from .treecompare import assert_same_tree

TAG = "kitchen:sink"
REF = "kitchen/sink"
FIRST_MSG = "first: every kind of entry"
SECOND_MSG = "second: one file changed deep down"


def _git_env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env["GIT_CONFIG_NOSYSTEM"] = "1"
    return env


def _run_git(*args, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *map(str, args)], capture_output=True, cwd=cwd, env=_git_env())


def _fsck_strict(store: str) -> tuple[int, list[str]]:
    """Exit status and the error/warning lines of ``git fsck --strict`` (notices dropped)."""
    proc = _run_git("-C", store, "fsck", "--strict", "--no-progress", "--no-dangling")
    text = (proc.stdout + proc.stderr).decode(errors="replace")
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith(("notice:", "Checking"))]
    return proc.returncode, lines


def _store_with_history(lg, tmp_path, outside, privileged: bool = True) -> tuple[str, str, str]:
    """Commit the everything-tree, change one deep file, commit again on the same tag.

    Returns (source dir, first id, second id).
    """
    src = tmp_path / "src"
    trees.make_everything(src, outside, privileged=privileged)
    first = lg.out("commit", src, "-t", TAG, "-m", FIRST_MSG).strip()
    deep = os.path.join(src, "dirs", "deep", *[f"d{i:02d}" for i in range(50)], "bottom")
    with open(deep, "ab") as f:
        f.write(b"changed\n")
    second = lg.out("commit", src, "-t", TAG, "-m", SECOND_MSG).strip()
    assert first != second
    return str(src), first, second


# -- 11. unchanged subtrees are shared --------------------------------------------


def _tree_map(lg, rev: str) -> dict[bytes, tuple[str, str, str]]:
    """{path below rootfs: (mode, type, id)} for every entry, trees included."""
    return {path: (mode, kind, oid) for mode, kind, oid, path in trees.lg_tree_entries(lg, rev)}


def test_unchanged_subtrees_are_shared(lg, tmp_path, outside):
    """After changing one file deep down and committing again, every directory that is
    not an ancestor of that file keeps its exact tree id, the only blobs that change
    are the file and its own directory's metadata blob, and ``lg diff --name-status``
    reports exactly that one file as modified."""
    src = tmp_path / "src"
    trees.make_regular(src / "regular")
    trees.make_symlinks(src / "symlinks", outside)
    trees.make_hardlinks(src / "hardlinks")
    trees.make_specials(src / "specials", devices=os.geteuid() == 0)
    trees.make_special_names(src / "names")
    for top in ("a", "b"):
        for mid in ("x", "y"):
            for leaf in ("p", "q"):
                d = src / top / mid / leaf
                d.mkdir(parents=True)
                trees.write(d / "file", f"{top}/{mid}/{leaf}\n".encode())
                (d / "empty").mkdir()
    changed = src / "a" / "y" / "q" / "file"
    first = lg.out("commit", src, "-t", "share:latest", "-m", "one").strip()
    with open(changed, "r+b") as f:  # in place: only the file's content and mtime move
        f.write(b"CHANGED")
    second = lg.out("commit", src, "-t", "share:latest", "-m", "two").strip()
    assert trees.git(lg, "rev-parse", "share/latest^").stdout.decode().strip() == first

    old, new = _tree_map(lg, first), _tree_map(lg, second)
    assert set(old) == set(new), "entries appeared or vanished"
    target = b"a/y/q/file"
    ancestors = {b"a", b"a/y", b"a/y/q"}
    trees_checked = 0
    for path, (mode, kind, oid) in old.items():
        if kind == "tree":
            trees_checked += 1
            if path in ancestors:
                assert new[path][2] != oid, f"{path!r} is on the changed path but kept its id"
            else:
                assert new[path] == (mode, kind, oid), f"unchanged directory {path!r} got a new tree id"
        elif path not in (target, b"a/y/q/.lgmeta"):
            assert new[path] == (mode, kind, oid), f"unchanged entry {path!r} changed"
    assert trees_checked > 20
    assert new[target][2] != old[target][2]
    root_old = trees.git(lg, "rev-parse", f"{first}:rootfs").stdout
    root_new = trees.git(lg, "rev-parse", f"{second}:rootfs").stdout
    assert root_old != root_new

    expected = "M\t/a/y/q/file\n"
    assert lg.out("diff", first, second, "--name-status") == expected
    assert lg.out("diff", "share:latest", "--name-status") == expected  # parent -> it
    changes = json.loads(lg.out("diff", first, second, "--json"))["changes"]
    assert [(c["status"], c["path"], c["aspects"]) for c in changes] == [("M", "/a/y/q/file", ["content"])]


def test_chmod_is_a_one_line_plain_git_diff(lg, tmp_path):
    """A chmod changes only the metadata blob of the file's directory, by one line,
    as plain ``git diff`` shows; ``lg diff`` calls it a mode change."""
    src = tmp_path / "src"
    (src / "etc").mkdir(parents=True)
    for i in range(5):
        trees.write(src / "etc" / f"f{i}", b"x\n", mode=0o644)
    first = lg.out("commit", src, "-t", "perm:latest").strip()
    os.chmod(src / "etc" / "f3", 0o600)
    second = lg.out("commit", src, "-t", "perm:latest").strip()
    names = trees.git(lg, "diff", "--name-only", first, second).stdout.decode().split()
    assert names == ["rootfs/etc/.lgmeta"]
    patch = trees.git(lg, "diff", "-U0", first, second).stdout.decode().splitlines()
    assert [line[0] for line in patch if line[:1] in "+-" and not line.startswith(("+++", "---"))] == ["-", "+"]
    assert lg.out("diff", first, second, "--name-status") == "M\t/etc/f3\n"


# -- 12. git fsck --strict, lg fsck, clone, log ------------------------------------


@pytest.mark.root
def test_git_fsck_strict_after_everything(lg, tmp_path, outside):
    """``git fsck --strict`` finds nothing wrong in a store holding two commits of a
    tree with every kind of entry, owner, mode, xattr and awkward name."""
    _store_with_history(lg, tmp_path, outside)
    code, lines = _fsck_strict(trees.store_path(lg))
    assert code == 0 and not lines, "git fsck --strict:\n" + "\n".join(lines)


def _blame_fsck(lg, rev: str, lines: list[str], what: dict[bytes, str]) -> list[str]:
    """Turn ``error in tree ID: ...`` lines into the paths (below rootfs) holding ID;
    ``what`` maps a directory path to a description of the entry it was made for."""
    by_id: dict[str, list[bytes]] = {}
    for _, _, oid, path in trees.lg_tree_entries(lg, rev):
        by_id.setdefault(oid, []).append(path)
    out = []
    for line in lines:
        words = line.split()
        oid = words[3].rstrip(":") if len(words) > 3 else ""
        for path in by_id.get(oid, []):
            top = path.split(b"/")[0]
            out.append(f"{what.get(top, repr(path))}: {' '.join(words[4:])}")
    return out


def test_git_fsck_strict_special_names(lg, tmp_path):
    """Names git refuses or treats specially (.git, .gitmodules as file and symlink,
    .GIT, git~1, HFS/NTFS look-alikes, backslash-separated parts such as a\\.git),
    non-UTF-8 and control-character names: the store passes ``git fsck --strict``.
    Each name sits alone in its own directory, so on failure the message can say
    which names git complains about, and why."""
    src = tmp_path / "src"
    src.mkdir()
    what = {}
    for i, name in enumerate(trees.SPECIAL_FILE_NAMES):
        d = os.fsencode(src / f"file{i:02d}")
        os.mkdir(d)
        trees.write(os.path.join(d, name), b"[not a config file %d\n" % i)  # gitmodules-style parse bait
        what[b"file%02d" % i] = f"file {name!r}"
    for i, name in enumerate([b".gitmodules", b".git", b"a\\.gitmodules", b"b\\.git", b"c\\git~1"]):
        d = os.fsencode(src / f"link{i}")
        os.mkdir(d)
        os.symlink(b"target", os.path.join(d, name))
        what[b"link%d" % i] = f"symlink {name!r}"
    trees.make_special_names(src / "all-together")
    lg("commit", src, "-t", "names:latest")
    code, lines = _fsck_strict(trees.store_path(lg))
    assert code == 0 and not lines, (
        "git fsck --strict:\n" + "\n".join(lines) + "\nthe names it is about:\n" + "\n".join(_blame_fsck(lg, "names/latest", lines, what))
    )


@pytest.mark.root
def test_lg_fsck_clean_after_everything(lg, tmp_path, outside):
    """``lg fsck`` (git's checks plus metadata blobs, image trees and hardlink leaders)
    reports no problem and exits 0 on the everything store."""
    _store_with_history(lg, tmp_path, outside)
    proc = lg("fsck", "--json", check=False)
    assert proc.stdout.startswith(b"{"), f"lg fsck crashed ({proc.returncode}): {proc.stderr.decode(errors='replace')}"
    report = json.loads(proc.stdout)
    assert proc.returncode == 0 and report["ok"] and not report["problems"], json.dumps(report, indent=2)
    assert report["commits"] == 2


@pytest.mark.root
def test_clone_and_log_show_history(lg, tmp_path, outside):
    """``git clone`` of the store works and ``git log origin/NAME/TAG`` in the clone shows
    both commits' messages, newest first; an escaped registry-style name
    (localhost:5000/team/app:1.0) is reachable the same way."""
    _, first, second = _store_with_history(lg, tmp_path, outside)
    lg("tag", TAG, "localhost:5000/team/app:1.0")
    clone = tmp_path / "clone"
    proc = _run_git("clone", "--quiet", trees.store_path(lg), clone)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    for ref in (f"origin/{REF}", "origin/localhost%3A5000/team/app/1.0"):
        log = _run_git("-C", clone, "log", "--format=%H %s", ref)
        assert log.returncode == 0, log.stderr.decode(errors="replace")
        assert log.stdout.decode().splitlines() == [f"{second} {SECOND_MSG}", f"{first} {FIRST_MSG}"]
    show = _run_git("-C", clone, "show", f"origin/{REF}:config.json")
    assert show.returncode == 0 and isinstance(json.loads(show.stdout), dict)


@pytest.mark.root
def test_bare_store_log_and_show(lg, tmp_path, outside):
    """In the bare store itself, ``git log NAME/TAG`` shows the history, the image id lg
    printed is the commit id, each commit has exactly config.json and rootfs/, and
    ``git show NAME/TAG:config.json`` parses as JSON."""
    _, first, second = _store_with_history(lg, tmp_path, outside)
    store = trees.store_path(lg)
    log = _run_git("-C", store, "log", "--format=%H %P %s", REF)
    assert log.returncode == 0, log.stderr.decode(errors="replace")
    assert log.stdout.decode().splitlines() == [f"{second} {first} {SECOND_MSG}", f"{first}  {FIRST_MSG}"]
    assert _run_git("-C", store, "rev-parse", f"refs/heads/{REF}").stdout.decode().strip() == second
    for rev in (first, second):
        top = _run_git("-C", store, "ls-tree", rev).stdout.decode().splitlines()
        assert [line.split("\t")[1] for line in top] == ["config.json", "rootfs"], top
        assert [line.split()[1] for line in top] == ["blob", "tree"], top
    show = _run_git("-C", store, "show", f"{REF}:config.json")
    assert show.returncode == 0, show.stderr.decode(errors="replace")
    assert isinstance(json.loads(show.stdout), dict)
    lg_log = json.loads(lg.out("log", TAG, "--json"))
    assert [e["id"] for e in lg_log] == [second, first]


@pytest.mark.root
def test_gc_keeps_store_valid_and_exact(lg, tmp_path, outside):
    """After ``lg gc`` (a git repack) the store still passes ``git fsck --strict`` and
    the image still checks out exactly."""
    src, _, _ = _store_with_history(lg, tmp_path, outside, privileged=True)
    lg("gc")
    code, lines = _fsck_strict(trees.store_path(lg))
    assert code == 0 and not lines, "git fsck --strict after lg gc:\n" + "\n".join(lines)
    lg("checkout", TAG, tmp_path / "out", "--mode", trees.root_mode(src))
    assert_same_tree(src, tmp_path / "out")
