"""store.Store.open of a new store: the bare repository git init --bare makes, written
by lg itself (no libgit2 import), under a temporary name renamed into place."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from layergit.store.store import Store


def test_a_new_store_is_a_bare_repository_git_reads(tmp_path):
    path = tmp_path / "store.git"
    Store.open(str(path))
    assert sorted(os.listdir(tmp_path)) == ["store.git"]
    assert (path / "HEAD").read_text() == "ref: refs/heads/master\n"
    if shutil.which("git"):
        def git(*args):
            return subprocess.run(["git", "--git-dir", str(path), *args], capture_output=True, text=True,
                                  check=True).stdout.strip()
        assert git("rev-parse", "--is-bare-repository") == "true"
        assert git("config", "core.logAllRefUpdates") == "always" and git("config", "gc.auto") == "0"
        subprocess.run(["git", "--git-dir", str(path), "fsck"], check=True, capture_output=True)


@pytest.mark.parametrize("pid", ["own", "dead"])
def test_a_killed_inits_leftover_goes_even_under_our_own_pid(tmp_path, pid):
    """PIDs come round again (in a container, soon): a leftover named with our own pid
    was a killed lg's, since we are the one making the store now."""
    number = os.getpid() if pid == "own" else 2**22 + 7  # above pid_max: no such process
    leftover = tmp_path / f"store.git.init-{number}"
    (leftover / "objects").mkdir(parents=True)
    (leftover / "junk").write_text("half made")
    Store.open(str(tmp_path / "store.git"))
    assert sorted(os.listdir(tmp_path)) == ["store.git"]
