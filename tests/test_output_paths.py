"""``lg export -o PATH`` against what a hostile or careless PATH can be.

The review's finding: export renamed a regular file over /dev/null. Every kind of
thing at PATH is played here, with the variant an attacker tries next: a device node
(a private one first, then the real /dev/null), a FIFO with a reader, a tty, a new
name, a regular file (and one hardlinked to a victim), a directory, a missing
directory, symbolic links (to a file, to a device, to nothing, planted by another
user in a sticky directory), and failures before and during the write.
"""

from __future__ import annotations

import io
import os
import select
import stat
import subprocess
import tarfile
import threading
import tty
from contextlib import contextmanager

import pytest

NOBODY = 65534


@pytest.fixture
def image(lg, tmp_path) -> str:
    src = tmp_path / "src"
    (src / "etc").mkdir(parents=True)
    (src / "etc" / "hostname").write_bytes(b"box\n")
    lg("commit", src, "-t", "out:1")
    return "out:1"


def archive(lg, image, fmt: str = "rootfs") -> bytes:
    return lg("export", image, "--format", fmt, "-o", "-").stdout


def names(data: bytes) -> list[str]:
    return tarfile.open(fileobj=io.BytesIO(data)).getnames()


def listing(directory) -> dict:
    """Names and inodes in ``directory``: proves nothing was added, removed or replaced."""
    return {e.name: e.inode() for e in os.scandir(directory)}


def assert_device(path, major: int, minor: int, mode: int = 0o666) -> None:
    st = os.lstat(path)
    assert stat.S_ISCHR(st.st_mode), f"{path} is no longer a character device: {oct(st.st_mode)}"
    assert (os.major(st.st_rdev), os.minor(st.st_rdev)) == (major, minor)
    assert stat.S_IMODE(st.st_mode) == mode


# -- special files are written into ------------------------------------------------


