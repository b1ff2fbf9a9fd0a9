"""The one eBPF assembler layergit's programs are written with, and the listing their tests read.

No PyPI package does this well: bpf-asm only assembles classic BPF, pylibbpf loads
ELF objects that clang must compile first, and bcc compiles C with LLVM at run
time. runc builds its device filter with cilium/ebpf's assembler; this is the part
of one that our programs need, named as the kernel names it (include/linux/filter.h:
BPF_ALU64_IMM, BPF_LDX_MEM, BPF_JMP_REG, ...) so a program reads like the kernel's
samples, and listed as the kernel lists it (kernel/bpf/disasm.c, which the verifier
log and ``bpftool prog dump xlated`` print) so a golden listing can be held against
a loaded program.

An instruction is a ``struct bpf_insn {u8 code; u8 dst_reg:4, src_reg:4; s16 off;
s32 imm;}``, laid out for the little-endian machines lg runs on (x86_64, aarch64):
dst_reg in the low nibble. ``code`` is operation | source | class for ALU and JMP,
mode | size | class for loads and stores. LD_IMM64 takes two slots, the second
holding the value's upper half. A conditional jump names a label instead of an
offset: assemble() lays the program out first, then resolves every jump in one
pass, refusing a label that is missing, or one too far for a 16-bit offset.
"""

from __future__ import annotations

import struct

R0, R1, R2, R3, R4, R5, R6, R7, R8, R9, R10 = range(11)
FP = R10  # the read-only frame pointer; the program's 512-byte stack is below it

# Memory access sizes (BPF_W, BPF_H, BPF_B, BPF_DW) and how the listing calls them.
W, H, B, DW = 0x00, 0x08, 0x10, 0x18
_SIZES = {W: "u32", H: "u16", B: "u8", DW: "u64"}

_LD, _LDX, _ST, _STX, _ALU, _JMP, _JMP32, _ALU64 = range(8)  # instruction classes
_K, _X = 0x00, 0x08  # source: the immediate, or src_reg
_IMM, _MEM = 0x00, 0x60  # modes of loads and stores
_CALL, _EXIT = 0x80, 0x90
_LD_IMM64 = _LD | _IMM | DW
PSEUDO_MAP_FD = 1  # src_reg of an LD_IMM64 holding a map fd, which the verifier makes the map's address

# operation -> (its bits in code, the listing's operator)
_ALU_OPS = {
    "add": (0x00, "+="), "sub": (0x10, "-="), "mul": (0x20, "*="), "div": (0x30, "/="), "or": (0x40, "|="),
    "and": (0x50, "&="), "lsh": (0x60, "<<="), "rsh": (0x70, ">>="), "mod": (0x90, "%="), "xor": (0xA0, "^="),
    "mov": (0xB0, "="), "arsh": (0xC0, "s>>="),
}
_JUMP_OPS = {
    "jeq": (0x10, "=="), "jgt": (0x20, ">"), "jge": (0x30, ">="), "jset": (0x40, "&"), "jne": (0x50, "!="),
    "jsgt": (0x60, "s>"), "jsge": (0x70, "s>="), "jlt": (0xA0, "<"), "jle": (0xB0, "<="),
    "jslt": (0xC0, "s<"), "jsle": (0xD0, "s<="),
}
_ALU_SYMBOLS = dict(_ALU_OPS.values())
_JUMP_SYMBOLS = dict(_JUMP_OPS.values())
# enum bpf_func_id: the helpers our programs call
_HELPERS = {"map_lookup_elem": 1, "map_update_elem": 2, "get_socket_cookie": 46, "get_netns_cookie": 122}
_HELPER_NAMES = {number: name for name, number in _HELPERS.items()}


def _fits(value: int, bits: int, what: str) -> int:
    if not -(1 << bits - 1) <= value < 1 << bits - 1:
        raise ValueError(f"{what} {value} does not fit in s{bits}")
    return value


