"""The one module that makes raw Linux system calls (through ctypes and libc).

Python 3.11's os module has no mount, umount, pivot_root, unshare, setns, capset or bpf;
these thin wrappers raise OSError with errno like the rest of os does. Everything
kernel-facing that os lacks goes through here, so it can be audited in one place.
"""

from __future__ import annotations

import ctypes
import os

from .trampoline import UnsupportedArchitecture


def _load_libc():
    # find_library runs ldconfig in a subprocess (~15 ms), and importing ctypes.util
    # costs subprocess's import: glibc's soname first.
    try:
        return ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:
        from ctypes.util import find_library

        return ctypes.CDLL(find_library("c"), use_errno=True)


_libc = _load_libc()

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MNT_DETACH = 2

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
PR_CAPBSET_READ = 23
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_SET_CHILD_SUBREAPER = 36
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4

# Raw syscall numbers where libc has no wrapper, for the architectures lg runs containers
# on (those runtime/trampoline.py has code for); importing this module never fails.
_SYS = {
    "x86_64": {"pivot_root": 155, "capset": 126, "bpf": 321},
    "aarch64": {"pivot_root": 41, "capset": 91, "bpf": 280},
}.get(os.uname().machine, {})


def _check(result: int, what: str, path: str | None = None) -> int:
    if result == -1:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}", path)
    return result


def _b(value: str | bytes | None) -> bytes | None:
    return value.encode() if isinstance(value, str) else value


def mount(
    source: str | bytes | None,
    target: str | bytes,
    fstype: str | bytes | None,
    flags: int = 0,
    data: str | bytes | None = None,
) -> None:
    ret = _libc.mount(_b(source), _b(target), _b(fstype), ctypes.c_ulong(flags), _b(data))
    _check(ret, "mount", os.fsdecode(target))


def umount(target: str | bytes, flags: int = 0) -> None:
    _check(_libc.umount2(_b(target), flags), "umount", os.fsdecode(target))


def pivot_root(new_root: str, put_old: str) -> None:
    _check(_libc.syscall(_nr("pivot_root"), _b(new_root), _b(put_old)), "pivot_root", new_root)


def unshare(flags: int) -> None:
    _check(_libc.unshare(flags), "unshare")


def setns(fd: int, nstype: int) -> None:
    _check(_libc.setns(fd, nstype), "setns")


def sethostname(name: str) -> None:
    raw = name.encode()
    _check(_libc.sethostname(raw, len(raw)), "sethostname")


AF_INET, SOCK_DGRAM, SOCK_CLOEXEC = 2, 2, 0o2000000


def _nr(name: str) -> int:
    try:
        return _SYS[name]
    except KeyError:
        raise UnsupportedArchitecture(os.uname().machine) from None


def socket_fd(family: int, kind: int) -> int:
    """A bare socket descriptor, for an ioctl: the socket module's import (its enums)
    costs ~1.5 ms of every container start, which only needs the fd."""
    return _check(_libc.socket(family, kind | SOCK_CLOEXEC, 0), "socket")


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    args = (ctypes.c_ulong(arg2), ctypes.c_ulong(arg3), ctypes.c_ulong(arg4), ctypes.c_ulong(arg5))
    return _check(_libc.prctl(option, *args), "prctl")


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32),
    ]


def capset(effective: int, permitted: int, inheritable: int) -> None:
    """Set this thread's capability sets (64-bit masks, version 3 ABI)."""
    header = _CapHeader(0x20080522, 0)
    data = (_CapData * 2)()
    for i, shift in enumerate((0, 32)):
        data[i].effective = (effective >> shift) & 0xFFFFFFFF
        data[i].permitted = (permitted >> shift) & 0xFFFFFFFF
        data[i].inheritable = (inheritable >> shift) & 0xFFFFFFFF
    _check(_libc.syscall(_nr("capset"), ctypes.byref(header), ctypes.byref(data)), "capset")


RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_IN_ROOT = 0x10
_OPENAT2 = 437  # the same number on every architecture


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


def openat2(dirfd: int, path: str | bytes, flags: int, resolve: int, mode: int = 0) -> int:
    """openat2(2): open ``path`` below ``dirfd`` with the given RESOLVE_* restrictions."""
    how = _OpenHow(flags, mode, resolve)
    ret = _libc.syscall(_OPENAT2, dirfd, _b(path), ctypes.byref(how), ctypes.sizeof(how))
    return _check(ret, "openat2", os.fsdecode(path))


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_char_p)]


