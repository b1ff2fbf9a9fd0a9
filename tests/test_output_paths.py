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
import shutil
import stat
import subprocess
import tarfile
import tempfile
import threading
import tty
from contextlib import contextmanager
from dataclasses import dataclass

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


def test_export_into_a_fifo_whose_reader_leaves_says_so(lg, tmp_path):
    """A reader that closes the FIFO after 100 bytes: one line naming the FIFO and the
    broken pipe, exit 1 (click alone would exit 1 in silence, as for ``| head``). The
    image is bigger than a pipe's buffer, so lg is still writing when the reader leaves."""
    big = tmp_path / "big"
    big.mkdir()
    (big / "blob").write_bytes(os.urandom(1 << 20))
    lg("commit", big, "-t", "out:big")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    reader = subprocess.Popen(["head", "-c", "100", str(fifo)], stdout=subprocess.DEVNULL)
    try:
        err = lg.fails("export", "out:big", "-o", fifo, code=1, timeout=60)
    finally:
        reader.wait(timeout=60)
    assert err == f"lg: cannot write {fifo}: Broken pipe\n"
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


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


# -- another user racing lg in a directory they may write ------------------------------------
#
# The second review's findings: root exports into a directory uid 65534 may write (its home,
# a shared directory without the sticky bit), and 65534 swaps names there while lg works:
# (a) the temporary file for a link to root's 0600 key (lg chmodded and renamed by name),
# (b) the temporary OCI directory for a link to a root-only directory (lg filled and
# chmodded it), (c) PATH, or a directory on its way, exchanged with such a link
# (renameat2 RENAME_EXCHANGE) between lg's check and its open, (d) a directory on the way
# that simply is 65534's link to a root-only directory. Each attack is played by a real
# uid 65534 process; lg runs in process here (hundreds of rounds in seconds) and, for one
# round each, as the lg command.

ATTACKER = r'''
import ctypes, os, sys

def swap_once(target):
    """Move each of lg's temporaries away and put a link to TARGET in its place."""
    done = []
    for name in os.listdir("."):
        if ".lg-" in name and not name.startswith("moved-away-") and not os.path.islink(name):
            try:
                os.rename(name, "moved-away-" + name)
                os.symlink(target, name)
                done.append(name)
            except OSError:
                pass
    return done

mode, where = sys.argv[1], sys.argv[2]
os.chdir(where)
if mode == "swap":  # swap TARGET: forever, as fast as it can
    print("ready", flush=True)
    while True:
        for name in swap_once(sys.argv[3]):
            print("swapped", name, flush=True)
elif mode == "step":  # step TARGET: once per line on stdin, after lg made its temporary
    print("ready", flush=True)
    for _ in sys.stdin:
        print("swapped" if swap_once(sys.argv[3]) else "missed", flush=True)
elif mode == "flip":  # flip A B ...: exchange each pair of names forever
    libc = ctypes.CDLL(None, use_errno=True)
    pairs = list(zip(sys.argv[3::2], sys.argv[4::2]))
    print("ready", flush=True)
    while True:
        for a, b in pairs:
            libc.renameat2(-100, a.encode(), -100, b.encode(), 2)  # AT_FDCWD, RENAME_EXCHANGE
'''


class Attacker:
    """A uid 65534 process running one of ATTACKER's modes in ``where``."""

    def __init__(self, where, mode: str, *args: str):
        script = os.path.join(where, "attack.py")
        with open(script, "w") as f:
            f.write(ATTACKER)
        self.proc = subprocess.Popen(
            ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--", "/usr/bin/python3", script, mode, where, *args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1,
        )
        assert self.proc.stdout.readline() == "ready\n"

    def step(self) -> str:
        self.proc.stdin.write("go\n")
        return self.proc.stdout.readline().strip()

    def stop(self) -> list[str]:
        self.proc.kill()
        out, _ = self.proc.communicate()
        return out.splitlines()


@pytest.fixture
def arena():
    """Root's secrets (a 0600 key in a 0700 directory) and uid 65534's directory beside
    them, under a root-owned 0755 directory in /tmp; all removed afterwards."""
    if os.geteuid() != 0 or not os.path.exists("/usr/bin/python3"):
        pytest.skip("needs root and /usr/bin/python3 to play uid 65534")
    top = tempfile.mkdtemp(prefix="lg-race-", dir="/tmp")
    os.chmod(top, 0o755)
    try:
        vault = os.path.join(top, "vault")
        os.mkdir(vault, 0o700)
        key = os.path.join(vault, "id_rsa")
        with open(key, "wb") as f:
            f.write(b"-----BEGIN OPENSSH PRIVATE KEY-----\n")
        os.chmod(key, 0o600)
        home = os.path.join(top, "mallory")
        os.mkdir(home, 0o755)
        os.chown(home, NOBODY, NOBODY)
        yield Arena(top, vault, key, home)
    finally:
        shutil.rmtree(top)


