"""The exec trampoline (layergit/runtime/trampoline.py), in-process and as the ELF it is.

Its bytes are checked against its assembly source (the golden listing: binutils
assembles the source kept beside them), and each architecture's ELF is run
(natively, or under qemu-user for the other one) to play its protocol: exec with
argv and environment intact, fd 3 closed by the exec, an exec failure reported as
an errno on fd 3, and nothing exec'd when it is not started by lg.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import subprocess

import pytest

from layergit.errors import LgError
from layergit.runtime import trampoline

HOST = os.uname().machine
ASSEMBLERS = {"x86_64": ["x86_64-linux-gnu-as", "as"], "aarch64": ["aarch64-linux-gnu-as", "as"]}
EMULATORS = {"x86_64": "qemu-x86_64-static", "aarch64": "qemu-aarch64-static"}


def _tool(names: list[str], machine: str) -> str:
    for name in names:
        path = shutil.which(name)
        if path and (name != "as" or machine == HOST):
            return path
    pytest.fail(f"no assembler for {machine} (bootstrap.sh installs binutils for both architectures)")


PROGRAMS = {"exec": trampoline.EXEC, "fork": trampoline.FORK}
MACHINES = sorted(trampoline.E_MACHINE)


@pytest.mark.parametrize("program", sorted(PROGRAMS))
@pytest.mark.parametrize("machine", MACHINES)
def test_bytes_match_the_assembly_source(machine, program, tmp_path):
    """The golden listing: the bytes shipped are exactly what the source assembles to."""
    source, code = PROGRAMS[program][machine].source, PROGRAMS[program][machine].code
    (tmp_path / "t.s").write_text(source)
    subprocess.run([_tool(ASSEMBLERS[machine], machine), "-o", str(tmp_path / "t.o"), str(tmp_path / "t.s")], check=True)
    objcopy = "objcopy" if machine == HOST else f"{machine}-linux-gnu-objcopy"
    objcopy = shutil.which(objcopy) or "objcopy"
    subprocess.run([objcopy, "-O", "binary", "--only-section=.text", str(tmp_path / "t.o"), str(tmp_path / "t.bin")], check=True)
    assert (tmp_path / "t.bin").read_bytes() == code


def _runner(machine: str, path: str) -> list[str]:
    if machine == HOST:
        return [path]
    emulator = shutil.which(EMULATORS[machine])
    if not emulator:
        pytest.fail(f"{EMULATORS[machine]} missing (bootstrap.sh installs qemu-user-static)")
    return [emulator, path]


def _start(machine: str, tmp_path, argv: list[str], report_fd: bool = True, env: dict | None = None, program: str = "exec"):
    """Run the ELF with ``argv`` after its own name, fd 3 a pipe (or absent); (returncode, stdout, report)."""
    path = tmp_path / f"trampoline-{program}-{machine}"
    path.write_bytes(trampoline.elf(machine, PROGRAMS[program][machine].code))
    path.chmod(0o755)
    r, w = os.pipe()
    try:
        def give_fd3():
            if report_fd:
                os.dup2(w, 3)
            else:
                os.close(3) if _is_open(3) else None

        # pass_fds: subprocess closes every other fd after give_fd3 ran.
        proc = subprocess.run(_runner(machine, str(path)) + argv, preexec_fn=give_fd3, capture_output=True, env=env, pass_fds=(3,) if report_fd else ())
    finally:
        os.close(w)
    with os.fdopen(r, "rb") as f:
        report = f.read()
    return proc.returncode, proc.stdout, report


def _is_open(fd: int) -> bool:
    try:
        fcntl.fcntl(fd, fcntl.F_GETFD)
        return True
    except OSError:
        return False


@pytest.mark.parametrize("program", sorted(PROGRAMS))
@pytest.mark.parametrize("machine", MACHINES)
def test_execs_the_command_with_its_argv_and_environment(machine, program, tmp_path):
    code, out, report = _start(machine, tmp_path, ["/bin/sh", "sh", "-c", 'echo "$0|$1|$LG_T"', "zero", "one"],
                               env={"LG_T": "env ok"}, program=program)
    assert (code, out) == (0, b"zero|one|env ok\n")
    assert [tag for tag, _ in trampoline.records(report) or []] == ([trampoline.TAG_PID] if program == "fork" else [])


@pytest.mark.parametrize("program", sorted(PROGRAMS))
@pytest.mark.parametrize("machine", MACHINES)
def test_fd3_is_closed_by_the_exec(machine, program, tmp_path):
    """The report pipe never reaches the command: the reader sees EOF once the exec succeeded."""
    code, out, report = _start(machine, tmp_path, ["/bin/sh", "sh", "-c", "readlink /proc/self/fd/3 || echo closed"], program=program)
    assert code == 0 and out == b"closed\n"


@pytest.mark.parametrize("machine", MACHINES)
def test_fork_names_a_child_that_leads_its_own_session(machine, tmp_path):
    """FORK's record names the child that ran the command: its own session, not dumpable until the exec."""
    code, out, report = _start(machine, tmp_path, ["/bin/sh", "sh", "-c", "echo $$; ps -o sid= -p $$ 2>/dev/null || cut -d' ' -f6 /proc/$$/stat"], program="fork")
    (tag, pid), = trampoline.records(report)
    pid_seen, sid = out.decode().split()
    assert code == 0 and tag == trampoline.TAG_PID and int(pid_seen) == pid == int(sid)


