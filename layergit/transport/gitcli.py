"""The git command-line client as lg's transport: list, fetch and push refs.

Measured before choosing (bench scenario ``remote-push``, see docs/architecture.md):
git sends a Debian image's two versions in about a quarter of the time dulwich's
client takes, because it copies compressed entries out of the store's packs and
computes deltas, where dulwich inflates and re-deflates every object. git also
honours the user's ssh config and credential helpers. Every git process started here
gets the same environment (:func:`_env`): no terminal prompt (a missing credential
fails instead of hanging), only the protocols lg accepts, C locale for parsing.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ..errors import LgError, NotFound
from ..store import gitenv
from ..text import printable
from .urls import ALLOWED_PROTOCOLS

LS_REMOTE_MAX = 64 << 20  # bytes of a remote's ref listing lg reads: ~500,000 refs
STDERR_KEPT = 1 << 20  # bytes of git's stderr kept for its error message; the rest is read and dropped
_LS_LINE = re.compile(rb"([0-9a-f]{40})\t(.+)")  # fullmatch
# git's own progress of the pack it receives or sends (C locale): objects done and in
# all, and the bytes so far once git has measured them ("3.82 MiB", "512 bytes").
_PROGRESS = re.compile(rb"(?:Receiving|Writing) objects: +\d+% \((\d+)/(\d+)\)"
                       rb"(?:, ([\d.]+) (bytes|KiB|MiB|GiB))?")
_UNITS = {b"bytes": 1, b"KiB": 1 << 10, b"MiB": 1 << 20, b"GiB": 1 << 30}
SEGMENT_MAX = 1 << 16  # bytes of one stderr line looked at for progress

Progress = Callable[[int, bool], None]  # (bytes so far, whether the pack is complete)


class RemoteError(LgError):
    """A remote that cannot be reached, is not a git repository, or refused what lg sent."""


@dataclass(frozen=True)
class RemoteRefs:
    """What a remote advertises: refs lg could read (name -> id) and how many it could not."""

    refs: dict[str, bytes]
    unreadable: int


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    return gitenv.environ(GIT_TERMINAL_PROMPT="0", GIT_ALLOW_PROTOCOL=ALLOWED_PROTOCOLS, LC_ALL="C",
                          GIT_PROTOCOL_FROM_USER="0", **(extra or {}))


def _failure(what: str, url: str, stderr: bytes) -> RemoteError:
    """One line from git's complaint: its first ``error:`` line (the cause: ``fatal:``
    lines that follow say only that the step failed), else its first ``fatal:``, else
    its last line."""
    lines = [line.strip() for line in stderr.decode(errors="replace").splitlines() if line.strip()]
    pick = next((line[len("remote: "):] for line in lines if line.startswith("remote: lg: refused:")), None)
    pick = pick or next((line for line in lines if line.startswith("error:")), None)
    pick = pick or next((line for line in lines if line.startswith("fatal:")), None)
    pick = pick or (lines[-1] if lines else "git failed")
    pick = pick.partition(":")[2].strip() if pick.startswith(("fatal:", "error:")) else pick
    return RemoteError(f"{what} {printable(url)}: {printable(pick)[:300]}")


class _Stderr:
    """A git process's stderr, read as it comes by a thread of its own: the first
    STDERR_KEPT bytes kept for the message, the rest read and dropped. What a remote
    says reaches it (ssh passes the server's stderr on): one that writes without end
    must neither block git on a full pipe, while lg waits on its stdout, nor fill lg's
    memory. With ``progress``, git's own progress lines (``--progress``) go to it as
    bytes, and are not kept."""

    def __init__(self, progress: Progress | None = None) -> None:
        self._read, self.write = os.pipe()
        self._kept = bytearray()
        self._progress = progress
        self._thread = threading.Thread(target=self._drain if progress is None else self._drain_lines,
                                        daemon=True)

    def start(self) -> None:
        """Once the child holds the write end: lg's copy goes, so the end of git is EOF."""
        os.close(self.write)
        self._thread.start()

    def abandon(self) -> None:
        os.close(self.write)
        os.close(self._read)

    def _drain(self) -> None:
        with open(self._read, "rb", buffering=0) as f:
            while piece := f.read(1 << 16):
                self._keep(piece)

    def _keep(self, piece: bytes) -> None:
        if len(self._kept) < STDERR_KEPT:
            self._kept += piece[:STDERR_KEPT - len(self._kept)]

    def _drain_lines(self) -> None:
        """Lines end in ``\r`` (a progress update) or ``\n``; one longer than
        SEGMENT_MAX is kept as text without being looked at."""
        assert self._progress is not None
        pending = b""
        with open(self._read, "rb", buffering=0) as f:
            while piece := f.read(1 << 16):
                *lines, pending = re.split(rb"[\r\n]", pending + piece)
                if len(pending) > SEGMENT_MAX:
                    lines, pending = [*lines, pending], b""
                for line in lines:
                    m = _PROGRESS.match(line)
                    if m is None:
                        self._keep(line + b"\n" if line else b"")
                    elif m.group(3):
                        done = int(float(m.group(3)) * _UNITS[m.group(4)])
                        self._progress(done, m.group(1) == m.group(2) and line.endswith(b"done."))
        self._keep(pending)

    def text(self) -> bytes:
        """What was kept, once git has exited; a process git left behind holding the pipe
        (an ssh master, say) is not waited for long."""
        self._thread.join(timeout=5)
        return bytes(self._kept)


def _start(argv: list[str], env: dict[str, str], progress: Progress | None = None,
           **kw) -> tuple[subprocess.Popen, _Stderr]:
    err = _Stderr(progress)
    try:
        proc = subprocess.Popen(argv, stderr=err.write, env=env, **kw)
    except FileNotFoundError:
        err.abandon()
        raise LgError("git is not installed; lg talks to remotes through it") from None
    err.start()
    return proc, err


def git(git_dir: str, *args: str, stdin: bytes | None = None, extra_env: dict[str, str] | None = None,
        check_what: str = "", url: str = "", progress: Progress | None = None) -> subprocess.CompletedProcess:
    """Run ``git --git-dir GIT_DIR ARGS``; with ``check_what``, a failure is a RemoteError
    saying what failed on ``url``."""
    proc, err = _start(["git", "--git-dir", git_dir, *args], _env(extra_env), progress,
                       stdout=subprocess.PIPE, stdin=subprocess.PIPE if stdin is not None else None)
    out, _ = proc.communicate(stdin)
    done = subprocess.CompletedProcess(proc.args, proc.returncode, out, err.text())
    if check_what and done.returncode != 0:
        raise _failure(check_what, url, done.stderr)
    return done


def ls_remote(git_dir: str, url: str) -> RemoteRefs:
    """Every ref the remote advertises. Names are the remote's to choose: lines that are
    not an id, a tab and a name of printable ASCII are counted and left out, as are
    peeled tags; the listing is read up to LS_REMOTE_MAX bytes."""
    argv = ["git", "--git-dir", git_dir, "ls-remote", "--", url]
    proc, stderr = _start(argv, _env(), stdout=subprocess.PIPE)
    assert proc.stdout is not None
    with proc:
        out = proc.stdout.read(LS_REMOTE_MAX + 1)
        if len(out) > LS_REMOTE_MAX:
            proc.kill()
            raise RemoteError(f"{printable(url)} advertises more than {LS_REMOTE_MAX >> 20} MiB of refs")
    err = stderr.text()
    if proc.returncode != 0:
        if b"does not appear to be a git repository" in err or b"not a git repository" in err:
            raise NotFound(f"{printable(url)} is not a git repository")
        raise _failure("cannot list", url, err)
    refs: dict[str, bytes] = {}
    unreadable = 0
    for line in out.splitlines():
        m = _LS_LINE.fullmatch(line)
        name = m.group(2) if m else b""
        if name.endswith(b"^{}") or name == b"HEAD":
            continue
        if m is None or not all(0x21 <= c < 0x7F for c in name):
            unreadable += 1
            continue
        refs[name.decode()] = bytes.fromhex(m.group(1).decode())
    return RemoteRefs(refs, unreadable)


# What a fetch admits, as git checks it while indexing the pack: every object fsck'd
# (transfer.fsckObjects), with the checks plain ``git fsck --strict`` makes errors
# here too, and always a pack (unpackLimit=1), which lg moves into the store whole.
_FETCH_CONFIG = ("transfer.fsckObjects=true", "fetch.unpackLimit=1", "transfer.unpackLimit=1",
                 *(f"fetch.fsck.{msg}=error" for msg in (
                     "hasDot", "hasDotdot", "hasDotgit", "fullPathname", "zeroPaddedFilemode",
                     "badFilemode", "duplicateEntries", "treeNotSorted", "emptyName",
                     "nulInHeader", "badTimezone", "missingEmail", "badDate", "largePathname")))


def fetch(git_dir: str, url: str, refs: Iterable[str], max_bytes: int | None = None,
          progress: Progress | None = None) -> None:
    """Fetch ``refs`` of ``url`` into the repository ``git_dir`` under the same names.

    ``git_dir`` is a quarantine (:meth:`Store.quarantine`) whose alternate is the
    store: git negotiates with the store's refs as what we have, so only missing
    objects travel, and they land in the quarantine's own pack. git's fetch has no
    size limit of its own, so with ``max_bytes`` the quarantine is watched as it fills
    and git is stopped once it holds more: a remote may send far more than it should.
    ``progress`` hears the bytes received as git counts them.
    """

    config = [arg for item in _FETCH_CONFIG for arg in ("-c", item)]
    spec = "".join(f"+{ref}:{ref}\n" for ref in refs).encode()
    argv = ["git", "--git-dir", git_dir, *config, "fetch", "--no-tags", "--no-write-fetch-head",
            "--progress" if progress else "--quiet", "--stdin", "--", url]
    proc, stderr = _start(argv, _env(), progress, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    over = threading.Event()
    if max_bytes is not None:
        threading.Thread(target=_watch, args=(proc, git_dir, max_bytes, over), daemon=True).start()
    proc.communicate(spec)
    err = stderr.text()
    # The watcher stops a remote that goes on sending; one whose whole pack lands between
    # two of its looks (a local pack of a few MiB does) is measured here, once git is done.
    if max_bytes is not None and objects_bytes(git_dir) > max_bytes:
        over.set()
    if over.is_set():
        raise RemoteError(f"{printable(url)} sent more than {max_bytes} bytes (--max-pack); stopped,"
                          " nothing was kept")
    if proc.returncode != 0:
        raise _failure("cannot fetch from", url, err)


def _watch(proc: subprocess.Popen, git_dir: str, limit: int, over) -> None:
    """Kill ``proc`` once the objects of ``git_dir`` add up to more than ``limit`` bytes."""
    import time

    while proc.poll() is None:
        if objects_bytes(git_dir) > limit:
            over.set()
            proc.kill()
            return
        time.sleep(0.05)


def objects_bytes(git_dir: str) -> int:
    """The sizes of the files below ``git_dir``/objects, added up (no link followed): what
    a fetch has received, or what a store's objects take."""
    total = 0
    for folder, _, files in os.walk(os.path.join(git_dir, "objects")):
        for name in files:
            try:
                total += os.lstat(os.path.join(folder, name)).st_size
            except FileNotFoundError:
                pass
    return total


def objects_between(git_dir: str, tips: Iterable[bytes],
                    haves: Iterable[bytes]) -> list[tuple[str, int, int, str]]:
    """(type, size, size on disk, path) of every object reachable from ``tips`` and not
    from ``haves``: what a push sends, before it is sent."""
    revs = "".join(f"{t.hex()}\n" for t in tips) + "".join(f"^{h.hex()}\n" for h in haves)
    listing = git(git_dir, "rev-list", "--objects", "--stdin", stdin=revs.encode(), check_what="cannot list")
    out = []
    lines = listing.stdout.splitlines()
    batch = b"".join(line[:40] + b"\n" for line in lines)
    sizes = git(git_dir, "cat-file", "--batch-check=%(objecttype) %(objectsize) %(objectsize:disk)",
                stdin=batch, check_what="cannot size objects in")
    for line, size_line in zip(lines, sizes.stdout.splitlines(), strict=True):
        kind, size, disk = size_line.decode().split()
        out.append((kind, int(size), int(disk), line[41:].decode(errors="surrogateescape")))
    return out


# git's "sparse" object walk (pack.useSparse, on by default) treats as already sent only
# the trees of the commits a push builds on: an image rebuilt with --no-cache sent 6.2 MB
# where the exact walk sends 55 kB, because its twin build's trees were never looked at.
# The exact walk costs a few tens of milliseconds on an image's few thousand trees.
EXACT_WALK = "pack.useSparse=false"


def push(git_dir: str, url: str, updates: list[tuple[str, bytes, bytes | None]],
         progress: Progress | None = None) -> None:
    """Set each ``(ref, new, expected old)`` on ``url`` in one atomic push. The old
    value is a lease: had the remote moved since lg looked, git refuses the whole push.
    ``progress`` hears the bytes sent as git counts them."""
    leases = [f"--force-with-lease={ref}:{old.hex() if old else ''}" for ref, _, old in updates]
    specs = [f"+{new.hex()}:{ref}" for ref, new, _ in updates]
    git(git_dir, "-c", EXACT_WALK, "push", "--atomic", "--quiet", *(["--progress"] if progress else []),
        "--no-verify", *leases, "--", url, *specs, check_what="cannot push to", url=url, progress=progress)
