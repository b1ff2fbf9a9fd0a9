"""The exec trampoline: a tiny static ELF, run from a sealed memfd, that execs the container's command.

Why it exists (the runc CVE-2019-5736 pattern): the container's first process, and
every ``lg exec`` process, is a fork of lg, so until its final execve its
/proc/self/exe is the host's Python interpreter. Had that execve loaded a script
starting with ``#!/proc/self/exe``, the kernel would run the *host interpreter*
inside the container, and the container's root could chmod, chown, set xattrs on
and, once nothing ran it, overwrite it: every later lg command would run the
attacker's code as root. So lg never execs the container's command itself. It
execs this trampoline from a sealed memfd (a private copy that nothing can write;
changing its mode changes only that copy), and the trampoline execs the command.
From then on /proc/self/exe is the memfd or the container's own binary, never a host
file. A second Python start would cost 25-40 ms; this costs one tiny exec.

Two programs:
  EXEC  execs the command itself (lg run: the process is PID 1 of a new, empty PID
        namespace, which no other process can see before the exec).
  FORK  forks first, and the child execs the command (lg exec). lg prepares the
        process outside the container's PID namespace, with only the namespace its
        children will be born in set to the container's, so that nothing the
        container can see (even with CAP_SYS_PTRACE, which passes the dumpable
        check) was ever the host interpreter: the first process in the container
        is a fork of the memfd, and not dumpable until its exec. The child leads a
        session of its own, with fd 0 as its controlling terminal if it is one.

Protocol with lg (runtime/process.py):
  argv = [ARGV0, PATH, command argv[0], command argv[1], ...], envp = the command's.
  fd 3 = the write end of lg's report pipe, left open for it. The trampoline marks
  fd 3 close-on-exec, then (FORK: forks, and) execve(PATH, &argv[2], envp). Reports
  are 8-byte records, native order: the value in the low 32 bits, a tag above it
  (TAG_ERRNO: a failed fork or exec, the process then exits 127; TAG_PID: FORK's
  parent names its child, then exits 0). Started any other way (fewer than three
  arguments, or no fd 3, e.g. as a script's ``#!/proc/self/exe`` interpreter) it
  exits 126 at once and execs nothing.

The machine code is below as its assembly source and its bytes;
tests/test_trampoline.py assembles each source with binutils and checks the bytes
(the golden listing), and runs each architecture's ELFs (the other one under qemu).
"""

from __future__ import annotations

import errno
import fcntl
import os
import struct
from dataclasses import dataclass

from ..errors import ExitCode, LgError

ARGV0 = "lg-exec"
REPORT_FD = 3
TAG_ERRNO, TAG_PID = 1, 2
RECORD = struct.Struct("=II")  # value, tag
E_MACHINE = {"x86_64": 62, "aarch64": 183}


@dataclass(frozen=True)
class Program:
    """A machine-code program kept with its source, so a test can assemble the source
    again and prove the bytes lg writes are what the source says."""

    source: str  # assembly, for binutils' as of that architecture
    code: bytes  # what it assembles to (.text)


