"""lg as an ordinary user: entering its user namespace before a command, and ``lg unshare``.

The runtime's ``rootless`` package does the kernel's part; here is what a command
sees: the user's own root is chosen before entering (inside, lg is uid 0 and would
otherwise pick root's), and what the namespace cannot keep is said once, when it is
made.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from ..root import default_root

# Commands that never need the namespace: they touch no root, or a user's files outside it.
OUTSIDE = frozenset({"version", "completion", "login", "logout", None})

_refused: str | None = None  # why the host refused this process a user namespace


@dataclass
class Entered:
    """What entering did: whether lg is rootless now, and the notices for the user."""

    rootless: bool = False
    notices: list[str] = field(default_factory=list)


def enter(command: str | None, root: str | None) -> Entered:
    """Enter the user namespace for ``command`` when lg runs without root.

    Where the host refuses this user a namespace, lg goes on as the plain user, as it
    did before it had one: the store, checkouts and the review commands work, and
    each says what it could not keep (owners, devices); whatever needs a container
    is refused by :func:`require`, with the host's reason.
    """
    global _refused
    if os.geteuid() == 0 or command in OUTSIDE:
        return Entered()
    from ..runtime.rootless import NamespaceRefused, userns
    from ..runtime.rootless.idmap import inside

    if inside():  # lg unshare lg ..., or the monitor: already there
        return Entered(rootless=True)
    # The user's root, chosen while lg still is the user; children (the monitor, lg unshare) inherit it.
    os.environ["LG_ROOT"] = os.path.abspath(root) if root else default_root()
    try:
        namespace = userns.enter()
    except NamespaceRefused as exc:
        _refused = str(exc)
        return Entered()
    entered = Entered(rootless=True)
    if namespace.created and namespace.single:
        entered.notices.append(
            "no subordinate ids for this user in /etc/subuid or /etc/subgid: running with a single-id map,"
            " so files and processes of any other owner than root cannot be kept"
            f" (an administrator adds a range with: {userns.HINT})")
    return entered


def require(what: str) -> None:
    """Refuse ``what`` (a container, a shell in the namespace) in one line when lg runs
    without root and outside a user namespace: the host refused it one (see :func:`enter`)."""
    if _refused is not None and os.geteuid() != 0:
        from ..runtime.rootless import NamespaceRefused

        raise NamespaceRefused(f"{what} without root needs a user namespace: {_refused}")


def unshare(argv: list[str]) -> None:
    """Replace lg with ``argv`` (the user's shell by default) inside the namespace, as
    ``podman unshare`` does; the caller has entered it already."""
    require("lg unshare")
    command = argv or [os.environ.get("SHELL") or "/bin/sh"]
    try:
        os.execvp(command[0], command)
    except OSError as exc:
        from ..errors import ExitCode, LgError

        error = LgError(f"cannot run {command[0]}: {exc.strerror}")
        missing = isinstance(exc, FileNotFoundError)
        error.exit_code = ExitCode.COMMAND_NOT_FOUND if missing else ExitCode.CANNOT_EXECUTE
        raise error from None