class Insn:
    """One instruction (two slots for LD_IMM64); a jump's ``target`` is the label whose
    position assemble() turns into ``off``."""

    __slots__ = ("code", "dst", "src", "off", "imm", "target")

    def __init__(self, code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0,
                 target: str | None = None):
        for reg in (dst, src):
            if not 0 <= reg <= R10:
                raise ValueError(f"no register r{reg}")
        if code == _LD_IMM64:
            if not -(1 << 63) <= imm < 1 << 64:
                raise ValueError(f"immediate {imm} does not fit in 64 bits")
            imm &= (1 << 64) - 1
        else:
            _fits(imm, 32, "immediate")
        self.code, self.dst, self.src, self.imm, self.target = code, dst, src, imm, target
        self.off = _fits(off, 16, "offset")

    @property
    def slots(self) -> int:
        return 2 if self.code == _LD_IMM64 else 1

    def encode(self, off: int) -> bytes:
        regs = self.src << 4 | self.dst
        if self.code == _LD_IMM64:
            low, high = self.imm & 0xFFFFFFFF, self.imm >> 32
            return struct.pack("<BBhIBBhI", self.code, regs, 0, low, 0, 0, 0, high)
        return struct.pack("<BBhi", self.code, regs, off, self.imm)


class Label:
    """Names the position of the instruction that follows it."""

    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name


def _op(table: dict[str, tuple[int, str]], op: str) -> int:
    try:
        return table[op][0]
    except KeyError:
        raise ValueError(f"unknown operation {op!r}") from None


def _size(size: int) -> int:
    if size not in _SIZES:
        raise ValueError(f"unknown access size {size:#x}")
    return size


def alu64_imm(op: str, dst: int, imm: int) -> Insn:
    return Insn(_ALU64 | _K | _op(_ALU_OPS, op), dst, imm=imm)


def alu64_reg(op: str, dst: int, src: int) -> Insn:
    return Insn(_ALU64 | _X | _op(_ALU_OPS, op), dst, src)


def alu32_imm(op: str, dst: int, imm: int) -> Insn:
    """A 32-bit operation: the result's upper half is zeroed."""
    return Insn(_ALU | _K | _op(_ALU_OPS, op), dst, imm=imm)


def alu32_reg(op: str, dst: int, src: int) -> Insn:
    return Insn(_ALU | _X | _op(_ALU_OPS, op), dst, src)


def mov64_imm(dst: int, imm: int) -> Insn:
    return alu64_imm("mov", dst, imm)


def mov64_reg(dst: int, src: int) -> Insn:
    return alu64_reg("mov", dst, src)


def mov32_imm(dst: int, imm: int) -> Insn:
    return alu32_imm("mov", dst, imm)


def mov32_reg(dst: int, src: int) -> Insn:
    return alu32_reg("mov", dst, src)


def ldx_mem(size: int, dst: int, src: int, off: int) -> Insn:
    """dst = *(size *)(src + off)"""
    return Insn(_LDX | _MEM | _size(size), dst, src, off)


def stx_mem(size: int, dst: int, src: int, off: int) -> Insn:
    """*(size *)(dst + off) = src"""
    return Insn(_STX | _MEM | _size(size), dst, src, off)


def st_mem(size: int, dst: int, off: int, imm: int) -> Insn:
    """*(size *)(dst + off) = imm"""
    return Insn(_ST | _MEM | _size(size), dst, off=off, imm=imm)


def ld_imm64(dst: int, value: int) -> Insn:
    return Insn(_LD_IMM64, dst, imm=value)


def ld_map_fd(dst: int, fd: int) -> Insn:
    return Insn(_LD_IMM64, dst, PSEUDO_MAP_FD, imm=fd)


def jmp_imm(op: str, dst: int, imm: int, target: str) -> Insn:
    """if dst <op> imm goto target (64-bit compare: imm is sign-extended)"""
    return Insn(_JMP | _K | _op(_JUMP_OPS, op), dst, imm=imm, target=target)


def jmp_reg(op: str, dst: int, src: int, target: str) -> Insn:
    return Insn(_JMP | _X | _op(_JUMP_OPS, op), dst, src, target=target)


def jmp32_imm(op: str, dst: int, imm: int, target: str) -> Insn:
    """if (u32)dst <op> imm goto target"""
    return Insn(_JMP32 | _K | _op(_JUMP_OPS, op), dst, imm=imm, target=target)


def jmp32_reg(op: str, dst: int, src: int, target: str) -> Insn:
    return Insn(_JMP32 | _X | _op(_JUMP_OPS, op), dst, src, target=target)


