"""Builders for hard-to-store source trees, and helpers to round-trip them through lg.

Each ``make_*`` function fills a fresh directory with one family of things a root
filesystem holds and git does not (owners, full modes, device nodes, xattrs, odd
names...). :func:`make_everything` puts them all side by side, which is what the
store-level tests commit. :func:`roundtrip` commits a directory, checks it out into a
new directory and compares the two entry by entry with tests.treecompare.
"""

from __future__ import annotations

import errno
import os
import signal
import socket
import stat
import struct
import subprocess
import sys
import tempfile
from contextlib import contextmanager

from layergit.removal import remove_tree

from .treecompare import assert_same_tree

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

NOBODY = 65534
# Ids that have no passwd/group entry on any sane system.
ODD_UID, ODD_GID = 54321, 43210
HUGE_ID = 4_000_000_000  # above 2**31: must not be mangled by a signed 32-bit field

CAP_NET_RAW = 13
CAP_SYS_ADMIN = 21  # lives in the low word too; CAP_SYSLOG (34) exercises the high word
CAP_SYSLOG = 34


# -- small building blocks ------------------------------------------------------


def write(path, data: bytes = b"", mode: int | None = None, mtime_ns: int | None = None) -> str:
    path = os.fsencode(path)
    with open(path, "wb") as f:
        f.write(data)
    if mode is not None:
        os.chmod(path, mode)
    if mtime_ns is not None:
        os.utime(path, ns=(mtime_ns, mtime_ns))
    return path


def mkdirs(path, mode: int | None = None) -> bytes:
    path = os.fsencode(path)
    os.makedirs(path, exist_ok=True)
    if mode is not None:
        os.chmod(path, mode)
    return path


def make_socket(path) -> None:
    """A socket inode at ``path``: bind an AF_UNIX socket there, then close it.

    Binds by relative name from inside the directory, so a long tmp_path never hits
    the 108-byte limit of sun_path.
    """
    path = os.fsencode(path)
    directory, name = os.path.split(path)
    old = os.getcwd()
    os.chdir(directory)
    try:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.bind(name)
        finally:
            s.close()
    finally:
        os.chdir(old)
    assert stat.S_ISSOCK(os.lstat(path).st_mode)


def cap_v2(*caps: int, effective: bool = True, inheritable: tuple[int, ...] = ()) -> bytes:
    """A VFS_CAP_REVISION_2 security.capability value (what ``setcap`` writes)."""
    permitted = sum(1 << c for c in caps)
    inh = sum(1 << c for c in inheritable)
    magic = 0x02000000 | (0x000001 if effective else 0)
    return struct.pack("<5I", magic, permitted & 0xFFFFFFFF, inh & 0xFFFFFFFF, permitted >> 32, inh >> 32)


def cap_v3(v2: bytes, rootid: int) -> bytes:
    """The VFS_CAP_REVISION_3 form of a v2 value: what the host reads back when root of a
    user namespace whose root is host uid ``rootid`` sets ``v2`` on a file."""
    magic, *sets = struct.unpack("<5I", v2)
    return struct.pack("<6I", 0x03000000 | (magic & 0x000001), *sets, rootid)


def xattrs_supported(directory, namespace: str = "user") -> bool:
    """Whether the filesystem under ``directory`` takes ``namespace``.* xattrs from us."""
    probe = os.path.join(os.fsencode(directory), b".xattr-probe")
    write(probe, b"")
    try:
        os.setxattr(probe, f"{namespace}.probe", b"1")
        return True
    except OSError as exc:
        if exc.errno in (errno.ENOTSUP, errno.EOPNOTSUPP, errno.EPERM):
            return False
        raise
    finally:
        os.unlink(probe)


def set_mtimes_bottom_up(root, base_ns: int = 1_600_000_000_123_456_789) -> None:
    """Give every entry (links too, not following them) a distinct nanosecond mtime.

    Directories are done after their contents, so creating entries cannot move them.
    """
    root = os.fsencode(root)
    n = 0
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        for name in sorted(filenames + dirnames):
            path = os.path.join(dirpath, name)
            n += 1
            os.utime(path, ns=(base_ns + n * 1_000_001, base_ns + n * 1_000_001), follow_symlinks=False)
    os.utime(root, ns=(base_ns - 7, base_ns - 7))


