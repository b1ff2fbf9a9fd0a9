"""The workload: a Debian minbase root filesystem, the same bytes for every tool.

`fixtures/minbase.sh` builds (once, cached) a debootstrap minbase rootfs of about 200 MB
and 6,768 entries. Every scenario starts from a copy of it that has **no device nodes,
fifos or sockets**: `ostree commit` refuses device nodes, git silently skips them, and a
ratio only means something if every tool handles the same tree. Those few entries
(eight character devices under /dev) are removed once, here, for all tools, lg included;
the report says so. Everything else (owners, modes, symlinks, hardlinks, empty
directories) is kept, so each tool pays for the metadata it chooses to keep.

The copy lives in the harness's work directory (see scratch.py), where the stores and
checkouts go too: the tree and everything made from it share one filesystem, so
hardlink checkouts are possible and no tool reads across filesystems.

Scenarios that commit a changed tree edit files by appending a line: the size changes,
so no tool can miss the edit through a coarse mtime, and the change is real content.
"""

from __future__ import annotations

import os
import shlex
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from .tools import REPO

FIXTURE_SCRIPT = REPO / "fixtures" / "minbase.sh"
DOC = "usr/share/doc"
# Same flags as fixtures/minbase.sh uses to write its tarball: numeric ids, all xattrs.
TAR_FLAGS = ["--numeric-owner", "--xattrs", "--xattrs-include=*"]


class WorkloadError(Exception):
    pass


@dataclass
class Workload:
    fixture: Path          # the cached rootfs fixtures/minbase.sh printed
    rootfs: Path           # the device-free copy every tool reads
    tarball: Path          # a tar of `rootfs`, for the tar peer
    removed: list[str]     # entries dropped from the copy (device nodes, fifos, sockets)
    entries: int           # entries in `rootfs`, the root directory included
    size: int              # bytes of regular files in `rootfs`
    edit_candidates: list[str]  # relative paths, in the order edits pick them

    @classmethod
    def prepare(cls, scratch: Path, log) -> "Workload":
        fixture = _run_fixture_script(log)
        base = scratch / "workload"
        base.mkdir()
        rootfs = base / "rootfs"
        log(f"workload: copying {fixture} to {rootfs}")
        subprocess.run(["cp", "-a", "--", str(fixture), str(rootfs)], check=True)
        removed = _remove_special_files(rootfs)
        entries, size, regular = _survey(rootfs)
        tarball = base / "rootfs.tar"
        log(f"workload: writing {tarball}")
        subprocess.run(["tar", *TAR_FLAGS, "-cpf", str(tarball), "-C", str(rootfs), "."], check=True)
        return cls(fixture, rootfs, tarball, removed, entries, size, _edit_order(regular))

    def describe(self) -> str:
        return (f"Debian minbase rootfs from fixtures/minbase.sh ({self.fixture}): "
                f"{self.entries} entries, {self.size / 1e6:.0f} MB of file data; "
                f"{len(self.removed)} device nodes/fifos/sockets removed "
                f"({', '.join(self.removed) or 'none'}) and the same device-free copy used by every tool")

    def copy(self, dest: Path) -> Path:
        """A private, writable copy (real copies, not hardlinks: a hardlinked copy would have
        every file at nlink 2, which changes what a metadata-exact tool records and does)."""
        subprocess.run(["cp", "-a", "--", str(self.rootfs), str(dest)], check=True)
        return dest

    def edits(self, n: int) -> list[str]:
        if n > len(self.edit_candidates):
            raise WorkloadError(f"only {len(self.edit_candidates)} files to edit, {n} asked")
        return self.edit_candidates[:n]

    @staticmethod
    def edit(root: Path, files: list[str], line: str = "bench edit") -> None:
        """Append a line to each file (setup-time edits, done in-process)."""
        for rel in files:
            with open(root / rel, "a") as f:
                f.write(line + "\n")

    @staticmethod
    def edit_script(root: Path, files: list[str]) -> str:
        """The same edit as a shell command, for hyperfine's --prepare."""
        paths = " ".join(shlex.quote(str(root / rel)) for rel in files)
        return f"for f in {paths}; do echo 'bench edit' >>\"$f\"; done" if files else "true"


def _run_fixture_script(log) -> Path:
    log(f"workload: {FIXTURE_SCRIPT}")
    # Its progress goes to stderr (shown); its last stdout line is the rootfs path.
    out = subprocess.run(["bash", str(FIXTURE_SCRIPT)], stdout=subprocess.PIPE, stderr=sys.stderr, text=True)
    lines = out.stdout.strip().splitlines()
    if out.returncode != 0 or not lines:
        raise WorkloadError(f"{FIXTURE_SCRIPT} failed (exit {out.returncode})")
    path = Path(lines[-1])
    if not path.is_dir():
        raise WorkloadError(f"{FIXTURE_SCRIPT} printed {path}, which is not a directory")
    return path


def _remove_special_files(root: Path) -> list[str]:
    removed = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames + dirnames:
            p = os.path.join(dirpath, name)
            mode = os.lstat(p).st_mode
            if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
                os.unlink(p)
                removed.append("/" + os.path.relpath(p, root))
    return sorted(removed)


def _survey(root: Path) -> tuple[int, int, list[str]]:
    """Entry count, file bytes, and the regular single-link files (candidates for edits)."""
    entries, size, regular = 1, 0, []
    for dirpath, dirnames, filenames in os.walk(root):
        entries += len(dirnames) + len(filenames)
        for name in filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            if stat.S_ISREG(st.st_mode):
                size += st.st_size
                if st.st_nlink == 1:
                    regular.append(os.path.relpath(p, root))
    return entries, size, regular


def _edit_order(regular: list[str]) -> list[str]:
    """Files edits pick, in order: /usr/share/doc/*/copyright first (the brief's "10 files"),
    then the rest of /usr/share/doc. Sorted, so every run edits the same files."""
    docs = sorted(p for p in regular if p.startswith(DOC + "/"))
    copyright = [p for p in docs if p.count("/") == 4 and p.endswith("/copyright")]
    first = set(copyright)
    return copyright + [p for p in docs if p not in first]
