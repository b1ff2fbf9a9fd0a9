"""ADD of a git repository (issue 20): a local bare repository (file://) and the same
repository served by git daemon on 127.0.0.1, built into the busybox fixture."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time

import pytest

from .test_build import base, checkout, ctx, step_lines, write  # noqa: F401


def _git(*args, cwd=None) -> str:
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@t", GIT_CONFIG_GLOBAL="/dev/null")
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def bare(tmp_path):
    """A bare repository with a branch main (two commits), a tag v1 on the first, a subdirectory."""
    work = tmp_path / "work"
    work.mkdir()
    _git("init", "-q", "-b", "main", cwd=work)
    (work / "README").write_text("one\n")
    (work / "lib").mkdir()
    (work / "lib" / "x.py").write_text("x = 1\n")
    os.symlink("/etc/shadow", work / "escape")
    _git("add", "-A", cwd=work)
    _git("commit", "-qm", "one", cwd=work)
    _git("tag", "v1", cwd=work)
    first = _git("rev-parse", "HEAD", cwd=work)
    (work / "README").write_text("two\n")
    _git("commit", "-qam", "two", cwd=work)
    repo = tmp_path / "served" / "repo.git"
    _git("clone", "-q", "--bare", str(work), str(repo))
    return repo, work, first


@pytest.fixture
def daemon(bare):
    """git daemon serving the bare repository's parent on a free port of 127.0.0.1."""
    repo = bare[0]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(["git", "daemon", "--reuseaddr", "--export-all", f"--base-path={repo.parent}",
                             "--listen=127.0.0.1", f"--port={port}", str(repo.parent)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)  # git execs git-daemon, which forks: end the group
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield f"git://127.0.0.1:{port}/repo.git"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _tree(path) -> dict:
    out = {}
    for top, dirs, files in os.walk(path):
        for name in files + [d for d in dirs if os.path.islink(os.path.join(top, d))]:
            full = os.path.join(top, name)
            rel = os.path.relpath(full, path)
            out[rel] = os.readlink(full) if os.path.islink(full) else open(full, "rb").read()
    return out


def test_add_a_git_repository_from_a_bare_repo_and_git_daemon(lg, base, ctx, tmp_path, bare, daemon):  # noqa: F811
    repo, work, first = bare
    write(ctx, {"Dockerfile": (
        f"FROM {base}\n"
        f"ADD file://{repo} /head\n"
        f"ADD {daemon}#v1 /tag\n"
        f"ADD {daemon}#{first}:lib /sub\n"
        f"ADD --keep-git-dir=true {daemon}#main /kept\n"
    )})
    out = lg.out("build", "--progress", "plain", "-t", "g:1", str(ctx))
    co = checkout(lg, "g:1", tmp_path)
    assert _tree(co / "head") == {"README": b"two\n", "lib/x.py": b"x = 1\n", "escape": "/etc/shadow"}
    assert _tree(co / "tag")["README"] == b"one\n" and not (co / "tag" / ".git").exists()
    assert _tree(co / "sub") == {"x.py": b"x = 1\n"}
    assert (co / "kept" / ".git").is_dir() and (co / "kept" / "README").read_text() == "two\n"
    assert os.stat(co / "head" / "README").st_uid == 0
    # Unchanged refs come from the cache; a moved branch reruns its steps.
    out = lg.out("build", "--progress", "plain", "-t", "g:1", str(ctx))
    assert len(step_lines(out, "CACHED")) == 4
    (work / "README").write_text("three\n")
    _git("commit", "-qam", "three", cwd=work)
    _git("push", "-q", str(repo), "main", cwd=work)
    out = lg.out("build", "--progress", "plain", "-t", "g:2", str(ctx))
    assert any(s.startswith(f"ADD file://{repo}") for s in step_lines(out, "DONE"))
    assert (checkout(lg, "g:2", tmp_path) / "kept" / "README").read_text() == "three\n"
    assert not [n for n in os.listdir(os.path.join(lg.root, "tmp")) if n.startswith("build-git-")]


def test_bad_git_sources_are_one_line(lg, base, ctx, daemon):  # noqa: F811
    images = lg.out("images", "-q")
    for src, message in ((f"{daemon}#nosuchref", "nosuchref"), (f"{daemon}#main:nodir", "nodir not found"),
                         (f"{daemon}#--upload-pack=touch", "invalid git ref"),
                         (daemon.replace("repo.git", "none.git"), "ADD git://")):
        write(ctx, {"Dockerfile": f"FROM {base}\nADD {src} /x\n"})
        assert message in lg.fails("build", str(ctx))
    assert lg.out("images", "-q") == images
