"""Arguments lg cannot use are one line on stderr each, never "internal error": a revision
with thousands of digits or suffixes, a root that is not a usable directory.
(Container flags are in test_container_inputs.py, subnets in test_network_subnets.py.)"""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest


@pytest.fixture
def img(lg, tmp_path):
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "f").write_text("1\n")
    lg("commit", tree, "-t", "img", "-m", "one")
    return "img"


@pytest.mark.parametrize("rev, code, text", [
    ("img~" + "9" * 5000, 2, "a count after ~ or ^ has at most 9 digits"),  # was: internal error, int() limit
    ("img^" + "9" * 5000, 2, "a count after ~ or ^ has at most 9 digits"),
    ("img~999999999", 1, "has no parent #1"),
    ("img" + "~" * 100_000, 1, "has no parent #1"),  # was quadratic: 40 s for 20,000
    ("img" + "~1" * 20_000, 1, "has no parent #1"),
    ("i" * 100_000, 2, "invalid revision"),
])
def test_revisions_out_of_bounds_are_one_short_line(lg, img, rev, code, text):
    for command in (["log"], ["show"], ["diff"], ["run", "--rm"]):
        started = time.monotonic()
        err = lg.fails(*command, rev, code=code if command[0] != "run" else None, timeout=60)
        assert text in err and len(err) < 300, (command, err[:300])
        assert time.monotonic() - started < 20, command


def test_roots_that_are_not_usable_directories(lg, tmp_path):
    """--root /proc was "internal error: GitError"; a file, a device, a read-only directory are one
    line too, and nothing is left in them."""
    plain = tmp_path / "file"
    plain.write_text("")
    for root, text in (("/proc", "/proc is not a layergit root: it holds "),
                       ("/proc/self/fd", "/proc/self/fd is not a layergit root: it holds "),
                       ("/dev/null", "cannot use /dev/null as a layergit root"),
                       (str(plain), "is a file"), (f"{plain}/sub", "cannot use")):
        for command in (["images"], ["ps"], ["log", "x"]):
            err = lg.fails("--root", root, *command)
            assert text in err, (root, command, err)
    assert plain.read_text() == ""


@pytest.mark.root
def test_a_directory_that_is_not_a_root_is_left_alone(lg, tmp_path):
    """An existing directory holding anything but a root's own entries is refused before lg
    tightens its mode or makes a directory in it: --root /etc would have made /etc 0711, and
    --root /sys/fs/cgroup made cgroups. An empty directory, or a root of lg's, is used."""
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o755)
    (theirs / "notes.txt").write_text("mine")
    for root in (theirs, "/etc", "/sys/fs/cgroup"):
        before = sorted(os.listdir(root)), os.stat(root).st_mode
        err = lg.fails("--root", root, "images")
        assert f"{root} is not a layergit root: it holds " in err and len(err.strip().splitlines()) == 1, err
        assert (sorted(os.listdir(root)), os.stat(root).st_mode) == before, root
    empty = tmp_path / "empty"
    empty.mkdir()
    lg("--root", empty, "images")
    lg("--root", empty, "images")  # now holding what lg made: still a root
    assert "store.git" in os.listdir(empty)


@pytest.mark.root
def test_a_read_only_root_is_one_line(lg, tmp_path):
    """A read-only directory (a bind mount in a mount namespace of the test's own: root writes
    through any mode), itself or its parent."""
    ro = tmp_path / "ro"
    ro.mkdir()
    script = 'mount --make-rprivate / && mount --bind -o ro "$0" "$0" && exec "$@"'
    for root in (ro, ro / "sub"):
        proc = subprocess.run(["unshare", "-m", "sh", "-c", script, str(ro), lg.python, "-m", "cli", "images"],
                              env=lg.env(LG_ROOT=str(root)), capture_output=True, timeout=60)
        err = proc.stderr.decode()
        assert proc.returncode == 1 and f"cannot use {root} as a layergit root: Read-only" in err, err
        assert len(err.strip().splitlines()) == 1
    assert os.listdir(ro) == []


def test_a_message_or_author_that_is_not_utf8_is_one_line(lg, img, tmp_path):
    """A commit's text is UTF-8 for git: a byte that is not (here 0xFF in argv) was an encoding
    traceback; now one line, and no commit."""
    for args in (["-m", "bad \udcff\x1b[2J"], ["--author", "A\udcff <a@x>"]):
        err = lg.fails("commit", tmp_path / "tree", "-t", "img", "--allow-empty", *args, code=2)
        assert "is not valid UTF-8" in err and "\x1b" not in err, err
    assert len(json.loads(lg.out("log", "img", "--json"))) == 1
