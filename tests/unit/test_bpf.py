"""The eBPF assembler (runtime/bpf/asm.py) and the programs written with it, without a kernel.

Each instruction kind is held against its bytes as the ISA defines them
(Documentation/bpf/standardization/instruction-set.rst; they agree with
``llvm-mc -triple bpfel -show-encoding``, which lacks only the store-immediate forms
and JMP32's jset) and against the kernel's listing of it; each program against a golden listing, as runc's devicefilter_test.go
does, so that a change to what the kernel will run shows up as a readable diff.
Lines of a golden listing that start with ``#`` are comments.
"""

from __future__ import annotations

import pytest

from layergit.runtime.bpf import devices, sockaddr
from layergit.runtime.bpf.asm import (
    DW,
    FP,
    R0,
    R1,
    R2,
    R3,
    R4,
    R5,
    R6,
    R7,
    B,
    H,
    Label,
    W,
    alu32_imm,
    alu32_reg,
    alu64_imm,
    alu64_reg,
    assemble,
    call,
    disassemble,
    exit_insn,
    jmp32_imm,
    jmp32_reg,
    jmp_imm,
    jmp_reg,
    ld_imm64,
    ld_map_fd,
    ldx_mem,
    mov32_imm,
    mov32_reg,
    mov64_imm,
    mov64_reg,
    st_mem,
    stx_mem,
)
from layergit.runtime.cgroups import DEVICE_RULES


def _listing(text: str) -> list[str]:
    """A listing's instruction lines, whitespace-normalised, comments and blank lines dropped."""
    return [" ".join(line.split()) for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]


# instruction, its bytes (hex), its listing
KINDS = [
    (mov64_imm(R0, 1), "b700000001000000", "(b7) r0 = 1"),
    (mov64_imm(R2, -1), "b7020000ffffffff", "(b7) r2 = -1"),
    (mov64_reg(R6, R1), "bf16000000000000", "(bf) r6 = r1"),
    (mov32_imm(R0, 0), "b400000000000000", "(b4) w0 = 0"),
    (mov32_reg(R1, R3), "bc31000000000000", "(bc) w1 = w3"),
    (alu64_imm("add", R2, -8), "07020000f8ffffff", "(07) r2 += -8"),
    (alu64_imm("arsh", R1, 3), "c701000003000000", "(c7) r1 s>>= 3"),
    (alu64_reg("xor", R1, R2), "af21000000000000", "(af) r1 ^= r2"),
    (alu32_imm("and", R2, 0xFFFF), "54020000ffff0000", "(54) w2 &= 65535"),
    (alu32_imm("rsh", R3, 16), "7403000010000000", "(74) w3 >>= 16"),
    (alu32_reg("lsh", R4, R5), "6c54000000000000", "(6c) w4 <<= w5"),
    (ldx_mem(W, R2, R1, 4), "6112040000000000", "(61) r2 = *(u32 *)(r1 +4)"),
    (ldx_mem(H, R2, R7, 4), "6972040000000000", "(69) r2 = *(u16 *)(r7 +4)"),
    (ldx_mem(B, R2, FP, -2), "71a2feff00000000", "(71) r2 = *(u8 *)(r10 -2)"),
    (ldx_mem(DW, R0, R1, 0), "7910000000000000", "(79) r0 = *(u64 *)(r1 +0)"),
    (stx_mem(W, FP, R2, -8), "632af8ff00000000", "(63) *(u32 *)(r10 -8) = r2"),
    (stx_mem(H, FP, R2, -4), "6b2afcff00000000", "(6b) *(u16 *)(r10 -4) = r2"),
    (stx_mem(B, FP, R2, -2), "732afeff00000000", "(73) *(u8 *)(r10 -2) = r2"),
    (stx_mem(DW, FP, R0, -24), "7b0ae8ff00000000", "(7b) *(u64 *)(r10 -24) = r0"),
    (st_mem(B, FP, -1, 0), "720affff00000000", "(72) *(u8 *)(r10 -1) = 0"),
    (st_mem(W, R6, 4, 7), "6206040007000000", "(62) *(u32 *)(r6 +4) = 7"),
    (st_mem(H, R6, 24, 80), "6a06180050000000", "(6a) *(u16 *)(r6 +24) = 80"),
    (st_mem(DW, FP, -16, -1), "7a0af0ffffffffff", "(7a) *(u64 *)(r10 -16) = -1"),
    (ld_imm64(R1, 0x1122334455667788), "1801000088776655" "0000000044332211", "(18) r1 = 0x1122334455667788"),
    (ld_imm64(R1, -1), "18010000ffffffff" "00000000ffffffff", "(18) r1 = 0xffffffffffffffff"),
    (ld_map_fd(R1, 3), "1811000003000000" "0000000000000000", "(18) r1 = map[fd:3]"),
    (call("map_lookup_elem"), "8500000001000000", "(85) call bpf_map_lookup_elem#1"),
    (call("get_netns_cookie"), "850000007a000000", "(85) call bpf_get_netns_cookie#122"),
    (call(14), "850000000e000000", "(85) call unknown#14"),
    (exit_insn(), "9500000000000000", "(95) exit"),
]


