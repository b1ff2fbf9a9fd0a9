"""The nftables rules layergit networks need: outbound NAT, isolation, published ports.

One table per layergit root, ``ip layergit_<hash of the root>``, replaced atomically
(``nft -f``) whenever the set of networks or of published ports changes, and derived
every time from the records on disk (networks whose bridge exists, and the ports each
address lease publishes), so whoever applies it last leaves the whole truth, and a
crashed lg's rules go with the next ``sync`` after its leases are released:

- traffic leaving a network's subnet for anywhere but its own bridge is masqueraded
  (so ``apt-get update`` works from a container where the host reaches a mirror);
- traffic from one layergit bridge to another is dropped (containers on different
  networks cannot reach each other), unless it is a published port's DNAT;
- published ports are DNATed by the kernel when they arrive for one of the host's
  own non-loopback addresses, from another namespace (prerouting) or from the host
  itself (output). That is where the throughput is: a userland relay costs a third
  of it. Loopback stays with the monitor's proxy (portproxy.py), as Docker does:
  DNAT of 127.0.0.0/8 would need route_localnet, which would let other namespaces
  reach 127.0.0.1-bound ports, so 127.0.0.0/8 destinations never match here and a
  port bound to 127.0.0.1 gets no rule at all;
- a container reaching a published port of its own network through a host address
  (hairpin) is masqueraded, or the answer would come straight from the peer and
  never be un-NATed;
- 127.0.0.1 ports are redirected at connect() from the host's own namespace
  instead (sockredirect.py), from the same leases under the same lock, so the
  redirect comes and goes with the rules.

nftables has no maintained netlink binding we could use instead of its CLI
(pyroute2's nftables support is partial).
"""

from __future__ import annotations

import hashlib
import ipaddress
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

from ...errors import LgError
from ..rootless import netstack
from . import PublishedPort, sockredirect
from .ipam import Network, Networks


@dataclass(frozen=True)
class Forward:
    """One published port the kernel serves: HOST_IP:HOST_PORT (any local address if
    ``host_ip`` is empty) -> TARGET_IP:TARGET_PORT."""

    host_ip: str
    host_port: int
    proto: str
    target_ip: str
    target_port: int


def table_name(root: str) -> str:
    return "layergit_" + hashlib.sha256(root.encode()).hexdigest()[:10]


def forwards(target_ip: str, ports: list[PublishedPort]) -> list[Forward]:
    """The kernel's share of a lease's published ports: all but loopback-bound ones,
    which only the proxy serves, and non-IPv4 ones."""
    out = []
    for p in ports:
        host_ip = "" if p.any_address else p.host_ip
        if host_ip:
            try:
                addr = ipaddress.ip_address(host_ip)
            except ValueError:
                continue
            if addr.version != 4 or addr.is_loopback:
                continue
        out.append(Forward(host_ip, p.host_port, p.proto, target_ip, p.container_port))
    return out


def ruleset(table: str, networks: list[Network], published: Sequence[Forward] = ()) -> str:
    nat = "".join(
        f'        ip saddr {n.subnet} oifname != "{n.bridge}" masquerade\n'
        f"        ct status dnat ip saddr {n.subnet} ip daddr {n.subnet} masquerade\n"
        for n in networks
    )
    isolate = "".join(
        f'        iifname "{n.bridge}" oifname "lg*" oifname != "{n.bridge}" drop\n' for n in networks
    )
    dnat = "".join(f"        {f'ip daddr {f.host_ip} ' if f.host_ip else ''}{f.proto} dport {f.host_port} "
                   f"dnat to {f.target_ip}:{f.target_port}\n" for f in published)
    local = "ip daddr != 127.0.0.0/8 fib daddr type local jump published"
    return (
        f"table ip {table} {{}}\n"
        f"delete table ip {table}\n"
        f"table ip {table} {{\n"
        "    chain published {\n"
        f"{dnat}"
        "    }\n"
        "    chain prerouting {\n"
        "        type nat hook prerouting priority dstnat; policy accept;\n"
        f"        {local}\n"
        "    }\n"
        "    chain output {\n"
        # -100 is dstnat: nft 1.0.6 takes the name only in prerouting
        "        type nat hook output priority -100; policy accept;\n"
        f"        {local}\n"
        "    }\n"
        "    chain postrouting {\n"
        "        type nat hook postrouting priority srcnat; policy accept;\n"
        f"{nat}"
        "    }\n"
        "    chain forward {\n"
        "        type filter hook forward priority filter; policy accept;\n"
        "        ct status dnat accept\n"
        f"{isolate}"
        "    }\n"
        "}\n"
    )


def apply(root: str, networks: list[Network], published: Sequence[Forward] = ()) -> None:
    """Install the rules for a root's ``networks`` (its table goes when there are none)."""
    nft = shutil.which("nft")
    if nft is None:
        raise LgError(
            "nft (Debian package nftables) is needed for container networks; bootstrap.sh installs it"
        )
    table = table_name(root)
    if networks:
        text = ruleset(table, networks, published)
    else:
        text = f"table ip {table} {{}}\ndelete table ip {table}\n"
    netstack.join()  # lg without root: its tables are the user's network namespace's
    proc = subprocess.run([nft, "-f", "-"], input=text, capture_output=True, text=True)
    if proc.returncode != 0:  # nft's last lines point at the culprit with carets: quote its error line
        errors = [line for line in proc.stderr.splitlines() if "Error:" in line]
        errors = errors or proc.stderr.strip().splitlines()
        raise LgError(f"nft failed: {errors[0].strip() if errors else proc.returncode}")


def sync(root: str, without: str | None = None, leaving: str | None = None, then=None):
    """Make a root's table match its records: every network whose bridge exists (but
    ``without``, one being torn down) and the ports its leases publish (but those of
    container ``leaving``). ``then`` (dropping that container's leases) runs under the
    same lock once the rules have changed, so whoever sees a lease gone (``lg rm``
    while the monitor releases it) also sees its rules gone; returns what it returns."""
    from .link import bridge_exists

    nets = Networks(root)
    with nets.lock():
        live = [n for n in nets.all() if n.name != without and bridge_exists(n.bridge)]
        held = [lease for n in live for lease in nets.published(n.name, leaving)]
        apply(root, live, [f for ip, ports in held for f in forwards(ip, ports)])
        redirects = {k: v for ip, ports in held for k, v in sockredirect.entries(ip, ports).items()}
        sockredirect.sync(root, redirects)
        return then() if then is not None else None