@pytest.mark.root
def test_export_into_a_device_node_keeps_it(lg, image, tmp_path):
    """A private 1:3 node first (nothing on the host at stake), then the real /dev/null:
    both are still the same character device 1:3, mode 0666, afterwards."""
    private = tmp_path / "null"
    os.mknod(private, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    os.chmod(private, 0o666)
    before = os.lstat(private).st_ino
    lg("export", image, "-o", private)
    assert_device(private, 1, 3)
    assert os.lstat(private).st_ino == before
    try:
        lg("export", image, "-o", "/dev/null")
        lg("export", image, "--format", "oci", "-o", "/dev/null")
        assert_device("/dev/null", 1, 3)
        assert not [n for n in os.listdir("/dev") if ".lg-" in n], "a temporary file was left in /dev"
    finally:  # never leave the host without /dev/null, even when this test fails
        st = os.lstat("/dev/null")
        if not stat.S_ISCHR(st.st_mode) or st.st_rdev != os.makedev(1, 3):
            os.unlink("/dev/null")
            os.mknod("/dev/null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
            os.chmod("/dev/null", 0o666)


def test_export_into_a_fifo_reaches_its_reader(lg, image, tmp_path):
    """tar -t on the other end of a FIFO gets a whole archive; the FIFO stays a FIFO."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    reader = subprocess.Popen(["tar", "-t", "-f", str(fifo)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        lg("export", image, "-o", fifo, timeout=60)
        out, err = reader.communicate(timeout=60)
    finally:
        reader.kill()
        reader.wait()
    assert reader.returncode == 0, err
    assert "manifest.json" in out.decode().split()
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert listing(tmp_path).keys() == {"src", "lgroot", "fifo"}


def test_export_into_a_tty_writes_the_archive_there(lg, image):
    """A terminal named with -o (here a pty in raw mode) receives the archive's bytes,
    exactly those of ``-o -``, and stays a terminal."""
    master, slave = os.openpty()
    try:
        tty.setraw(slave)
        path = os.ttyname(slave)
        got = bytearray()
        done = threading.Event()

        def drain():
            while True:
                ready, _, _ = select.select([master], [], [], 0.2)
                if ready:
                    got.extend(os.read(master, 65536))
                elif done.is_set():
                    return

        reader = threading.Thread(target=drain, daemon=True)
        reader.start()
        lg("export", image, "--format", "rootfs", "-o", path, timeout=60)
        done.set()
        reader.join(10)
        assert bytes(got) == archive(lg, image)
        assert stat.S_ISCHR(os.stat(path).st_mode)
    finally:
        os.close(slave)
        os.close(master)


def test_export_to_dev_stdout(lg, image):
    """/dev/stdout is a root-owned link to /proc/self/fd/1 (here a pipe): followed, written
    into, and still that link afterwards."""
    try:
        assert lg("export", image, "--format", "rootfs", "-o", "/dev/stdout").stdout == archive(lg, image)
        assert os.readlink("/dev/stdout") == "/proc/self/fd/1"
    finally:  # a regression would have replaced the host's link with a file: put it back
        if not os.path.islink("/dev/stdout") and os.geteuid() == 0:
            os.unlink("/dev/stdout")
            os.symlink("/proc/self/fd/1", "/dev/stdout")


# -- regular files and new names are replaced atomically -----------------------------


def test_export_to_a_new_path(lg, image, tmp_path):
    """A new name gets the archive with the mode of any new file (0666 less the umask)."""
    out = tmp_path / "new.tar"
    lg("export", image, "--format", "rootfs", "-o", out)
    assert out.read_bytes() == archive(lg, image)
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o666 & ~umask
    assert listing(tmp_path).keys() == {"src", "lgroot", "new.tar"}


def test_export_over_a_regular_file_replaces_it_atomically(lg, image, tmp_path):
    """The old file is replaced, not written into: a new inode with the new archive, the
    old inode intact for whoever still has it open, its 0600 mode kept (never widened)."""
    out = tmp_path / "out.tar"
    out.write_bytes(b"the previous archive")
    os.chmod(out, 0o600)
    with open(out, "rb") as held:
        old = os.fstat(held.fileno()).st_ino
        lg("export", image, "-o", out)
        assert held.read() == b"the previous archive"
    st = os.stat(out)
    assert st.st_ino != old
    assert stat.S_IMODE(st.st_mode) == 0o600
    assert "manifest.json" in names(out.read_bytes())
    assert listing(tmp_path).keys() == {"src", "lgroot", "out.tar"}


def test_export_over_a_hardlink_leaves_the_other_name_alone(lg, image, tmp_path):
    """PATH hardlinked to a victim file (the variant of the symlink attack that needs no
    link at all): the victim keeps its content, PATH becomes the archive."""
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious\n")
    os.link(victim, tmp_path / "out.tar")
    lg("export", image, "-o", tmp_path / "out.tar")
    assert victim.read_bytes() == b"precious\n"
    assert "manifest.json" in names((tmp_path / "out.tar").read_bytes())


# -- refused in one line, nothing touched ------------------------------------------------


@pytest.mark.parametrize("fmt", ["rootfs", "docker-archive"])
def test_export_to_a_directory_is_refused(lg, image, tmp_path, fmt):
    """Only an OCI layout goes into a directory; any other format refuses one in one line
    and leaves it as it was."""
    target = tmp_path / "dir"
    target.mkdir()
    (target / "keep").write_bytes(b"mine\n")
    before = (listing(target), os.stat(target).st_mtime_ns)
    err = lg.fails("export", image, "--format", fmt, "-o", target)
    assert "is a directory" in err
    assert (listing(target), os.stat(target).st_mtime_ns) == before
    lg.fails("export", image, "--format", fmt, "-o", str(target / "new") + "/")
    assert listing(target) == before[0]


def test_oci_layout_needs_a_new_or_empty_directory(lg, image, tmp_path):
    """An OCI layout fills a new or empty directory; a non-empty one is refused untouched."""
    lg("export", image, "--format", "oci", "-o", str(tmp_path / "layout") + "/")
    assert sorted(os.listdir(tmp_path / "layout")) == ["blobs", "index.json", "oci-layout"]
    empty = tmp_path / "empty"
    empty.mkdir()
    lg("export", image, "--format", "oci", "-o", empty)
    assert "index.json" in os.listdir(empty)
    before = listing(tmp_path / "layout")
    err = lg.fails("export", image, "--format", "oci", "-o", tmp_path / "layout")
    assert "not empty" in err
    assert listing(tmp_path / "layout") == before
    assert not [n for n in os.listdir(tmp_path) if ".lg-" in n]


def test_export_into_a_missing_directory(lg, image, tmp_path):
    err = lg.fails("export", image, "-o", tmp_path / "nope" / "out.tar")
    assert "nope" in err
    assert not (tmp_path / "nope").exists()
    (tmp_path / "file").write_bytes(b"")
    lg.fails("export", image, "-o", tmp_path / "file" / "out.tar")


def test_failing_export_leaves_nothing_behind(lg, image, tmp_path):
    """A bad image name fails before PATH is touched: no file, no temporary file, and an
    existing file keeps its content."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.tar").write_bytes(b"old\n")
    before = listing(out)
    for fmt in ("rootfs", "docker-archive", "oci"):
        lg.fails("export", "no/such:image", "--format", fmt, "-o", out / "old.tar")
        lg.fails("export", "no/such:image", "--format", fmt, "-o", out / "new.tar")
    lg.fails("export", "no/such:image", "--format", "oci", "-o", str(out / "layout") + "/")
    assert listing(out) == before
    assert (out / "old.tar").read_bytes() == b"old\n"


@contextmanager
def small_tmpfs(path, size: str):
    path.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


@pytest.mark.root
def test_export_failing_midway_leaves_the_old_file(lg, tmp_path):
    """The disk fills while the archive is written (a 256 KiB tmpfs, a 1 MiB image): one
    line, the old file keeps its content, no temporary file or directory stays."""
    src = tmp_path / "big"
    src.mkdir()
    (src / "blob").write_bytes(os.urandom(1 << 20))
    lg("commit", src, "-t", "big:1")
    with small_tmpfs(tmp_path / "small", "256k") as small:
        (small / "out.tar").write_bytes(b"old\n")
        for fmt in ("rootfs", "docker-archive", "oci"):
            err = lg.fails("export", "big:1", "--format", fmt, "-o", small / "out.tar")
            assert "No space left on device" in err and "out.tar" in err
        err = lg.fails("export", "big:1", "--format", "oci", "-o", str(small / "layout") + "/")
        assert "No space left on device" in err
        assert os.listdir(small) == ["out.tar"]
        assert (small / "out.tar").read_bytes() == b"old\n"


# -- symbolic links ----------------------------------------------------------------------


def test_symlink_to_a_file_replaces_the_file_not_the_link(lg, image, tmp_path):
    """As tar -f does, the link is followed; what it leads to is replaced atomically and
    the link stays a link."""
    (tmp_path / "real.tar").write_bytes(b"old\n")
    os.symlink("real.tar", tmp_path / "link.tar")
    lg("export", image, "--format", "rootfs", "-o", tmp_path / "link.tar")
    assert os.readlink(tmp_path / "link.tar") == "real.tar"
    assert (tmp_path / "real.tar").read_bytes() == archive(lg, image)


@pytest.mark.root
def test_symlink_to_a_device_writes_into_the_device(lg, image, tmp_path):
    os.mknod(tmp_path / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    os.chmod(tmp_path / "null", 0o666)
    os.symlink(tmp_path / "null", tmp_path / "out.tar")
    lg("export", image, "-o", tmp_path / "out.tar")
    assert_device(tmp_path / "null", 1, 3)
    assert os.path.islink(tmp_path / "out.tar")


def test_dangling_symlink_is_refused(lg, image, tmp_path):
    """Creating through a link to nothing would let the link choose where the archive lands."""
    os.symlink(tmp_path / "elsewhere" / "planted", tmp_path / "out.tar")
    (tmp_path / "elsewhere").mkdir()
    err = lg.fails("export", image, "-o", tmp_path / "out.tar")
    assert "symbolic link" in err
    assert os.listdir(tmp_path / "elsewhere") == []


@pytest.mark.root
def test_symlink_planted_by_another_user_is_refused(lg, image, tmp_path):
    """The /tmp attack: in a sticky world-writable directory, uid 65534 plants out.tar ->
    a file only root may write. Root's export refuses in one line (whatever
    fs.protected_symlinks says) and the victim is untouched."""
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    victim = tmp_path / "shadow"
    victim.write_bytes(b"root:*:19000:0:99999:7:::\n")
    os.chmod(victim, 0o600)
    os.symlink(victim, shared / "out.tar")
    os.chown(shared / "out.tar", NOBODY, NOBODY, follow_symlinks=False)
    for fmt in ("rootfs", "docker-archive"):
        err = lg.fails("export", image, "--format", fmt, "-o", shared / "out.tar")
        assert "owned by uid 65534" in err
    assert victim.read_bytes() == b"root:*:19000:0:99999:7:::\n"
    assert os.path.islink(shared / "out.tar")
    # a chain: root's own link to the planted one is refused just the same
    os.symlink(shared / "out.tar", tmp_path / "mine.tar")
    lg.fails("export", image, "-o", tmp_path / "mine.tar")
    assert victim.read_bytes() == b"root:*:19000:0:99999:7:::\n"
