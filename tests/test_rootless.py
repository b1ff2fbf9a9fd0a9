"""lg as an ordinary user (issue 21): a real user with a subordinate range, through setpriv."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import time
import urllib.request

import pytest

from .conftest import REPO, cleanup_root
from .rootless_user import rangeless_user, rootless_user, ulg  # noqa: F401  (fixtures)
from .test_runtime_lifecycle import _cmdline

pytestmark = pytest.mark.root  # making users takes root; lg itself runs as the user

# What a tree looks like from inside the namespace: path -> (type and mode, uid, gid, content or target)
DESCRIBE = r"""
import hashlib, json, os, stat, sys
out = {}
for top in sys.argv[1:]:
    tree = {}
    for d, dirs, files in os.walk(top):
        for n in sorted(dirs + files) + ([] if d != top else ['.']):
            p = os.path.join(d, n) if n != '.' else d
            st = os.lstat(p)
            if stat.S_ISREG(st.st_mode):
                what = hashlib.sha256(open(p, 'rb').read()).hexdigest()
            elif stat.S_ISLNK(st.st_mode):
                what = os.readlink(p)
            else:
                what = ''
            tree[os.path.relpath(p, top)] = [st.st_mode, st.st_uid, st.st_gid, st.st_mtime_ns if not stat.S_ISLNK(st.st_mode) else 0, what]
    out[top] = tree
