"""Volumes, lg cp, pause/unpause, stats, top, rename, system df and image prune (issue 18).

Everything runs lg as a user would, in the test's own root (runtime_helpers.rt), and
looks at the result from outside: the container's own view (stat, cat), the host's
files, lg's listings and the store.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
import uuid

import pytest

from layergit.runtime.cgroups import Cgroup

from .runtime_helpers import IMAGE, rt, runtime_template  # noqa: F401
from .test_cgroups_v2 import _fork_into, cgroups, v2root  # noqa: F401

pytestmark = pytest.mark.root


@pytest.fixture
def data_image(rt):  # noqa: F811
    """An image with /data (0750, 123:456) holding f (0640, 123:456) and VOLUME /anon."""
    rt("run", "--name", "mk", IMAGE, "sh", "-c",
       "mkdir /data /anon && echo img > /data/f && echo a > /anon/a && chown 123:456 /data/f /data"
       " && chmod 640 /data/f && chmod 750 /data", timeout=60)
    rt("commit", "mk", "-t", "withdata", "-c", "VOLUME /anon", timeout=60)
    rt("rm", "mk")
    return "withdata"


def _volumes(rt) -> list[str]:  # noqa: F811
    return rt.out("volume", "ls", "-q").split()


def test_volume_filled_from_image_survives_rm_and_is_kept_out_of_commit(rt, data_image):  # noqa: F811
    out = rt.out("run", "--rm", "-v", "vol1:/data", data_image, "sh", "-c",
                 "stat -c '%u:%g %a' /data /data/f; cat /data/f /anon/a; echo new > /data/g", timeout=60)
    assert out.split("\n")[:4] == ["123:456 750", "123:456 640", "img", "a"]
    assert _volumes(rt) == ["vol1"], "the image's VOLUME /anon went with --rm; the named one stays"
    on_host = json.loads(rt.out("volume", "inspect", "vol1"))[0]["Mountpoint"]
    assert open(os.path.join(on_host, "g")).read() == "new\n"

    # a second container sees the data, and a commit of it never holds the volume's content
    rt("run", "--name", "second", "-v", "vol1:/data", data_image, "sh", "-c",
       "cat /data/g && echo more > /data/h && echo layer > /layer", timeout=60)
    rt("commit", "second", "-t", "snap", timeout=60)
    assert rt.out("cat", "snap", "/layer") == "layer\n"
    for path in ("/data/g", "/data/h"):
        assert rt("cat", "snap", path, check=False).returncode != 0, path
    assert rt.out("cat", "snap", "/data/f") == "img\n"

    # refused while a (stopped) container uses it: one line, exit 1, the volume intact
    err = rt.fails("volume", "rm", "vol1", code=1)
    assert "in use" in err and os.path.isfile(os.path.join(on_host, "h"))
    rt("rm", "second")
    assert rt.out("volume", "rm", "vol1").split() == ["vol1"]
    assert not os.path.exists(os.path.dirname(on_host))


def test_anonymous_volumes(rt, data_image):  # noqa: F811
    cid = rt.out("create", data_image, "true").strip()
    anon = _volumes(rt)
    assert len(anon) == 1 and re.fullmatch(r"[0-9a-f]{64}", anon[0])
    rt("rm", "-v", cid)
    assert _volumes(rt) == []

    cid = rt.out("create", data_image, "true").strip()
    rt("rm", cid)
    assert len(_volumes(rt)) == 1, "lg rm without -v keeps anonymous volumes, as Docker's"
    assert "Total reclaimed space" in rt.out("volume", "prune", "-f")
    assert _volumes(rt) == []

    # a detached --rm container: the monitor removes it, the next look drops its volume
    cid = rt.run_d("--rm", data_image, "sleep", "60")
    assert len(_volumes(rt)) == 1
    rt("kill", cid)
    rt.wait_until(lambda: not os.path.isdir(os.path.join(rt.containers_dir, cid)), 15, what="--rm removal")
    assert _volumes(rt) == []


def test_bad_volume_input_leaves_nothing(rt):  # noqa: F811
    assert "invalid volume name" in rt.fails("volume", "create", "../etc", code=2)
    for spec in ("a/b:/x", "./rel:/x", "x:/data"):
        assert "invalid volume name" in rt.fails("run", "-v", spec, IMAGE, "true", code=125)
    assert "target is required" in rt.fails("run", "--mount", "type=volume,src=ok1", IMAGE, "true", code=125)
    assert "does not exist" in rt.fails("run", "-v", "/no/such/dir:/x", IMAGE, "true", code=125)
    assert _volumes(rt) == [] and rt.out("ps", "-aq") == ""
    assert "no such volume" in rt.fails("volume", "rm", "nope", code=1)


def test_mount_flag_ls_filters_and_format(rt):  # noqa: F811
    rt("volume", "create", "--label", "team=web", "web1")
    out = rt.out("run", "--rm", "--mount", "type=volume,src=web1,dst=/w,readonly",
                 "--mount", "type=tmpfs,dst=/t,tmpfs-size=1m", IMAGE, "sh", "-c",
                 "touch /w/x 2>/dev/null && echo writable; df -k /t | tail -1", timeout=60)
    assert "writable" not in out and re.search(r"\s1024\s", out), out
    rt("run", "--rm", "--mount", "src=db1,dst=/db,volume-label=team=db", IMAGE, "true", timeout=60)
    assert rt.out("volume", "ls", "-q", "-f", "label=team=web") == "web1\n"
    assert rt.out("volume", "ls", "--format", "{{.Name}} {{.Driver}} {{.Label \"team\"}}") == \
        "db1 local db\nweb1 local web\n"
    assert rt.out("volume", "ls", "-q", "-f", "name=^d", "-f", "dangling=true") == "db1\n"
    assert "invalid filter" in rt.fails("volume", "ls", "-f", "color=red", code=2)


# -- lg cp -----------------------------------------------------------------------------------------


@pytest.fixture
def host_dir(tmp_path):
    d = tmp_path / "host"
    (d / "victim").mkdir(parents=True)
    (d / "secret").write_text("host secret\n")
    return d


def test_cp_keeps_owners_both_ways(rt, host_dir):  # noqa: F811
    rt.run_d("--name", "box", IMAGE, "sh", "-c",
             "mkdir -p /d/sub && echo in > /d/sub/f && chown -R 42:43 /d && chmod 604 /d/sub/f && exec sleep 60")
    rt.wait_until(lambda: rt("exec", "box", "test", "-f", "/d/sub/f", check=False).returncode == 0, what="/d")
    rt("cp", "box:/d", str(host_dir / "out"))
    st = os.stat(host_dir / "out" / "sub" / "f")
    assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (42, 43, 0o604)
    assert os.stat(host_dir / "out" / "sub").st_uid == 42

    payload = host_dir / "payload"
    payload.write_text("payload\n")
    os.chown(payload, 7, 8)
    os.chmod(payload, 0o640)
    rt("cp", str(payload), "box:/tmp/")
    assert rt.out("exec", "box", "stat", "-c", "%u:%g %a", "/tmp/payload") == "7:8 640\n"
    # a tree nested too deep for the walk: refused in one line, nothing of it left on the host
    rt("exec", "box", "sh", "-c", "cd /tmp && i=0; while [ $i -lt 600 ]; do mkdir d && cd d; i=$((i+1)); done")
    before = sorted(os.listdir(host_dir))
    assert "too deep" in rt.fails("cp", "box:/tmp/d", str(host_dir / "deep"), code=1)
    assert sorted(os.listdir(host_dir)) == before
    rt("stop", "-t", "0", "box")  # a stopped container: its filesystem is mounted for the copy alone
    rt("cp", str(payload), "box:/stopped")
    rt("cp", "box:/tmp/payload", str(host_dir / "back"))
    assert (host_dir / "back").read_text() == "payload\n" and os.stat(host_dir / "back").st_uid == 7
    rt("start", "box")
    assert rt.out("exec", "box", "cat", "/stopped") == "payload\n"


def test_cp_follows_no_symlink_out_of_the_container(rt, host_dir):  # noqa: F811
    """The container plants links to the host's paths; lg cp, running as root on the host,
    must resolve every one of them inside the container, in both directions."""
    h = str(host_dir)
    rt.run_d("--name", "evil", IMAGE, "sh", "-c",
             f"mkdir -p /d && ln -s {h} /d/esc && ln -s {h}/secret /d/file-link && ln -s / /rootlink"
             f" && mkdir -p /tmp/x && ln -s {h}/victim /tmp/x/evil && echo mine > /etc/mine && exec sleep 60")
    rt.wait_until(lambda: rt("exec", "evil", "test", "-L", "/tmp/x/evil", check=False).returncode == 0,
                  what="the links")
    # out: a link is copied as a link, and a path through one stays in the container
    rt("cp", "evil:/d", f"{h}/out")
    assert os.readlink(f"{h}/out/file-link") == f"{h}/secret"
    assert os.readlink(f"{h}/out/esc") == h
    assert "no such file" in rt.fails("cp", "evil:/d/esc/secret", f"{h}/stolen", code=1)
    assert not os.path.exists(f"{h}/stolen")
    rt("cp", "evil:/rootlink/etc/mine", f"{h}/mine")
    assert open(f"{h}/mine").read() == "mine\n"
    # in: a destination through a link lands in the container or nowhere, never on the host
    (host_dir / "p").write_text("planted\n")
    rt.fails("cp", f"{h}/p", "evil:/tmp/x/evil/", code=1)
    rt("cp", f"{h}/p", "evil:/tmp/x/evil")  # replaces the link itself
    assert os.listdir(f"{h}/victim") == []
    assert rt.out("exec", "evil", "cat", "/tmp/x/evil") == "planted\n"
    rt("cp", f"{h}/p", "evil:/rootlink/tmp/")
    assert rt.out("exec", "evil", "cat", "/tmp/p") == "planted\n"
    assert rt.fails("cp", f"{h}/p", f"{h}/q", code=2)


# -- pause, stats, top, rename ---------------------------------------------------------------------


def test_pause_freezes_and_unpause_resumes(rt, tmp_path):  # noqa: F811
    counter = tmp_path / "n"
    counter.write_text("0\n")
    rt.run_d("--name", "tick", "-v", f"{tmp_path}:/out", IMAGE, "sh", "-c",
             "i=0; while true; do i=$((i+1)); echo $i > /out/n; sleep 0.05; done")

    def value() -> int:
        text = counter.read_text().strip()
        return int(text) if text else 0

    rt.wait_until(lambda: value() > 3, what="the counter to run")
    rt("pause", "tick")
    assert rt.state("tick")["Status"] == "paused" and "(Paused)" in rt.out("ps")
    frozen = value()
    time.sleep(0.6)
    assert value() == frozen, "a paused container went on counting"
    assert "paused" in rt.fails("exec", "tick", "true", code=1)
    assert "already paused" in rt.fails("pause", "tick", code=1)
    rt("unpause", "tick")
    rt.wait_until(lambda: value() > frozen + 3, what="the counter to resume")
    assert rt.state("tick")["Status"] == "running"
    rt("pause", "tick")
    rt("rm", "-f", "tick")  # a frozen container is still removed


def test_stats_top_rename(rt):  # noqa: F811
    rt.run_d("--name", "hog", "--shm-size", "128m", IMAGE, "sh", "-c",
             "head -c 67108864 /dev/zero > /dev/shm/fill && exec sleep 60")
    rt.run_d("--name", "idle", IMAGE, "sleep", "60")
    rt.wait_until(lambda: rt("exec", "hog", "test", "-s", "/dev/shm/fill", check=False).returncode == 0,
                  what="the fill")
    rt.wait_until(lambda: os.stat(f"/proc/{rt.state('hog')['Pid']}").st_nlink and
                  "sleep" in open(f"/proc/{rt.state('hog')['Pid']}/cmdline").read(), what="hog to sleep")
    rows = {r["name"]: r for r in json.loads(rt.out("stats", "--no-stream", "--json"))}
    assert set(rows) == {"hog", "idle"}
    assert 64 << 20 <= rows["hog"]["memory"] < 100 << 20, rows["hog"]
    assert rows["idle"]["memory"] < 16 << 20 and rows["hog"]["pids"] == 1
    assert 0 < rows["hog"]["memory_limit"] and 0 <= rows["hog"]["cpu_percent"] < 400
    line = rt.out("stats", "--no-stream", "--format", "{{.Name}} {{.MemUsage}} {{.PIDs}}", "hog")
    assert re.fullmatch(r"hog (6[4-9]|[7-9]\d)\.?\d*MiB / \S+ 1\n", line), line
    table = rt.out("stats", "--no-stream")
    assert table.startswith("CONTAINER ID") and "hog" in table and "idle" in table

    top = rt.out("top", "idle").splitlines()
    assert top[0].split()[:2] == ["UID", "PID"] and len(top) == 2 and top[1].endswith("sleep 60")
    assert rt.out("top", "idle", "-o", "pid,comm").splitlines()[1].split()[1] == "sleep"

    rt("rename", "idle", "calm")
    assert rt.inspect("calm")["Name"] == "/calm"
    assert "no such" in rt.fails("inspect", "idle", code=1)
    assert "already in use" in rt.fails("rename", "calm", "hog", code=1)
    rt.run_d("--name", "idle", IMAGE, "true")  # the old name is free again


def test_rename_reaches_peers_on_a_network(rt):  # noqa: F811
    net = f"rn{uuid.uuid4().hex[:8]}"
    rt("network", "create", net)
    try:
        rt.run_d("--network", net, "--name", "before", IMAGE, "sleep", "60")
        rt.run_d("--network", net, "--name", "peer", IMAGE, "sleep", "60")
        rt("rename", "before", "after")
        hosts = rt.out("exec", "peer", "cat", "/etc/hosts")
        assert re.search(r"\safter\s", hosts) and not re.search(r"\sbefore\s", hosts), hosts
    finally:
        rt("rm", "-f", "after", "before", "peer", check=False)
        rt("network", "rm", net, check=False)


def test_stats_on_cgroup_v2(cgroups):  # noqa: F811
    """usage() on a v2 hierarchy (this host's unified tree): CPU time and pids counted."""
    cg = cgroups()
    cg.create(None, None, None)

    def spin():
        end = time.monotonic() + 0.3
        while time.monotonic() < end:
            pass
        time.sleep(30)

    _fork_into(cgroups, cg, spin)
    deadline = time.monotonic() + 10
    while cg.usage().cpu_ns < 100_000_000 and time.monotonic() < deadline:
        time.sleep(0.05)
    usage = cg.usage()
    assert usage.cpu_ns >= 100_000_000 and len(cg.pids()) == 1
    assert isinstance(Cgroup(f"none-{uuid.uuid4().hex}", root=cg.root).usage().cpu_ns, int)


# -- system df, image prune ------------------------------------------------------------------------


def test_system_df_and_image_prune(rt, tmp_path):  # noqa: F811
    rt("run", "--name", "writer", "-v", "big:/big", IMAGE, "sh", "-c",
       "head -c 100000 /dev/zero > /big/f && head -c 5000 /dev/zero > /layer", timeout=60)
    rt.run_d("--name", "up", IMAGE, "sleep", "60")
    rt("volume", "create", "unused")
    rows = {r["kind"]: r for r in json.loads(rt.out("system", "df", "--json"))}
    assert rows["Local Volumes"] == {"kind": "Local Volumes", "total": 2, "active": 1, "size": 100000,
                                     "reclaimable": 0}
    assert (rows["Containers"]["total"], rows["Containers"]["active"]) == (2, 1)
    assert rows["Containers"]["reclaimable"] >= 5000 and rows["Containers"]["size"] >= 5000
    assert rows["Images"]["total"] == 1 and rows["Images"]["active"] == 1 and rows["Images"]["reclaimable"] == 0
    assert "Local Volumes" in rt.out("system", "df")

    # a tag moved off a commit leaves it dangling: prune removes it from the store
    tree = tmp_path / "solo"
    tree.mkdir()
    (tree / "a").write_text("only here\n")
    rt("commit", str(tree), "-t", "solo")
    old = rt.inspect("solo")["Id"]
    rt("tag", IMAGE, "solo")
    rows = {r["kind"]: r for r in json.loads(rt.out("system", "df", "--json"))}
    assert rows["Images"]["reclaimable"] > 0
    out = rt.out("image", "prune", "-f", timeout=120)
    assert f"deleted: {old}" in out
    store = os.path.join(rt.root, "store.git")
    assert subprocess.run(["git", "-C", store, "cat-file", "-e", old]).returncode != 0
    assert rt.out("cat", "solo", "/etc/release") == "2\n"
    rows = {r["kind"]: r for r in json.loads(rt.out("system", "df", "--json"))}
    assert rows["Images"]["reclaimable"] == 0
    assert rt.out("image", "prune", "-f") == "Total reclaimed space: 0B\n"