@pytest.mark.parametrize("insn, code, text", KINDS, ids=[k[2] for k in KINDS])
def test_instruction_encoding_and_listing(insn, code, text):
    assert assemble([insn]).hex() == code
    assert _listing(disassemble(bytes.fromhex(code))) == [f"0: {text}"]


# a jump to the label right after it (off 0), its bytes, its listing
JUMPS = [
    (jmp_imm("jne", R2, 2, "next"), "5502000002000000", "(55) if r2 != 0x2 goto pc+0"),
    (jmp_imm("jeq", R0, 0, "next"), "1500000000000000", "(15) if r0 == 0x0 goto pc+0"),
    (jmp_imm("jsgt", R1, -1, "next"), "65010000ffffffff", "(65) if r1 s> 0xffffffff goto pc+0"),
    (jmp_reg("jne", R0, R1, "next"), "5d10000000000000", "(5d) if r0 != r1 goto pc+0"),
    (jmp_reg("jle", R3, R4, "next"), "bd43000000000000", "(bd) if r3 <= r4 goto pc+0"),
    (jmp32_imm("jeq", R1, 5, "next"), "1601000005000000", "(16) if w1 == 0x5 goto pc+0"),
    (jmp32_reg("jgt", R1, R2, "next"), "2e21000000000000", "(2e) if w1 > w2 goto pc+0"),
    (jmp32_imm("jset", R5, 0x80, "next"), "4605000080000000", "(46) if w5 & 0x80 goto pc+0"),
]


@pytest.mark.parametrize("insn, code, text", JUMPS, ids=[j[2] for j in JUMPS])
def test_jump_encoding_and_listing(insn, code, text):
    program = assemble([insn, Label("next"), exit_insn()])
    assert program[:8].hex() == code
    assert _listing(disassemble(program)) == [f"0: {text}", "1: (95) exit"]


def test_labels_resolve_forward_and_backward():
    program = assemble([
        Label("top"),
        mov64_imm(R0, 0),                      # 0
        jmp_imm("jeq", R0, 1, "out"),          # 1: to 4
        ld_imm64(R1, 1 << 40),                 # 2, 3: two slots
        Label("out"),
        jmp_imm("jne", R0, 0, "top"),          # 4: back to 0
        Label("last"),
        Label("also-last"),                    # two labels may name one place
        jmp_reg("jeq", R0, R1, "last"),        # 5: to itself
        jmp_reg("jeq", R0, R1, "also-last"),   # 6: back to 5
        exit_insn(),                           # 7
    ])
    assert _listing(disassemble(program)) == [
        "0: (b7) r0 = 0",
        "1: (15) if r0 == 0x1 goto pc+2",
        "2: (18) r1 = 0x10000000000",
        "4: (55) if r0 != 0x0 goto pc-5",
        "5: (1d) if r0 == r1 goto pc-1",
        "6: (1d) if r0 == r1 goto pc-2",
        "7: (95) exit",
    ]


