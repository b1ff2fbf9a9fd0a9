"""Container isolation, each property checked from inside the container.

Namespaces, pivot_root into the overlay, masked and read-only /proc and /sys, a
minimal /dev, Docker's default capabilities, no_new_privs, seccomp, no inherited
file descriptors, images with hostile /proc or volume targets, an untouchable
image cache, and the none/host network modes.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import pytest

from .runtime_helpers import (  # noqa: F401
    CAP_NET_ADMIN, DEFAULT_CAP_MASK, DOCKER_DEFAULT_CAPS, IMAGE, assert_nothing_left, host_ns, mountinfo_lines, rt,
    runtime_template, snapshot,
)
from .treecompare import describe, differences

pytestmark = pytest.mark.root

NAMESPACES = ("mnt", "pid", "uts", "ipc", "cgroup", "net")


def _status(rt, *args: str) -> dict[str, str]:
    """/proc/self/status of a container process, as a dict."""
    out = rt.out("run", "--rm", *args, "cat", "/proc/self/status", timeout=60)
    return {k: v.strip() for k, _, v in (line.partition(":") for line in out.splitlines())}


def _derived_image(rt, tmp_path, name: str, script: str) -> str:
    """Commit a copy of the busybox rootfs changed by a shell ``script`` (run on the host in the copy)."""
    tree = tmp_path / f"tree-{name.replace(':', '-')}"
    rt("checkout", IMAGE, str(tree), "--mode", "0755", timeout=60)  # the image's root mode, kept by the commit below
    subprocess.run(["sh", "-ec", script], cwd=tree, check=True)
    rt("commit", str(tree), "-t", name, timeout=60)
    return name


# -- namespaces and the root ---------------------------------------------------------------------


def test_own_namespaces(rt):
    """The container has its own mount, PID, UTS, IPC, cgroup and network namespaces (inode numbers differ from the host's)."""
    script = "; ".join(f"readlink /proc/self/ns/{kind}" for kind in NAMESPACES)
    inside = rt.out("run", "--rm", IMAGE, "sh", "-c", script, timeout=60).split()
    for kind, link in zip(NAMESPACES, inside):
        assert link.startswith(f"{kind}:["), link
        assert link != host_ns(kind), f"{kind} namespace is the host's"


def test_pid_namespace_sees_only_its_processes(rt):
    """Inside, the command is PID 1 and ps lists only the container's processes."""
    out = rt.out("run", "--rm", IMAGE, "sh", "-c", "echo $$; ps -o pid,args", timeout=60)
    lines = out.splitlines()
    assert lines[0] == "1"
    pids = [int(line.split()[0]) for line in lines[2:]]
    assert len(pids) <= 3 and max(pids) < 50, out


def test_cgroup_namespace_root(rt):
    """The cgroup namespace makes the container's own cgroup read as / in every hierarchy."""
    out = rt.out("run", "--rm", IMAGE, "cat", "/proc/self/cgroup", timeout=60)
    for line in out.splitlines():
        assert line.split(":", 2)[2] == "/", out


def test_hostname_is_private(rt):
    """The container's host name is its own (UTS namespace); the host's is unchanged."""
    host = os.uname().nodename
    assert rt.out("run", "--rm", "--hostname", "inside", IMAGE, "hostname", timeout=60) == "inside\n"
    assert os.uname().nodename == host


def test_pivot_root_not_chroot(rt):
    """/ inside is the overlay mount and no host mount is visible (pivot_root with the old root detached)."""
    out = rt.out("run", "--rm", IMAGE, "cat", "/proc/self/mountinfo", timeout=60)
    mounts = [line.split() for line in out.splitlines()]
    points = {m[4]: m[m.index("-") + 1] for m in mounts}
    assert points["/"] == "overlay"
    allowed = ("/", "/proc", "/sys", "/dev", "/etc/hosts", "/etc/hostname", "/etc/resolv.conf")
    stray = [p for p in points if not (p in allowed or p.startswith(("/proc/", "/sys/", "/dev/")))]
    assert not stray, stray
    host_points = {line.split()[4] for line in mountinfo_lines()} - {"/", "/proc", "/sys", "/dev", "/dev/pts", "/dev/shm"}
    assert not (host_points & set(points)), host_points & set(points)
    # / has no parent to escape to, and PID 1's root is /
    out = rt.out("run", "--rm", IMAGE, "sh", "-c", "ls -a /.. | md5sum; ls -a / | md5sum; readlink /proc/1/root; cd /../../..; pwd", timeout=60)
    dotdot, root, pid1_root, pwd = out.splitlines()
    assert dotdot == root and pid1_root == "/" and pwd == "/"


# -- /proc, /sys, /dev ---------------------------------------------------------------------------------


def test_proc_masked_paths(rt):
    """/proc/keys, /proc/timer_list (and /proc/kcore, /proc/sched_debug where they exist) read empty; /sys/firmware is empty."""
    out = rt.out(
        "run", "--rm", IMAGE, "sh", "-c",
        "for p in /proc/keys /proc/timer_list /proc/kcore /proc/sched_debug /proc/latency_stats; do "
        "if [ -e $p ]; then echo $p $(cat $p 2>/dev/null | wc -c); else echo $p absent; fi; done; "
        "echo firmware $(ls -A /sys/firmware | wc -l); echo acpi $(ls -A /proc/acpi 2>/dev/null | wc -l)",
        timeout=60,
    )
    got = dict(line.split(" ", 1) for line in out.splitlines())
    assert got["/proc/keys"] == "0" and got["/proc/timer_list"] == "0", got
    for path in ("/proc/kcore", "/proc/sched_debug", "/proc/latency_stats"):
        assert got[path] in ("0", "absent"), (path, got[path])
    assert got["firmware"] == "0" and got["acpi"] == "0", got


def test_proc_and_sys_read_only(rt):
    """/proc/sys, /proc/sysrq-trigger, /proc/irq, /proc/bus and /sys cannot be written, even by root."""
    script = (
        "echo 1 > /proc/sys/kernel/domainname && echo W:sysctl; "
        "echo h > /proc/sysrq-trigger && echo W:sysrq; "
        "echo 1 > /proc/irq/default_smp_affinity && echo W:irq; "
        "touch /proc/bus/x && echo W:bus; "
        "touch /sys/x && echo W:sys; "
        "echo 1 > /sys/kernel/uevent_helper && echo W:uevent; "
        "grep -E ' /proc/(sys|irq|bus) ' /proc/self/mountinfo | awk '{print $5, $6}'; "
        "grep ' /sys ' /proc/self/mountinfo | awk '{print $5, $6}'; true"
    )
    proc = rt("run", "--rm", IMAGE, "sh", "-c", script, timeout=60)
    out = proc.stdout.decode()
    assert "W:" not in out, out
    opts = dict(line.split() for line in out.splitlines())
    for path in ("/proc/sys", "/proc/irq", "/proc/bus", "/sys"):
        assert opts[path].split(",")[0] == "ro", (path, opts)
    assert rt.out("run", "--rm", IMAGE, "cat", "/proc/sys/kernel/ostype", timeout=60) == "Linux\n"  # still readable


MINIMAL_DEV = {"null", "zero", "full", "random", "urandom", "tty", "console", "ptmx", "pts", "shm", "mqueue", "fd", "stdin", "stdout", "stderr"}
DEVICE_NUMBERS = {"null": "1:3", "zero": "1:5", "full": "1:7", "random": "1:8", "urandom": "1:9", "tty": "5:0"}


def test_minimal_dev(rt):
    """/dev holds Docker's minimal set, with the right device numbers, and none of the host's devices."""
    out = rt.out(
        "run", "--rm", IMAGE, "sh", "-c",
        "ls -A /dev; echo ---; for d in null zero full random urandom tty; do echo $d $(stat -c '%t:%T' /dev/$d); done; "
        "echo ---; find /dev -type b; echo ---; grep -E ' /dev(/| )' /proc/self/mountinfo | awk '{print $5, $(NF-2)}'",
        timeout=60,
    )
    listing, numbers, blocks, mounts = out.split("---\n")
    entries = set(listing.split())
    assert MINIMAL_DEV <= entries, MINIMAL_DEV - entries
    assert entries - MINIMAL_DEV <= {"core"}, entries - MINIMAL_DEV  # runc's /dev/core -> /proc/kcore link is tolerated
    for line in numbers.splitlines():
        name, hexnum = line.split()
        major, minor = (int(x, 16) for x in hexnum.split(":"))
        assert f"{major}:{minor}" == DEVICE_NUMBERS[name], line
    assert blocks.strip() == ""
    host_devices = {n for n in os.listdir("/dev") if n not in MINIMAL_DEV | {"core"}}
    assert host_devices and not (host_devices & entries)
    kinds = dict(line.split() for line in mounts.splitlines())
    assert kinds["/dev"] == "tmpfs" and kinds["/dev/pts"] == "devpts" and kinds["/dev/mqueue"] == "mqueue"
    # a private devpts instance: none of the host's terminals
    assert rt.out("run", "--rm", IMAGE, "sh", "-c", "ls /dev/pts | grep -v ptmx | wc -l", timeout=60).strip() == "0"


def test_devices_cgroup_denies_host_devices(rt):
    """The container's devices cgroup denies what is not in the minimal /dev (as Docker's does), so a root
    process with CAP_MKNOD cannot mknod the host's disk and read it. Checked from the host on cgroup v1
    (devices.list), since this VM forbids opening new device nodes even to the host's root."""
    cid = rt.run_d("--name", "dev", IMAGE, "sleep", "600")
    path = os.path.join("/sys/fs/cgroup/devices/layergit", cid, "devices.list")
    if not os.path.exists(path):
        pytest.skip("no v1 devices hierarchy on this host")
    with open(path) as f:
        rules = f.read().split("\n")
    disk = os.stat("/dev/vda").st_rdev if os.path.exists("/dev/vda") else os.stat("/").st_dev
    major, minor = os.major(disk), os.minor(disk)
    assert "a *:* rwm" not in rules, f"the container may use every device: {rules}"
    # "b *:* m" (mknod only) is allowed, as in Docker; no rule may grant reading or writing the disk.
    disk_rules = [r for r in rules if r.startswith((f"b {major}:{minor} ", f"b {major}:* ", "b *:* "))]
    assert not [r for r in disk_rules if set(r.split()[-1]) & {"r", "w"}], rules
    for needed in ("c 1:3 rwm", "c 1:5 rwm", "c 1:9 rwm"):
        assert needed in rules, (needed, rules)


# -- capabilities, no_new_privs, seccomp ----------------------------------------------------------------


def test_default_capabilities_are_dockers(rt):
    """A root process has exactly Docker's default capabilities in its effective, permitted and bounding sets."""
    st = _status(rt, IMAGE)
    for key in ("CapEff", "CapPrm", "CapBnd"):
        assert int(st[key], 16) == DEFAULT_CAP_MASK, f"{key}={st[key]}, expected {DEFAULT_CAP_MASK:016x}"
    assert int(st["CapAmb"], 16) == 0


def test_cap_add_and_drop(rt):
    """--cap-add NET_ADMIN adds bit 12, --cap-drop CHOWN removes bit 0, and the effect shows (chown fails)."""
    st = _status(rt, "--cap-add", "NET_ADMIN", "--cap-drop", "CHOWN", IMAGE)
    expected = (DEFAULT_CAP_MASK | 1 << CAP_NET_ADMIN) & ~(1 << DOCKER_DEFAULT_CAPS["CHOWN"])
    assert int(st["CapEff"], 16) == expected and int(st["CapBnd"], 16) == expected
    assert rt.out("run", "--rm", IMAGE, "sh", "-c", "chown 1000 /etc/release && echo chowned", timeout=60) == "chowned\n"
    proc = rt("run", "--rm", "--cap-drop", "CHOWN", IMAGE, "sh", "-c", "chown 1000 /etc/release && echo chowned; true", timeout=60)
    assert proc.stdout == b"" and b"Operation not permitted" in proc.stderr
    st = _status(rt, "--cap-drop", "ALL", IMAGE)
    assert int(st["CapEff"], 16) == 0 and int(st["CapBnd"], 16) == 0


def test_non_root_user_has_no_capabilities(rt):
    """A non-root user (-u app) has no effective or permitted capabilities; the bounding set is Docker's."""
    st = _status(rt, "-u", "app", IMAGE)
    assert int(st["CapEff"], 16) == 0 and int(st["CapPrm"], 16) == 0
    assert int(st["CapBnd"], 16) == DEFAULT_CAP_MASK


def test_no_new_privileges_off_by_default(rt):
    """NoNewPrivs is 0 by default, as in Docker (setuid tools keep working), seccomp or not."""
    st = _status(rt, IMAGE)
    assert st["NoNewPrivs"] == "0", f"NoNewPrivs={st['NoNewPrivs']} with the default options"


def test_no_new_privileges_option(rt):
    """--security-opt no-new-privileges sets NoNewPrivs: 1."""
    assert _status(rt, "--security-opt", "no-new-privileges", IMAGE)["NoNewPrivs"] == "1"


def test_seccomp_filter(rt):
    """A seccomp filter is loaded (Seccomp: 2); unshare and mount fail inside, even with CAP_SYS_ADMIN added."""
    st = _status(rt, IMAGE)
    assert st["Seccomp"] == "2"
    for extra in ([], ["--cap-add", "SYS_ADMIN"]):
        proc = rt(
            "run", "--rm", *extra, IMAGE, "sh", "-c",
            "unshare -U true && echo UNSHARED-USER; unshare -m true && echo UNSHARED-MNT; "
            "mount -t tmpfs x /mnt && echo MOUNTED; true",
            timeout=60,
        )
        assert proc.stdout == b"", (extra, proc.stdout)
    assert _status(rt, "--security-opt", "seccomp=unconfined", IMAGE)["Seccomp"] == "0"


def test_exec_gets_the_same_confinement(rt):
    """lg exec'd processes get the same capabilities and seccomp filter as the container's command."""
    rt.run_d("--name", "conf", IMAGE, "sleep", "600")
    rt.wait_running("conf")
    out = rt.out("exec", "conf", "cat", "/proc/self/status", timeout=60)
    st = {k: v.strip() for k, _, v in (line.partition(":") for line in out.splitlines())}
    assert int(st["CapEff"], 16) == DEFAULT_CAP_MASK and int(st["CapBnd"], 16) == DEFAULT_CAP_MASK
    assert st["Seccomp"] == "2"
    assert rt.out("exec", "conf", "ls", "/proc/self/fd", timeout=60).split() == ["0", "1", "2", "3"]


# -- file descriptors ------------------------------------------------------------------------------


def test_only_stdio_fds(rt):
    """Only fds 0-2 reach the container (ls's own fd 3 for the listing aside), foreground and detached."""
    assert rt.out("run", "--rm", IMAGE, "ls", "/proc/self/fd", timeout=60).split() == ["0", "1", "2", "3"]
    rt.run_d("--name", "fds", IMAGE, "sh", "-c", "ls /proc/self/fd; echo done")
    rt.wait_log("fds", "done")
    assert rt.logs("fds").split() == ["0", "1", "2", "3", "done"]


def test_inherited_fds_do_not_reach_the_container(rt, tmp_path):
    """A directory fd lg inherits from its caller is neither open in the container nor reachable as a
    working directory (-w /proc/self/fd/N): the host directory's secret stays out of reach."""
    secret_dir = tmp_path / "hostsecret"
    secret_dir.mkdir()
    (secret_dir / "secret").write_text("host secret\n")
    fd = os.open(secret_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.set_inheritable(fd, True)

        def run(*args):
            args = (args[0], "--network", "none", *args[1:]) if args[0] == "run" else args
            return subprocess.run([sys.executable, "-m", "cli", *args], capture_output=True, env=rt.env(), pass_fds=(fd,), timeout=60)

        proc = run("run", "--rm", IMAGE, "ls", "/proc/self/fd")
        assert proc.returncode == 0 and proc.stdout.split() == [b"0", b"1", b"2", b"3"], proc
        rt.run_d("--name", "target", IMAGE, "sleep", "600")
        escapes = []
        for n in sorted({fd, 3, 4, 5}):
            for how in (["run", "--rm", "-w", f"/proc/self/fd/{n}", IMAGE], ["exec", "-w", f"/proc/self/fd/{n}", "target"]):
                proc = run(*how, "sh", "-c", "cat secret; ls ..")
                if b"host secret" in proc.stdout:
                    escapes.append(f"lg {' '.join(how)}: cwd is the host's {secret_dir}, .. lists {proc.stdout.decode().split()[2:]}")
                elif proc.returncode != 0:
                    err = proc.stderr.decode().strip()
                    assert len(err.splitlines()) == 1, (n, proc)
        assert not escapes, "\n".join(escapes)
    finally:
        os.close(fd)


# -- hostile images and volumes --------------------------------------------------------------------


@pytest.mark.parametrize("which", ["proc", "dev", "sys"])
def test_image_with_symlinked_special_dir_refused(rt, tmp_path, which):
    """An image whose /proc, /dev or /sys is a symlink (here to a host path) is refused: 125, one line, nothing left."""
    image = _derived_image(rt, tmp_path, f"evil{which}:1", f"rm -rf {which}; ln -s /tmp/lg-evil-{which} {which}")
    before = snapshot(rt)
    err = rt.fails("run", "--rm", image, "true", code=125, timeout=60)
    assert which in err
    assert not os.path.exists(f"/tmp/lg-evil-{which}")
    assert_nothing_left(rt, before)


@pytest.mark.parametrize("link", ["/etc", "../../../../../../etc"], ids=["absolute", "relative"])
def test_volume_target_symlink_stays_inside(rt, tmp_path, link):
    """A volume whose target is a symlink out of the rootfs (/data -> /etc) is mounted inside the container
    (on the container's /etc), never on the host's /etc."""
    image = _derived_image(rt, tmp_path, "symdata:1", f"ln -s {link} data")
    vol = tmp_path / "vol"
    vol.mkdir()
    (vol / "marker").write_text("volume\n")
    etc_before = sorted(os.listdir("/etc"))
    passwd_before = hashlib.sha256(open("/etc/passwd", "rb").read()).hexdigest()
    mounts_before = set(mountinfo_lines())
    out = rt.out("run", "--rm", "-v", f"{vol}:/data", image, "sh", "-c", "cat /data/marker; cat /etc/marker; echo written > /data/fromctr", timeout=60)
    assert out == "volume\nvolume\n"
    assert (vol / "fromctr").read_text() == "written\n"
    assert sorted(os.listdir("/etc")) == etc_before
    assert not os.path.exists("/etc/fromctr") and not os.path.exists("/etc/marker")
    assert hashlib.sha256(open("/etc/passwd", "rb").read()).hexdigest() == passwd_before
    assert not [m for m in set(mountinfo_lines()) - mounts_before if m.split()[4] == "/etc" or str(vol) in m]


def test_volume_file_target_through_symlink(rt, tmp_path):
    """A file volume whose target's parent is a symlink out of the rootfs lands inside the container."""
    image = _derived_image(rt, tmp_path, "symconf:1", "ln -s /etc conf")
    f = tmp_path / "hosts-override"
    f.write_text("override\n")
    before = open("/etc/hostname").read() if os.path.exists("/etc/hostname") else None
    out = rt.out("run", "--rm", "-v", f"{f}:/conf/hostname.lg", image, "cat", "/etc/hostname.lg", timeout=60)
    assert out == "override\n"
    assert not os.path.exists("/etc/hostname.lg")
    assert (open("/etc/hostname").read() if os.path.exists("/etc/hostname") else None) == before


def test_image_cache_untouched_by_container(rt):
    """After a container does rm -rf /usr and chmod 777 /etc/passwd, a new container from the same image
    still has /usr and the original mode, the materialised cache is byte-for-byte unchanged, and lg fsck is clean."""
    assert rt("fsck", timeout=120).returncode == 0
    rt.run_d("--name", "vandal", IMAGE, "sh", "-c", "rm -rf /usr; chmod 777 /etc/passwd; chmod 000 /bin; echo > /etc/release; echo done; sleep 600")
    rt.wait_log("vandal", "done")
    lower = rt.inspect("vandal")["GraphDriver"]["Data"]["LowerDir"]
    cache_before = describe(lower)
    assert rt.out("exec", "vandal", "sh", "-c", "ls /usr | wc -l", timeout=60).strip() == "0"
    rt("rm", "-f", "vandal", timeout=60)
    out = rt.out("run", "--rm", IMAGE, "sh", "-c", "ls /usr/bin | wc -l; stat -c %a /etc/passwd /bin; cat /etc/release", timeout=60)
    count, mode, bin_mode, release = out.split()
    assert int(count) > 10 and mode == "644" and bin_mode == "755" and release == "2"
    assert not differences(cache_before, describe(lower))
    assert os.path.isdir(os.path.join(lower, "usr", "bin"))
    fsck = rt("fsck", check=False, timeout=120)
    assert fsck.returncode == 0, fsck.stdout.decode() + fsck.stderr.decode()


# -- network modes -------------------------------------------------------------------------------------


def _interfaces(text: str) -> set[str]:
    return {line.split(":")[0].strip() for line in text.splitlines()[2:] if ":" in line}


def test_network_none_has_only_loopback(rt):
    """--network none: only lo, which is up (127.0.0.1 answers), in a network namespace of its own."""
    out = rt.out("run", "--rm", "--network", "none", IMAGE, "sh", "-c", "cat /proc/net/dev; echo ---; readlink /proc/self/ns/net", timeout=60)
    dev, _, ns = out.partition("---\n")
    assert _interfaces(dev) == {"lo"}, dev
    assert ns.strip() != os.readlink("/proc/self/ns/net")
    out = rt.out("run", "--rm", "--network", "none", IMAGE, "sh", "-c", "ip link; ping -c 1 -W 2 127.0.0.1 >/dev/null && echo pong", timeout=60)
    assert "state UNKNOWN" in out or "UP" in out
    assert out.strip().endswith("pong")


def test_network_host_sees_host_interfaces(rt):
    """--network host shares the host's network namespace and interfaces."""
    with open("/proc/net/dev") as f:
        host = _interfaces(f.read())
    out = rt.out("run", "--rm", "--network", "host", IMAGE, "sh", "-c", "cat /proc/net/dev; echo ---; readlink /proc/self/ns/net", timeout=60)
    dev, _, ns = out.partition("---\n")
    assert _interfaces(dev) == host
    assert ns.strip() == os.readlink("/proc/self/ns/net")
