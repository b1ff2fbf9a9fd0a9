"""lg without root: a user namespace mapped with the user's subordinate ids.

lg runs as an ordinary user the way podman does, as the same code in a user
namespace rather than as a second runtime: before a command that needs it, the
process enters (or first creates) one long-lived user and mount namespace per user,
kept by a pause process, in which the user is uid 0 and the subordinate ids of
/etc/subuid and /etc/subgid are 1..N. Owners inside that range are then exact on
disk (container uid 33 is host uid SUBUID+32), and every later lg of the same user
joins the same namespace, so it can reach the containers and the monitor an earlier
one started.

``idmap`` is the pure part (reading the subordinate id files, the maps, what is in
range); ``userns`` enters the namespace; ``netstack`` runs pasta for networks.
"""

from ...errors import LgError


class RootlessError(LgError):
    """lg cannot run without root here: the reason and the fix, in one line."""


class NamespaceRefused(RootlessError):
    """The host refuses this user a user namespace (a sysctl, a security module, a
    seccomp filter above lg): commands that need none still run, as the plain user."""
