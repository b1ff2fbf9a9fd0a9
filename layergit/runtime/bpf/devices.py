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
deny). For the rules ``c 1:3 rwm`` and ``c 136:* rw`` it is this C, a field
compared only where the rule names it (no ``&&`` term for ``*``, nor for the
access when the rule allows all three):

    int lg_devices(struct bpf_cgroup_dev_ctx *ctx)
    {
            u32 type = ctx->access_type & 0xFFFF;     /* r2 */
            u32 requested = ctx->access_type >> 16;   /* r3 */
            u32 major = ctx->major, minor = ctx->minor;  /* r4, r5 */

            if (type == BPF_DEVCG_DEV_CHAR && major == 1 && minor == 3)
                    return 1;
            if (type == BPF_DEVCG_DEV_CHAR && (requested & (READ | WRITE)) == requested && major == 136)
                    return 1;  /* every access asked for (open O_RDWR asks two) must be allowed */
            return 0;
    }

The arithmetic is 32-bit (ALU32), as runc's is; the comparisons are 64-bit, of
zero-extended values.
"""

from __future__ import annotations

from .asm import (
    R0,
    R1,
    R2,
    R3,
    R4,
    R5,
    Insn,
    Label,
    W,
    alu32_imm,
    assemble,
    exit_insn,
    jmp_imm,
    jmp_reg,
    ldx_mem,
    mov32_imm,
    mov32_reg,
)

_TYPES = {"b": 1, "c": 2}  # BPF_DEVCG_DEV_BLOCK, BPF_DEVCG_DEV_CHAR
_ACCESS = {"m": 1, "r": 2, "w": 4}  # BPF_DEVCG_ACC_MKNOD, _READ, _WRITE
_ALL_ACCESS = 7

# r1 holds the context on entry; r0 is the result.
_TYPE, _REQUESTED, _MAJOR, _MINOR = R2, R3, R4, R5

_PROLOGUE = [
    ldx_mem(W, _TYPE, R1, 0), alu32_imm("and", _TYPE, 0xFFFF),
    ldx_mem(W, _REQUESTED, R1, 0), alu32_imm("rsh", _REQUESTED, 16),
    ldx_mem(W, _MAJOR, R1, 4),
    ldx_mem(W, _MINOR, R1, 8),
]


def _rule(rule: str, mismatch: str) -> list[Insn]:
    """The block for one ``devices.allow`` rule (``c 1:3 rwm``, ``b *:* m``): return 1 on a match,
    else go to ``mismatch``."""
    try:
        kind, numbers, access = rule.split()
        major, minor = numbers.split(":")
        block = [jmp_imm("jne", _TYPE, _TYPES[kind], mismatch)]
        allowed = 0
        for letter in access:
            allowed |= _ACCESS[letter]
        if allowed != _ALL_ACCESS:
            block += [
                mov32_reg(R1, _REQUESTED), alu32_imm("and", R1, allowed),
                jmp_reg("jne", R1, _REQUESTED, mismatch),
            ]
        for reg, number in ((_MAJOR, major), (_MINOR, minor)):
            if number != "*":
                block.append(jmp_imm("jne", reg, int(number), mismatch))
    except (ValueError, KeyError):
        raise ValueError(f"bad device rule {rule!r}") from None
    return block + [mov32_imm(R0, 1), exit_insn()]


def program(rules: list[str]) -> bytes:
    """The filter for ``rules``: what one of them allows is allowed, everything else refused."""
    items: list[Insn | Label] = list(_PROLOGUE)
    for i, rule in enumerate(rules):
        items += [Label(f"rule{i}"), *_rule(rule, f"rule{i + 1}" if i + 1 < len(rules) else "deny")]
    return assemble(items + [Label("deny"), mov32_imm(R0, 0), exit_insn()])