def test_jump_range_is_checked_both_ways():
    """off is an s16: 32767 instructions ahead and 32768 back are the farthest a jump reaches."""
    filler = [mov64_imm(R0, 0)] * 32767
    assert assemble([jmp_imm("jeq", R0, 0, "far"), *filler, Label("far"), exit_insn()])[2:4] == b"\xff\x7f"
    with pytest.raises(ValueError, match="'far' is 32768 instructions away"):
        assemble([jmp_imm("jeq", R0, 0, "far"), *filler, mov64_imm(R0, 0), Label("far"), exit_insn()])
    back = assemble([Label("far"), *filler, jmp_imm("jeq", R0, 0, "far"), exit_insn()])
    assert back[-16:-8].hex() == "15000080" "00000000"  # off -32768
    with pytest.raises(ValueError, match="'far' is -32769 instructions away"):
        assemble([Label("far"), mov64_imm(R0, 0), *filler, jmp_imm("jeq", R0, 0, "far"), exit_insn()])


@pytest.mark.parametrize("program, message", [
    ([jmp_imm("jeq", R0, 0, "nowhere"), exit_insn()], "unknown label 'nowhere'"),
    ([jmp_imm("jeq", R0, 0, "end"), exit_insn(), Label("end")], "label 'end', which has no instruction after it"),
    ([Label("a"), exit_insn(), Label("a"), exit_insn()], "label 'a' defined twice"),
])
def test_bad_labels_are_refused(program, message):
    with pytest.raises(ValueError, match=message):
        assemble(program)


@pytest.mark.parametrize("make, message", [
    (lambda: mov64_imm(11, 0), "no register r11"),
    (lambda: mov64_reg(R0, -1), "no register r-1"),
    (lambda: mov64_imm(R0, 1 << 31), "immediate 2147483648 does not fit in s32"),
    (lambda: alu32_imm("and", R0, -(1 << 31) - 1), "does not fit in s32"),
    (lambda: ld_imm64(R0, 1 << 64), "does not fit in 64 bits"),
    (lambda: ldx_mem(W, R0, R1, 1 << 15), "offset 32768 does not fit in s16"),
    (lambda: ldx_mem(3, R0, R1, 0), "unknown access size 0x3"),
    (lambda: alu64_imm("neg", R0, 0), "unknown operation 'neg'"),
    (lambda: jmp_imm("ja", R0, 0, "x"), "unknown operation 'ja'"),
    (lambda: call("trace_printk"), "unknown helper 'trace_printk'"),
])
def test_bad_instructions_are_refused(make, message):
    with pytest.raises(ValueError, match=message):
        make()


@pytest.mark.parametrize("code, message", [
    ("95000000000000", "not a whole number of instructions"),
    ("1801000001000000", "LD_IMM64 at 0 has no second slot"),
    ("8400000000000000", "unknown opcode 0x84"),  # a 32-bit neg
    ("0500000000000000", "unknown opcode 0x05"),  # ja: nothing of ours jumps unconditionally
    ("6000000000000000", "unknown opcode 0x60"),  # a classic LD ABS
])
def test_disassembler_refuses_what_it_cannot_read(code, message):
    with pytest.raises(ValueError, match=message):
        disassemble(bytes.fromhex(code))


# -- the device filter (bpf/devices.py) -------------------------------------------------------------

