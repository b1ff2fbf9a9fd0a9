"""ADD of a git repository, as BuildKit does it: ``ADD https://host/repo.git#REF:SUBDIR DEST``,
``ADD git@host:repo.git DEST``, ``git://``, ``ssh://`` and ``file://`` URLs.

The ref (a branch, a tag or a commit id; HEAD when absent) is fetched with the git
command, depth 1, into a fresh repository under the root's ``tmp/``, checked out,
and read like a context directory (symlinks copied, never followed); ``.git`` is
left out unless ``--keep-git-dir``. The step's cache key is the commit fetched, so a
moved branch reruns the step and an unchanged one hits the cache, as in BuildKit
(which also keys on the commit). Submodules are not fetched.

The remote is hostile: git runs with no terminal prompt, no system or user
configuration, no hooks (a fresh repository has none), and a time bound; a remote
or ref that fails is one line naming the source.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import urllib.parse
from dataclasses import dataclass

from ..text import printable
from .context import Context, Source
from .dockerfile import DockerfileError

_SCP = re.compile(r"^[A-Za-z0-9_.-]+@[A-Za-z0-9_.-]+:")  # git@host:path
_TIMEOUT = 600
_REF = re.compile(r"^[A-Za-z0-9_./@^{}~+-]*$")


@dataclass(frozen=True)
class GitSource:
    url: str
    ref: str  # "" for the remote's HEAD
    subdir: str  # "" for the whole tree


def parse(src: str) -> GitSource | None:
    """The git repository an ADD source names, None if it names none (BuildKit's rules:
    git://, ssh://, git@ and file:// always; http(s) when the path ends in .git)."""
    url, _, fragment = src.partition("#")
    if url.startswith(("git://", "ssh://", "file://")) or _SCP.match(url):
        pass
    elif url.startswith(("http://", "https://")):
        if not urllib.parse.urlparse(url).path.endswith(".git"):
            return None
    else:
        return None
    ref, _, subdir = fragment.partition(":")
    if ref.startswith("-") or not _REF.match(ref) or ".." in ref.split("/"):
        raise DockerfileError(f"ADD {printable(src)}: invalid git ref {printable(ref)!r}")
    subdir = subdir.strip("/")
    if ".." in subdir.split("/"):
        raise DockerfileError(f"ADD {printable(src)}: the subdirectory must stay inside the repository")
    return GitSource(url, ref, subdir)


def _git(args: list[str], cwd: str, what: str) -> str:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/nonexistent",
        "GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null",
        "GIT_ASKPASS": "/bin/false", "SSH_ASKPASS": "/bin/false", "LC_ALL": "C",
    }
    if "SSH_AUTH_SOCK" in os.environ:  # git@ and ssh:// sources use the user's agent, as buildx --ssh does
        env["SSH_AUTH_SOCK"] = os.environ["SSH_AUTH_SOCK"]
    try:
        done = subprocess.run(["git", "-c", "core.hooksPath=/dev/null", "-c", "protocol.allow=always", *args],
                              cwd=cwd, env=env, capture_output=True, timeout=_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise DockerfileError(f"{what}: git timed out after {_TIMEOUT}s") from None
    if done.returncode != 0:
        lines = done.stderr.decode(errors="replace").strip().splitlines()
        raise DockerfileError(f"{what}: {printable(lines[-1] if lines else 'git failed')}")
    return done.stdout.decode(errors="replace").strip()


def fetch(source: GitSource, keep_git_dir: bool, tmp: str, writer) -> tuple[Source, str]:
    """The repository's tree at the ref (or its subdirectory) as a directory source,
    and the commit id for the cache key."""
    what = f"ADD {printable(source.url)}"
    os.makedirs(tmp, exist_ok=True)
    work = tempfile.mkdtemp(dir=tmp, prefix="build-git-")
    try:
        _git(["init", "-q", "repo"], work, what)
        repo = os.path.join(work, "repo")
        _git(["remote", "add", "origin", "--", source.url], repo, what)
        _git(["fetch", "-q", "--depth", "1", "--no-tags", "origin", source.ref or "HEAD"], repo, what)
        commit = _git(["rev-parse", "--verify", "FETCH_HEAD^{commit}"], repo, what)
        _git(["-c", "advice.detachedHead=false", "checkout", "-q", "FETCH_HEAD"], repo, what)
        if not keep_git_dir:
            shutil.rmtree(os.path.join(repo, ".git"))
        from ..fs.statcache import StatCache
        from .dockerignore import Ignore

        context = Context(repo, Ignore([]), StatCache(None))
        try:
            rel = source.subdir or "."
            try:
                found = context.read(rel, writer)
            except (DockerfileError, OSError):
                raise DockerfileError(f"{what}: {printable(rel)} not found at {commit}") from None
        finally:
            os.close(context.fd)
        key = f"git {commit} keep={keep_git_dir} {source.subdir}"
        return (Source(".", True, found.entries) if found.is_dir else found), key
    finally:
        shutil.rmtree(work, ignore_errors=True)
