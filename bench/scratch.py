"""Scratch space: one directory under /var/tmp, by default holding a dedicated filesystem.

Everything a run creates (the workload copy, stores, checkouts) goes in one place, so the
tools read and write the same filesystem and one deletion cleans up.

Why a dedicated filesystem (a journaled ext4 in a sparse file under the scratch
directory, loop-mounted) rather than /var/tmp itself: this VM's root filesystem is ext4
*without a journal*, and there the inode allocator skips, testing each one, inodes freed
in the last 60 s (6 min while their inode table block is dirty): ext4's
recently_deleted(). Creating thousands of files soon after thousands were deleted is
then several times slower, and other people's test runs on the same disk delete files
all the time. Measured side by side on this VM: a second `ostree commit` of the workload
(which creates and frees a temporary inode per entry it already has) took 1.5-1.7 s on the loop
filesystem and 9-10 s on the root filesystem in the same minute; `tar -x` of the workload
0.4-6.6 s on the root filesystem depending on recent deletes. Those swings are the
machine's, not the tools', and they hit tools unequally (ostree and tar create one inode
per file, lg writes a pack), so the ratios would mislead. A private journaled ext4 is
what users' machines typically have and sees no one else's deletes.

`--no-loop` runs directly in /var/tmp instead (the harness then still never deletes
while timing, see scenarios.retire); the report header says which was used.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

IMAGE_SIZE = 48 * 2**30     # sparse: only what a run writes takes space (about 10 GB)
IMAGE_INODES = 2_000_000    # a full run creates a few hundred thousand
# The loop filesystem is only used when the host filesystem has this much room left for it.
MIN_HOST_FREE = 24 * 2**30


class Scratch:
    def __init__(self, base: Path, loop: bool, log):
        self.log = log
        base.mkdir(parents=True, exist_ok=True)
        self.dir = Path(tempfile.mkdtemp(prefix="lg-bench.", dir=base))
        self.mount: Path | None = None
        self.device: str | None = None  # the loop device, attached with direct I/O
        self.description = f"{self.dir} on the host filesystem"
        self.work = self.dir
        if loop:
            try:
                why_not = self._mount_loop()
            except BaseException:
                self.close(keep=False)
                raise
            if why_not:
                log(f"no dedicated filesystem ({why_not}); working in {self.dir} directly")
                self.description += f" (no loop filesystem: {why_not})"

    def _mount_loop(self) -> str | None:
        if os.geteuid() != 0:
            return "not root"
        if not shutil.which("mkfs.ext4"):
            return "no mkfs.ext4"
        if shutil.disk_usage(self.dir).free < MIN_HOST_FREE:
            return f"less than {MIN_HOST_FREE >> 30} GiB free in {self.dir.parent}"
        image, mnt = self.dir / "fs.img", self.dir / "fs"
        self.log(f"creating a journaled ext4 in {image}, mounted on {mnt}")
        with open(image, "wb") as f:
            f.truncate(IMAGE_SIZE)
        # No lazy init: the kernel would otherwise zero inode tables in the background
        # while we time things.
        mkfs = subprocess.run(["mkfs.ext4", "-q", "-F", "-N", str(IMAGE_INODES),
                               "-E", "lazy_itable_init=0,lazy_journal_init=0,nodiscard", str(image)],
                              capture_output=True, text=True)
        if mkfs.returncode != 0:
            image.unlink()
            return f"mkfs.ext4 failed: {mkfs.stderr.strip()}"
        attach = subprocess.run(["losetup", "--find", "--show", "--direct-io=on", str(image)],
                                capture_output=True, text=True)
        if attach.returncode != 0:
            image.unlink()
            return f"losetup failed: {attach.stderr.strip()}"
        self.device = attach.stdout.strip()
        mnt.mkdir()
        self.mount = mnt  # before mounting: an interrupt in between still unmounts
        mount = subprocess.run(["mount", self.device, str(mnt)], capture_output=True, text=True)
        if mount.returncode != 0:
            self.mount = None
            mnt.rmdir()
            self._detach()
            image.unlink()
            return f"mount {self.device} failed: {mount.stderr.strip()}"
        self.work = mnt
        self.description = (
            f"a dedicated journaled ext4 (loop-mounted {image} with direct I/O, sparse,"
            f" {IMAGE_SIZE >> 30} GiB)"
        )
        return None

    def _detach(self) -> None:
        if self.device is not None:
            subprocess.run(["losetup", "-d", self.device], capture_output=True)
            self.device = None

    def free(self) -> int:
        return shutil.disk_usage(self.work).free

    def close(self, keep: bool) -> None:
        """Unmount (unless keeping) and delete everything. Safe to call twice."""
        if keep:
            self.log(f"kept {self.dir}" + (f" (still mounted on {self.mount})" if self.mount else ""))
            return
        if self.mount is not None:
            # The image goes with one unlink: no mass delete on the host filesystem.
            out = subprocess.run(["umount", str(self.mount)], capture_output=True, text=True)
            if out.returncode != 0:
                subprocess.run(["umount", "-l", str(self.mount)], capture_output=True)
            self.mount = None
        self._detach()  # after a lazy unmount, the kernel frees it once the last user goes
        self.log(f"removing {self.dir}")
        remove(self.dir, self.log)


def remove(path: Path, log) -> None:
    """rm -rf that stays on one filesystem: never into a mount left behind."""
    if path.exists():
        subprocess.run(["rm", "-rf", "--one-file-system", "--", str(path)])
        if path.exists():
            log(f"warning: could not remove {path}")
