"""What the loopback redirect runs: BPF_PROG_TYPE_CGROUP_SOCK_ADDR programs for 127.0.0.1-published ports.

sockredirect.py says why and owns their lifecycle (maps, loading, attaching to the
cgroup2 root); this is what the kernel runs. The forward program, attached at
connect4 and sendmsg4, gives a published destination asked from the host's network
namespace the container's address, and remembers per socket what was asked; the
reverse one, at getpeername4 and recvmsg4, shows the client that address again.
Every hook allows (returns 1): the programs only ever rewrite. In C, with the
stack slots and registers the assembly uses:

    struct address {             /* the services map's key and value, the revnat map's value */
            __be32 ip;
            __be16 port;
            u8 protocol;         /* IPPROTO_TCP or _UDP in a key, 0 in a value */
            u8 zero;
    };
    struct revnat_key {
            u64 socket_cookie;
            struct address container;
    };

    int forward(struct bpf_sock_addr *ctx)                /* r6 */
    {
            struct address asked, *target;                /* fp-8, r7 */
            struct revnat_key rk;                         /* fp-24 */

            if (bpf_get_netns_cookie(ctx) != NETNS_COOKIE)  /* not the host's namespace */
                    return 1;
            asked = (struct address){ctx->user_ip4, (u16)ctx->user_port, (u8)ctx->protocol, 0};
            target = bpf_map_lookup_elem(&services, &asked);
            if (!target)
                    return 1;
            rk.socket_cookie = bpf_get_socket_cookie(ctx);
            rk.container = (struct address){target->ip, target->port, asked.protocol, 0};
            bpf_map_update_elem(&revnat, &rk, &asked, BPF_ANY);
            ctx->user_ip4 = target->ip;
            ctx->user_port = target->port;
            return 1;
    }

    int reverse(struct bpf_sock_addr *ctx)                /* r6 */
    {
            struct revnat_key rk = {bpf_get_socket_cookie(ctx),  /* fp-16 */
                    {ctx->user_ip4, (u16)ctx->user_port, (u8)ctx->protocol, 0}};
            struct address *asked = bpf_map_lookup_elem(&revnat, &rk);

            if (!asked)
                    return 1;
            ctx->user_ip4 = asked->ip;
            ctx->user_port = asked->port;
            return 1;
    }

user_port is a u32 holding the be16 port in its low half, which on a little-endian
machine is its first two bytes: a 16-bit store of it is the port.
"""

from __future__ import annotations

from .asm import (
    DW,
    FP,
    R0,
    R1,
    R2,
    R3,
    R4,
    R6,
    R7,
    B,
    H,
    Insn,
    Label,
    W,
    alu64_imm,
    assemble,
    call,
    exit_insn,
    jmp_imm,
    jmp_reg,
    ld_imm64,
    ld_map_fd,
    ldx_mem,
    mov64_imm,
    mov64_reg,
    st_mem,
    stx_mem,
)

# struct bpf_sock_addr: u32 fields at these offsets
_USER_IP4, _USER_PORT, _PROTOCOL = 4, 24, 36

# every path ends here: the hook allows, the address rewritten or not
_ALLOW: list[Insn | Label] = [Label("allow"), mov64_imm(R0, 1), exit_insn()]


def _key_from_ctx(at: int) -> list[Insn]:
    """Build the struct address {ip, port, protocol, 0} at fp+at from the context (r6): the
    services map's key, and the tail of the revnat map's."""
    return [
        ldx_mem(W, R2, R6, _USER_IP4), stx_mem(W, FP, R2, at),
        ldx_mem(W, R2, R6, _USER_PORT), stx_mem(H, FP, R2, at + 4),
        ldx_mem(W, R2, R6, _PROTOCOL), stx_mem(B, FP, R2, at + 6),
        st_mem(B, FP, at + 7, 0),
    ]


def _rewrite_ctx_from(reg: int) -> list[Insn]:
    """Set the context's address to the struct address that ``reg`` points at."""
    return [
        ldx_mem(W, R2, reg, 0), stx_mem(W, R6, R2, _USER_IP4),
        ldx_mem(H, R2, reg, 4), stx_mem(W, R6, R2, _USER_PORT),
    ]


def forward_program(services_fd: int, revnat_fd: int, netns_cookie: int) -> bytes:
    """connect4/sendmsg4: a published destination asked from the host's namespace becomes
    the container's address; the socket's cookie remembers what was asked."""
    return assemble([
        mov64_reg(R6, R1),
        call("get_netns_cookie"),  # r1 is still the context
        ld_imm64(R1, netns_cookie),
        jmp_reg("jne", R0, R1, "allow"),
        *_key_from_ctx(-8),
        ld_map_fd(R1, services_fd),
        mov64_reg(R2, FP), alu64_imm("add", R2, -8),
        call("map_lookup_elem"),
        jmp_imm("jeq", R0, 0, "allow"),
        mov64_reg(R7, R0),
        mov64_reg(R1, R6), call("get_socket_cookie"),  # rk at fp-24
        stx_mem(DW, FP, R0, -24),
        ldx_mem(W, R2, R7, 0), stx_mem(W, FP, R2, -16),
        ldx_mem(H, R2, R7, 4), stx_mem(H, FP, R2, -12),
        ldx_mem(B, R2, FP, -2), stx_mem(B, FP, R2, -10),
        st_mem(B, FP, -9, 0),
        ld_map_fd(R1, revnat_fd),
        mov64_reg(R2, FP), alu64_imm("add", R2, -24),
        mov64_reg(R3, FP), alu64_imm("add", R3, -8),  # the value: the address asked for
        mov64_imm(R4, 0),  # BPF_ANY
        call("map_update_elem"),
        *_rewrite_ctx_from(R7),
        *_ALLOW,
    ])


def reverse_program(revnat_fd: int) -> bytes:
    """getpeername4/recvmsg4: a redirected socket's peer shows as the address it asked for."""
    return assemble([
        mov64_reg(R6, R1),
        call("get_socket_cookie"),
        stx_mem(DW, FP, R0, -16),
        *_key_from_ctx(-8),
        ld_map_fd(R1, revnat_fd),
        mov64_reg(R2, FP), alu64_imm("add", R2, -16),
        call("map_lookup_elem"),
        jmp_imm("jeq", R0, 0, "allow"),
        *_rewrite_ctx_from(R0),
        *_ALLOW,
    ])
