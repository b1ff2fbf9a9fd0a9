"""No way from a container to the host's interpreter, and no capability to inherit.

The attack (the runc CVE-2019-5736 pattern): lg forks itself to start a container's
process, so until the final exec that process is the host's Python interpreter. An
image whose command is a script starting with ``#!/proc/self/exe`` would get the
kernel to run that interpreter inside the container, as the container's root, which
can then chmod it setuid, chown it, set xattrs on it, touch it, and once nothing runs
it overwrite it. The image here carries what the interpreter needs to run (its shared
libraries and the ``encodings`` package, at the host's paths), so the attack would
really run Python code, and lg itself runs on a private copy of the interpreter, so
a failing defence damages only that copy. Each path that starts a process is played:
the image's command, ``--init``, ``lg exec`` of a binary the container replaced, a
build's RUN after a step replaced /bin/sh, ``/proc/self/exe`` named directly, and a
container process racing to reach ``/proc/PID/exe`` of every ``lg exec`` started.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys

import pytest

from .conftest import REPO
from .runtime_helpers import IMAGE, DEFAULT_CAP_MASK, RuntimeLg, cleanup_root, runtime_template  # noqa: F401

pytestmark = pytest.mark.root

ATTACK = """#!/proc/self/exe
import os
exe = "/proc/self/exe"
print("PWNED: the host interpreter runs in the container", flush=True)
for name, act in (
    ("chmod", lambda: os.chmod(exe, 0o6777)),
    ("chown", lambda: os.chown(exe, 4242, 4242)),
    ("xattr", lambda: os.setxattr(exe, "user.pwned", b"1")),
    ("utime", lambda: os.utime(exe, (0, 0))),
    ("write", lambda: open(exe, "r+b").write(b"#!")),
):
    try:
        act()
        print("PWNED", name, flush=True)
    except OSError as exc:
        print("refused", name, exc, flush=True)
