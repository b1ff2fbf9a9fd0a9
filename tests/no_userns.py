"""Run a command on what looks like a host that refuses unprivileged user namespaces.

Hosts refuse them by a sysctl (kernel.unprivileged_userns_clone, user.max_user_namespaces)
or by a security module (Ubuntu's AppArmor restriction); the tests cannot change either
for one process, so a seccomp filter does what they do to lg: unshare and clone asking
for a new user namespace, and setns into one, fail with EPERM. clone3, whose flags sit
in memory a filter cannot read, fails with ENOSYS, and glibc falls back to clone.

    python no_userns.py COMMAND [ARG...]
    python no_userns.py -m MODULE [ARG...]    # as python -m, in this same interpreter

(The second form runs no second exec of the interpreter, whose path another user may
reach only through the exec that started this one.)
"""

import errno
import os
import runpy
import sys

import pyseccomp as seccomp

CLONE_NEWUSER = 0x10000000


def refuse_user_namespaces() -> None:
    rules = seccomp.SyscallFilter(seccomp.ALLOW)  # sets no_new_privs: no setuid helper gains either
    for call, flags_arg in (("unshare", 0), ("clone", 0), ("setns", 1)):
        rules.add_rule(seccomp.ERRNO(errno.EPERM), call,
                       seccomp.Arg(flags_arg, seccomp.MASKED_EQ, CLONE_NEWUSER, CLONE_NEWUSER))
    rules.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
    rules.load()


if __name__ == "__main__":
    refuse_user_namespaces()
    if sys.argv[1] == "-m":
        sys.argv = sys.argv[2:]
        runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
    else:
        os.execvp(sys.argv[1], sys.argv[1:])