EXEC: dict[str, Program] = {
    "x86_64": Program(
        """\
    .intel_syntax noprefix
    .globl _start
_start:
    mov     rbx, [rsp]              # argc
    cmp     rbx, 3
    jb      refuse                  # need: ARGV0, the path, the command's argv[0]
    mov     edi, 3                  # the report fd lg left open for us
    mov     esi, 2                  # F_SETFD
    mov     edx, 1                  # FD_CLOEXEC
    mov     eax, 72                 # fcntl
    syscall
    test    rax, rax
    jnz     refuse                  # no fd 3: not started by lg
    mov     rdi, [rsp+16]           # path = argv[1]
    lea     rsi, [rsp+24]           # argv = &argv[2]
    lea     rdx, [rsp+rbx*8+16]     # envp
    mov     eax, 59                 # execve
    syscall
    neg     eax                     # errno
    bts     rax, 32                 # record tag 1: an errno
    push    rax
    mov     edi, 3
    mov     rsi, rsp
    mov     edx, 8
    mov     eax, 1                  # write(3, &record, 8)
    syscall
    mov     edi, 127
    jmp     leave
refuse:
    mov     edi, 126
leave:
    mov     eax, 231                # exit_group
    syscall
""",
        bytes.fromhex(
            "488b1c244883fb037254bf03000000be02000000ba01000000b8480000000f05"
            "4885c07539488b7c2410488d742418488d54dc10b83b0000000f05f7d8480fba"
            "e82050bf030000004889e6ba08000000b8010000000f05bf7f000000eb05bf7e"
            "000000b8e70000000f05"
        ),
    ),
    "aarch64": Program(
        """\
    .globl _start
_start:
    ldr     x19, [sp]               // argc
    cmp     x19, #3
    b.lo    refuse                  // need: ARGV0, the path, the command's argv[0]
    mov     x0, #3                  // the report fd lg left open for us
    mov     x1, #2                  // F_SETFD
    mov     x2, #1                  // FD_CLOEXEC
    mov     x8, #25                 // fcntl
    svc     #0
    cbnz    x0, refuse              // no fd 3: not started by lg
    ldr     x0, [sp, #16]           // path = argv[1]
    add     x1, sp, #24             // argv = &argv[2]
    add     x2, sp, x19, lsl #3
    add     x2, x2, #16             // envp
    mov     x8, #221                // execve
    svc     #0
    neg     w0, w0                  // errno, zero-extended
    orr     x0, x0, #0x100000000    // record tag 1: an errno
    str     x0, [sp, #-16]!
    mov     x1, sp
    mov     x0, #3
    mov     x2, #8
    mov     x8, #64                 // write(3, &record, 8)
    svc     #0
    mov     x0, #127
    b       leave
refuse:
    mov     x0, #126
leave:
    mov     x8, #94                 // exit_group
    svc     #0
""",
        bytes.fromhex(
            "f30340f97f0e00f1e3020054600080d2410080d2220080d2280380d2010000d4"
            "200200b5e00b40f9e1630091e26f338b42400091a81b80d2010000d4e003004b"
            "000060b2e00f1ff8e1030091600080d2020180d2080880d2010000d4e00f80d2"
            "02000014c00f80d2c80b80d2010000d4"
        ),
    ),
}

