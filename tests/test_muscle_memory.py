"""Docker one-liners, run unchanged against lg: --format, filters, the verbs people type.

Each expectation is what Docker's documentation shows for the same command.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import tempfile
import uuid

import pytest

from .conftest import Lg, cleanup_root


@pytest.fixture(scope="module")
def scene(busybox_rootfs, tmp_path_factory):
    """Two images (base, and app with labels on top of it) and three containers:
    web (created, from app), db (created, from base), job (exited 3, from base);
    one root for the module, as every test here only reads it."""
    tmp_path = tmp_path_factory.mktemp("muscle")
    lg = Lg(str(tmp_path / "lgroot"))
    try:
        yield _populate(lg, busybox_rootfs, tmp_path)
    finally:
        cleanup_root(lg)
        shutil.rmtree(lg.root, ignore_errors=True)


def _populate(lg, busybox_rootfs, tmp_path):
    lg("commit", busybox_rootfs, "-t", "base:1")
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text('FROM base:1\nLABEL tier=front com.example.vendor="ACME"\n')
    lg("build", "-t", "app:2", str(ctx))
    (tmp_path / "labels").write_text("# team labels\nteam=core\n\nenv=dev\n")
    lg("create", "--name", "web", "--network", "none", "--label-file", tmp_path / "labels", "-l", "env=prod",
       "--label", "tier=back", "--label", "tier=front", "app:2", "sh")
    lg("create", "--name", "db", "--network", "none", "base:1", "sleep", "1")
    lg("run", "--name", "job", "--network", "none", "base:1", "sh", "-c", "echo hello; exit 3", check=False)
    return lg


@pytest.mark.root
def test_inspect_format(scene):
    lg = scene
    assert lg.out("inspect", "-f", "{{.State.Status}} {{.Name}}", "web", "job") == "created /web\nexited /job\n"
    assert lg.out("inspect", "--format", "{{.State.ExitCode}}", "job") == "3\n"
    assert json.loads(lg.out("inspect", "-f", "{{json .Config.Labels}}", "web")) == \
        {"com.example.vendor": "ACME", "tier": "front", "team": "core", "env": "prod"}
    assert lg.out("inspect", "-f", "{{json .Config.Labels}}", "db") == "{}\n"
    assert lg.out("inspect", "-f", '{{index .Config.Labels "tier"}}', "app:2") == "front\n"
    assert lg.out("inspect", "--type", "image", "-f", "{{.RepoTags}}", "app:2") == "[app:2]\n"
    assert lg.out("inspect", "-f", "{{range .Config.Cmd}}<{{.}}>{{end}}", "db") == "<sleep><1>\n"
    assert lg.out("inspect", "-f", "{{.State.Nope}}", "web") == "<no value>\n"
    err = lg.fails("inspect", "-f", "{{.State.Status", "web", code=2)
    assert "unclosed action" in err
    lg.fails("inspect", "--type", "container", "app:2", code=1)


@pytest.mark.root
def test_ps_format(scene):
    lg = scene
    assert sorted(lg.out("ps", "-a", "--format", "{{.Names}}").split()) == ["db", "job", "web"]
    assert lg.out("ps", "--format", "{{.Names}}") == ""  # nothing runs
    table = lg.out("ps", "-a", "--format", r"table {{.Names}}\t{{.Image}}\t{{.State}}").splitlines()
    assert table[0].split() == ["NAMES", "IMAGE", "STATE"]
    assert table[0].index("IMAGE") == 10  # Go's tabwriter: min width 10, padding 3
    rows = [json.loads(line) for line in lg.out("ps", "-a", "--format", "{{json .}}").splitlines()]
    web = next(r for r in rows if r["Names"] == "web")
    assert web["Image"] == "app:2" and web["Command"] == '"sh"' and web["State"] == "created"
    assert web["Labels"] == "com.example.vendor=ACME,env=prod,team=core,tier=front" and len(web["ID"]) == 12
    assert [json.loads(line)["Names"] for line in lg.out("ps", "-a", "--format", "json").splitlines()] == \
        [r["Names"] for r in rows]
    assert lg.out("ps", "-a", "-f", "name=web", "--format", '{{.Label "tier"}}') == "front\n"
    err = lg.fails("ps", "-a", "--format", "{{.Nope}}", code=2)
    assert "can't evaluate field Nope" in err


def _names(lg, *args) -> list[str]:
    return sorted(lg.out("ps", *args, "--format", "{{.Names}}").split())


@pytest.mark.root
def test_ps_filters(scene):
    lg = scene
    assert _names(lg, "-f", "status=created") == ["db", "web"]  # status looks past running ones, as Docker
    assert _names(lg, "-f", "status=exited") == ["job"]
    assert _names(lg, "-f", "status=exited", "-f", "status=created") == ["db", "job", "web"]
    assert _names(lg, "-a", "-f", "exited=3") == ["job"]
    assert _names(lg, "-a", "-f", "exited=0") == []
    assert _names(lg, "-a", "-f", "name=^w") == ["web"]
    assert _names(lg, "-a", "-f", "label=tier=front") == ["web"]
    assert _names(lg, "-a", "-f", "label=tier") == ["web"]
    assert _names(lg, "-a", "-f", "label=env=prod", "-f", "label=team") == ["web"]  # every label must match
    assert _names(lg, "-a", "-f", "label=env=dev") == []
    assert _names(lg, "-a", "-f", "ancestor=base:1") == ["db", "job", "web"]  # app:2 descends from base
    assert _names(lg, "-a", "-f", "ancestor=app:2") == ["web"]
    assert _names(lg, "-a", "-f", "ancestor=app:2", "-f", "status=exited") == []
    assert _names(lg, "-a", "-f", "network=none") == ["db", "job", "web"]
    assert _names(lg, "-a", "-f", "before=job") == ["db", "web"]
    assert _names(lg, "-a", "-f", "since=web") == ["db", "job"]
    assert _names(lg, "-a", "-f", "health=none", "-f", "name=db") == ["db"]
    assert lg.out("ps", "-aq", "-f", "name=web") == lg.out("inspect", "-f", "{{.Id}}", "web")[:12] + "\n"
    assert _names(lg, "-l") == ["job"]
    assert "invalid filter 'colour'" in lg.fails("ps", "-f", "colour=red", code=2)
    assert "needs a name" in lg.fails("create", "-l", "=x", "base:1", code=125)
    assert lg.out("ps", "-aq") == lg.out("ps", "-aq", "-f", "name=.")  # nothing half-made
    assert "invalid filter 'status=asleep'" in lg.fails("ps", "-f", "status=asleep", code=2)
    assert "expected name=value" in lg.fails("ps", "-f", "running", code=2)
    assert "no such image" in lg.fails("ps", "-f", "ancestor=nope:1")


@pytest.mark.root
def test_images_format_and_filters(scene):
    lg = scene

    def images(*args):
        return sorted(lg.out("images", *args, "--format", "{{.Repository}}:{{.Tag}}").split())

    assert images() == ["app:2", "base:1"]
    assert images("-f", "label=tier=front") == ["app:2"]
    assert images("-f", "reference=ba*") == ["base:1"]
    assert images("-f", "reference=*:2") == ["app:2"]
    assert images("base") == ["base:1"]
    assert images("-f", "dangling=true") == []
    assert images("-f", "dangling=false") == ["app:2", "base:1"]
    assert images("-f", "since=base:1") == ["app:2"]
    assert images("-f", "before=app:2") == ["base:1"]
    table = lg.out("images", "--format", r"table {{.Repository}}\t{{.Tag}}\t{{.ID}}").splitlines()
    assert table[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID"]
    ids = lg.out("images", "-q", "-f", "reference=app").split()
    assert ids == [lg.out("inspect", "-f", "{{.Id}}", "app:2")[:12]]
    assert "invalid filter 'dangling=maybe'" in lg.fails("images", "-f", "dangling=maybe", code=2)


def test_version_and_info(lg):
    assert lg.out("version", "--format", "{{.Client.Version}}") == lg.out("--version").split()[-1] + "\n"
    assert lg.out("version", "-f", "{{.Server.StoreFormat}}") == "lgmeta 1\n"
    assert "Store:" in lg.out("version")
    doc = json.loads(lg.out("info", "--format", "{{json .}}"))
    assert doc["DockerRootDir"] == lg.root and doc["Images"] == 0 and doc["Containers"] == 0
    assert doc["CgroupVersion"] in ("1", "2") and set(doc["Features"]) == {"overlay", "userns", "seccomp", "bpf"}
    assert doc["Programs"]["git"]  # lg's tests need git: it is there
    assert lg.out("system", "info", "-f", "{{.NCPU}}").strip().isdigit()
    text = lg.out("info")
    assert "Cgroup version:" in text and "git:" in text
    assert "unclosed action" in lg.fails("info", "-f", "{{.NCPU", code=2)


@pytest.mark.root
def test_management_aliases(scene):
    lg = scene
    assert lg.out("image", "ls", "--format", "{{.Repository}}") == lg.out("images", "--format", "{{.Repository}}")
    assert lg.out("container", "ls", "-a", "-q") == lg.out("ps", "-a", "-q")
    assert lg.out("container", "inspect", "-f", "{{.Name}}", "web") == "/web\n"
    assert "No such command" in lg.fails("image", "frobnicate", code=2)


@pytest.mark.root
def test_logs_since_until(scene):
    lg = scene
    assert lg.out("logs", "--since", "10m", "job") == "hello\n"
    assert lg.out("logs", "--since", "2000-01-01T00:00:00Z", "--until", "2100-01-01", "job") == "hello\n"
    assert lg.out("logs", "--until", "2000-01-01T00:00:00+02:00", "job") == ""
    assert lg.out("logs", "--since", "4102444800", "job") == ""  # 2100, as a Unix timestamp
    assert lg.out("logs", "--since", "1h", "--tail", "1", "job") == "hello\n"
    assert "invalid --since value" in lg.fails("logs", "--since", "yesterday", "job", code=2)


@pytest.mark.root
def test_container_prune(lg, busybox_rootfs):
    lg("commit", busybox_rootfs, "-t", "base:1")
    lg("create", "--name", "a", "--network", "none", "base:1", "true")
    lg("run", "--name", "b", "--network", "none", "base:1", "true")
    lg("run", "-d", "--name", "up", "--network", "none", "base:1", "sleep", "60")
    assert lg.out("container", "prune", input=b"n\n").count("Deleted") == 0  # answering no keeps them
    assert len(lg.out("ps", "-aq").split()) == 3
    out = lg.out("container", "prune", "-f")
    assert out.startswith("Deleted Containers:\n") and out.count("\n") == 5  # two ids, blank, total
    assert lg.out("ps", "-a", "--format", "{{.Names}}") == "up\n"
    # rmi by id: refused when the image has several names, unless -f
    lg("tag", "base:1", "other:1")
    image_id = lg.out("inspect", "-f", "{{.Id}}", "base:1").strip()
    assert "use -f" in lg.fails("rmi", image_id[:12], code=1)
    assert lg.out("rmi", "-f", image_id[:12]).count("Untagged:") == 2
    assert lg.out("images", "-q") == ""


@pytest.mark.root
def test_save_and_load_round_trip(scene, lg, tmp_path):
    archive = tmp_path / "app.tar"
    scene("save", "-o", archive, "app:2")
    assert lg.out("load", "-i", archive) == "Loaded image: app:2\n"
    assert lg.out("inspect", "-f", "{{.Config.Labels.tier}}", "app:2") == "front\n"
    piped = lg("load", input=scene("save", "app:2").stdout).stdout.decode()
    assert piped == "Loaded image: app:2\n"
    assert "one image" in scene.fails("save", "-o", archive, "app:2", "base:1", code=2)
    store = tempfile.mkdtemp(prefix="lgpod")  # podman wants a runroot under 50 characters
    podman = ["podman", "--root", f"{store}/root", "--runroot", f"{store}/run", "--storage-driver", "vfs"]
    try:
        loaded = subprocess.run([*podman, "load", "-i", archive], capture_output=True, text=True)
        assert loaded.returncode == 0, loaded.stderr
        listed = subprocess.run([*podman, "images", "--format", "{{.Repository}}:{{.Tag}}"], check=True,
                                capture_output=True, text=True).stdout
        assert "app:2" in listed
    finally:
        subprocess.run([*podman, "rmi", "-a", "-f"], capture_output=True)
        shutil.rmtree(store, ignore_errors=True)


@pytest.mark.root
def test_add_host_and_dns_seen_inside(lg, busybox_rootfs):
    lg("commit", busybox_rootfs, "-t", "base:1")
    hosts = lg.out("run", "--rm", "--network", "none", "--add-host", "db:10.0.0.5", "--add-host", "v6=[::1]",
                   "base:1", "cat", "/etc/hosts")
    assert "10.0.0.5\tdb\n" in hosts and "::1\tv6\n" in hosts
    resolv = lg.out("run", "--rm", "--network", "none", "--dns", "9.9.9.9", "--dns-search", "example.com",
                    "--dns-option", "ndots:2", "base:1", "cat", "/etc/resolv.conf")
    assert "nameserver 9.9.9.9" in resolv and "search example.com" in resolv and "options ndots:2" in resolv
    assert resolv.count("nameserver") == 1  # --dns replaces the host's servers
    cid = lg.out("create", "--network", "none", "--dns", "1.1.1.1", "--add-host", "a:1.2.3.4", "base:1", "true")
    assert lg.out("inspect", "-f", "{{.HostConfig.Dns}} {{.HostConfig.ExtraHosts}}", cid.strip()) == \
        "[1.1.1.1] [a:1.2.3.4]\n"
    lg("rm", cid.strip())
    bridged = lg.out("run", "--rm", "--add-host", "gw:host-gateway", "base:1", "cat", "/etc/hosts")
    gateway = json.loads(lg.out("network", "inspect", "bridge"))
    gateway = (gateway[0] if isinstance(gateway, list) else gateway)["IPAM"]["Config"][0]["Gateway"]
    assert f"{gateway}\tgw\n" in bridged
    for bad, message in ((["--add-host", "db"], "not an IP address"), (["--add-host", "d b:1.2.3.4"], "host name"),
                         (["--dns", "dns.example"], "not an IP address"),
                         (["--network", "none", "--add-host", "g:host-gateway"], "host-gateway needs")):
        assert message in lg.fails("run", "--rm", *bad, "base:1", "true", code=125)
    assert lg.out("ps", "-aq") == ""  # nothing half-made


@pytest.mark.root
def test_network_labels_format_and_filters(lg):
    name = f"m{uuid.uuid4().hex[:8]}"
    other = f"m{uuid.uuid4().hex[:8]}"
    lg("network", "create", "--label", "env=ci", "--subnet", "10.213.7.0/24", name)
    lg("network", "create", other)
    assert lg.out("network", "inspect", "-f", "{{.Labels.env}} {{range .IPAM.Config}}{{.Subnet}}{{end}}",
                  name) == "ci 10.213.7.0/24\n"
    assert lg.out("network", "ls", "-f", "label=env=ci", "--format", "{{.Name}} {{.Driver}} {{.Scope}}") == \
        f"{name} bridge local\n"
    assert sorted(lg.out("network", "ls", "-f", "type=custom", "--format", "{{.Name}}").split()) == \
        sorted([name, other])
    assert lg.out("network", "ls", "-f", f"name={other}", "-q") == \
        lg.out("network", "inspect", "-f", "{{.Id}}", other)[:12] + "\n"
    table = lg.out("network", "ls", "--format", "table {{.Name}}\\t{{.Label \"env\"}}").splitlines()
    assert table[0].split() == ["NAME", "LABEL"] and f"{name}" in "".join(table)
    assert "invalid filter 'type=weird'" in lg.fails("network", "ls", "-f", "type=weird", code=2)


@pytest.mark.root
def test_stop_shm_cidfile_and_platform_flags(lg, busybox_rootfs, tmp_path):
    import os
    import time

    lg("commit", busybox_rootfs, "-t", "base:1")
    df = lg.out("run", "--rm", "--network", "none", "--shm-size", "2m", "base:1", "df", "-k", "/dev/shm")
    assert df.splitlines()[1].split()[1] == "2048"
    cidfile = tmp_path / "cid"
    cid = lg.out("run", "-d", "--network", "none", "--cidfile", cidfile, "--stop-timeout", "1",
                 "--stop-signal", "SIGUSR1", "base:1", "sleep", "60").strip()
    assert cidfile.read_text() == cid
    assert lg.out("inspect", "-f", "{{.Config.StopSignal}}", cid) == "SIGUSR1\n"
    started = time.monotonic()
    lg("stop", cid)  # sleep as PID 1 ignores SIGUSR1: SIGKILL after the container's 1 s, not 10
    assert time.monotonic() - started < 8
    assert lg.out("inspect", "-f", "{{.State.Status}}", cid) == "exited\n"
    assert "container ID file found" in lg.fails("create", "--network", "none", "--cidfile", cidfile, "base:1",
                                                 "true", code=125)
    machine = {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)
    other = "linux/arm64" if machine == "amd64" else "linux/amd64"
    assert lg.out("run", "--rm", "--network", "none", "--platform", f"linux/{machine}", "base:1", "echo", "ok") \
        == "ok\n"
    assert "lg runs images natively" in lg.fails("run", "--rm", "--platform", other, "base:1", "true", code=125)
    assert "not a signal" in lg.fails("run", "--stop-signal", "SIGNOPE", "base:1", "true", code=125)
    assert lg.out("ps", "-aq") == cid[:12] + "\n"  # nothing half-made


def test_help_names_dockers_flags_lg_lacks(lg):
    note = " ".join(lg.out("run", "--help").split("Docker's flags that lg does not take:")[1].split())
    assert "--device" in note and "--privileged" in note and "--ulimit" not in note and "--sysctl" not in note
    assert "--dns" not in note.replace("--dns-", "") and "--add-host" not in note and "--label" not in note
    assert "--digests" in lg.out("image", "ls", "--help")


def _complete(lg, words: str) -> list[str]:
    env = lg.env(_LG_COMPLETE="bash_complete", COMP_WORDS=words, COMP_CWORD=str(len(words.split()) - 1))
    out = lg.out(env=env)
    return [line.split(",", 1)[1] for line in out.splitlines()]


@pytest.mark.root
def test_shell_completion(scene):
    lg = scene
    for shell in ("bash", "zsh", "fish"):
        assert "_LG_COMPLETE" in lg.out("completion", shell)
    assert "inspect" in _complete(lg, "lg ins")
    assert _complete(lg, "lg ps --fo") == ["--format"]
    assert _complete(lg, "lg run ap") == ["app:2"]
    assert _complete(lg, "lg logs j") == ["job"]
    assert sorted(_complete(lg, "lg container rm w")) == ["web"]
    assert "is not one of" in lg.fails("completion", "tcsh", code=2)


@pytest.mark.root
def test_ulimit_and_group_add_seen_inside(lg, busybox_rootfs):
    lg("commit", busybox_rootfs, "-t", "base:1")
    out = lg.out("run", "--rm", "--network", "none", "--ulimit", "nofile=512:1024", "--ulimit", "core=-1",
                 "base:1", "sh", "-c", "ulimit -n; ulimit -Hn; ulimit -c")
    assert out.split() == ["512", "1024", "unlimited"]
    groups = lg.out("run", "--rm", "--network", "none", "--group-add", "4321", "--group-add", "0",
                    "-u", "65534", "base:1", "id", "-G").split()
    assert "4321" in groups and "0" in groups
    assert "unable to find group nosuch" in lg.fails("run", "--rm", "--network", "none", "--group-add", "nosuch",
                                                     "base:1", "true", code=125)
    assert "invalid --ulimit" in lg.fails("run", "--rm", "--ulimit", "nofile=9:3", "base:1", "true", code=125)
    assert lg.out("ps", "-aq") == ""


@pytest.mark.root
def test_device_flag_gives_a_node_and_its_cgroup_rule(lg, busybox_rootfs, tmp_path):
    """--device makes the host's node (numbers, mode, owner) in the container and lets it
    through the device cgroup, for the permissions given; a node of the same numbers the
    container makes itself stays refused, and bad requests are one line each."""
    lg("commit", busybox_rootfs, "-t", "base:1")
    node = str(tmp_path / "tdev")
    os.mknod(node, stat.S_IFCHR | 0o640, os.makedev(10, 229))  # /dev/fuse's numbers: opening it is harmless
    os.chown(node, 7, 6)
    run = ["run", "--rm", "--network", "none"]
    out = lg.out(*run, "--device", f"{node}:/dev/lg/test", "base:1", "sh", "-c",
                 "stat -c '%t:%T %a %u:%g' /dev/lg/test && exec 3<>/dev/lg/test && echo opened")
    assert out.split("\n")[:2] == ["a:e5 640 7:6", "opened"], out
    proc = lg(*run, "base:1", "sh", "-c", "mknod /tmp/n c 10 229 && exec 3</tmp/n", check=False)
    assert proc.returncode != 0 and b"Operation not permitted" in proc.stderr, proc.stderr
    proc = lg(*run, "--device", f"{node}:/dev/ro:r", "base:1", "sh", "-c",
              "exec 3</dev/ro && echo read && exec 4<>/dev/ro", check=False)
    assert proc.stdout == b"read\n" and b"Operation not permitted" in proc.stderr, proc
    cid = lg.out("create", "--device", f"{node}:/dev/t:rw", "base:1", "true").strip()
    devices = json.loads(lg.out("inspect", cid))[0]["HostConfig"]["Devices"]
    assert devices == [{"PathOnHost": node, "PathInContainer": "/dev/t", "CgroupPermissions": "rw"}]
    lg("rm", cid)
    for flag, words in ((str(tmp_path), "not a device node"), (f"{node}:/etc/x", "below /dev"),
                        (f"{node}:/dev/fd/9", "symbolic link"), (f"{tmp_path}/none", "No such file"),
                        (f"{node}:/dev/x:rwq", "permissions"), (f"{node}:/dev/shm/x", "filesystem of its own")):
        err = lg.fails(*run, "--device", flag, "base:1", "true", code=125)
        assert words in err and len(err.strip().splitlines()) == 1, err
    assert lg.out("ps", "-aq") == ""


@pytest.mark.root
def test_dockerfile_chmod_symbolic_and_pattern_substitutions(lg, busybox_rootfs, tmp_path):
    lg("commit", busybox_rootfs, "-t", "base:1")
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "tool.sh").write_text("#!/bin/sh\necho tool\n")
    (ctx / "tool.sh").chmod(0o666)
    (ctx / "Dockerfile").write_text(
        "FROM base:1\n"
        "ARG ARCHIVE=/downloads/app-1.2.3.tar.gz\n"
        "ENV NAME=${ARCHIVE##*/} VERSION=${ARCHIVE#*-}\n"
        "ENV STEM=${NAME%%.*} DASHED=${VERSION//./-}\n"
        "COPY --chmod=u+x,go-w tool.sh /bin/tool\n"
    )
    lg("build", "-t", "t:1", str(ctx))
    out = lg.out("run", "--rm", "--network", "none", "t:1", "sh", "-c",
                 'stat -c %a /bin/tool; echo "$NAME $VERSION $STEM $DASHED"; tool')
    assert out.split("\n") == ["744", "app-1.2.3.tar.gz 1.2.3.tar.gz app-1 1-2-3-tar-gz", "tool", ""]
    (ctx / "Dockerfile").write_text("FROM base:1\nCOPY --chmod=u+q tool.sh /bin/tool\n")
    assert "--chmod=u+q" in lg.fails("build", "-t", "t:2", str(ctx))


@pytest.mark.root
def test_dockerfile_copy_exclude(lg, busybox_rootfs, tmp_path):
    lg("commit", busybox_rootfs, "-t", "base:1")
    ctx = tmp_path / "ctx"
    (ctx / "src" / "docs").mkdir(parents=True)
    for name in ("src/a.py", "src/b.txt", "src/docs/c.md", "src/docs/d.py", "top.txt"):
        (ctx / name).write_text(name)
    (ctx / "Dockerfile").write_text("FROM base:1\nCOPY --exclude=*.txt --exclude=docs/*.md src/ /app/\n"
                                    "COPY --exclude=*.txt top.txt /app/\n")
    lg("build", "-t", "x:1", str(ctx))
    listed = lg.out("run", "--rm", "--network", "none", "x:1", "find", "/app", "-type", "f").split()
    assert sorted(listed) == ["/app/a.py", "/app/docs/d.py"]


@pytest.mark.root
def test_dockerfile_workdir_owned_by_user(lg, busybox_rootfs, tmp_path):
    lg("commit", busybox_rootfs, "-t", "base:1")
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM base:1\nUSER 1234:2345\nWORKDIR /srv/app/data\nUSER 0\nWORKDIR /tmp\n"
                                    "WORKDIR /root-made\n")
    lg("build", "-t", "w:1", str(ctx))
    out = lg.out("run", "--rm", "--network", "none", "w:1", "stat", "-c", "%n %u:%g",
                 "/srv", "/srv/app", "/srv/app/data", "/tmp", "/root-made")
    assert out.splitlines() == ["/srv 1234:2345", "/srv/app 1234:2345", "/srv/app/data 1234:2345",
                                "/tmp 0:0", "/root-made 0:0"]


@pytest.mark.root
def test_sysctl_namespaced_only(lg, busybox_rootfs):
    lg("commit", busybox_rootfs, "-t", "base:1")
    out = lg.out("run", "--rm", "--network", "none", "--sysctl", "net.ipv4.ip_unprivileged_port_start=80",
                 "--sysctl", "kernel.shmmni=1234", "base:1", "cat", "/proc/sys/net/ipv4/ip_unprivileged_port_start",
                 "/proc/sys/kernel/shmmni")
    assert out.split() == ["80", "1234"]
    with open("/proc/sys/kernel/shmmni") as f:
        assert f.read().strip() != "1234"  # the host's own is untouched
    assert "would change the host" in lg.fails("run", "--rm", "--sysctl", "vm.swappiness=1", "base:1", "true",
                                               code=125)
    assert "--network host" in lg.fails("run", "--rm", "--network", "host", "--sysctl", "net.ipv4.ip_forward=1",
                                        "base:1", "true", code=125)
    assert "invalid --sysctl" in lg.fails("run", "--rm", "--sysctl", "net.ipv4/../x=1", "base:1", "true", code=125)
    assert "No such file" in lg.fails("run", "--rm", "--network", "none", "--sysctl", "net.nosuch.key=1",
                                      "base:1", "true", code=125)
    assert lg.out("ps", "-aq") == ""


@pytest.mark.root
def test_mac_address(lg, busybox_rootfs):
    lg("commit", busybox_rootfs, "-t", "base:1")
    out = lg.out("run", "--rm", "--mac-address", "02:42:AC:11:00:99", "base:1", "cat", "/sys/class/net/eth0/address")
    assert out == "02:42:ac:11:00:99\n"
    assert "unicast" in lg.fails("run", "--rm", "--mac-address", "01:00:5e:00:00:01", "base:1", "true", code=125)
    assert "bridge network" in lg.fails("run", "--rm", "--network", "none", "--mac-address", "02:00:00:00:00:01",
                                        "base:1", "true", code=125)


@pytest.mark.root
def test_dockerfile_copy_parents(lg, busybox_rootfs, tmp_path):
    lg("commit", busybox_rootfs, "-t", "base:1")
    ctx = tmp_path / "ctx"
    for name in ("x/a.txt", "y/z/b.txt", "src/app/c.go", "src/app/sub/d.go"):
        (ctx / name).parent.mkdir(parents=True, exist_ok=True)
        (ctx / name).write_text(name)
    (ctx / "Dockerfile").write_text("FROM base:1\nCOPY --parents x/a.txt y/z/b.txt /one/\n"
                                    "COPY --parents ./src/./app/*.go /two/\nCOPY x/a.txt /three/\n")
    lg("build", "-t", "p:1", str(ctx))
    listed = lg.out("run", "--rm", "--network", "none", "p:1", "find", "/one", "/two", "/three", "-type", "f")
    assert sorted(listed.split()) == ["/one/x/a.txt", "/one/y/z/b.txt", "/three/a.txt", "/two/app/c.go"]