@pytest.mark.parametrize("program", sorted(PROGRAMS))
@pytest.mark.parametrize("machine", MACHINES)
@pytest.mark.parametrize("target, err", [("/nonexistent", errno.ENOENT), ("/etc/passwd", errno.EACCES), ("/etc", errno.EACCES)])
def test_exec_failure_is_reported_as_errno(machine, program, tmp_path, target, err):
    code, out, report = _start(machine, tmp_path, [target, "x"], program=program)
    assert out == b"" and (trampoline.TAG_ERRNO, err) in trampoline.records(report)
    assert code == (0 if program == "fork" else 127)  # FORK's parent succeeded; its child exits 127


@pytest.mark.parametrize("program", sorted(PROGRAMS))
@pytest.mark.parametrize("machine", MACHINES)
@pytest.mark.parametrize("argv, fd3", [(["/bin/echo", "echo", "RAN"], False), (["/bin/echo"], True), ([], True)])
def test_refuses_when_not_started_by_lg(machine, program, tmp_path, argv, fd3):
    """No fd 3 (e.g. run as a script's #! interpreter) or too few arguments: exit 126, exec nothing."""
    code, out, report = _start(machine, tmp_path, argv, report_fd=fd3, program=program)
    assert code == 126 and b"RAN" not in out and report == b""


def test_elf_is_small_and_static():
    for machine, program in ((m, p) for m in MACHINES for p in PROGRAMS.values()):
        image = trampoline.elf(machine, program[machine].code)
        assert image[:4] == b"\x7fELF" and len(image) < 512
        assert b"/lib" not in image  # no interpreter: nothing to load from the container's root


def test_other_architectures_are_refused_in_one_line():
    with pytest.raises(trampoline.UnsupportedArchitecture) as info:
        trampoline.elf("ppc64le")
    assert "\n" not in str(info.value) and "ppc64le" in str(info.value)


def test_memfd_is_sealed():
    """Writes, growth, shrinking and exec-bit changes of the memfd all fail; it closes on exec."""
    fd = trampoline.memfd()
    try:
        assert os.get_inheritable(fd) is False
        assert os.pread(fd, 4, 0) == b"\x7fELF"
        with pytest.raises(PermissionError):
            os.pwrite(fd, b"x", 0)
        with pytest.raises(PermissionError):
            os.ftruncate(fd, 1)
        with pytest.raises(PermissionError):
            os.ftruncate(fd, 1 << 20)
        seals = fcntl.fcntl(fd, fcntl.F_GET_SEALS)
        assert seals & fcntl.F_SEAL_SEAL and seals & fcntl.F_SEAL_WRITE
        if seals & 0x20:  # F_SEAL_EXEC (Linux 6.3+): the exec bits stay
            with pytest.raises(PermissionError):
                os.fchmod(fd, 0o644)
    finally:
        os.close(fd)


def test_records_tell_text_from_records_and_refuse_forgeries():
    assert trampoline.records(trampoline.RECORD.pack(2, trampoline.TAG_ERRNO)) == [(trampoline.TAG_ERRNO, 2)]
    assert trampoline.records(b"125 ") is None
    assert trampoline.records(b"127 sh: no such file or directory") is None
    for forged in (b"\0" * 3, trampoline.RECORD.pack(2, 7), trampoline.RECORD.pack(1, trampoline.TAG_PID) + b"\0"):
        with pytest.raises(LgError):
            trampoline.records(forged)


def _sleeping_child() -> int:
    pid = os.fork()
    if pid == 0:
        import time

        time.sleep(60)
        os._exit(0)
    return pid


def test_a_forged_pid_record_is_refused_and_our_child_killed():
    """lg exec takes FORK's record only when it names exactly one process, our child: a record written by a
    container's root (CAP_SYS_PTRACE reaches the pipe before the exec) naming another process fails, and a
    child of ours it would leave behind is killed."""
    from layergit.runtime import process

    child = _sleeping_child()
    assert process._forked_child([child]) == child
    with pytest.raises(process.SpawnError, match="forged"):
        process._forked_child([1])  # init: never our child
    with pytest.raises(process.SpawnError, match="forged"):
        process._forked_child([child, 1])
    assert process._parent_of(child) is None  # killed and reaped
    with pytest.raises(process.SpawnError, match="forged"):
        process._forked_child([])
