"""The names a monitor started by an lg older than runtime/net/ imports late.

Such a monitor keeps running the previous lg's code for as long as it parents
containers, and imports these on its first bridged start or container end, from
whatever lg is installed by then. Delete this module (and firewall.py) with the
release after the one that moved networking to runtime/net/.
"""

from .net.link import attach, bridge_exists, detach, ensure_bridge

__all__ = ["attach", "bridge_exists", "detach", "ensure_bridge"]