@dataclass
class Arena:
    top: str
    vault: str
    key: str
    home: str

    def snapshot(self) -> tuple:
        """Everything about root's vault an attack could change."""
        st = os.lstat(self.key)
        with open(self.key, "rb") as f:
            data = f.read()
        v = os.lstat(self.vault)
        return (st.st_ino, stat.S_IMODE(st.st_mode), st.st_uid, data, stat.S_IMODE(v.st_mode), v.st_uid, sorted(os.listdir(self.vault)))


def export_in_process(lg, image: str, output: str, fmt: str = "rootfs"):
    """lg export, in this process: the race is run hundreds of times."""
    from layergit import api
    from layergit.porcelain import exporter

    return exporter.export(api.open_repo(lg.root), image, output, fmt)


def attempt(lg, image: str, output: str, fmt: str = "rootfs") -> str | None:
    """Export in process; the one-line error, or None on success."""
    from layergit.errors import LgError

    try:
        export_in_process(lg, image, output, fmt)
    except LgError as exc:
        return str(exc)
    return None


def hook_before(monkeypatch, module, name: str, action) -> None:
    """Run ``action`` when lg calls ``module.name``: lg is then between making its
    temporary and renaming it into place."""
    real = getattr(module, name)

    def hooked(*args, **kwargs):
        action()
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, hooked)


def test_swapped_temporary_file_never_reaches_roots_file(lg, image, arena, monkeypatch):
    """(a) In lock step, 200 times: once lg has created .bb.tar.lg-*, 65534 moves it away
    and links the name to root's 0600 key (swap.sh). lg changes its file through its
    fd and renames at the directory fd; what lands at bb.tar is then 65534's own link, which
    lg notices and reports. The key keeps its mode, inode and content every time."""
    from layergit.fs import tarwrite

    before = arena.snapshot()
    out = os.path.join(arena.home, "bb.tar")
    attacker = Attacker(arena.home, "step", arena.key)
    try:
        hook_before(monkeypatch, tarwrite, "write_snapshot", lambda: results.append(attacker.step()))
        results: list[str] = []
        for _ in range(200):
            if os.path.lexists(out):
                os.unlink(out)  # the last round's link
            error = attempt(lg, image, out)
            assert arena.snapshot() == before
            assert error is not None and "changed by someone else" in error
        assert results == ["swapped"] * 200
    finally:
        attacker.stop()
    assert os.readlink(out) == arena.key  # 65534's link, renamed as a link, never followed


def test_temporary_moved_away_before_the_rename_is_reported(lg, image, arena, monkeypatch):
    """The free-running swapper's other window: the temporary is moved away and nothing
    is at its name yet when lg renames it (the rename finds no file). That is the same
    one line, not an internal error, and PATH stays empty."""
    from layergit.fs import hostpath

    out = os.path.join(arena.home, "bb.tar")

    def move_temporary_away():
        (temporary,) = [n for n in os.listdir(arena.home) if n.startswith(".bb.tar.lg-")]
        os.rename(os.path.join(arena.home, temporary), os.path.join(arena.home, "moved-away"))

    before = arena.snapshot()
    hook_before(monkeypatch, hostpath, "_publish", move_temporary_away)
    error = attempt(lg, image, out)
    assert error is not None and "changed by someone else" in error, error
    assert not os.path.lexists(out) and os.path.exists(os.path.join(arena.home, "moved-away"))
    assert arena.snapshot() == before


def test_racing_swapper_never_reaches_roots_file(lg, image, arena):
    """(a) free running: 65534 swaps every temporary it sees, as fast as it can, while
    root exports 200 times, then once as the lg command. Each export either succeeds or
    says the file was changed; the key is untouched after each."""
    before = arena.snapshot()
    out = os.path.join(arena.home, "bb.tar")
    attacker = Attacker(arena.home, "swap", arena.key)
    try:
        for _ in range(200):
            if os.path.lexists(out):
                os.unlink(out)  # the last round's link, if the attacker won the name
            error = attempt(lg, image, out)
            assert arena.snapshot() == before
            assert error is None or "changed by someone else" in error
        os.unlink(out)
        proc = lg("export", image, "-o", out, check=False)
        assert proc.returncode == 0 or b"changed by someone else" in proc.stderr, proc.stderr
    finally:
        swaps = attacker.stop()
    assert arena.snapshot() == before
    print(f"{len(swaps)} swaps")