def lg_tree_entries(lg, rev: str, path: str = "rootfs") -> list[tuple[str, str, str, bytes]]:
    """(mode, type, id, path) for every entry below ``rev:path``, trees included, via plain git."""
    out = git(lg, "ls-tree", "-r", "-t", "-z", f"{rev}:{path}").stdout
    rows = []
    for rec in out.split(b"\0"):
        if not rec:
            continue
        info, _, name = rec.partition(b"\t")
        mode, kind, oid = info.decode().split()
        rows.append((mode, kind, oid, name))
    return rows


def store_path(lg) -> str:
    return os.path.join(lg.root, "store.git")


def git(lg, *args, check: bool = True, cwd=None, env=None) -> subprocess.CompletedProcess:
    """Plain git against the lg fixture's store (bare repository)."""
    proc = subprocess.run(["git", "-C", store_path(lg), *args], capture_output=True, cwd=cwd, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout.decode(errors='replace')}{proc.stderr.decode(errors='replace')}")
    return proc


# -- round trip -----------------------------------------------------------------


# lg checkout's mode for a directory it creates (the host's choice, not the image's root
# mode): a source tree with this root mode checks out equal without --mode.
NEW_CHECKOUT_MODE = 0o700


def root_mode(path) -> str:
    """``path``'s mode for ``lg checkout --mode``, so that a comparison covers the root too."""
    return f"{stat.S_IMODE(os.stat(path).st_mode):04o}"


def roundtrip(lg, src, dest, tag: str = "fidelity:latest", warnings_ok: bool = False) -> str:
    """Commit ``src`` as ``tag``, check it out into the new directory ``dest``, compare.

    Returns the image id. As root a checkout must not warn about anything: a warning
    means something was skipped. The root directory is compared too, so it takes the
    source root's mode and owner (--mode, --root-owner image).
    """
    image_id = lg.out("commit", src, "-t", tag, "-m", f"fidelity {os.path.basename(str(dest))}").strip()
    assert len(image_id) == 40, image_id
    proc = lg("checkout", tag, dest, "--mode", root_mode(src), "--root-owner", "image")
    if not warnings_ok:
        assert proc.stderr.decode(errors="replace") == "", f"checkout warned: {proc.stderr!r}"
    assert_same_tree(src, dest)
    return image_id


# -- families of entries ---------------------------------------------------------


def make_regular(d) -> None:
    d = mkdirs(d)
    write(os.path.join(d, b"empty"))
    write(os.path.join(d, b"all-bytes"), bytes(range(256)) * 3 + bytes(range(255, -1, -1)))
    write(os.path.join(d, b"text"), b"hello\nworld\n")
    write(os.path.join(d, b"no-newline"), b"no newline at the end")
    write(os.path.join(d, b"nul"), b"\0")
    write(os.path.join(d, b"exec.sh"), b"#!/bin/sh\necho hi\n", mode=0o755)
    write(os.path.join(d, b"crlf"), b"a\r\nb\r\n")
    write(os.path.join(d, b"lfs-pointer-lookalike"), b"version https://git-lfs.github.com/spec/v1\noid sha256:00\nsize 1\n")


