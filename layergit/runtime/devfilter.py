"""What the cgroup v2 device filter is: the device rules as an eBPF program.

cgroup v2 has no devices.allow. Instead a BPF_PROG_TYPE_CGROUP_DEVICE program
attached to the cgroup is asked about every mknod and every open of a device node
by a process in it, as runc does it. The kernel passes a ``struct
bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }`` (access_type: the
device type, BPF_DEVCG_DEV_BLOCK or _CHAR, in its low 16 bits and the access
asked for, BPF_DEVCG_ACC_MKNOD|READ|WRITE, in its high 16) and allows the
operation only if the program returns 1.

The program is assembled from the same rule strings that v1's devices controller
is given (cgroups.DEVICE_RULES), so the two versions cannot disagree: a block per
rule that returns 1 when every field matches, and 0 after the last one (default
deny). It is hand-assembled because no PyPI package does this well: bpf-asm only
assembles classic BPF, pylibbpf loads ELF objects that clang must compile first,
and bcc compiles C with LLVM at run time. runc builds the same program with
cilium/ebpf's assembler; the handful of opcodes below is all of it that we need.
"""

from __future__ import annotations

import struct

_TYPES = {"b": 1, "c": 2}  # BPF_DEVCG_DEV_BLOCK, BPF_DEVCG_DEV_CHAR
_ACCESS = {"m": 1, "r": 2, "w": 4}  # BPF_DEVCG_ACC_MKNOD, _READ, _WRITE
_ALL_ACCESS = 7

# Opcodes: class | operation | source (K: the immediate, X: a register). ALU is 32-bit.
_LDX_MEM_W = 0x61  # dst = *(u32 *)(src + off)
_AND_K = 0x54
_RSH_K = 0x74
_MOV_K = 0xB4
_MOV_X = 0xBC
_JNE_K = 0x55  # if dst != imm: skip off instructions
_JNE_X = 0x5D  # if dst != src: skip off instructions
_EXIT = 0x95  # return r0

# r1 holds the context on entry; r0 is the result.
_R0, _R1, _R2, _R3, _R4, _R5 = range(6)
_TYPE, _REQUESTED, _MAJOR, _MINOR = _R2, _R3, _R4, _R5


def _insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    """One instruction, as struct bpf_insn lays it out on the little-endian machines lg runs on
    (x86_64 and aarch64): dst_reg in the low nibble of the register byte."""
    return struct.pack("<BBhi", code, src << 4 | dst, off, imm)


_PROLOGUE = [
    _insn(_LDX_MEM_W, _TYPE, _R1, 0), _insn(_AND_K, _TYPE, imm=0xFFFF),
    _insn(_LDX_MEM_W, _REQUESTED, _R1, 0), _insn(_RSH_K, _REQUESTED, imm=16),
    _insn(_LDX_MEM_W, _MAJOR, _R1, 4),
    _insn(_LDX_MEM_W, _MINOR, _R1, 8),
]
_DENY = [_insn(_MOV_K, _R0, imm=0), _insn(_EXIT)]


def _rule(rule: str) -> list[bytes]:
    """The block for one ``devices.allow`` rule (``c 1:3 rwm``, ``b *:* m``): return 1 on a match, else
    fall through to the next block."""
    try:
        kind, numbers, access = rule.split()
        major, minor = numbers.split(":")
        checks: list[tuple[list[bytes], int, int, int, int]] = [([], _JNE_K, _TYPE, 0, _TYPES[kind])]
        allowed = 0
        for letter in access:
            allowed |= _ACCESS[letter]
        if allowed != _ALL_ACCESS:  # every access asked for (open O_RDWR asks two) must be allowed
            checks.append(([_insn(_MOV_X, _R1, _REQUESTED), _insn(_AND_K, _R1, imm=allowed)], _JNE_X, _R1, _REQUESTED, 0))
        for reg, number in ((_MAJOR, major), (_MINOR, minor)):
            if number != "*":
                checks.append(([], _JNE_K, reg, 0, int(number)))
    except (ValueError, KeyError):
        raise ValueError(f"bad device rule {rule!r}") from None
    size = sum(len(setup) + 1 for setup, *_ in checks) + 2
    block: list[bytes] = []
    for setup, jump, dst, src, imm in checks:
        block += setup
        block.append(_insn(jump, dst, src, off=size - len(block) - 1, imm=imm))  # past this block
    return block + [_insn(_MOV_K, _R0, imm=1), _insn(_EXIT)]


def program(rules: list[str]) -> bytes:
    """The filter for ``rules``: what one of them allows is allowed, everything else refused."""
    return b"".join(_PROLOGUE + [insn for rule in rules for insn in _rule(rule)] + _DENY)
