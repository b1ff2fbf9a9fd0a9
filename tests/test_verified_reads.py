"""A damaged pack never turns into wrong files: checkout and the cache verify every object.

The review's finding: the fast pack reader trusted the .idx, so swapping two offsets
in it made ``lg checkout`` and ``lg run`` silently give one file's content for
another, and the materialised cache kept the wrong bytes. The attack is played here on
the pack that holds an image's base files: two blobs' offsets swapped, two trees'
offsets swapped, a byte of a packed object flipped, the pack cut short; and after
``lg gc`` (git's own, deltified pack, read by libgit2). Each time checkout and run fail
with one line naming the object and the image, leave nothing in the cache or at the
destination, and ``lg fsck`` reports the damage; with the pack restored all is well.
"""

from __future__ import annotations

import glob
import os
import shutil
import struct

import pytest

from .trees import forget_the_farm, git, write

pytestmark = pytest.mark.root
IMAGE = "bb:v2"


def pack_files(lg) -> set[str]:
    return set(glob.glob(os.path.join(lg.root, "store.git", "objects", "pack", "pack-*.idx")))


def offsets(idx: str) -> dict[bytes, int]:
    """Object id -> offset in its pack, from a version 2 .idx (small packs: no 64-bit offsets)."""
    with open(idx, "rb") as f:
        data = f.read()
    count = struct.unpack_from(">I", data, 8 + 255 * 4)[0]
    ids = [data[1032 + 20 * i: 1052 + 20 * i] for i in range(count)]
    return {oid: struct.unpack_from(">I", data, 1032 + 24 * count + 4 * i)[0] for i, oid in enumerate(ids)}


def patch(path: str, at: int, data: bytes) -> None:
    os.chmod(path, 0o644)
    with open(path, "r+b") as f:
        f.seek(at)
        f.write(data)


def swap(idx: str, a: bytes, b: bytes) -> None:
    """Swap the offsets of objects ``a`` and ``b`` in the index: each now names the other's data."""
    table = offsets(idx)
    ids = sorted(table)
    base = 1032 + 24 * len(ids)
    patch(idx, base + 4 * ids.index(a), struct.pack(">I", table[b]))
    patch(idx, base + 4 * ids.index(b), struct.pack(">I", table[a]))


def ids(lg, rev: str, *paths: str) -> list[bytes]:
    return [bytes.fromhex(git(lg, "rev-parse", f"refs/heads/{rev.replace(':', '/')}:rootfs/{p}").stdout.decode().strip()) for p in paths]


class Pack:
    """The pack holding an image's base files, and a copy to put back."""

    def __init__(self, idx: str, saved: str):
        self.idx = idx
        self.pack = idx[: -len(".idx")] + ".pack"
        self.saved = saved
        for path in (self.idx, self.pack):
            shutil.copy2(path, saved)

    def restore(self) -> None:
        for path in (self.idx, self.pack):
            if os.path.exists(path):
                os.chmod(path, 0o644)
            shutil.copy2(os.path.join(self.saved, os.path.basename(path)), path)


@pytest.fixture
def base_pack(lg, busybox_copy, tmp_path):
    """bb:v2 on top of bb:v1: the base files are in v1's pack, which the attacks damage;
    v2's commit and top trees are in a pack of their own, so the image still resolves."""
    lg("commit", busybox_copy, "-t", "bb:v1")
    (idx,) = pack_files(lg)
    write(os.path.join(busybox_copy, "etc", "motd"), b"v2\n")
    lg("commit", busybox_copy, "-t", IMAGE)
    forget_the_farm(lg)
    (tmp_path / "saved").mkdir()
    pack = Pack(idx, str(tmp_path / "saved"))
    yield pack
    pack.restore()


def swap_blobs(lg, pack: Pack) -> list[bytes]:
    passwd, group = ids(lg, IMAGE, "etc/passwd", "etc/group")
    swap(pack.idx, passwd, group)
    return [passwd, group]


def swap_trees(lg, pack: Pack) -> list[bytes]:
    bin_, var = ids(lg, IMAGE, "bin", "var")
    swap(pack.idx, bin_, var)
    return [bin_, var]


def flip_a_byte(lg, pack: Pack) -> list[bytes]:
    (passwd,) = ids(lg, IMAGE, "etc/passwd")
    patch(pack.pack, offsets(pack.idx)[passwd] + 8, b"\xa5")
    return [passwd]


def cut_short(lg, pack: Pack) -> list[bytes]:
    """git and libgit2 then ignore the whole pack: its objects read as missing."""
    os.chmod(pack.pack, 0o644)
    os.truncate(pack.pack, os.path.getsize(pack.pack) // 2)
    return []


ATTACKS = {"swapped blobs": swap_blobs, "swapped trees": swap_trees, "flipped byte": flip_a_byte,
           "truncated pack": cut_short}


def nothing_left(lg, dest) -> None:
    """No destination, no cached tree (final or temporary), no temporary farm object."""
    assert not os.path.lexists(dest)
    rootfs = os.path.join(lg.root, "cache", "rootfs")
    assert not os.path.isdir(rootfs) or os.listdir(rootfs) == []
    assert not glob.glob(os.path.join(lg.root, "cache", "objects", "*", "tmp-*"))


def assert_damage_named(err: str, named: list[bytes]) -> None:
    assert err.startswith(f"lg: image {IMAGE} (") and " is damaged: " in err, err
    assert "internal error" not in err and "GitError" not in err, err
    if named:
        assert any(f"object {oid.hex()} is corrupt in the store" in err for oid in named), err
    else:
        assert "is missing from the store" in err, err


@pytest.mark.parametrize("attack", ATTACKS)
def test_a_damaged_pack_is_one_line_and_leaves_nothing(lg, base_pack, busybox_copy, tmp_path, attack):
    """checkout (copied and -H) and run fail in one line naming the object and the image,
    leave nothing behind, fsck reports the damage; with the pack restored all is well,
    and the cache, never poisoned, is built from the good pack."""
    named = ATTACKS[attack](lg, base_pack)
    out = tmp_path / "out"
    for command in (["checkout", IMAGE, out], ["checkout", "-H", IMAGE, out],
                    ["run", "--rm", IMAGE, "cat", "/etc/passwd", "/etc/group"]):
        assert_damage_named(lg.fails(*command, code=125 if command[0] == "run" else 1), named)
        nothing_left(lg, out)
    fsck = lg("fsck", check=False)
    assert fsck.returncode == 1 and b"problem" in fsck.stdout, fsck

    base_pack.restore()
    passwd, group = (read(os.path.join(busybox_copy, "etc", name)) for name in ("passwd", "group"))
    assert lg("run", "--rm", IMAGE, "cat", "/etc/passwd", "/etc/group").stdout == passwd + group
    lg("checkout", IMAGE, out)
    assert (read(out / "etc" / "passwd"), read(out / "etc" / "group")) == (passwd, group)
    assert lg.out("fsck").endswith(": ok\n")


def read(path) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def test_git_s_own_pack_after_gc_is_checked_too(lg, base_pack, tmp_path):
    """After lg gc every object is in the pack git wrote, some deltified (libgit2 reads
    those, with its own hash check): the same swap is the same one line."""
    lg("gc")
    (idx,) = pack_files(lg)
    named = swap_blobs(lg, Pack(idx, str(tmp_path)))
    assert_damage_named(lg.fails("checkout", IMAGE, tmp_path / "out", code=1), named)
    nothing_left(lg, tmp_path / "out")