DEVICES_GOLDEN = """
# load the context: r2 type, r3 access asked for, r4 major, r5 minor
   0: (61) r2 = *(u32 *)(r1 +0)
   1: (54) w2 &= 65535
   2: (61) r3 = *(u32 *)(r1 +0)
   3: (74) w3 >>= 16
   4: (61) r4 = *(u32 *)(r1 +4)
   5: (61) r5 = *(u32 *)(r1 +8)
# c *:* m: a char device, mknod only (whatever is asked must be within 1)
   6: (55) if r2 != 0x2 goto pc+5
   7: (bc) w1 = w3
   8: (54) w1 &= 1
   9: (5d) if r1 != r3 goto pc+2
  10: (b4) w0 = 1
  11: (95) exit
# b *:* m
  12: (55) if r2 != 0x1 goto pc+5
  13: (bc) w1 = w3
  14: (54) w1 &= 1
  15: (5d) if r1 != r3 goto pc+2
  16: (b4) w0 = 1
  17: (95) exit
# c 1:3 rwm (null): rwm is every access, so none is compared
  18: (55) if r2 != 0x2 goto pc+4
  19: (55) if r4 != 0x1 goto pc+3
  20: (55) if r5 != 0x3 goto pc+2
  21: (b4) w0 = 1
  22: (95) exit
# c 1:5 rwm (zero)
  23: (55) if r2 != 0x2 goto pc+4
  24: (55) if r4 != 0x1 goto pc+3
  25: (55) if r5 != 0x5 goto pc+2
  26: (b4) w0 = 1
  27: (95) exit
# c 1:7 rwm (full)
  28: (55) if r2 != 0x2 goto pc+4
  29: (55) if r4 != 0x1 goto pc+3
  30: (55) if r5 != 0x7 goto pc+2
  31: (b4) w0 = 1
  32: (95) exit
# c 1:8 rwm (random)
  33: (55) if r2 != 0x2 goto pc+4
  34: (55) if r4 != 0x1 goto pc+3
  35: (55) if r5 != 0x8 goto pc+2
  36: (b4) w0 = 1
  37: (95) exit
# c 1:9 rwm (urandom)
  38: (55) if r2 != 0x2 goto pc+4
  39: (55) if r4 != 0x1 goto pc+3
  40: (55) if r5 != 0x9 goto pc+2
  41: (b4) w0 = 1
  42: (95) exit
# c 5:0 rwm (tty)
  43: (55) if r2 != 0x2 goto pc+4
  44: (55) if r4 != 0x5 goto pc+3
  45: (55) if r5 != 0x0 goto pc+2
  46: (b4) w0 = 1
  47: (95) exit
# c 5:1 rwm (console)
  48: (55) if r2 != 0x2 goto pc+4
  49: (55) if r4 != 0x5 goto pc+3
  50: (55) if r5 != 0x1 goto pc+2
  51: (b4) w0 = 1
  52: (95) exit
# c 5:2 rwm (ptmx)
  53: (55) if r2 != 0x2 goto pc+4
  54: (55) if r4 != 0x5 goto pc+3
  55: (55) if r5 != 0x2 goto pc+2
  56: (b4) w0 = 1
  57: (95) exit
# c 136:* rwm (pts): no minor compared
  58: (55) if r2 != 0x2 goto pc+3
  59: (55) if r4 != 0x88 goto pc+2
  60: (b4) w0 = 1
  61: (95) exit
# c 10:200 rwm (tun)
  62: (55) if r2 != 0x2 goto pc+4
  63: (55) if r4 != 0xa goto pc+3
  64: (55) if r5 != 0xc8 goto pc+2
  65: (b4) w0 = 1
  66: (95) exit
# no rule matched: deny
  67: (b4) w0 = 0
  68: (95) exit
"""


def test_devices_program_for_device_rules():
    assert _listing(disassemble(devices.program(DEVICE_RULES))) == _listing(DEVICES_GOLDEN)


def test_devices_program_partial_access_and_no_rules():
    assert _listing(disassemble(devices.program(["b 8:* rw"]))) == _listing("""
        0: (61) r2 = *(u32 *)(r1 +0)
        1: (54) w2 &= 65535
        2: (61) r3 = *(u32 *)(r1 +0)
        3: (74) w3 >>= 16
        4: (61) r4 = *(u32 *)(r1 +4)
        5: (61) r5 = *(u32 *)(r1 +8)
        # b 8:* rw: read 2 | write 4
        6: (55) if r2 != 0x1 goto pc+6
        7: (bc) w1 = w3
        8: (54) w1 &= 6
        9: (5d) if r1 != r3 goto pc+3
       10: (55) if r4 != 0x8 goto pc+2
       11: (b4) w0 = 1
       12: (95) exit
       13: (b4) w0 = 0
       14: (95) exit
    """)
    assert _listing(disassemble(devices.program([])))[6:] == ["6: (b4) w0 = 0", "7: (95) exit"]


@pytest.mark.parametrize("rule", ["x 1:3 rwm", "c 1:3 rwq", "c 1 rwm", "c 1:3", "c a:3 rwm", "c 4294967296:1 rwm"])
def test_devices_program_refuses_bad_rules(rule):
    """A rule the assembler cannot encode stops it, rather than dropping out of the filter unnoticed."""
    with pytest.raises(ValueError, match="bad device rule"):
        devices.program(["c 1:3 rwm", rule])


# -- the 127.0.0.1 redirect (bpf/sockaddr.py), services map fd 3, revnat map fd 4 ---------------------