def make_sparse(path, size: int = 50 * 1024 * 1024) -> None:
    with open(path, "wb") as f:
        f.truncate(size)
        f.seek(size // 2)
        f.write(b"in the middle of nowhere")
        f.seek(size // 4)
        f.write(b"\xff" * 17)


def make_dirs(d, depth: int = 50) -> None:
    d = mkdirs(d)
    mkdirs(os.path.join(d, b"empty"))
    mkdirs(os.path.join(d, b"empty-parent", b"empty-child", b"empty-grandchild"))
    deep = os.path.join(d, b"deep")
    path = deep
    for i in range(depth):
        path = os.path.join(path, b"d%02d" % i)
    mkdirs(path)
    write(os.path.join(path, b"bottom"), b"50 levels down\n")
    mkdirs(os.path.join(path, b"empty-at-the-bottom"))
    long_name = b"L" * 251 + b".txt"
    assert len(long_name) == 255
    write(os.path.join(d, long_name), b"long name\n")
    mkdirs(os.path.join(d, b"D" * 255))
    write(os.path.join(d, b"D" * 255, b"F" * 255), b"long in long\n")


def make_symlinks(d, outside) -> None:
    """Links of every flavour; ``outside`` is a directory outside the tree (must not be read)."""
    d = mkdirs(d)
    write(os.path.join(d, b"target"), b"target content\n")
    mkdirs(os.path.join(d, b"realdir"))
    write(os.path.join(d, b"realdir", b"inside"), b"inside\n")
    os.symlink(b"target", os.path.join(d, b"relative"))
    os.symlink(b"../symlinks/./target", os.path.join(d, b"relative-dotdot"))
    os.symlink(b"/etc/passwd", os.path.join(d, b"absolute"))
    os.symlink(b"/", os.path.join(d, b"to-root"))
    os.symlink(b"does/not/exist", os.path.join(d, b"dangling"))
    os.symlink(b"/nonexistent/abs", os.path.join(d, b"dangling-absolute"))
    os.symlink(b"realdir", os.path.join(d, b"to-dir"))
    os.symlink(b"self-loop", os.path.join(d, b"self-loop"))
    os.symlink(b"\xff\xfe-target", os.path.join(d, b"non-utf8-target"))
    os.symlink(b"with space\tand tab\nand newline", os.path.join(d, b"odd-target"))
    os.symlink(b"x" * 4000, os.path.join(d, b"long-target"))
    os.symlink(os.fsencode(outside), os.path.join(d, b"outside-dir"))
    os.symlink(os.path.join(os.fsencode(outside), b"secret"), os.path.join(d, b"outside-file"))


def make_hardlinks(d) -> None:
    d = mkdirs(d)
    for sub in (b"a", b"b", b"c/deeper", b"%esc", b"\xff-dir"):
        mkdirs(os.path.join(d, sub))
    leader = write(os.path.join(d, b"a", b"one"), b"shared content\n", mode=0o640)
    os.link(leader, os.path.join(d, b"a", b"two"))  # same directory
    os.link(leader, os.path.join(d, b"b", b"three"))  # other directory
    os.link(leader, os.path.join(d, b"c", b"deeper", b"four"))
    other = write(os.path.join(d, b"%esc", b".git"), b"leader under escaped names\n")
    os.link(other, os.path.join(d, b"\xff-dir", b"\xfe link"))
    os.link(other, os.path.join(d, b"a", b"zz-escaped-leader"))
    # A hardlink pair with different content from the big group, and a single-link file.
    pair = write(os.path.join(d, b"b", b"pair-1"), b"pair\n")
    os.link(pair, os.path.join(d, b"b", b"pair-2"))
    write(os.path.join(d, b"b", b"alone"), b"shared content\n")  # same content, own inode
    os.mkfifo(os.path.join(d, b"fifo"))
    os.link(os.path.join(d, b"fifo"), os.path.join(d, b"b", b"fifo-link"))
    os.symlink(b"somewhere", os.path.join(d, b"sym"))
    os.link(os.path.join(d, b"sym"), os.path.join(d, b"c", b"sym-link"), follow_symlinks=False)


def make_specials(d, devices: bool) -> None:
    d = mkdirs(d)
    os.mkfifo(os.path.join(d, b"fifo"))
    os.mkfifo(os.path.join(d, b"fifo-0600"), 0o600)
    os.chmod(os.path.join(d, b"fifo-0600"), 0o600)
    make_socket(os.path.join(d, b"sock"))
    os.mknod(os.path.join(d, b"sock-mknod"), stat.S_IFSOCK | 0o640)
    if devices:
        os.mknod(os.path.join(d, b"null"), stat.S_IFCHR | 0o666, os.makedev(1, 3))
        os.mknod(os.path.join(d, b"tty"), stat.S_IFCHR | 0o620, os.makedev(4, 1))
        os.mknod(os.path.join(d, b"loop0"), stat.S_IFBLK | 0o660, os.makedev(7, 0))
        os.mknod(os.path.join(d, b"sda"), stat.S_IFBLK | 0o660, os.makedev(8, 0))
        os.mknod(os.path.join(d, b"big-numbers"), stat.S_IFCHR | 0o600, os.makedev(4000, 1_000_000))
        os.mknod(os.path.join(d, b"zero-zero"), stat.S_IFCHR | 0o600, os.makedev(0, 0))


def make_modes(d) -> None:
    d = mkdirs(d)
    for name, mode in [
        (b"setuid", 0o4755), (b"setgid", 0o2755), (b"setuid-setgid", 0o6755), (b"sticky-file", 0o1644),
        (b"all-bits", 0o7777), (b"zero", 0o000), (b"odd-0651", 0o651), (b"write-only", 0o200),
        (b"read-only", 0o444), (b"group-write", 0o664), (b"other-only", 0o007),
    ]:
        write(os.path.join(d, name), name + b"\n", mode=mode)
    mkdirs(os.path.join(d, b"sticky-dir"), 0o1777)
    write(os.path.join(d, b"sticky-dir", b"f"), b"f\n")
    # A setgid directory: its children must not inherit anything they did not have.
    sg = mkdirs(os.path.join(d, b"setgid-dir"))
    os.chmod(sg, 0o2775)
    mkdirs(os.path.join(sg, b"child"), 0o755)
    os.chmod(os.path.join(sg, b"child"), 0o755)  # drop the inherited setgid bit
    write(os.path.join(sg, b"file"), b"in setgid dir\n", mode=0o644)
    # 0000 and 0500 directories with contents (the contents must still get written).
    locked = mkdirs(os.path.join(d, b"locked-0000"))
    write(os.path.join(locked, b"secret"), b"inside a 0000 directory\n", mode=0o600)
    mkdirs(os.path.join(locked, b"sub"), 0o700)
    write(os.path.join(locked, b"sub", b"deeper"), b"deeper\n")
    os.chmod(locked, 0o000)
    ro = mkdirs(os.path.join(d, b"readonly-0555"))
    write(os.path.join(ro, b"f"), b"in a read-only directory\n", mode=0o444)
    os.chmod(ro, 0o555)
    mkdirs(os.path.join(d, b"dir-0751"), 0o751)
    mkdirs(os.path.join(d, b"dir-3777"), 0o3777)


def make_owners(d) -> None:
    """Owners with no passwd entry, huge ids, and owners on every kind of entry (root only)."""
    d = mkdirs(d)
    f = write(os.path.join(d, b"odd-owner"), b"owned by 54321:43210\n")
    os.chown(f, ODD_UID, ODD_GID)
    f = write(os.path.join(d, b"huge-owner"), b"owned by 4e9\n")
    os.chown(f, HUGE_ID, HUGE_ID + 1)
    f = write(os.path.join(d, b"setuid-odd"), b"setuid, owned by 54321\n")
    os.chown(f, ODD_UID, ODD_GID)
    os.chmod(f, 0o6755)  # after chown, which would clear it
    f = write(os.path.join(d, b"group-only"), b"0:43210\n")
    os.chown(f, 0, ODD_GID)
    sub = mkdirs(os.path.join(d, b"odd-dir"), 0o750)
    write(os.path.join(sub, b"inner"), b"root-owned inside an odd-owned dir\n")
    os.chown(sub, ODD_UID, ODD_GID)
    os.symlink(b"odd-owner", os.path.join(d, b"odd-link"))
    os.chown(os.path.join(d, b"odd-link"), ODD_UID, ODD_GID, follow_symlinks=False)
    os.mkfifo(os.path.join(d, b"odd-fifo"))
    os.chown(os.path.join(d, b"odd-fifo"), 1, 2)
    os.mknod(os.path.join(d, b"odd-dev"), stat.S_IFCHR | 0o600, os.makedev(1, 7))
    os.chown(os.path.join(d, b"odd-dev"), ODD_UID, 5)
    f = write(os.path.join(d, b"nobody"), b"nobody:nogroup\n")
    os.chown(f, NOBODY, NOBODY)


# Nanosecond mtimes that a sloppy implementation would round, truncate or overflow.
MTIMES = {
    b"ns-1": 1_700_000_000_000_000_001,
    b"ns-999999999": 1_700_000_000_999_999_999,
    b"float-unfriendly": 1_234_567_890_123_456_789,
    b"epoch": 0,
    b"before-epoch": -1_500_000_001,  # 1969-12-31T23:59:58.499999999
    b"year-2100": 4_102_444_800_000_000_007,
}


def make_mtimes(d) -> None:
    """Distinct nanosecond mtimes on files, symlinks, fifos and directories (set last)."""
    d = mkdirs(d)
    for name, ns in MTIMES.items():
        write(os.path.join(d, name), name, mtime_ns=ns)
    os.symlink(b"ns-1", os.path.join(d, b"link"))
    os.utime(os.path.join(d, b"link"), ns=(1, 1_111_111_111_111_111_111), follow_symlinks=False)
    os.symlink(b"missing", os.path.join(d, b"dangling-link"))
    os.utime(os.path.join(d, b"dangling-link"), ns=(1, 987_654_321), follow_symlinks=False)
    os.mkfifo(os.path.join(d, b"fifo"))
    os.utime(os.path.join(d, b"fifo"), ns=(5, 1_500_000_000_000_000_005))
    sub = mkdirs(os.path.join(d, b"dir"))
    write(os.path.join(sub, b"f"), b"f", mtime_ns=1_400_000_000_000_000_042)
    os.utime(sub, ns=(3, 1_300_000_000_000_000_003))
    os.utime(d, ns=(9, 1_200_000_000_000_000_009))


# user.* names and values that stress the text encoding of the metadata blob.
USER_XATTRS = [
    ("user.plain", b"hello"),
    ("user.empty", b""),
    ("user.binary", bytes(range(256))),
    ("user.quote", b'say "hi"'),
    ("user.backslash", b"a\\b"),
    ("user.space and=equals", b"a b=c d"),
    ("user.percent%41", b"%41"),
    ("user.newline", b"line1\nline2\n"),
    ("user.utf8-\u00fcn\u00efc\u00f6d\u00e9", "\u00fcn\u00efc\u00f6d\u00e9".encode()),
    ("user.looks-base64", b"0sAAAA"),
    ("user.big", bytes(range(256)) * 8),
]


def make_user_xattrs(d) -> None:
    d = mkdirs(d)
    f = write(os.path.join(d, b"file"), b"has xattrs\n")
    for key, value in USER_XATTRS:
        os.setxattr(f, key, value)
    sub = mkdirs(os.path.join(d, b"dir"))
    os.setxattr(sub, "user.on-a-directory", b"yes")
    f = write(os.path.join(d, b"exec"), b"#!/bin/sh\n", mode=0o755)
    os.setxattr(f, "user.mime_type", b"text/x-shellscript")
    a = write(os.path.join(d, b"hardlinked"), b"linked with xattrs\n")
    os.setxattr(a, "user.shared", b"by both names")
    os.link(a, os.path.join(d, b"hardlinked-2"))


def make_trusted_xattrs(d) -> None:
    """trusted.* on every kind of entry, and a mix with user.* (root only)."""
    d = mkdirs(d)
    f = write(os.path.join(d, b"file"), b"trusted\n")
    os.setxattr(f, "trusted.overlay.opaque", b"y")
    os.setxattr(f, "trusted.binary", b"\0\1\2\xff")
    os.setxattr(f, "user.also", b"user")
    sub = mkdirs(os.path.join(d, b"dir"))
    os.setxattr(sub, "trusted.overlay.opaque", b"y")
    os.symlink(b"file", os.path.join(d, b"link"))
    os.setxattr(os.path.join(d, b"link"), "trusted.on-a-symlink", b"1", follow_symlinks=False)
    os.mkfifo(os.path.join(d, b"fifo"))
    os.setxattr(os.path.join(d, b"fifo"), "trusted.on-a-fifo", b"2")
    os.mknod(os.path.join(d, b"whiteout"), stat.S_IFCHR | 0o000, os.makedev(0, 0))
    os.setxattr(os.path.join(d, b"whiteout"), "trusted.on-a-device", b"3")


CAP_RAW = cap_v2(CAP_NET_RAW)
CAP_MIXED = cap_v2(CAP_NET_RAW, CAP_SYS_ADMIN, CAP_SYSLOG, inheritable=(CAP_NET_RAW,))
CAP_NOT_EFFECTIVE = cap_v2(CAP_NET_RAW, effective=False)


def make_capabilities(d) -> None:
    """security.capability on files with other owners and setuid bits (root only).

    chown clears capabilities (and setuid bits), so the source is built in the only
    order that sticks: chown, chmod, setxattr; checkout has to do the same.
    """
    d = mkdirs(d)
    ping = write(os.path.join(d, b"ping"), b"\x7fELF pretend\n")
    os.chown(ping, ODD_UID, ODD_GID)
    os.chmod(ping, 0o755)
    os.setxattr(ping, "security.capability", CAP_RAW)
    su = write(os.path.join(d, b"setuid-with-caps"), b"setuid and caps\n")
    os.chown(su, 0, ODD_GID)
    os.chmod(su, 0o4750)
    os.setxattr(su, "security.capability", CAP_MIXED)
    lazy = write(os.path.join(d, b"not-effective"), b"permitted only\n", mode=0o700)
    os.setxattr(lazy, "security.capability", CAP_NOT_EFFECTIVE)
    both = write(os.path.join(d, b"caps-and-user-xattr"), b"both\n", mode=0o555)
    os.setxattr(both, "user.note", b"kept too")
    os.setxattr(both, "security.capability", CAP_RAW)


# Names git refuses, mangles or treats specially, and names that stress the escaping.
SPECIAL_FILE_NAMES = [
    b".GIT", b".Git", b"git~1", b"GIT~1", b"git~1.", b"gitmod~1", b"gi7eba~1", b".gitattributes",
    b".gitignore", b".git.", b".git ", b".gitmodules.", b".g\xe2\x80\x8cit",  # U+200C inside
    b"\xe2\x80\x8c.git",  # U+200C before the dot
    b"\xef\xbb\xbf.gitmodules",  # BOM before the dot
    b"\xff\xfe.bin", b"\xc3", b"\x80\x80", b"latin1-\xe9t\xe9", b".lgmeta", b"%", b"%%", b"%41", b"%2Egit",
    b"%%2Egit", b"%zz", b"new\nline", b"tab\there", b"\r", b"bell\x07", b"del\x7f", b"-rf", b"--", b"-",
    b"a\\.git", b"b\\git~1", b"c\\.gitmodules", b"back\\slash", b"\\", b"\xc3\xbcn\xc3\xafc\xc3\xb6d\xc3\xa9",
    b"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", b"\xf0\x9f\x92\xa9", b"\xe2\x80\xa8line-sep", b" lead space",
    b"trail space ", b"..dots", b"...", b"#hash", b"*?[", b"a b c", b"'\"quotes", b"..git",
]


def make_special_names(d) -> None:
    d = mkdirs(d)
    for i, name in enumerate(SPECIAL_FILE_NAMES):
        write(os.path.join(d, name), b"file %d named %r\n" % (i, name))
    # .git as a directory that looks like a repository.
    g = mkdirs(os.path.join(d, b".git"))
    write(os.path.join(g, b"HEAD"), b"ref: refs/heads/master\n")
    write(os.path.join(g, b"config"), b"[core]\n\tbare = false\n[core]\n\tfsmonitor = evil\n")
    mkdirs(os.path.join(g, b"objects", b"pack"))
    mkdirs(os.path.join(g, b"hooks"))
    write(os.path.join(g, b"hooks", b"post-checkout"), b"#!/bin/sh\necho pwned\n", mode=0o755)
    # .gitmodules as a file (with content git would parse) and as a symlink.
    mods = mkdirs(os.path.join(d, b"gitmodules-file"))
    write(os.path.join(mods, b".gitmodules"), b'[submodule "x"]\n\tpath = x\n\turl = --upload-pack=evil\n')
    links = mkdirs(os.path.join(d, b"gitmodules-link"))
    os.symlink(b"../gitmodules-file/.gitmodules", os.path.join(links, b".gitmodules"))
    os.symlink(b".git/config", os.path.join(links, b".gitattributes"))
    # The reserved metadata name as a directory, and names with % in directories.
    m = mkdirs(os.path.join(d, b".lgmeta-dir", b".lgmeta"))
    write(os.path.join(m, b".lgmeta"), b"lgmeta 1\n.\td 0000 0:0 0.000000000\n")
    nd = mkdirs(os.path.join(d, b"\xff\xfe-dir", b"%sub", b"new\nline dir"))
    write(os.path.join(nd, b"\x01"), b"deep odd names\n")
    mkdirs(os.path.join(d, b".GIT-dir", b".GIT"))
    write(os.path.join(d, b".GIT-dir", b".GIT", b"config"), b"upper-case .GIT directory\n")


def make_everything(d, outside, privileged: bool = True) -> None:
    """Every family above side by side (the store tests commit this)."""
    d = mkdirs(d)
    make_regular(os.path.join(d, b"regular"))
    make_sparse(os.path.join(d, b"sparse"), 8 * 1024 * 1024)
    make_dirs(os.path.join(d, b"dirs"))
    make_symlinks(os.path.join(d, b"symlinks"), outside)
    make_hardlinks(os.path.join(d, b"hardlinks"))
    make_specials(os.path.join(d, b"specials"), devices=privileged)
    make_modes(os.path.join(d, b"modes"))
    make_mtimes(os.path.join(d, b"mtimes"))
    make_special_names(os.path.join(d, b"names"))
    if xattrs_supported(d, "user"):
        make_user_xattrs(os.path.join(d, b"xattrs-user"))
    if privileged:
        make_owners(os.path.join(d, b"owners"))
        make_trusted_xattrs(os.path.join(d, b"xattrs-trusted"))
        make_capabilities(os.path.join(d, b"caps"))


def make_crowd(d, dirs: int = 40, files: int = 15) -> None:
    """Enough entries in enough directories that two processes write a copy checkout
    (layergit.fs.pieces), with hardlinks between the directories, whose pieces
    either process may take, and in both directions of the snapshot's order."""
    d = mkdirs(d)
    for i in range(dirs):
        sub = mkdirs(os.path.join(d, b"c%02d" % i))
        for j in range(files):
            write(os.path.join(sub, b"f%02d" % j), b"%d/%d\n" % (i, j), mode=0o600 + j)
    for i in range(0, dirs - 1, 4):  # a leader and its follower in pieces far apart
        os.link(os.path.join(d, b"c%02d" % i, b"f00"), os.path.join(d, b"c%02d" % (dirs - 1 - i), b"zz-link"))
    set_mtimes_bottom_up(d)


# -- running lg as an unprivileged user ------------------------------------------


def _traversable_by_others(path: str) -> bool:
    st = os.stat(path)
    return bool(st.st_mode & stat.S_IXOTH)


def _blocked_ancestors(path: str) -> list[str]:
    """Ancestors of ``path`` (itself included) that uid 65534 cannot traverse."""
    path = os.path.realpath(path)
    out = []
    while True:
        if os.path.isdir(path) and not _traversable_by_others(path):
            out.append(path)
        parent = os.path.dirname(path)
        if parent == path:
            return out
        path = parent


@contextmanager
def nobody_dir():
    """A fresh directory under /tmp owned by 65534 and reachable by it; removed afterwards.

    (pytest's tmp_path lives under a 0700 directory that 65534 cannot enter.) It holds
    65534's XDG_RUNTIME_DIR (``nobody_env``), so the user namespace lg makes for it
    (and the pause process keeping it) is this directory's alone and is stopped here.
    """
    path = tempfile.mkdtemp(prefix="lg-nobody-", dir="/tmp")
    try:
        os.chmod(path, 0o755)
        os.chown(path, NOBODY, NOBODY)
        run = os.path.join(path, RUN_DIR)
        os.mkdir(run, 0o700)
        os.chown(run, NOBODY, NOBODY)
        yield path
    finally:
        for name in ("pause.pid", "pasta.pid"):  # pasta, where it connects the namespace, outlives the pause
            _stop_pause(os.path.join(path, RUN_DIR, "layergit", name))
        remove_tree(path)


RUN_DIR = "run"


def _stop_pause(pidfile: str) -> None:
    """Kill a process lg left for 65534 (its pause process, pasta), if it lives; init reaps it."""
    try:
        with open(pidfile) as f:
            pid = int(f.read().split()[0])
        if os.stat(f"/proc/{pid}").st_uid == NOBODY:
            os.kill(pid, signal.SIGKILL)
    except (OSError, ValueError, IndexError):
        pass


def nobody_env(home: str, **extra) -> dict:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": home,
        "XDG_DATA_HOME": os.path.join(home, ".local", "share"),
        "XDG_RUNTIME_DIR": os.path.join(home, RUN_DIR),
        "PYTHONPATH": REPO,
        "PYTHONDONTWRITEBYTECODE": "1",
        "LANG": "C.UTF-8",
        "COLUMNS": "200",
    }
    env.update(extra)
    return env


def run_as_nobody(args: list[str], env: dict, cwd: str) -> subprocess.CompletedProcess:
    """Run ``args`` as uid/gid 65534 without supplementary groups.

    When the interpreter lives below a directory 65534 cannot enter (pyenv under
    /root), the command runs in a private mount namespace where that one directory
    is replaced by a tmpfs holding just the interpreter's tree, so the very same
    ``sys.executable`` path works. Nothing changes outside that namespace.
    """
    setpriv = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--"]
    blocked = sorted(set(_blocked_ancestors(sys.prefix) + _blocked_ancestors(os.path.dirname(sys.executable)) + _blocked_ancestors(REPO)))
    if not blocked:
        return subprocess.run(setpriv + args, env=env, cwd=cwd, capture_output=True)
    if len(blocked) != 1 or os.path.realpath(REPO).startswith(blocked[0] + "/"):
        raise RuntimeError(f"cannot make the interpreter reachable for uid {NOBODY}: {blocked}")
    top = blocked[0]
    prefix = os.path.realpath(sys.prefix)
    child = os.path.join(top, os.path.relpath(prefix, top).split(os.sep)[0])  # e.g. /root/.pyenv
    stage = tempfile.mkdtemp(prefix="lg-stage-", dir="/tmp")
    try:
        script = (
            'set -e; mount --bind "$1" "$2"; mount -t tmpfs -o mode=0755 lg-hide "$3"; '
            'mkdir -p "$1"; mount --move "$2" "$1"; shift 3; exec "$@"'
        )
        cmd = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", child, stage, top, *setpriv, *args]
        return subprocess.run(cmd, env=env, cwd=cwd, capture_output=True)
    finally:
        os.rmdir(stage)


def chown_tree(path, uid: int, gid: int) -> None:
    """lchown every entry below and including ``path``."""
    os.chown(path, uid, gid, follow_symlinks=False)
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            os.chown(os.path.join(dirpath, name), uid, gid, follow_symlinks=False)


def locked_leader_tree(src) -> None:
    """A hardlink whose first name is inside a 0000 directory: a/leader (locked), z/follower."""
    locked = src / "a-locked"
    locked.mkdir(parents=True)
    write(locked / "leader", b"linked out of a locked directory\n")
    (src / "z").mkdir()
    os.link(locked / "leader", src / "z" / "follower")
    os.chmod(locked, 0)


def nobodys_locked_tree(src, crowd: bool) -> None:
    """locked_leader_tree, all 65534's, for an unprivileged checkout; with ``crowd``
    beside a crowd (make_crowd) whose directories are locked too: c04 (0000) holds
    the leader of c35/zz-link (0500)."""
    if crowd:
        make_crowd(os.path.join(src, "crowd"))
        for i, mode in ((4, 0), (35, 0o500), (30, 0o500)):
            os.chmod(os.path.join(src, "crowd", f"c{i:02}"), mode)
    locked_leader_tree(src)
    chown_tree(src, NOBODY, NOBODY)
    os.chmod(src, NEW_CHECKOUT_MODE)


def forget_the_farm(lg) -> None:
    """A commit leaves a copy of every file it read in the farm (cache/objects), from
    which checkout and run take a file without reading its blob: gone, a damaged
    pack is what they must read."""
    remove_tree(os.path.join(lg.root, "cache", "objects"))
