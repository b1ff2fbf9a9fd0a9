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

Protocol with lg (runtime/process.py):
  argv = [ARGV0, PATH, command argv[0], command argv[1], ...], envp = the command's.
  fd 3 = the write end of lg's report pipe, left open for it. The trampoline marks
  fd 3 close-on-exec, then execve(PATH, &argv[2], envp). If that fails it writes
  the errno as 4 bytes (native order) to fd 3 and exits 127. Started any other way
  (fewer than three arguments, or no fd 3, e.g. as a script's ``#!/proc/self/exe``
  interpreter) it exits 126 at once and execs nothing.

The machine code for each architecture is below as its assembly source and its
bytes; tests/test_trampoline.py assembles the source with binutils and checks the
bytes (the golden listing), and runs each architecture's ELF (aarch64 under qemu).
"""

from __future__ import annotations

import errno
import fcntl
import os
import struct
import sys

from ..errors import LgError

ARGV0 = "lg-exec"
REPORT_FD = 3

# Architecture (os.uname().machine) -> (ELF e_machine, assembly source, its bytes).
CODE: dict[str, tuple[int, str, bytes]] = {
    "x86_64": (
        62,
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
    push    rax
    mov     edi, 3
    mov     rsi, rsp
    mov     edx, 4
    mov     eax, 1                  # write(3, &errno, 4)
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
            "488b1c24" "4883fb03" "724f" "bf03000000" "be02000000" "ba01000000" "b848000000" "0f05"
            "4885c0" "7534" "488b7c2410" "488d742418" "488d54dc10" "b83b000000" "0f05" "f7d8" "50"
            "bf03000000" "4889e6" "ba04000000" "b801000000" "0f05" "bf7f000000" "eb05"
            "bf7e000000" "b8e7000000" "0f05"
        ),
    ),
    "aarch64": (
        183,
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
    neg     w0, w0                  // errno
    str     w0, [sp, #-16]!
    mov     x1, sp
    mov     x0, #3
    mov     x2, #4
    mov     x8, #64                 // write(3, &errno, 4)
    svc     #0
    mov     x0, #127
    b       leave
refuse:
    mov     x0, #126
leave:
    mov     x8, #94                 // exit_group
    svc     #0
""",
        b"".join(
            struct.pack("<I", word)
            for word in (
                0xF94003F3, 0xF1000E7F, 0x540002C3, 0xD2800060, 0xD2800041, 0xD2800022, 0xD2800328, 0xD4000001,
                0xB5000200, 0xF9400BE0, 0x910063E1, 0x8B336FE2, 0x91004042, 0xD2801BA8, 0xD4000001, 0x4B0003E0,
                0xB81F0FE0, 0x910003E1, 0xD2800060, 0xD2800082, 0xD2800808, 0xD4000001, 0xD2800FE0, 0x14000002,
                0xD2800FC0, 0xD2800BC8, 0xD4000001,
            )
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

    exit_code = 125

    def __init__(self, machine: str):
        super().__init__(f"lg runs containers on x86_64 and aarch64 only; this machine is {machine}")


def elf(machine: str, code: bytes | None = None) -> bytes:
    """The trampoline as a static ELF64 executable for ``machine`` (os.uname().machine).

    ``code``, if given, is other position-independent machine code to wrap instead
    (the tests' syscall probes).
    """
    try:
        e_machine, _, trampoline_code = CODE[machine]
    except KeyError:
        raise UnsupportedArchitecture(machine) from None
    code = trampoline_code if code is None else code
    headers = _EHDR.size + 2 * _PHDR.size
    size = headers + len(code)
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)  # 64-bit, little-endian, version 1, System V
    ehdr = _EHDR.pack(ident, 2, e_machine, 1, _BASE + headers, _EHDR.size, 0, 0, _EHDR.size, _PHDR.size, 2, 0, 0, 0)
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
            raise LgError(f"cannot create the exec trampoline: {exc.strerror} (is vm.memfd_noexec 2?)") from None
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


_IMAGE: bytes | None = None


def prepare() -> None:
    """Build this machine's trampoline, in the parent before any fork, so that an
    unsupported architecture is one clear error there and not a child's failure."""
    global _IMAGE
    if _IMAGE is None:
        _IMAGE = elf(os.uname().machine)


def memfd() -> int:
    """A fresh sealed memfd of this machine's trampoline (one per process started).

    Fresh each time, so that nothing one container did to its copy (its mode, its
    owner) reaches the next; it costs a few microseconds.
    """
    prepare()
    return sealed_memfd(ARGV0, _IMAGE)


def errno_report(report: bytes) -> int | None:
    """The errno the trampoline reported on REPORT_FD, or None for one of lg's own text reports.

    lg's reports are text (a decimal exit code, a space, a message) and never hold
    NUL; the trampoline's are four bytes of a native-order errno (< 4096), whose two
    high bytes are zero.
    """
    if len(report) == 4 and report[2:] == b"\0\0":
        return int.from_bytes(report, sys.byteorder)
    return None