FORK: dict[str, Program] = {
    "x86_64": Program(
        """\
    .intel_syntax noprefix
    .globl _start
_start:
    mov     rbx, [rsp]              # argc
    cmp     rbx, 3
    jb      refuse                  # need: ARGV0, the path, the command's argv[0]
    mov     edi, 3                  # the report fd lg left open for us
    mov     esi, 2                  # F_SETFD
    mov     edx, 1                  # FD_CLOEXEC
    mov     eax, 72                 # fcntl
    syscall
    test    rax, rax
    jnz     refuse                  # no fd 3: not started by lg
    mov     eax, 57                 # fork: the child is born in the PID namespace lg chose
    syscall
    test    rax, rax
    js      failed
    jnz     parent
    mov     eax, 112                # setsid: the command leads its own session
    syscall
    xor     edi, edi                # fd 0
    mov     esi, 0x540e             # TIOCSCTTY: its terminal, if fd 0 is one (else ENOTTY, ignored)
    xor     edx, edx
    mov     eax, 16                 # ioctl
    syscall
    mov     edi, 4                  # PR_SET_DUMPABLE
    xor     esi, esi                # 0: the container cannot open our /proc entries until exec
    mov     eax, 157                # prctl
    syscall
    mov     rdi, [rsp+16]           # path = argv[1]
    lea     rsi, [rsp+24]           # argv = &argv[2]
    lea     rdx, [rsp+rbx*8+16]     # envp
    mov     eax, 59                 # execve
    syscall
failed:
    neg     eax                     # errno (of fork or execve)
    bts     rax, 32                 # record tag 1: an errno
    mov     ebx, 127
    jmp     report
parent:
    bts     rax, 33                 # record tag 2: the child's pid
    xor     ebx, ebx
report:
    push    rax
    mov     edi, 3
    mov     rsi, rsp
    mov     edx, 8
    mov     eax, 1                  # write(3, &record, 8)
    syscall
    mov     edi, ebx
    jmp     leave
refuse:
    mov     edi, 126
leave:
    mov     eax, 231                # exit_group
    syscall
""",
        bytes.fromhex(
            "488b1c244883fb030f8292000000bf03000000be02000000ba01000000b84800"
            "00000f054885c07577b8390000000f054885c0783d7549b8700000000f0531ff"
            "be0e54000031d2b8100000000f05bf0400000031f6b89d0000000f05488b7c24"
            "10488d742418488d54dc10b83b0000000f05f7d8480fbae820bb7f000000eb07"
            "480fbae82131db50bf030000004889e6ba08000000b8010000000f0589dfeb05"
            "bf7e000000b8e70000000f05"
        ),
    ),
    "aarch64": Program(
        """\
    .globl _start
_start:
    ldr     x19, [sp]               // argc
    cmp     x19, #3
    b.lo    refuse                  // need: ARGV0, the path, the command's argv[0]
    mov     x0, #3                  // the report fd lg left open for us
    mov     x1, #2                  // F_SETFD
    mov     x2, #1                  // FD_CLOEXEC
    mov     x8, #25                 // fcntl
    svc     #0
    cbnz    x0, refuse              // no fd 3: not started by lg
    mov     x0, #17                 // clone(SIGCHLD): fork; the child is born in lg's chosen PID namespace
    mov     x1, #0
    mov     x2, #0
    mov     x3, #0
    mov     x4, #0
    mov     x8, #220                // clone
    svc     #0
    tbnz    x0, #63, failed
    cbnz    x0, parent
    mov     x8, #157                // setsid: the command leads its own session
    svc     #0
    mov     x0, #0                  // fd 0
    mov     x1, #0x540e             // TIOCSCTTY: its terminal, if fd 0 is one (else ENOTTY, ignored)
    mov     x2, #0
    mov     x8, #29                 // ioctl
    svc     #0
    mov     x0, #4                  // PR_SET_DUMPABLE
    mov     x1, #0                  // 0: the container cannot open our /proc entries until exec
    mov     x8, #167                // prctl
    svc     #0
    ldr     x0, [sp, #16]           // path = argv[1]
    add     x1, sp, #24             // argv = &argv[2]
    add     x2, sp, x19, lsl #3
    add     x2, x2, #16             // envp
    mov     x8, #221                // execve
    svc     #0
failed:
    neg     w0, w0                  // errno (of clone or execve), zero-extended
    orr     x0, x0, #0x100000000    // record tag 1: an errno
    mov     x20, #127
    b       report
parent:
    orr     x0, x0, #0x200000000    // record tag 2: the child's pid
    mov     x20, #0
report:
    str     x0, [sp, #-16]!
    mov     x1, sp
    mov     x0, #3
    mov     x2, #8
    mov     x8, #64                 // write(3, &record, 8)
    svc     #0
    mov     x0, x20
    b       leave
refuse:
    mov     x0, #126
leave:
    mov     x8, #94                 // exit_group
    svc     #0
""",
        bytes.fromhex(
            "f30340f97f0e00f1e3050054600080d2410080d2220080d2280380d2010000d4"
            "200500b5200280d2010080d2020080d2030080d2040080d2881b80d2010000d4"
            "6002f8b7c00200b5a81380d2010000d4000080d2c1818ad2020080d2a80380d2"
            "010000d4800080d2010080d2e81480d2010000d4e00b40f9e1630091e26f338b"
            "42400091a81b80d2010000d4e003004b000060b2f40f80d20300001400005fb2"
            "140080d2e00f1ff8e1030091600080d2020180d2080880d2010000d4e00314aa"
            "02000014c00f80d2c80b80d2010000d4"
        ),
    ),
}

_BASE = 0x400000  # load address; 64 KiB-aligned, so it suits 4K and 64K page kernels alike
_EHDR = struct.Struct("<16sHHIQQQIHHHHHH")
_PHDR = struct.Struct("<IIQQQQQQ")
_PT_LOAD, _PT_GNU_STACK = 1, 0x6474E551
_PF_X, _PF_W, _PF_R = 1, 2, 4

_MFD_EXEC = 0x10  # Linux 6.3: ask for an executable memfd where vm.memfd_noexec defaults to no-exec
_F_SEAL_EXEC = 0x20  # Linux 6.3: the mode's exec bits can no longer change


class UnsupportedArchitecture(LgError):
    """Containers need this trampoline (and a few raw syscall numbers): refused elsewhere."""

    exit_code = ExitCode.RUN_FAILED

    def __init__(self, machine: str):
        super().__init__(f"lg runs containers on x86_64 and aarch64 only; this machine is {machine}")