"""


def _fingerprint(path: str) -> dict:
    """Everything the attack could change about a file: content, mode, owner, times, xattrs."""
    st = os.stat(path)
    with open(path, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    xattrs = {name: os.getxattr(path, name) for name in os.listxattr(path)}
    return {"sha256": digest, "mode": oct(st.st_mode), "uid": st.st_uid, "gid": st.st_gid,
            "mtime": st.st_mtime_ns, "ctime": st.st_ctime_ns, "xattrs": xattrs}


class CopyLg(RuntimeLg):
    """lg run on a private copy of the interpreter, so that the copy is what an attack would reach."""

    def env(self, **extra) -> dict:
        site = [p for p in sys.path if p.endswith("site-packages")]
        return super().env(PYTHONPATH=os.pathsep.join([*site, REPO]), **extra)


@pytest.fixture
def watched(lg, runtime_template, tmp_path):
    """(runner on a copy of the interpreter, the copy's path)."""
    real = os.path.realpath(sys.executable)
    copy = tmp_path / "interp" / "bin" / os.path.basename(real)
    copy.parent.mkdir(parents=True)
    shutil.copy2(real, copy)
    subprocess.run(["cp", "-a", runtime_template, lg.root], check=True)
    runner = CopyLg(lg.root, python=str(copy))
    yield runner, str(copy)
    cleanup_root(runner)


def _libraries(binary: str) -> list[str]:
    """The shared libraries and ELF interpreter ``binary`` loads, as absolute paths."""
    out = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
    return sorted({m for m in re.findall(r"(/\S+)", out)})


def _put(tree: str, host_path: str) -> None:
    """Copy ``host_path`` (a file or a directory, links followed) into ``tree`` at the same path."""
    target = os.path.join(tree, host_path.lstrip("/"))
    for part in ("lib", "lib64"):  # merged /usr on the host: the image gets real directories
        link = os.path.join(tree, part)
        if os.path.islink(link):
            os.unlink(link)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    if os.path.isdir(host_path):
        shutil.copytree(host_path, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
    else:
        shutil.copyfile(host_path, target)
        os.chmod(target, 0o755)


@pytest.fixture
def attack_image(watched, tmp_path) -> str:
    """bb:latest plus the interpreter's libraries and encodings package, and /x (the attack script)."""
    runner, copy = watched
    tree = str(tmp_path / "attack-tree")
    runner("checkout", IMAGE, tree, timeout=60)
    for lib in _libraries(copy):
        _put(tree, lib)
    _put(tree, os.path.join(sys.base_prefix, "lib", f"python{sys.version_info[0]}.{sys.version_info[1]}", "encodings"))
    with open(os.path.join(tree, "x"), "w") as f:
        f.write(ATTACK)
    os.chmod(os.path.join(tree, "x"), 0o755)
    runner("commit", tree, "-t", "attack", timeout=120)
    return "attack"


def _assert_defended(proc: subprocess.CompletedProcess, copy: str, before: dict) -> None:
    output = (proc.stdout + proc.stderr).decode(errors="replace")
    assert "PWNED" not in output, output
    assert _fingerprint(copy) == before, f"the interpreter lg runs on was changed:\n{output}"


def test_image_command_cannot_run_the_host_interpreter(watched, attack_image):
    """CMD /x (#!/proc/self/exe): the trampoline, not the interpreter, is /proc/self/exe; it refuses (126)."""
    runner, copy = watched
    before = _fingerprint(copy)
    for args in (["/x"], ["--entrypoint", "/x"], ["/proc/self/exe"], ["/proc/self/exe", "-c", "print('PWNED')"]):
        entry = args[:2] if args[0] == "--entrypoint" else []
        command = args[2:] if entry else args
        proc = runner("run", "--rm", *entry, attack_image, *command, check=False, timeout=60)
        assert proc.returncode == 126, (args, proc.returncode, proc.stderr)
        _assert_defended(proc, copy, before)


def test_init_cannot_run_the_host_interpreter(watched, attack_image):
    """--init: PID 1 is tini from a sealed memfd, so the script's interpreter is never a host file."""
    runner, copy = watched
    before = _fingerprint(copy)
    proc = runner("run", "--rm", "--init", "--pids-limit", "64", attack_image, "/x", check=False, timeout=60)
    assert proc.returncode != 0
    _assert_defended(proc, copy, before)
    out = runner.out("run", "--rm", "--init", attack_image, "readlink", "/proc/1/exe", timeout=60)
    assert out.startswith("/memfd:"), out


def test_exec_of_a_replaced_binary_cannot_run_the_host_interpreter(watched, attack_image):
    """The container replaces /bin/ls with the attack script; a later lg exec ls gets 126, not the interpreter."""
    runner, copy = watched
    runner.run_d("--name", "victim", attack_image, "sh", "-c", "rm /bin/ls && cp /x /bin/ls && sleep 600")
    runner.wait_until(lambda: runner("exec", "victim", "test", "-f", "/bin/ls", check=False, timeout=60).returncode == 0
                      and b"proc/self/exe" in runner("exec", "victim", "head", "-1", "/bin/ls", timeout=60).stdout,
                      what="/bin/ls replaced")
    before = _fingerprint(copy)
    for command in (["ls"], ["/bin/ls", "-l"], ["/x"], ["/proc/self/exe"]):
        proc = runner("exec", "victim", *command, check=False, timeout=60)
        assert proc.returncode == 126, (command, proc.returncode, proc.stderr)
        _assert_defended(proc, copy, before)
    for user in ("app", "0"):  # a non-root exec is started the same way
        proc = runner("exec", "-u", user, "victim", "/x", check=False, timeout=60)
        _assert_defended(proc, copy, before)


def test_build_run_after_a_replaced_shell_cannot_run_the_host_interpreter(watched, attack_image, tmp_path):
    """A RUN step replaces /bin/sh with the script; the next RUN fails (126) without reaching the interpreter."""
    runner, copy = watched
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text(f"FROM {attack_image}\nRUN rm /bin/sh && cp /x /bin/sh\nRUN true\n")
    before = _fingerprint(copy)
    proc = runner("build", "--network", "none", "-t", "after", str(context), check=False, timeout=120)
    assert proc.returncode == 126, (proc.returncode, proc.stderr)
    _assert_defended(proc, copy, before)
    assert runner("images", "-q", "after", check=False, timeout=60).stdout.strip() == b""


@pytest.mark.parametrize("caps", [[], ["--cap-add", "SYS_PTRACE"], ["--cap-add", "ALL"]], ids=["default", "sys_ptrace", "all"])
def test_racing_for_proc_pid_exe_of_exec_processes(watched, tmp_path, caps):
    """A container process goes through /proc/*/{exe,root,fd} of everything it sees while lg exec starts
    processes in it. A process is prepared outside the container's PID namespace and only a fork of the
    trampoline enters it, so even with CAP_SYS_PTRACE (which passes the dumpable check) the host's
    interpreter, root and lg's descriptors stay out of reach."""
    runner, copy = watched
    escaped = tmp_path / "escaped"  # exists on the host only: reachable only through a host root
    race = (f"while :; do for p in /proc/[0-9]*; do chmod 6777 $p/exe; touch $p/exe; "
            f"echo x > $p/root{escaped}; ls $p/fd/ >/dev/null; done 2>/dev/null; done")
    runner.run_d("--name", "racer", *caps, IMAGE, "sh", "-c", race)
    runner.wait_running("racer")
    before = _fingerprint(copy)
    for _ in range(30):
        runner("exec", "racer", "true", timeout=60)
    assert _fingerprint(copy) == before
    assert not escaped.exists(), "a container process wrote through the host's root"


# -- capabilities: nothing inheritable (CVE-2022-24769) -------------------------------------------


def _caps(runner, *args) -> dict[str, int]:
    out = runner.out(*args, "grep", "^Cap", "/proc/self/status", timeout=60)
    return {k: int(v, 16) for k, v in (line.split(":\t") for line in out.splitlines())}


def test_inheritable_and_ambient_sets_are_empty(watched):
    """CapInh and CapAmb are 0 for root, with --cap-add, for a non-root user, and in lg exec."""
    runner, _ = watched
    runner.run_d("--name", "caps", IMAGE, "sleep", "600")
    runner.wait_running("caps")
    for args in (["run", "--rm", IMAGE], ["run", "--rm", "--cap-add", "ALL", IMAGE], ["run", "--rm", "-u", "app", IMAGE],
                 ["exec", "caps"], ["exec", "-u", "app", "caps"]):
        caps = _caps(runner, *args)
        assert caps["CapInh"] == 0 and caps["CapAmb"] == 0, (args, caps)
    assert _caps(runner, "run", "--rm", IMAGE)["CapEff"] == DEFAULT_CAP_MASK  # root keeps Docker's set


def test_file_inheritable_capabilities_grant_nothing(watched, tmp_path):
    """A binary with inheritable+effective file capabilities gives a non-root user no capability."""
    runner, _ = watched
    tree = tmp_path / "caps-tree"
    runner("checkout", IMAGE, str(tree), timeout=60)
    (tree / "opt").mkdir()
    shutil.copyfile(tree / "bin" / "busybox", tree / "opt" / "busybox")  # named busybox: it runs argv[1] in-process
    os.chmod(tree / "opt" / "busybox", 0o755)
    subprocess.run(["setcap", "cap_chown,cap_net_raw,cap_dac_override+ei", str(tree / "opt" / "busybox")], check=True)
    runner("commit", str(tree), "-t", "capfile", timeout=120)
    for args in (["-u", "app"], ["-u", "app", "--cap-add", "NET_ADMIN"]):
        caps = _caps(runner, "run", "--rm", *args, "capfile", "/opt/busybox")
        assert caps["CapPrm"] == 0 and caps["CapEff"] == 0, (args, caps)
    # The attack itself: the container's root switches to a user (su keeps the inheritable set) and runs the file.
    out = runner.out("run", "--rm", "capfile", "su", "-s", "/bin/sh", "app", "-c", "/opt/busybox grep ^CapPrm /proc/self/status", timeout=60)
    assert int(out.split()[-1], 16) == 0, out


# -- signals: nothing ignored or blocked is inherited from lg --------------------------------------


def _signal_sets(text: str) -> dict[str, int]:
    return {k: int(v, 16) for k, v in (line.split(":\t") for line in text.splitlines() if line.startswith(("SigIgn", "SigBlk")))}


def test_no_signal_ignored_or_blocked_from_lg(watched):
    """Python ignores SIGPIPE and SIGXFSZ, the monitor SIGPIPE: none of it reaches a container's process,
    foreground, detached or exec'd, so `yes | head -1` ends quietly instead of reporting a broken pipe."""
    runner, _ = watched
    show = ["grep", "^Sig", "/proc/self/status"]
    assert _signal_sets(runner.out("run", "--rm", IMAGE, *show, timeout=60)) == {"SigIgn": 0, "SigBlk": 0}
    runner.run_d("--name", "sig", IMAGE, "sh", "-c", "grep ^Sig /proc/self/status; echo done; exec sleep 600")
    assert _signal_sets(runner.wait_log("sig", "done")) == {"SigIgn": 0, "SigBlk": 0}
    assert _signal_sets(runner.out("exec", "sig", *show, timeout=60)) == {"SigIgn": 0, "SigBlk": 0}
    for args in (["run", "--rm", IMAGE], ["exec", "sig"]):
        proc = runner(*args, "sh", "-c", "yes | head -1", timeout=60)
        assert proc.stdout == b"y\n" and b"Broken pipe" not in proc.stderr, (args, proc.stderr)


# -- seccomp: what Docker's default profile refuses, lg's filter refuses (docs/seccomp.md) ------------

# Each probe makes one call, then exits with its errno (EPERM: 1). The calls Docker's profile refuses to a
# container with the default capabilities, and the argument-level rules: name -> (call, arguments); bad
# fds (0x7fff) and empty ranges keep the kernel's own answer harmless where the call gets through.
DENIED_PROBES = {
    "io_uring_setup": ("io_uring_setup", (0, 0)),
    "syslog": ("syslog", (10, 0, 0)),  # SYSLOG_ACTION_SIZE_BUFFER: the host's kernel log
    "fanotify_init": ("fanotify_init", (0, 0)),
    "get_mempolicy": ("get_mempolicy", (0, 0, 0, 0, 0)),
    "set_mempolicy": ("set_mempolicy", (0, 0, 0)),
    "set_mempolicy_home_node": ("set_mempolicy_home_node", (0, 0, 0, 0)),
    "mbind": ("mbind", (0, 0, 0, 0, 0, 0)),
    "migrate_pages": ("migrate_pages", (0, 0, 0, 0)),
    "move_pages": ("move_pages", (0, 0, 0, 0, 0, 0)),
    "pidfd_getfd": ("pidfd_getfd", (0x7FFF, 0, 0)),
    "process_madvise": ("process_madvise", (0x7FFF, 0, 0, 0, 0)),
    "socket-AF_ALG": ("socket", (38, 5, 0)),
    "socket-AF_VSOCK": ("socket", (40, 1, 0)),
    # The kernel reads the family as an int: Docker's "family > 40" passes this one, the kernel sees AF_VSOCK.
    "socket-AF_VSOCK-high-bits": ("socket", ((1 << 32) | 40, 1, 0)),
    "personality-ADDR_NO_RANDOMIZE": ("personality", (0x40000,)),
    "personality-READ_IMPLIES_EXEC": ("personality", (0x400000,)),
}
# Their neighbours that stay allowed, so the filter is seen to refuse no more than it says.
ALLOWED_PROBES = {
    "socket-AF_INET": ("socket", (2, 1, 0)),
    "personality-UNAME26": ("personality", (0x8,)),
    "personality-PER_LINUX32": ("personality", (0x20000,)),
    # Reading the clock's NTP state (glibc's adjtimex()): the NULL timex gets EFAULT, not EPERM.
    "clock_adjtime": ("clock_adjtime", (0, 0)),
}


def _syscall_probe(machine: str, call: str, args: tuple[int, ...]) -> bytes:
    """Machine code for call(*args) (64-bit arguments) then exit_group(-result)."""
    import pyseccomp

    nr = pyseccomp.resolve_syscall(pyseccomp.Arch.NATIVE, call)
    assert nr >= 0, call
    values = (nr, *args)
    if machine == "x86_64":  # movabs rax, rdi, rsi, rdx, r10, r8, r9; syscall
        prefixes = ["48b8", "48bf", "48be", "48ba", "49ba", "49b8", "49b9"][: len(values)]
        code = b"".join(bytes.fromhex(p) + v.to_bytes(8, "little") for p, v in zip(prefixes, values, strict=True))
        return code + bytes.fromhex("0f05f7d889c7b8e70000000f05")  # syscall; neg eax; exit_group(eax)
    words = []  # x8 (the number), x0..x5: movz the low 16 bits, movk each other non-zero 16; svc 0
    for reg, v in zip((8, 0, 1, 2, 3, 4, 5)[: len(values)], values, strict=True):
        words.append(0xD2800000 | (v & 0xFFFF) << 5 | reg)
        words += [0xF2800000 | hw << 21 | (v >> 16 * hw & 0xFFFF) << 5 | reg for hw in (1, 2, 3) if v >> 16 * hw & 0xFFFF]
    words += [0xD4000001, 0x4B0003E0, 0xD2800BC8, 0xD4000001]  # svc; neg w0; exit_group(w0)
    return b"".join(w.to_bytes(4, "little") for w in words)


def test_seccomp_refuses_what_docker_refuses(watched, tmp_path):
    """Each call Docker's default profile refuses comes back EPERM from the filter, with the default
    capabilities and with every capability (the filter does not depend on them); the kernel answers it
    otherwise (seccomp=unconfined), and the allowed neighbours get through."""
    from layergit.runtime import trampoline

    runner, _ = watched
    machine = os.uname().machine
    tree = tmp_path / "probe-tree"
    runner("checkout", IMAGE, str(tree), timeout=60)
    (tree / "probes").mkdir()
    for name, (call, args) in {**DENIED_PROBES, **ALLOWED_PROBES}.items():
        (tree / "probes" / name).write_bytes(trampoline.elf(machine, _syscall_probe(machine, call, args)))
        (tree / "probes" / name).chmod(0o755)
    runner("commit", str(tree), "-t", "probes", timeout=120)
    loop = 'for p in /probes/*; do "$p"; echo "${p#/probes/} $?"; done'

    def errnos(*opts: str) -> dict[str, int]:
        out = runner.out("run", "--rm", *opts, "probes", "sh", "-c", loop, timeout=60)
        return {name: int(code) for name, code in (line.split() for line in out.splitlines())}

    default, all_caps = errnos(), errnos("--cap-add", "ALL")
    unconfined = errnos("--cap-add", "ALL", "--security-opt", "seccomp=unconfined")
    for name in DENIED_PROBES:
        assert default[name] == all_caps[name] == 1, (name, default[name], all_caps[name])
        assert unconfined[name] != 1, f"{name} is refused without the filter: the test would prove nothing"
    for name in ALLOWED_PROBES:
        assert 1 not in (default[name], all_caps[name], unconfined[name]), name


# -- what lg says quotes hostile text: one line, nothing a terminal obeys -----------------------------


@pytest.mark.parametrize("name", ["\x1b[2J\x1b[Hevil\nline2", "\x9b31mred", os.fsdecode(b"/\xff\x1b]0;title\x07")])
def test_error_lines_escape_control_characters(watched, name):
    """A command or container name with ESC/CSI/OSC sequences, newlines or bytes that are not UTF-8 comes
    back in one error line, escaped as git escapes paths; lg's own report of the failure is never lost."""
    runner, _ = watched
    for args in (["run", "--rm", IMAGE, name], ["rm", name]):
        proc = runner(*args, check=False, timeout=60)
        err = proc.stderr
        assert proc.returncode in (1, 127) and err.count(b"\n") == 1 and err.startswith(b"lg: "), (args, err)
        assert not any(c < 0x20 or 0x7F <= c < 0xA0 for c in err[:-1]) and b"\\" in err, (args, err)
