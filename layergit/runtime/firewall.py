"""The nftables rules layergit networks need: outbound NAT and isolation.

One table per layergit root, ``ip layergit_<hash of the root>``, replaced atomically (``nft -f``) whenever the set of
networks changes: traffic leaving a network's subnet for anywhere but its own bridge
is masqueraded (so ``apt-get update`` works from a container where the host reaches
a mirror), and traffic from one layergit bridge to another is dropped (containers on
different networks cannot reach each other). Published ports need no rules: the
monitor's userland proxy serves them, so a port bound to 127.0.0.1 stays on the
host's loopback and route_localnet stays off. nftables has no maintained netlink
binding we could use instead of its CLI (pyroute2's nftables support is partial).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess

from ..errors import LgError
from .netconfig import Network

def table_name(root: str) -> str:
    return "layergit_" + hashlib.sha256(root.encode()).hexdigest()[:10]


def ruleset(table: str, networks: list[Network]) -> str:
    nat = "".join(f'        ip saddr {n.subnet} oifname != "{n.bridge}" masquerade\n' for n in networks)
    isolate = "".join(f'        iifname "{n.bridge}" oifname "lg*" oifname != "{n.bridge}" drop\n' for n in networks)
    return (
        f"table ip {table} {{}}\n"
        f"delete table ip {table}\n"
        f"table ip {table} {{\n"
        "    chain postrouting {\n"
        "        type nat hook postrouting priority srcnat; policy accept;\n"
        f"{nat}"
        "    }\n"
        "    chain forward {\n"
        "        type filter hook forward priority filter; policy accept;\n"
        f"{isolate}"
        "    }\n"
        "}\n"
    )


def apply(root: str, networks: list[Network]) -> None:
    """Install the rules for a root's ``networks`` (its table goes when there are none)."""
    nft = shutil.which("nft")
    if nft is None:
        raise LgError("nft (Debian package nftables) is needed for container networks; bootstrap.sh installs it")
    table = table_name(root)
    text = ruleset(table, networks) if networks else f"table ip {table} {{}}\ndelete table ip {table}\n"
    proc = subprocess.run([nft, "-f", "-"], input=text, capture_output=True, text=True)
    if proc.returncode != 0:
        raise LgError(f"nft failed: {proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else proc.returncode}")