def elf(machine: str, code: bytes | None = None) -> bytes:
    """EXEC as a static ELF64 executable for ``machine`` (os.uname().machine).

    ``code``, if given, is other position-independent machine code to wrap instead
    (FORK, and the tests' syscall probes).
    """
    try:
        e_machine = E_MACHINE[machine]
    except KeyError:
        raise UnsupportedArchitecture(machine) from None
    code = EXEC[machine].code if code is None else code
    headers = _EHDR.size + 2 * _PHDR.size
    size = headers + len(code)
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)  # 64-bit, little-endian, version 1, System V
    entry = _BASE + headers
    ehdr = _EHDR.pack(ident, 2, e_machine, 1, entry, _EHDR.size, 0, 0, _EHDR.size, _PHDR.size, 2, 0, 0, 0)
    load = _PHDR.pack(_PT_LOAD, _PF_R | _PF_X, 0, _BASE, _BASE, size, size, 0x10000)
    stack = _PHDR.pack(_PT_GNU_STACK, _PF_R | _PF_W, 0, 0, 0, 0, 0, 16)  # a stack that is not executable
    return ehdr + load + stack + code


def sealed_memfd(name: str, content: bytes | int) -> int:
    """A close-on-exec memfd holding ``content`` (bytes, or an fd to copy whole), sealed.

    Sealed against writes, growth and shrinking (and, where the kernel knows the seal,
    against changes to its exec bits), so even a process that reaches it through
    /proc/PID/exe can change nothing that a later exec would run.
    """
    flags = os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING
    try:
        fd = os.memfd_create(name, flags | _MFD_EXEC)
    except OSError as exc:
        if exc.errno != errno.EINVAL:  # EINVAL: a kernel before 6.3, where every memfd may be executed
            raise LgError(
                f"cannot create the exec trampoline: {exc.strerror} (is vm.memfd_noexec 2?)"
            ) from None
        fd = os.memfd_create(name, flags)
    try:
        if isinstance(content, int):
            size = os.fstat(content).st_size
            offset = 0
            while offset < size:
                sent = os.sendfile(fd, content, offset, size - offset)
                if not sent:
                    break
                offset += sent
        else:
            view = memoryview(content)
            while view:
                view = view[os.write(fd, view):]
        seals = fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE
        try:
            fcntl.fcntl(fd, fcntl.F_ADD_SEALS, seals | _F_SEAL_EXEC)
        except OSError:
            fcntl.fcntl(fd, fcntl.F_ADD_SEALS, seals)
    except BaseException:
        os.close(fd)
        raise
    return fd


_IMAGES: dict[str, bytes] = {}


def prepare() -> None:
    """Build this machine's programs, in the parent before any fork, so that an
    unsupported architecture is one clear error there and not a child's failure."""
    if not _IMAGES:
        machine = os.uname().machine
        _IMAGES["exec"] = elf(machine)
        _IMAGES["fork"] = elf(machine, FORK[machine].code)


def memfd(fork: bool = False) -> int:
    """A fresh sealed memfd of this machine's EXEC (or FORK) program, one per process started.

    Fresh each time, so that nothing one container did to its copy (its mode, its
    owner) reaches the next; it costs a few microseconds.
    """
    prepare()
    return sealed_memfd(ARGV0, _IMAGES["fork" if fork else "exec"])


REPORT_MAX = 4096  # bytes of report read at most: a hostile writer must not cost more


def records(report: bytes) -> list[tuple[int, int]] | None:
    """The trampoline's (tag, value) records in ``report``, or None for one of lg's own
    text reports (a decimal exit code, a space, a message: never a NUL byte).

    Anything else (a partial or unknown record) raises LgError: with CAP_SYS_PTRACE a
    container's root can reach the pipe in the instant before the command's exec.
    """
    if b"\0" not in report:
        return None
    if len(report) % RECORD.size:
        raise LgError("the exec trampoline sent a malformed report")
    out = []
    for offset in range(0, len(report), RECORD.size):
        value, tag = RECORD.unpack_from(report, offset)
        if tag not in (TAG_ERRNO, TAG_PID):
            raise LgError("the exec trampoline sent a malformed report")
        out.append((tag, value))
    return out
