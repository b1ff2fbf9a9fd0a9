"""Big files in bounded memory (issue 13): content is streamed, never read whole.

A tree holding a 300 MB file of incompressible data and a 128 MiB sparse file goes
through ``lg commit``, ``lg checkout``, ``lg export`` and ``lg import``; each command's
peak RSS (from wait4, as /usr/bin/time reports it) must stay far below the file, so
any path that reads the file whole fails here. The checkout must give the same bytes
back and keep the sparse file's holes; the imported image must be the committed one.
A big blob corrupted in the store fails checkout and export with one line, and leaves
neither a half-written file nor a half-written archive behind.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from .trees import forget_the_farm

DENSE = 300 << 20
SPARSE = 128 << 20
ISLANDS = (0, 64 << 20, SPARSE - 4096)  # where the sparse file has data
LIMIT = 128 << 20  # peak RSS allowed: well under half the dense file


# Run by a small interpreter of its own, not forked from pytest: Linux counts the memory
# of the process that forked (its high-water mark up to exec) in the child's ru_maxrss.
_PEAK = """import os, subprocess, sys
proc = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
_, status, usage = os.wait4(proc.pid, 0)
print(usage.ru_maxrss, os.waitstatus_to_exitcode(status))
"""


def measured(lg, *args) -> int:
    """Run lg; returns its peak RSS in bytes (it must succeed)."""
    proc = subprocess.run([lg.python, "-c", _PEAK, lg.python, "-m", "cli", *map(str, args)], env=lg.env(),
                          capture_output=True, check=True)
    peak_kb, status = map(int, proc.stdout.split())
    assert status == 0, f"lg {' '.join(map(str, args))}: {proc.stderr.decode(errors='replace')}"
    return peak_kb * 1024


def same_content(a, b) -> bool:
    return subprocess.run(["cmp", "-s", str(a), str(b)], check=False).returncode == 0


@pytest.fixture(scope="module")
def big_tree(tmp_path_factory):
    src = tmp_path_factory.mktemp("big") / "src"
    src.mkdir()
    block = os.urandom(1 << 20)  # repeats farther apart than deflate's window: incompressible
    with open(src / "dense", "wb") as f:
        for _ in range(DENSE >> 20):
            f.write(block)
    with open(src / "sparse", "wb") as f:
        for at in ISLANDS:
            f.seek(at)
            f.write(b"island" * 600)
        f.truncate(SPARSE)
    (src / "small").write_bytes(b"small\n")
    return src


def test_commit_checkout_export_import_stay_far_below_the_file_size(lg, big_tree, tmp_path):
    peaks = {"commit": measured(lg, "commit", big_tree, "-t", "big:1")}
    out = tmp_path / "out"
    peaks["checkout"] = measured(lg, "checkout", "big:1", out)
    archive = tmp_path / "big.tar"
    peaks["export"] = measured(lg, "export", "big:1", "-o", archive)
    peaks["import"] = measured(lg, "import", archive, "-t", "big:2")
    assert all(peak < LIMIT for peak in peaks.values()), {k: f"{v >> 20} MiB" for k, v in peaks.items()}

    for name in ("dense", "sparse", "small"):
        assert same_content(out / name, big_tree / name), name
    assert os.stat(out / "sparse").st_blocks * 512 <= 8 << 20  # the holes stayed holes
    assert lg.out("diff", "--name-status", "--mtime", "big:1", "big:2") == ""  # the same rootfs


def test_a_corrupt_big_blob_fails_in_one_line_and_leaves_nothing_half_written(lg, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_bytes(os.urandom(1 << 20) * 12)
    lg("commit", src, "-t", "bad:1")
    forget_the_farm(lg)
    pack_dir = os.path.join(lg.root, "store.git", "objects", "pack")
    pack = max((os.path.join(pack_dir, n) for n in os.listdir(pack_dir) if n.endswith(".pack")),
               key=os.path.getsize)
    os.chmod(pack, 0o644)
    with open(pack, "r+b") as f:
        f.seek(os.path.getsize(pack) // 2)
        f.write(b"\xff" * 64)

    err = lg.fails("checkout", "bad:1", tmp_path / "out", code=1)
    assert "corrupt" in err and not (tmp_path / "out").exists()
    err = lg.fails("export", "bad:1", "--format", "rootfs", "-o", tmp_path / "out.tar", code=1)
    assert "corrupt" in err and not (tmp_path / "out.tar").exists()
    lg.fails("checkout", "--hardlink", "bad:1", tmp_path / "linked", code=1)
    farm = os.path.join(lg.root, "cache", "objects")
    assert not [n for _, _, files in os.walk(farm) for n in files]