FORWARD_GOLDEN = """
# from the host's network namespace only (its cookie: 0x100000002 here)
   0: (bf) r6 = r1
   1: (85) call bpf_get_netns_cookie#122
   2: (18) r1 = 0x100000002
   4: (5d) if r0 != r1 goto pc+36
# asked = {user_ip4, user_port, protocol, 0} at fp-8
   5: (61) r2 = *(u32 *)(r6 +4)
   6: (63) *(u32 *)(r10 -8) = r2
   7: (61) r2 = *(u32 *)(r6 +24)
   8: (6b) *(u16 *)(r10 -4) = r2
   9: (61) r2 = *(u32 *)(r6 +36)
  10: (73) *(u8 *)(r10 -2) = r2
  11: (72) *(u8 *)(r10 -1) = 0
# target = services[asked], or allow unchanged
  12: (18) r1 = map[fd:3]
  14: (bf) r2 = r10
  15: (07) r2 += -8
  16: (85) call bpf_map_lookup_elem#1
  17: (15) if r0 == 0x0 goto pc+23
  18: (bf) r7 = r0
# rk = {socket cookie, target ip, target port, asked protocol, 0} at fp-24
  19: (bf) r1 = r6
  20: (85) call bpf_get_socket_cookie#46
  21: (7b) *(u64 *)(r10 -24) = r0
  22: (61) r2 = *(u32 *)(r7 +0)
  23: (63) *(u32 *)(r10 -16) = r2
  24: (69) r2 = *(u16 *)(r7 +4)
  25: (6b) *(u16 *)(r10 -12) = r2
  26: (71) r2 = *(u8 *)(r10 -2)
  27: (73) *(u8 *)(r10 -10) = r2
  28: (72) *(u8 *)(r10 -9) = 0
# revnat[rk] = asked (BPF_ANY)
  29: (18) r1 = map[fd:4]
  31: (bf) r2 = r10
  32: (07) r2 += -24
  33: (bf) r3 = r10
  34: (07) r3 += -8
  35: (b7) r4 = 0
  36: (85) call bpf_map_update_elem#2
# connect to the target instead
  37: (61) r2 = *(u32 *)(r7 +0)
  38: (63) *(u32 *)(r6 +4) = r2
  39: (69) r2 = *(u16 *)(r7 +4)
  40: (63) *(u32 *)(r6 +24) = r2
# allow
  41: (b7) r0 = 1
  42: (95) exit
"""

REVERSE_GOLDEN = """
# rk = {socket cookie, user_ip4, user_port, protocol, 0} at fp-16
   0: (bf) r6 = r1
   1: (85) call bpf_get_socket_cookie#46
   2: (7b) *(u64 *)(r10 -16) = r0
   3: (61) r2 = *(u32 *)(r6 +4)
   4: (63) *(u32 *)(r10 -8) = r2
   5: (61) r2 = *(u32 *)(r6 +24)
   6: (6b) *(u16 *)(r10 -4) = r2
   7: (61) r2 = *(u32 *)(r6 +36)
   8: (73) *(u8 *)(r10 -2) = r2
   9: (72) *(u8 *)(r10 -1) = 0
# asked = revnat[rk], or allow unchanged
  10: (18) r1 = map[fd:4]
  12: (bf) r2 = r10
  13: (07) r2 += -16
  14: (85) call bpf_map_lookup_elem#1
  15: (15) if r0 == 0x0 goto pc+4
# the peer is the address asked for
  16: (61) r2 = *(u32 *)(r0 +0)
  17: (63) *(u32 *)(r6 +4) = r2
  18: (69) r2 = *(u16 *)(r0 +4)
  19: (63) *(u32 *)(r6 +24) = r2
# allow
  20: (b7) r0 = 1
  21: (95) exit
"""


def test_sockaddr_forward_program():
    assert _listing(disassemble(sockaddr.forward_program(3, 4, 0x100000002))) == _listing(FORWARD_GOLDEN)


def test_sockaddr_reverse_program():
    assert _listing(disassemble(sockaddr.reverse_program(4))) == _listing(REVERSE_GOLDEN)


def test_sockaddr_netns_cookie_takes_all_64_bits():
    """A netns cookie is a u64: one above 2**63 is loaded whole, neither refused nor cut to 32 bits."""
    assert "2: (18) r1 = 0xfffffffffffffffe" in _listing(disassemble(sockaddr.forward_program(3, 4, 2**64 - 2)))