print(json.dumps(out))
"""


def _seen_inside(ulg, *trees: str) -> dict:
    return json.loads(ulg.out("unshare", "python3", "-c", DESCRIBE, *trees))


def test_unshare_maps_the_user_to_root_and_its_range(ulg, rootless_user):
    out = ulg.out("unshare", "cat", "/proc/self/uid_map", "/proc/self/gid_map").split()
    assert out == ["0", str(rootless_user.uid), "1", "1", str(rootless_user.subuid), "65536",
                   "0", str(rootless_user.gid), "1", "1", str(rootless_user.subgid), "65536"]
    # the run directory falls back to /tmp without XDG_RUNTIME_DIR, private to the user
    run = f"/tmp/layergit-run-{rootless_user.uid}"
    st = os.lstat(run)
    assert st.st_uid == rootless_user.uid and st.st_mode & 0o777 == 0o700
    # a second lg joins the same namespace (one pause process per user)
    first = ulg.out("unshare", "readlink", "/proc/self/ns/user")
    assert ulg.out("unshare", "readlink", "/proc/self/ns/user") == first
    assert ulg("unshare", "sh", "-c", "exit 7", check=False).returncode == 7


def test_a_tree_of_several_owners_keeps_them_exactly(ulg, rootless_user):
    user = rootless_user
    src = os.path.join(user.home, "src-owners")
    ulg("unshare", "sh", "-c", f"""set -e
        mkdir -p {src}/www {src}/home/me
        echo page > {src}/www/index.html; echo key > {src}/home/me/key
        ln -s ../www/index.html {src}/home/me/link
        chown -R 33:33 {src}/www; chown -R 1000:1000 {src}/home/me; chown -h 1000:33 {src}/home/me/link
        chown 0:65535 {src}/home; chmod 4750 {src}/www/index.html; chmod 0711 {src}/home/me""")
    ulg("commit", src, "-t", "owners")
    dest = os.path.join(user.home, "dest-owners")
    ulg("checkout", "owners", dest)
    seen = _seen_inside(ulg, src, dest)
    del seen[src]["."], seen[dest]["."]  # a checkout with a setuid file is made private
    assert seen[src] == seen[dest]
    assert seen[dest]["www/index.html"][1:3] == [33, 33]
    assert seen[dest]["home/me/key"][1:3] == [1000, 1000]
    assert seen[dest]["home/me/link"][1:3] == [1000, 33]
    assert seen[dest]["home"][2] == 65535
    # on disk, the owners are the mapped host ids
    st = os.lstat(os.path.join(dest, "www", "index.html"))
    assert (st.st_uid, st.st_gid) == (user.host_uid(33), user.host_gid(33))
    assert os.lstat(dest).st_uid == user.uid
    # and in the store exactly 33, as root's lg would read it
    stored = {e["name"]: e for e in json.loads(ulg.out("ls", "--json", "owners", "/www"))}
    assert (stored["index.html"]["uid"], stored["index.html"]["gid"]) == (33, 33)


@pytest.fixture
def image(ulg, rootless_user):
    """The busybox fixture committed by the user (its files the user's: root's inside)."""
    user = rootless_user
    src = os.path.join(user.home, "busybox")
    if not os.path.isdir(src):
        subprocess.run(["cp", "-a", os.environ.get("LG_FIXTURE_BUSYBOX") or _busybox(), src], check=True)
        subprocess.run(["chown", "-R", f"{user.uid}:{user.gid}", src], check=True)
    ulg("commit", src, "-t", "bb")
    return "bb"


def _busybox() -> str:
    out = subprocess.run(["bash", os.path.join(REPO, "fixtures", "busybox.sh")], check=True,
                         capture_output=True, text=True).stdout
    return out.strip().splitlines()[-1]


def _user_pids(user) -> set[int]:
    pids = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid in (user.uid, user.host_uid(33)) or _in_range(user, entry):
                    pids.add(int(entry))
            except OSError:
                pass
    return pids


def _in_range(user, pid: str) -> bool:
    st = os.stat(f"/proc/{pid}")
    return user.subuid <= st.st_uid < user.subuid + 65536


def test_run_exec_stop_rm_leave_nothing(ulg, rootless_user, image):
    before = _user_pids(rootless_user)
    out = ulg.out("run", "--rm", "--network", "none", image, "sh", "-c", "id -u; cat /proc/self/uid_map; ls /dev")
    lines = out.split()
    assert lines[0] == "0" and lines[1:4] == ["0", str(rootless_user.uid), "1"]
    assert {"null", "zero", "urandom", "tty", "pts"} <= set(lines)
    cid = ulg.out("run", "-d", "--name", "svc", "--network", "none", image, "sleep", "300").strip()
    assert ulg.out("exec", "svc", "sh", "-c", "echo $((6*7))").strip() == "42"
    # the container's processes run as the mapped ids on the host
    assert ulg.out("exec", "-u", "33", "svc", "id", "-u").strip() == "33"
    ulg("stop", "-t", "1", "svc")
    assert ulg.out("ps", "-aq", "--filter", "status=exited").split() == [cid[:12]]
    ulg("rm", "svc")
    assert ulg.out("ps", "-aq") == ""
    assert [d for d in os.listdir(os.path.join(ulg.root, "containers")) if len(d) == 64] == []
    # what stays is lg's own: the pause process and the monitor, no container process
    left = [_cmdline(p) for p in _user_pids(rootless_user) - before]
    assert all(b"layergit.runtime.monitor" in c or c.startswith(b"/usr/bin/sleep\0infinity") for c in left if c), left


def test_files_a_container_owns_as_33_are_committed_as_33(ulg, rootless_user, image):
    ulg("run", "-d", "--name", "w", "--network", "none", image, "sh", "-c",
        "mkdir -p /var/www && echo page > /var/www/index.html && chown -R 33:33 /var/www && sleep 300")
    for _ in range(100):
        if "index.html" in ulg.out("diff", "w"):
            break
    err = ulg.fails("commit", "w", "-t", "www")  # running: no freezer of its own here
    assert "freeze" in err and "stop the container first" in err
    ulg("stop", "-t", "0", "w")
    ulg("commit", "w", "-t", "www")
    entries = {e["name"]: e for e in json.loads(ulg.out("ls", "--json", "www", "/var/www"))}
    assert (entries["index.html"]["uid"], entries["index.html"]["gid"]) == (33, 33)
    upper = os.path.join(ulg.root, "containers")
    seen = [os.lstat(os.path.join(d, "index.html")) for d, _, files in os.walk(upper) if "index.html" in files]
    assert seen and all((st.st_uid, st.st_gid) == (rootless_user.host_uid(33), rootless_user.host_gid(33)) for st in seen)
    ulg("rm", "w")
    assert ulg.out("run", "--rm", "--network", "none", "www", "stat", "-c", "%u:%g", "/var/www/index.html").strip() == "33:33"


def test_two_containers_reach_each_other_by_name_on_a_user_network(ulg, image):
    ulg("network", "create", "mesh")
    ulg("run", "-d", "--name", "alpha", "--network", "mesh", image, "sleep", "300")
    out = ulg.out("run", "--rm", "--network", "mesh", image, "ping", "-c", "1", "-W", "3", "alpha")
    assert "1 packets received" in out
    ulg("rm", "-f", "alpha")
    ulg("network", "rm", "mesh")
    assert "mesh" not in ulg.out("network", "ls")


def test_devices_are_the_hosts_nodes_bound_in(ulg, image, tmp_path):
    """--device without root binds the host's node (a user namespace may not make one), and
    a node the user may not open on the host is refused in one line."""
    out = ulg.out("run", "--rm", "--network", "none", "--device", "/dev/zero:/dev/lgzero:r", image,
                  "sh", "-c", "head -c 4 /dev/lgzero | od -An -tx1")
    assert out.split() == ["00", "00", "00", "00"]
    locked = "/dev/lg-test-locked"
    os.mknod(locked, 0o600 | stat.S_IFCHR, os.makedev(1, 5))
    try:
        err = ulg.fails("run", "--rm", "--network", "none", "--device", locked, image, "true", code=125)
        assert "may not open it" in err and len(err.strip().splitlines()) == 1, err
    finally:
        os.unlink(locked)
    assert ulg.out("ps", "-aq") == ""


def test_limits_warn_and_the_container_runs(ulg, image):
    proc = ulg("run", "--rm", "--network", "none", "--memory", "64m", "--pids-limit", "50", image, "true")
    err = proc.stderr.decode().strip().splitlines()
    assert len(err) == 1 and "without root" in err[0] and "--memory" in err[0]


@pytest.fixture
def delegated(rootless_user):
    """A cgroup v2 unit delegated to the user as systemd's ``Delegate=yes`` delegates one, in
    a tree of the user's as systemd's user manager has (user@UID.service): both directories
    and their cgroup.procs, cgroup.threads and cgroup.subtree_control are the user's, the
    unit carries systemd's ``user.delegate`` mark, and its children get the controllers its
    parents offer (none on this hybrid host's unified tree). Whatever still runs in the
    tree is killed and the tree removed after. Yields the unit's directory."""
    from layergit.runtime.cgroups import v2_mount

    mount = v2_mount()
    if mount is None:
        pytest.skip("this kernel has no cgroup2 hierarchy mounted")
    manager = os.path.join(mount, f"lgdeleg-{os.urandom(4).hex()}")
    unit = os.path.join(manager, "lg.scope")
    os.mkdir(manager)
    try:
        for path in (manager, unit):
            if path == unit:
                os.mkdir(unit)
                os.setxattr(unit, "user.delegate", b"1")
            offered = set(open(os.path.join(path, "cgroup.controllers")).read().split()) & {"memory", "pids", "cpu"}
            if offered and path == manager:
                with open(os.path.join(path, "cgroup.subtree_control"), "w") as f:
                    f.write(" ".join("+" + c for c in sorted(offered)))
            for name in ("", "cgroup.procs", "cgroup.threads", "cgroup.subtree_control"):
                os.chown(os.path.join(path, name), rootless_user.uid, rootless_user.gid)
        yield unit
    finally:
        with open(os.path.join(manager, "cgroup.kill"), "w") as f:
            f.write("1")
        for directory, _, _ in sorted(os.walk(manager), key=lambda entry: -len(entry[0])):
            for _ in range(500):
                try:
                    os.rmdir(directory)
                    break
                except OSError:  # killed processes leave as they are reaped
                    time.sleep(0.01)


def _in_cgroup(ulg, cgroup: str):
    """The same user and root, with lg started in ``cgroup``, as a user service's would be."""
    runner = type(ulg)(ulg.root, ulg.user)
    runner.prefix = ["sh", "-c", 'echo $$ > "$0" && exec "$@"', os.path.join(cgroup, "cgroup.procs"), *runner.prefix]
    return runner


def test_a_delegated_cgroup_v2_subtree_holds_the_containers(ulg, image, delegated):
    """lg started in a unit delegated to its user gives each container a cgroup there (in the
    unit systemd marks, not the user's tree above it): the container's processes are in it,
    pause and a live commit freeze it through v2's cgroup.freeze, a limit whose controller
    was not delegated is warned about in one line (and the container runs). The place is
    recorded with the container: lg run from a login shell (no delegation) finds it too,
    to pause, stop and remove it, which removes the cgroup."""
    dlg = _in_cgroup(ulg, delegated)
    offered = open(os.path.join(delegated, "cgroup.controllers")).read().split()
    proc = dlg("run", "-d", "--name", "c", "--network", "none", "--memory", "64m", image, "sleep", "300")
    cid, err = proc.stdout.decode().strip(), proc.stderr.decode().strip().splitlines()
    cgroup = os.path.join(delegated, "layergit", cid)
    if "memory" in offered:
        assert err == [] and open(os.path.join(cgroup, "memory.max")).read().strip() == str(64 << 20)
    else:
        assert len(err) == 1 and "--memory" in err[0] and delegated in err[0] and "runs without" in err[0]
    pid = json.loads(dlg.out("inspect", "c"))[0]["State"]["Pid"]
    assert str(pid) in open(os.path.join(cgroup, "cgroup.procs")).read().split()

    dlg("pause", "c")
    assert "frozen 1" in open(os.path.join(cgroup, "cgroup.events")).read()
    assert "Paused" in dlg.out("ps", "--format", "{{.Status}}")
    ulg("unpause", "c")  # from outside the delegated unit: the recorded place
    assert "frozen 0" in open(os.path.join(cgroup, "cgroup.events")).read()
    dlg("exec", "c", "sh", "-c", "echo kept > /note")
    ulg("commit", "c", "-t", "live")  # running: frozen for the snapshot, then thawed
    assert "frozen 0" in open(os.path.join(cgroup, "cgroup.events")).read()
    assert dlg.out("cat", "live", "/note") == "kept\n"
    ulg("rm", "-f", "c")
    assert not os.path.exists(cgroup)


def test_a_monitor_outside_the_delegated_unit_refuses_its_containers(ulg, image, delegated):
    """The container's place is the delegated unit its lg create ran in; a monitor started
    earlier from outside it (a login shell) cannot move a process there, so the start
    fails in one line, and the container is left as created, not half started."""
    ulg("run", "-d", "--name", "outside", "--network", "none", image, "sleep", "300")  # the monitor, outside
    dlg = _in_cgroup(ulg, delegated)
    dlg("create", "--name", "c", "--network", "none", image, "sleep", "300")
    err = dlg.fails("start", "c")
    assert "cgroup" in err, err
    assert json.loads(ulg.out("inspect", "c"))[0]["State"]["Status"] in ("created", "exited")
    ulg("rm", "-f", "c", "outside")


def test_a_build_with_run_matches_root_cache_keys(ulg, rootless_user, lg, tmp_path):
    """The same Dockerfile on the same base image: the rootless RUN step's cache key is root's."""
    tar = os.path.join(rootless_user.home, "bb.tar")
    subprocess.run(["tar", "-C", os.environ.get("LG_FIXTURE_BUSYBOX") or _busybox(), "--numeric-owner",
                    "--owner=0", "--group=0", "--mtime=@0", "-cf", tar, "."], check=True)
    os.chown(tar, rootless_user.uid, rootless_user.gid)
    ctx = os.path.join(rootless_user.home, "ctx")
    os.makedirs(ctx, exist_ok=True)
    with open(os.path.join(ctx, "Dockerfile"), "w") as f:
        f.write("FROM base\nRUN mkdir /srv && echo built > /srv/f && chown -R 33:33 /srv\nENV A=1\n")
    subprocess.run(["chown", "-R", f"{rootless_user.uid}:{rootless_user.gid}", ctx], check=True)
    # the same base commit in both roots: root's import, exported with its commit records
    lg("import", tar, "-t", "base")
    archive = os.path.join(rootless_user.home, "base.docker.tar")
    lg("export", "base", "--format", "docker-archive", "-o", archive)
    os.chown(archive, rootless_user.uid, rootless_user.gid)
    ulg("import", archive, "-t", "base")
    assert ulg.out("images", "-q", "base") == lg.out("images", "-q", "base")
    keys = []
    for runner in (ulg, lg):
        runner("build", "-t", "out", ctx)
        refs = subprocess.run(["git", "--git-dir", os.path.join(runner.root, "store.git"), "for-each-ref",
                               "--format=%(refname)", "refs/layergit/build-cache/"],
                              capture_output=True, text=True, check=True).stdout.split()
        keys.append(sorted(refs))
        stored = {e["name"]: e for e in json.loads(runner.out("ls", "--json", "out", "/srv"))}
        assert stored["f"]["uid"] == 33
    # RUN's key (the base and the command) is root's; ENV's depends on RUN's result, whose
    # mtimes differ between any two builds, root's or not
    assert len(keys[0]) == len(keys[1]) == 2 and len(set(keys[0]) & set(keys[1])) == 1


def test_publishing_refusals_are_one_line(ulg, image):
    import socket

    low = int(open("/proc/sys/net/ipv4/ip_unprivileged_port_start").read())
    if low > 80:
        err = ulg.fails("run", "--rm", "-p", "80:80", image, "true", code=125)
        assert "privileged" in err and "ip_unprivileged_port_start" in err
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        err = ulg.fails("run", "--rm", "-p", f"{port}:80", image, "true", code=125)
        assert "already in use" in err
    assert ulg.out("ps", "-aq") == ""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _fetch(url: str) -> bytes:
    deadline = time.monotonic() + 10
    while True:
        try:
            return urllib.request.urlopen(url, timeout=2).read()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _host_address() -> str | None:
    """One of the host's own addresses that is not loopback, if it has one."""
    out = subprocess.run(["ip", "-4", "-o", "addr", "show", "scope", "global"], capture_output=True, text=True).stdout
    fields = out.split()
    return fields[fields.index("inet") + 1].split("/")[0] if "inet" in fields else None


def test_published_ports_are_served_on_the_host(ulg, image):
    """The monitor binds published ports in the host's network namespace (pasta is not
    needed for them): one on the host's loopback, one on every address."""
    loopback, every = _free_port(), _free_port()
    ulg("run", "-d", "--name", "web", "-p", f"127.0.0.1:{loopback}:80", image, "httpd", "-f", "-p", "80", "-h", "/etc")
    ulg("run", "-d", "--name", "web2", "-p", f"{every}:80", image, "httpd", "-f", "-p", "80", "-h", "/etc")
    try:
        assert _fetch(f"http://127.0.0.1:{loopback}/hostname").strip()
        address = _host_address()
        if address:
            assert _fetch(f"http://{address}:{every}/hostname").strip()
        err = ulg.fails("run", "--rm", "-p", f"127.0.0.1:{loopback}:80", image, "true", code=125)
        assert "already in use" in err and len(err.strip().splitlines()) == 1, err
    finally:
        ulg("rm", "-f", "web", "web2")
    with socket.socket() as again:  # the ports went with the containers
        again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        again.bind(("127.0.0.1", loopback))


def test_outbound_traffic_goes_through_pasta(ulg, image):
    """A container on a user network connects out: pasta maps the namespace's gateway
    to the host's loopback, where a server of the test's accepts and reads."""
    if os.stat("/dev/net/tun").st_mode & 0o006 != 0o006:
        pytest.skip("this host does not let users open /dev/net/tun: pasta cannot run")
    route = subprocess.run(["ip", "-4", "route", "show", "default"], capture_output=True, text=True).stdout.split()
    if "via" not in route:
        pytest.skip("the host has no default route: pasta has no gateway to map")
    gateway = route[route.index("via") + 1]
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        server.settimeout(15)
        port = server.getsockname()[1]
        proc = ulg("run", "--rm", image, "sh", "-c", f"echo hello from inside | nc -w 3 {gateway} {port}", check=False)
        conn, _ = server.accept()
        with conn:
            conn.settimeout(5)
            assert conn.recv(100) == b"hello from inside\n", proc.stderr


def test_a_new_namespace_stops_the_pasta_of_a_dead_one(ulg, rootless_user):
    """pasta holds the namespace it connects: when the pause process dies (killed, or a
    crash), the next lg makes a new namespace and stops the old pasta."""
    if os.stat("/dev/net/tun").st_mode & 0o006 != 0o006:
        pytest.skip("this host does not let users open /dev/net/tun: pasta cannot run")
    run_dir = f"/tmp/layergit-run-{rootless_user.uid}"
    ulg("unshare", "true")
    pause = int(open(os.path.join(run_dir, "pause.pid")).read().split()[0])
    old = int(open(os.path.join(run_dir, "pasta.pid")).read())
    os.kill(pause, 9)
    ulg("unshare", "true")
    deadline = time.monotonic() + 5
    while os.path.exists(f"/proc/{old}") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not os.path.exists(f"/proc/{old}") or open(f"/proc/{old}/stat").read().split()[2] == "Z"
    new = int(open(os.path.join(run_dir, "pasta.pid")).read())
    assert new != old and os.path.exists(f"/proc/{new}")


@pytest.fixture(scope="module")
def second_user():
    from .rootless_user import _made

    yield from _made(with_range=True)


def _monitors(root: str) -> list[int]:
    """The pids of the monitors serving ``root``."""
    pids = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            argv = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
        except OSError:
            continue
        if b"layergit.runtime.monitor" in argv and os.fsencode(root) in argv:
            pids.append(int(pid))
    return pids


def test_two_users_never_see_each_other(ulg, image, rootless_user, second_user):
    """Another user's lg has its own root, namespace, monitor, containers and networks:
    the same names are free to it, it lists none of the first user's things, and it
    cannot enter the first user's root."""
    other = second_user.lg("other")
    src = os.path.join(second_user.home, "busybox")
    subprocess.run(["cp", "-a", os.environ.get("LG_FIXTURE_BUSYBOX") or _busybox(), src], check=True)
    subprocess.run(["chown", "-R", f"{second_user.uid}:{second_user.gid}", src], check=True)
    other("commit", src, "-t", "bb")
    try:
        for runner in (ulg, other):
            runner("network", "create", "mine")
            runner("run", "-d", "--name", "svc", "--network", "mine", "bb", "sleep", "300")
        mine, theirs = ulg.out("ps", "-q", "--no-trunc").split(), other.out("ps", "-q", "--no-trunc").split()
        assert len(mine) == len(theirs) == 1 and mine != theirs
        assert ulg.out("network", "ls", "-q") != other.out("network", "ls", "-q")
        assert second_user.run("ls", ulg.root, check=False).returncode != 0
        user_ns = [r.out("unshare", "readlink", "/proc/self/ns/user") for r in (ulg, other)]
        assert user_ns[0] != user_ns[1]
        for runner, user in ((ulg, rootless_user), (other, second_user)):
            owners = {os.stat(f"/proc/{pid}").st_uid for pid in _monitors(runner.root)}
            assert owners == {user.uid}, (runner.root, owners)
    finally:
        for runner in (ulg, other):
            runner("rm", "-f", "svc", check=False)
            runner("network", "rm", "mine", check=False)
        cleanup_root(other)
        other("unshare", "rm", "-rf", other.root, check=False)


def test_without_subordinate_ids_a_single_id_map_and_a_warning(rangeless_user):
    runner = rangeless_user.lg("single")
    try:
        proc = runner("unshare", "cat", "/proc/self/uid_map")
        assert proc.stdout.decode().split() == ["0", str(rangeless_user.uid), "1"]
        err = proc.stderr.decode().strip().splitlines()
        assert len(err) == 1 and "no subordinate ids" in err[0] and "usermod --add-subuids" in err[0]
        assert runner("unshare", "true").stderr == b""  # said once, when the namespace is made
        src = os.path.join(rangeless_user.home, "tree")
        runner("unshare", "sh", "-c", f"mkdir -p {src}/bin && cp /bin/busybox {src}/bin/ && ln -s busybox {src}/bin/id")
        runner("commit", src, "-t", "tiny")
        assert runner.out("run", "--rm", "--network", "none", "tiny", "/bin/id", "-u").strip() == "0"
        err = runner.fails("run", "--rm", "--network", "none", "-u", "33:33", "tiny", "/bin/id", code=125)
        assert "uid 33, gid 33" in err and "no subordinate ids" in err
    finally:
        runner("unshare", "rm", "-rf", runner.root, check=False)
