"""``lg checkout`` as root must not hand an image's privileges to other users of the host.

The review's finding: ``lg checkout blog:v1~1 /srv/rollback`` put the image's
setuid-root binaries and a 0666 ``dev/sda`` under a 0755 directory: local root for
every user. The attack is played here by uid 65534 against an image carrying a
setuid-root busybox (and a hardlink to it), a setgid file, a file with
capabilities and a 0666 block device, through plain and ``-H`` (hardlinked from
the cache) checkouts, and against the cache itself.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile

import pytest

from . import trees

pytestmark = pytest.mark.root
NOBODY = 65534
MODES = ["copy", "hardlink"]
# busybox (setuid), su (its hardlink), sgid, ping (capabilities), dev/sda
PRIVILEGED = 5


def flags(mode: str) -> list[str]:
    return ["-H"] if mode == "hardlink" else []


@pytest.fixture
def image(lg, tmp_path, busybox_rootfs) -> str:
    """The image: what a real rootfs holds that is local root for whoever reaches it."""
    if not trees.xattrs_supported(tmp_path, "security"):
        pytest.skip("no security.* xattrs on this filesystem")
    src = tmp_path / "src"
    (src / "bin").mkdir(parents=True)
    (src / "dev").mkdir()
    os.chmod(src, 0o755)
    shutil.copy(os.path.join(busybox_rootfs, "bin", "busybox"), src / "bin" / "busybox")
    os.chmod(src / "bin" / "busybox", 0o4755)
    os.link(src / "bin" / "busybox", src / "bin" / "su")
    os.symlink("busybox", src / "bin" / "sh")
    trees.write(src / "bin" / "sgid", b"#!/bin/sh\n", mode=0o2755)
    os.chown(src / "bin" / "sgid", 0, 42)
    os.chmod(src / "bin" / "sgid", 0o2755)  # chown cleared it
    trees.write(src / "bin" / "ping", b"\x7fELF pretend\n", mode=0o755)
    os.setxattr(src / "bin" / "ping", "security.capability", trees.cap_v2(trees.CAP_NET_RAW))
    os.mknod(src / "dev" / "sda", stat.S_IFBLK | 0o666, os.makedev(7, 0))
    os.chmod(src / "dev" / "sda", 0o666)
    os.mknod(src / "dev" / "whiteout", stat.S_IFCHR, os.makedev(0, 0))  # reaches no device: not privileged
    lg("commit", src, "-t", "img")
    return "img"


@pytest.fixture
def shared():
    """A root-owned 0755 directory under /tmp: like /srv, every user can walk into it."""
    path = tempfile.mkdtemp(prefix="lg-shared-", dir="/tmp")
    os.chmod(path, 0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path)


def as_nobody(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), user=NOBODY, group=NOBODY, extra_groups=[], capture_output=True, text=True)


def nobody_stat(path) -> subprocess.CompletedProcess:
    return as_nobody("stat", "-c", "%a", str(path))


def mode_of(path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.mark.parametrize("mode", MODES)
def test_new_checkout_is_private_to_root(lg, image, shared, mode):
    """A new directory is created 0700 (not the image root's 0755) and owned by root, so
    uid 65534 cannot even stat the setuid binary or the device; no warning is needed."""
    dest = os.path.join(shared, "rollback")
    proc = lg("checkout", *flags(mode), image, dest)
    assert proc.stderr == b""
    assert mode_of(dest) == 0o700
    assert (os.stat(dest).st_uid, os.stat(dest).st_gid) == (0, 0)
    assert mode_of(os.path.join(dest, "bin", "busybox")) == 0o4755  # the image itself is exact
    assert stat.S_ISBLK(os.lstat(os.path.join(dest, "dev", "sda")).st_mode)
    for victim in ("bin/busybox", "dev/sda"):
        attack = nobody_stat(os.path.join(dest, victim))
        assert attack.returncode != 0 and "Permission denied" in attack.stderr, attack


@pytest.mark.parametrize("mode", MODES)
def test_mode_is_honoured_and_exposure_warned(lg, image, shared, mode):
    """--mode 0755 is obeyed, and since 65534 can then reach the setuid binary (the
    attack works: stat shows 4755 to it), that is said in one line with the count."""
    dest = os.path.join(shared, "open")
    proc = lg("checkout", *flags(mode), "--mode", "0755", image, dest)
    assert mode_of(dest) == 0o755
    lines = proc.stderr.decode().splitlines()
    assert len(lines) == 1 and f"holds {PRIVILEGED} " in lines[0] and "--no-special" in lines[0], lines
    assert nobody_stat(os.path.join(dest, "bin", "busybox")).stdout.strip() == "4755"


def test_a_group_other_than_roots_counts_as_reachable(lg, image, shared):
    """A 0750 ancestor lets in its group: for root:root that is root alone (no warning),
    for root:staff every member of staff (warned)."""
    for group, warnings in ((0, 0), (50, 1)):
        parent = os.path.join(shared, f"group-{group}")
        os.mkdir(parent, 0o750)
        os.chown(parent, 0, group)
        err = lg("checkout", "--mode", "755", image, os.path.join(parent, "dest")).stderr.decode()
        assert len(err.splitlines()) == warnings, err
        assert mode_of(os.path.join(parent, "dest")) == 0o755


@pytest.fixture
def owned(lg, image, tmp_path) -> str:
    """The image again, its root directory now uid 65534's and 0700, holding a setuid-root
    copy of id(1) (which, unlike busybox, keeps the euid it is given and shows it)."""
    src = tmp_path / "src"
    shutil.copy("/usr/bin/id", src / "bin" / "id")
    os.chmod(src / "bin" / "id", 0o4755)
    os.chown(src, NOBODY, NOBODY)
    os.chmod(src, 0o700)
    lg("commit", src, "-t", "owned")
    return "owned"


def run_setuid_id(dest) -> subprocess.CompletedProcess:
    """uid 65534 runs the checkout's setuid-root id: "0" if the attack works."""
    return as_nobody("env", os.path.join(dest, "bin", "id"), "-u")  # env: exec's error as text


@pytest.mark.parametrize("how", ["new", "mode-700", "hardlink", "existing"])
def test_image_root_owner_is_not_handed_the_checkout(lg, owned, shared, how):
    """The attack: an image whose root is uid 65534's, 0700. Checked out as the image
    says, that directory let 65534 in (owner), and it ran the setuid-root id with euid
    0. The checkout directory's owner is now the caller's (root), like its mode, for a
    new directory, with --mode 700, with -H, and into an existing root-owned 0700
    directory (which is not chowned either): 65534 gets EACCES, and no warning is due."""
    dest = os.path.join(shared, how)
    flags = {"mode-700": ["--mode", "700"], "hardlink": ["-H"]}.get(how, [])
    if how == "existing":
        os.mkdir(dest, 0o700)
    err = lg("checkout", *flags, owned, dest).stderr
    attack = run_setuid_id(dest)
    assert attack.returncode != 0 and "Permission denied" in attack.stderr, attack
    assert nobody_stat(os.path.join(dest, "bin", "busybox")).returncode != 0
    st = os.stat(dest)
    assert (st.st_uid, st.st_gid, mode_of(dest)) == (0, 0, 0o700)
    assert os.stat(os.path.join(dest, "bin", "id")).st_mode & stat.S_ISUID  # the tree itself is exact
    assert err == b""


def test_image_root_owner_only_when_asked(lg, owned, shared):
    """--root-owner image gives the directory the image root's owner, as asked: the
    attack then works (euid 0) and the warning says what let 65534 in and how to undo it."""
    dest = os.path.join(shared, "asked")
    err = lg("checkout", "--root-owner", "image", owned, dest).stderr.decode()
    assert os.stat(dest).st_uid == NOBODY and mode_of(dest) == 0o700
    assert len(err.splitlines()) == 1 and f"holds {PRIVILEGED + 1} " in err
    assert "--root-owner image made it uid 65534's; leave that out, or use --no-special" in err
    assert run_setuid_id(dest).stdout.strip() == "0"


def acl_letting_in(uid: int) -> bytes:
    """A system.posix_acl_access value: rwx for the owner, r-x for ``uid``, the group and
    the mask, nothing for others (the kernel's xattr form: version 2, then tag, perm, id)."""
    import struct

    undefined = 0xFFFFFFFF
    entries = [(0x01, 7, undefined), (0x02, 5, uid), (0x04, 5, undefined), (0x10, 5, undefined), (0x20, 0, undefined)]
    return struct.pack("<I", 2) + b"".join(struct.pack("<HHI", *e) for e in entries)


def test_image_root_acls_are_not_applied(lg, image, tmp_path, shared):
    """An image root with an ACL letting uid 65534 in: the checkout directory does not get
    it (the ACL is the caller's, like the owner), unless --root-owner image."""
    src = tmp_path / "src"
    try:
        os.setxattr(src, "system.posix_acl_access", acl_letting_in(NOBODY))
    except OSError:
        pytest.skip("no POSIX ACLs on this filesystem")
    lg("commit", src, "-t", "acl")
    dest = os.path.join(shared, "acl")
    assert lg("checkout", "acl", dest).stderr == b""
    assert "system.posix_acl_access" not in os.listxattr(dest)
    assert nobody_stat(os.path.join(dest, "bin", "busybox")).returncode != 0
    dest = os.path.join(shared, "acl-image")
    err = lg("checkout", "--root-owner", "image", "--mode", "750", "acl", dest).stderr.decode()
    assert "system.posix_acl_access" in os.listxattr(dest)
    assert nobody_stat(os.path.join(dest, "bin", "busybox")).stdout.strip() == "4755"
    assert "with group 0 or an ACL" in err


def test_existing_directory_is_private_while_written(lg, image, shared, monkeypatch):
    """An existing 0755 directory keeps its mode in the end (warned), but while the
    entries are written it is 0700: the setuid files are not reachable before the
    warning is."""
    from layergit import api
    from layergit.fs import checkout as fs_checkout

    dest = os.path.join(shared, "existing")
    os.mkdir(dest, 0o755)
    os.chmod(dest, 0o755)
    seen = []
    real = fs_checkout.DirectoryWriter.written

    def spy(self, node):
        seen.append(mode_of(dest))
        return real(self, node)

    monkeypatch.setattr(fs_checkout.DirectoryWriter, "written", spy)
    result = api.checkout(api.open_repo(lg.root), image, dest)
    assert seen and set(seen) == {0o700}
    assert mode_of(dest) == 0o755 and len(result.warnings) == 1


@pytest.mark.parametrize("mode", MODES)
def test_existing_reachable_directory_warns_once(lg, image, shared, mode):
    """An existing 0755 directory under a 0755 parent keeps its mode (lg does not decide
    for the host) and gets one warning naming the count and the way out; a 0711 one
    (enter but not list: paths are guessable) warns too."""
    for perms in (0o755, 0o711):
        dest = os.path.join(shared, f"existing-{perms:o}")
        os.mkdir(dest)
        os.chmod(dest, perms)
        err = lg("checkout", *flags(mode), image, dest).stderr.decode()
        assert mode_of(dest) == perms
        assert len(err.splitlines()) == 1, err
        assert err.startswith("lg: warning: ") and f"holds {PRIVILEGED} " in err and "--no-special" in err


def test_existing_directory_behind_a_closed_parent_does_not_warn(lg, image, tmp_path):
    """0755 itself, but below a 0700 directory: nobody else can walk there."""
    parent = tmp_path / "closed"
    parent.mkdir(mode=0o700)
    dest = parent / "dest"
    dest.mkdir(mode=0o755)
    assert lg("checkout", image, dest).stderr == b""


@pytest.mark.parametrize("mode", MODES)
def test_no_special_writes_no_privileges(lg, image, shared, mode):
    """--no-special: no setuid/setgid bits, no capabilities, no block device (the 0:0
    whiteout stays), the hardlink still a hardlink; the counts are reported and,
    holding nothing privileged, a reachable directory draws no warning."""
    dest = os.path.join(shared, "clean")
    err = lg("checkout", *flags(mode), "--no-special", "--mode", "0755", image, dest).stderr.decode()
    assert err == "lg: --no-special: left out 1 device node, cleared setuid/setgid bits or capabilities on 4 files\n"
    for name in ("busybox", "su", "sgid", "ping"):
        path = os.path.join(dest, "bin", name)
        assert not os.lstat(path).st_mode & (stat.S_ISUID | stat.S_ISGID), name
        assert "security.capability" not in os.listxattr(path), name
    assert mode_of(os.path.join(dest, "bin", "busybox")) == 0o755
    assert os.path.samefile(os.path.join(dest, "bin", "busybox"), os.path.join(dest, "bin", "su"))
    assert sorted(os.listdir(os.path.join(dest, "dev"))) == ["whiteout"]
    assert subprocess.run([os.path.join(dest, "bin", "busybox"), "true"]).returncode == 0


def test_hardlinked_checkouts_and_the_cache_stay_out_of_reach(image, tmp_path, shared):
    """checkout -H links into the cache's farm: a --no-special one links to stripped
    objects of its own, never to the setuid inode. The farm's directories are 0700,
    also when an older lg left them wider, so 65534 cannot reach the setuid inode
    through a layergit root it can walk into either."""
    from layergit import api

    from .conftest import Lg

    lg = Lg(os.path.join(shared, "lgroot"))  # every directory above the cache is 0755
    lg("commit", tmp_path / "src", "-t", "img")
    lg("checkout", "-H", "img", os.path.join(shared, "full"))
    lg("checkout", "-H", "--no-special", "img", os.path.join(shared, "clean"))
    full = os.lstat(os.path.join(shared, "full", "bin", "busybox"))
    clean = os.lstat(os.path.join(shared, "clean", "bin", "busybox"))
    assert full.st_mode & stat.S_ISUID and not clean.st_mode & stat.S_ISUID
    assert full.st_ino != clean.st_ino
    api.materialise(api.open_repo(lg.root), "img")  # what lg run mounts: cache/rootfs
    cache = os.path.join(lg.root, "cache")
    assert mode_of(os.path.join(cache, "objects")) == mode_of(os.path.join(cache, "rootfs")) == 0o700
    os.chmod(os.path.join(cache, "objects"), 0o755)
    os.chmod(os.path.join(cache, "rootfs"), 0o755)
    lg("checkout", "-H", "img", os.path.join(shared, "again"))
    api.materialise(api.open_repo(lg.root), "img")
    assert mode_of(os.path.join(cache, "objects")) == mode_of(os.path.join(cache, "rootfs")) == 0o700
    os.chmod(cache, 0o755)  # as an older lg left it (the next lg command closes it again: root.py)
    assert nobody_stat(cache).returncode == 0  # the walk up to the farm is open ...
    attack = as_nobody("find", os.path.join(cache, "objects"), os.path.join(cache, "rootfs"), "-perm", "-4000")
    assert attack.stdout == "" and attack.stderr.count("Permission denied") == 2, attack  # ... the farm is not