def test_swapped_oci_directory_never_reaches_roots_directory(lg, image, arena, monkeypatch):
    """(b) --format oci -o DIR/: lg made .out.lg-*, 0700; 65534 moves it away and links the
    name to root's 0700 vault (iswap.c) before a byte is written, 50 times in lock step.
    lg fills and chmods the directory it made (held by an fd), never the vault, and
    finding 65534's link at PATH, fails and empties its own directory."""
    from layergit.fs import imagewrite

    before = arena.snapshot()
    attacker = Attacker(arena.home, "step", arena.vault)
    try:
        results: list[str] = []
        hook_before(monkeypatch, imagewrite, "write_oci", lambda: results.append(attacker.step()))
        for i in range(50):
            error = attempt(lg, image, os.path.join(arena.home, f"out{i}") + "/", "oci")
            assert arena.snapshot() == before
            assert error is not None and "changed by someone else" in error
        assert results == ["swapped"] * 50
    finally:
        attacker.stop()
    moved = [n for n in os.listdir(arena.home) if n.startswith("moved-away-")]
    assert len(moved) == 50  # lg's directories, where 65534 moved them, emptied by lg on failing
    assert all(os.listdir(os.path.join(arena.home, n)) == [] for n in moved)


def test_racing_oci_swapper_never_reaches_roots_directory(lg, image, arena):
    """(b) free running, 100 OCI exports in process and one lg command."""
    before = arena.snapshot()
    attacker = Attacker(arena.home, "swap", arena.vault)
    try:
        for i in range(100):
            error = attempt(lg, image, os.path.join(arena.home, f"out{i}") + "/", "oci")
            assert arena.snapshot() == before
            assert error is None or "someone else" in error
        proc = lg("export", image, "--format", "oci", "-o", os.path.join(arena.home, "cli") + "/", check=False)
        assert proc.returncode == 0 or b"someone else" in proc.stderr, proc.stderr
    finally:
        attacker.stop()
    assert arena.snapshot() == before


def test_exchanged_names_never_reach_roots_file(lg, image, arena):
    """(c) flip.c: 65534 exchanges, nonstop, its file out.tar with its link to root's key,
    and its directory backups/ with its link to root's vault. lg opens each component once,
    without following, and judges a link by the link it opened: 200 exports to each name
    either write 65534's own file, refuse the link, or find its rename undone by the next
    exchange; the key is untouched after each."""
    home = arena.home
    for name, data in (("out.tar", b"mallory's\n"), ("backups/id_rsa", b"mallory's\n")):
        os.makedirs(os.path.dirname(os.path.join(home, name)), exist_ok=True)
        with open(os.path.join(home, name), "wb") as f:
            f.write(data)
    os.symlink(arena.key, os.path.join(home, "key-link"))
    os.symlink(arena.vault, os.path.join(home, "vault-link"))
    for dirpath, dirnames, filenames in os.walk(home):
        for n in [dirpath] + [os.path.join(dirpath, x) for x in dirnames + filenames]:
            os.chown(n, NOBODY, NOBODY, follow_symlinks=False)
    before = arena.snapshot()
    attacker = Attacker(home, "flip", "out.tar", "key-link", "backups", "vault-link")
    outcomes = set()
    try:
        for target in ("out.tar", "backups/id_rsa"):
            for _ in range(200):
                error = attempt(lg, image, os.path.join(home, target))
                assert arena.snapshot() == before
                assert error is None or "owned by uid 65534" in error or "changed by someone else" in error, error
                outcomes.add("refused" if error else "written")
    finally:
        attacker.stop()
    assert outcomes == {"written", "refused"}  # both sides of the exchange were met


def test_link_of_another_user_in_a_directory_component_is_refused(lg, image, arena):
    """(d) ~65534/backups -> root's vault; -o ~65534/backups/id_rsa (or a new name there)
    is refused in one line naming the link, and nothing in the vault changes. Root's own
    link on the way is followed."""
    link = os.path.join(arena.home, "backups")
    os.symlink(arena.vault, link)
    os.chown(link, NOBODY, NOBODY, follow_symlinks=False)
    before = arena.snapshot()
    for name in ("id_rsa", "app.tar"):
        for fmt in ("rootfs", "docker-archive"):
            err = lg.fails("export", image, "--format", fmt, "-o", os.path.join(link, name))
            assert f"refusing to follow {link}: a symbolic link owned by uid 65534" in err
    lg.fails("export", image, "--format", "oci", "-o", os.path.join(link, "layout") + "/")
    assert arena.snapshot() == before
    mine = os.path.join(arena.top, "mine")
    os.symlink("vault", mine)
    lg("export", image, "-o", os.path.join(mine, "app.tar"))
    assert "manifest.json" in names(open(os.path.join(arena.vault, "app.tar"), "rb").read())
