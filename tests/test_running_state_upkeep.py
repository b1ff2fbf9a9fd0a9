"""What lives beside the store is checked by lg fsck and kept bounded by lg gc (docs/format.md,
"Running state"): lock files and names of removed containers, spools of killed imports, exports
and builds, sizes of objects gone, stat caches nobody uses, and the monitor's log."""

from __future__ import annotations

import os
import time

import pytest

from .runtime_helpers import IMAGE, rt, runtime_template  # noqa: F401

GONE = "f" * 64  # a container id no container has


def _plant_leftovers(root: str) -> dict[str, str]:
    """What killed commands leave, one of each kind; returns label -> path."""
    paths = {
        "lock": os.path.join(root, "containers", "locks", GONE),
        "name": os.path.join(root, "containers", "by-name", "ghost"),
        "spool file": os.path.join(root, "tmp", "import-killed"),
        "spool dir": os.path.join(root, "tmp", "build-run-killed"),
        "size": os.path.join(root, "cache", "sizes", "image-" + "0" * 40),
        "old stat cache": os.path.join(root, "cache", "stat", "a" * 40),
        "killed stat cache writer": os.path.join(root, "cache", "stat", "." + "c" * 40 + ".4242"),
        # A FIFO of a container removed while no monitor ran. (Not its supervision mark:
        # the next lg command would start a monitor, which drops a mark of no container itself.)
        "output fifo": os.path.join(root, "run", "fifo", GONE + ".stdout"),
    }
    for path in paths.values():
        os.makedirs(os.path.dirname(path), exist_ok=True)
    open(paths["lock"], "w").close()
    os.symlink(GONE, paths["name"])
    open(paths["spool file"], "w").close()
    os.makedirs(os.path.join(paths["spool dir"], "deep", "er"))
    os.symlink("/etc", os.path.join(paths["spool dir"], "deep", "link"))  # removed, never followed
    with open(paths["size"], "w") as f:
        f.write("123")
    open(paths["old stat cache"], "w").close()
    open(paths["killed stat cache writer"], "w").close()
    os.mkfifo(paths["output fifo"])
    month_ago, days_ago = time.time() - 40 * 86400, time.time() - 2 * 86400
    os.utime(paths["old stat cache"], (month_ago, month_ago))
    os.utime(paths["killed stat cache writer"], (days_ago, days_ago))
    return paths


def test_gc_removes_what_killed_commands_left_and_keeps_what_is_used(rt, tmp_path):
    rt("create", "--name", "kept", IMAGE, "true")
    kept_id = rt.inspect("kept")["Id"]
    rt("images")  # fills cache/sizes for the image that exists
    sizes = os.path.join(rt.root, "cache", "sizes")
    used_sizes = set(os.listdir(sizes))
    assert used_sizes
    fresh_stat = os.path.join(rt.root, "cache", "stat", "b" * 40)
    open(fresh_stat, "w").close()
    planted = _plant_leftovers(rt.root)

    notes = rt.out("fsck")
    assert "3 lock file(s), name(s) or supervision file(s) of removed containers; lg gc removes them" in notes, notes
    assert "2 spool(s) in tmp/" in notes, notes

    report = rt.out("gc", "--json")
    for label, path in planted.items():
        assert not os.path.lexists(path), label
    assert os.path.exists("/etc/passwd")
    assert '"leftovers_removed": 3' in report and '"spools_removed": 2' in report, report
    assert '"cache_files_removed": 3' in report, report
    assert os.path.exists(fresh_stat)
    assert set(os.listdir(sizes)) == used_sizes
    assert os.readlink(os.path.join(rt.root, "containers", "by-name", "kept")) == kept_id
    assert rt.inspect("kept")["Name"].lstrip("/") == "kept"
    notes = rt.out("fsck")
    assert "removed containers" not in notes and "spool" not in notes, notes
    rt("rm", "kept")


def test_odd_cache_names_and_records_of_another_shape_are_reported_not_crashed_on(rt):
    """A 40-character size name that is not hex is stale (it crashed bytes.fromhex), and a
    container.json that is JSON but not an object is a problem fsck names (AttributeError)."""
    sizes = os.path.join(rt.root, "cache", "sizes")
    os.makedirs(sizes, exist_ok=True)
    odd = os.path.join(sizes, "image-" + "z" * 40)
    open(odd, "w").close()
    rt("create", "--name", "odd", IMAGE, "true")
    cid = rt.inspect("odd")["Id"]
    with open(os.path.join(rt.root, "containers", cid, "container.json"), "w") as f:
        f.write("[]")
    proc = rt("fsck", check=False)
    err = proc.stdout.decode() + proc.stderr.decode()
    assert f"container {cid[:12]}: its record does not read" in err and "Traceback" not in err, err
    assert '"cache_files_removed": 1' in rt.out("gc", "--json")
    assert not os.path.exists(odd)


def test_gc_during_a_creation_keeps_its_name(rt, monkeypatch):
    """The review's race: gc removed the name link of a container being created (no marker
    yet, no container.json), and a second create then took the name. Here lg create runs
    in this process and a real lg gc runs while it holds the name and writes its files."""
    from layergit import api
    from layergit.porcelain import containers, runopts

    real = containers._etc_files
    link = os.path.join(rt.root, "containers", "by-name", "racing")
    seen: dict[str, str] = {}

    def gc_now(cdir, *args, **kwargs):
        seen["owners"] = " ".join(os.listdir(os.path.join(rt.root, "containers", "owners")))
        seen["gc"] = rt.out("gc", "--json")
        seen["link"] = os.readlink(link)
        seen["again"] = rt.fails("create", "--name", "racing", IMAGE, "true")
        return real(cdir, *args, **kwargs)

    monkeypatch.setattr(containers, "_etc_files", gc_now)
    cid = containers.create(api.open_repo(rt.root), IMAGE, runopts.RunOptions(name="racing", command=["true"]))
    assert seen["link"] == cid and cid in seen["owners"], seen
    assert '"leftovers_removed": 0' in seen["gc"], seen
    assert "the container name 'racing' is already in use" in seen["again"], seen
    assert os.listdir(os.path.join(rt.root, "containers", "owners")) == []  # lg create's: the user's now
    rt("ps", "-a")  # runs the sweep: a created container is kept
    assert rt.inspect("racing")["Id"] == cid
    rt("rm", "racing")


@pytest.mark.root
def test_a_monitor_starting_moves_a_big_log_aside(rt):
    log = os.path.join(rt.root, "run", "monitor.log")
    os.makedirs(os.path.dirname(log), exist_ok=True)
    with open(log, "wb") as f:
        f.write(b"old line\n" * 200_000)  # 1.8 MB: over the limit
    cid = rt.run_d(IMAGE, "sleep", "30")
    old = log + ".old"
    assert os.path.getsize(old) == 1_800_000
    assert os.path.getsize(log) < 1 << 20
    rt("rm", "-f", cid)


def test_a_record_that_does_not_read_is_an_fsck_problem(rt):
    rt("create", "--name", "broken", IMAGE, "true")
    cid = rt.inspect("broken")["Id"]
    with open(os.path.join(rt.root, "containers", cid, "container.json"), "w") as f:
        f.write("{not json")
    proc = rt("fsck", check=False)
    assert proc.returncode == 1
    assert f"container {cid[:12]}: its record does not read" in proc.stdout.decode()