def call(helper: str | int) -> Insn:
    """Call a helper, by its name in enum bpf_func_id without ``BPF_FUNC_`` or by number:
    arguments in r1-r5, result in r0, r1-r5 clobbered."""
    if isinstance(helper, str):
        try:
            helper = _HELPERS[helper]
        except KeyError:
            raise ValueError(f"unknown helper {helper!r}") from None
    return Insn(_JMP | _CALL, imm=helper)


def exit_insn() -> Insn:
    """return r0"""
    return Insn(_JMP | _EXIT)


def assemble(program: list[Insn | Label]) -> bytes:
    """The instructions of ``program`` as the kernel takes them, every jump resolved to its label."""
    labels: dict[str, int] = {}
    placed: list[tuple[int, Insn]] = []
    end = 0
    for item in program:
        if isinstance(item, Label):
            if item.name in labels:
                raise ValueError(f"label {item.name!r} defined twice")
            labels[item.name] = end
        else:
            placed.append((end, item))
            end += item.slots
    out = []
    for at, insn in placed:
        off = insn.off
        if insn.target is not None:
            if insn.target not in labels:
                raise ValueError(f"jump to unknown label {insn.target!r}")
            if labels[insn.target] == end:
                raise ValueError(f"jump to label {insn.target!r}, which has no instruction after it")
            off = labels[insn.target] - at - 1
            if not -(1 << 15) <= off < 1 << 15:
                raise ValueError(f"jump to label {insn.target!r} is {off} instructions away: beyond s16")
        out.append(insn.encode(off))
    return b"".join(out)


def disassemble(code: bytes) -> str:
    """The kernel's listing of ``code``, one instruction a line (``   6: (55) if r2 != 0x1 goto pc+4``).
    A map fd shows as ``map[fd:N]``, where the kernel, having replaced it, shows the map's id."""
    if len(code) % 8:
        raise ValueError(f"{len(code)} bytes are not a whole number of instructions")
    lines = []
    i = 0
    while i < len(code) // 8:
        op, regs, off, imm = struct.unpack_from("<BBhi", code, 8 * i)
        dst, src = regs & 0xF, regs >> 4
        if op == _LD_IMM64:
            if 8 * i + 16 > len(code):
                raise ValueError(f"the LD_IMM64 at {i} has no second slot")
            value = struct.unpack_from("<I", code, 8 * i + 12)[0] << 32 | imm & 0xFFFFFFFF
            text = f"r{dst} = map[fd:{imm}]" if src == PSEUDO_MAP_FD else f"r{dst} = {value:#x}"
        else:
            text = _text(op, dst, src, off, imm)
        lines.append(f"{i:4d}: ({op:02x}) {text}")
        i += 2 if op == _LD_IMM64 else 1
    return "\n".join(lines)


def _text(op: int, dst: int, src: int, off: int, imm: int) -> str:
    cls, mode = op & 0x07, op & 0xE0
    if cls in (_ALU, _ALU64) and op & 0xF0 in _ALU_SYMBOLS:
        r = "r" if cls == _ALU64 else "w"
        operand = f"{r}{src}" if op & _X else str(imm)
        return f"{r}{dst} {_ALU_SYMBOLS[op & 0xF0]} {operand}"
    if cls == _LDX and mode == _MEM:
        return f"r{dst} = *({_SIZES[op & 0x18]} *)(r{src} {off:+d})"
    if cls == _STX and mode == _MEM:
        return f"*({_SIZES[op & 0x18]} *)(r{dst} {off:+d}) = r{src}"
    if cls == _ST and mode == _MEM:
        return f"*({_SIZES[op & 0x18]} *)(r{dst} {off:+d}) = {imm}"
    if op == _JMP | _CALL:
        return f"call bpf_{_HELPER_NAMES[imm]}#{imm}" if imm in _HELPER_NAMES else f"call unknown#{imm}"
    if op == _JMP | _EXIT:
        return "exit"
    if cls in (_JMP, _JMP32) and op & 0xF0 in _JUMP_SYMBOLS:
        r = "w" if cls == _JMP32 else "r"
        operand = f"{r}{src}" if op & _X else f"{imm & 0xFFFFFFFF:#x}"
        return f"if {r}{dst} {_JUMP_SYMBOLS[op & 0xF0]} {operand} goto pc{off:+d}"
    raise ValueError(f"unknown opcode {op:#04x}")