def seccomp_load(program: bytes) -> None:
    """Install a classic-BPF seccomp filter (as exported by libseccomp) on this thread."""
    prog = _SockFprog(len(program) // 8, program)
    ret = _libc.prctl(PR_SET_SECCOMP, ctypes.c_ulong(SECCOMP_MODE_FILTER), ctypes.byref(prog), 0, 0)
    _check(ret, "seccomp")


BPF_MAP_CREATE = 0
BPF_MAP_UPDATE_ELEM = 2
BPF_MAP_DELETE_ELEM = 3
BPF_MAP_GET_NEXT_KEY = 4
BPF_PROG_LOAD = 5
BPF_PROG_ATTACH = 8
BPF_PROG_DETACH = 9
BPF_PROG_GET_FD_BY_ID = 13
BPF_MAP_GET_FD_BY_ID = 14
BPF_OBJ_GET_INFO_BY_FD = 15
BPF_PROG_QUERY = 16
BPF_PROG_TYPE_CGROUP_DEVICE = 15
BPF_PROG_TYPE_CGROUP_SOCK_ADDR = 18
BPF_CGROUP_DEVICE = 6
BPF_F_ALLOW_MULTI = 2


class _BpfProgLoad(ctypes.Structure):
    """The head of union bpf_attr for BPF_PROG_LOAD; the kernel zero-fills the fields we leave out."""

    _fields_ = [
        ("prog_type", ctypes.c_uint32), ("insn_cnt", ctypes.c_uint32), ("insns", ctypes.c_uint64),
        ("license", ctypes.c_uint64), ("log_level", ctypes.c_uint32), ("log_size", ctypes.c_uint32),
        ("log_buf", ctypes.c_uint64), ("kern_version", ctypes.c_uint32), ("prog_flags", ctypes.c_uint32),
        ("prog_name", ctypes.c_char * 16), ("prog_ifindex", ctypes.c_uint32),
        ("expected_attach_type", ctypes.c_uint32),
    ]


class _BpfProgAttach(ctypes.Structure):
    _fields_ = [
        ("target_fd", ctypes.c_uint32), ("attach_bpf_fd", ctypes.c_uint32),
        ("attach_type", ctypes.c_uint32), ("attach_flags", ctypes.c_uint32),
    ]


class _BpfMapCreate(ctypes.Structure):
    _fields_ = [
        ("map_type", ctypes.c_uint32), ("key_size", ctypes.c_uint32), ("value_size", ctypes.c_uint32),
        ("max_entries", ctypes.c_uint32), ("map_flags", ctypes.c_uint32), ("inner_map_fd", ctypes.c_uint32),
        ("numa_node", ctypes.c_uint32), ("map_name", ctypes.c_char * 16),
    ]


class _BpfMapElem(ctypes.Structure):
    _fields_ = [
        ("map_fd", ctypes.c_uint32), ("pad", ctypes.c_uint32), ("key", ctypes.c_uint64),
        ("value", ctypes.c_uint64), ("flags", ctypes.c_uint64),
    ]


class _BpfGetId(ctypes.Structure):
    _fields_ = [("id", ctypes.c_uint32), ("next_id", ctypes.c_uint32), ("open_flags", ctypes.c_uint32)]


class _BpfInfo(ctypes.Structure):
    _fields_ = [("bpf_fd", ctypes.c_uint32), ("info_len", ctypes.c_uint32), ("info", ctypes.c_uint64)]


class _BpfQuery(ctypes.Structure):
    _fields_ = [
        ("target_fd", ctypes.c_uint32), ("attach_type", ctypes.c_uint32), ("query_flags", ctypes.c_uint32),
        ("attach_flags", ctypes.c_uint32), ("prog_ids", ctypes.c_uint64), ("prog_cnt", ctypes.c_uint32),
    ]


def _bpf(cmd: int, attr: ctypes.Structure, what: str, path: str | None = None) -> int:
    return _check(_libc.syscall(_nr("bpf"), cmd, ctypes.byref(attr), ctypes.sizeof(attr)), what, path)


def bpf_prog_load(prog_type: int, insns: bytes, name: str, expected_attach_type: int = 0) -> int:
    """Load an eBPF program (8-byte instructions); returns its fd, close-on-exec as every bpf fd is.
    A refusal is loaded again with the verifier's log, whose last lines become the error's message."""
    code = ctypes.create_string_buffer(insns, len(insns))
    gpl = ctypes.create_string_buffer(b"GPL")
    attr = _BpfProgLoad(
        prog_type=prog_type, insn_cnt=len(insns) // 8, insns=ctypes.addressof(code),
        license=ctypes.addressof(gpl), prog_name=name.encode(), expected_attach_type=expected_attach_type,
    )
    try:
        return _bpf(BPF_PROG_LOAD, attr, "bpf(BPF_PROG_LOAD)")
    except OSError as exc:
        log = ctypes.create_string_buffer(1 << 16)
        attr.log_level, attr.log_size, attr.log_buf = 1, len(log), ctypes.addressof(log)
        if _libc.syscall(_nr("bpf"), BPF_PROG_LOAD, ctypes.byref(attr), ctypes.sizeof(attr)) >= 0:
            raise
        tail = " | ".join(log.value.decode(errors="replace").strip().splitlines()[-4:])
        raise OSError(exc.errno, f"{exc.strerror}: {tail}") from None  # _check's "bpf(BPF_PROG_LOAD): ..."


def bpf_prog_attach(
    target_fd: int, prog_fd: int, attach_type: int, flags: int, path: str | None = None
) -> None:
    """Attach a loaded program to ``target_fd`` (a cgroup directory); the attachment holds its own
    reference."""
    attr = _BpfProgAttach(target_fd, prog_fd, attach_type, flags)
    _bpf(BPF_PROG_ATTACH, attr, "bpf(BPF_PROG_ATTACH)", path)


def bpf_prog_detach(target_fd: int, prog_fd: int, attach_type: int, path: str | None = None) -> None:
    """Detach one program (by its fd: several may share a BPF_F_ALLOW_MULTI hook)."""
    _bpf(BPF_PROG_DETACH, _BpfProgAttach(target_fd, prog_fd, attach_type, 0), "bpf(BPF_PROG_DETACH)", path)


def bpf_prog_query(target_fd: int, attach_type: int, path: str | None = None) -> list[int]:
    """The ids of the programs attached to ``target_fd`` at ``attach_type`` (the kernel's view)."""
    ids = (ctypes.c_uint32 * 64)()
    attr = _BpfQuery(
        target_fd=target_fd, attach_type=attach_type, prog_ids=ctypes.addressof(ids), prog_cnt=64
    )
    _bpf(BPF_PROG_QUERY, attr, "bpf(BPF_PROG_QUERY)", path)
    return list(ids[:attr.prog_cnt])


def bpf_map_create(
    map_type: int, key_size: int, value_size: int, max_entries: int, name: str, flags: int = 0
) -> int:
    attr = _BpfMapCreate(
        map_type=map_type, key_size=key_size, value_size=value_size, max_entries=max_entries,
        map_flags=flags, map_name=name.encode(),
    )
    return _bpf(BPF_MAP_CREATE, attr, "bpf(BPF_MAP_CREATE)")


def bpf_map_update(map_fd: int, key: bytes, value: bytes, flags: int = 0) -> None:
    k, v = ctypes.create_string_buffer(key, len(key)), ctypes.create_string_buffer(value, len(value))
    attr = _BpfMapElem(map_fd, 0, ctypes.addressof(k), ctypes.addressof(v), flags)
    _bpf(BPF_MAP_UPDATE_ELEM, attr, "bpf(BPF_MAP_UPDATE_ELEM)")


def bpf_map_delete(map_fd: int, key: bytes) -> None:
    k = ctypes.create_string_buffer(key, len(key))
    _bpf(BPF_MAP_DELETE_ELEM, _BpfMapElem(map_fd, 0, ctypes.addressof(k)), "bpf(BPF_MAP_DELETE_ELEM)")


def bpf_map_keys(map_fd: int, key_size: int) -> list[bytes]:
    """Every key of a hash map (GET_NEXT_KEY from none: the first, then each one's successor)."""
    keys: list[bytes] = []
    cur, nxt = ctypes.create_string_buffer(key_size), ctypes.create_string_buffer(key_size)
    first = True
    while True:
        attr = _BpfMapElem(map_fd, 0, 0 if first else ctypes.addressof(cur), ctypes.addressof(nxt))
        if _libc.syscall(_nr("bpf"), BPF_MAP_GET_NEXT_KEY, ctypes.byref(attr), ctypes.sizeof(attr)) < 0:
            if ctypes.get_errno() == 2:  # ENOENT: that was the last
                return keys
            _check(-1, "bpf(BPF_MAP_GET_NEXT_KEY)")
        keys.append(nxt.raw)
        ctypes.memmove(cur, nxt, key_size)
        first = False


def bpf_prog_get_fd_by_id(prog_id: int) -> int:
    return _bpf(BPF_PROG_GET_FD_BY_ID, _BpfGetId(prog_id), "bpf(BPF_PROG_GET_FD_BY_ID)")


def bpf_map_get_fd_by_id(map_id: int) -> int:
    return _bpf(BPF_MAP_GET_FD_BY_ID, _BpfGetId(map_id), "bpf(BPF_MAP_GET_FD_BY_ID)")


def bpf_obj_info(fd: int, size: int = 256, map_ids: int = 0) -> bytes:
    """The raw struct bpf_prog_info or bpf_map_info of ``fd`` (the caller knows its layout).
    With ``map_ids``, a program's info also gets the ids of up to that many maps it uses,
    as u32s appended to the returned bytes."""
    info = ctypes.create_string_buffer(size)
    ids = (ctypes.c_uint32 * max(map_ids, 1))()
    if map_ids:  # struct bpf_prog_info: nr_map_ids at 52, map_ids (a pointer) at 56
        ctypes.memmove(ctypes.addressof(info) + 52, ctypes.byref(ctypes.c_uint32(map_ids)), 4)
        ctypes.memmove(ctypes.addressof(info) + 56, ctypes.byref(ctypes.c_uint64(ctypes.addressof(ids))), 8)
    _bpf(BPF_OBJ_GET_INFO_BY_FD, _BpfInfo(fd, size, ctypes.addressof(info)), "bpf(BPF_OBJ_GET_INFO_BY_FD)")
    return info.raw + bytes(ids)[:4 * map_ids]
