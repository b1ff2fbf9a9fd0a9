"""lg network create --subnet refuses what a bridge must never hold.

A bridge on 127.0.0.0/24 would shadow the host's loopback for every container on it
(and for the host), one on 169.254.0.0/16 would answer for cloud metadata, multicast
and 240/4 addresses are not addresses a host may have, and a subnet of one of the
host's own addresses takes that address away from the host. Each is one line on
stderr, exit 2, and leaves no network behind.
"""

from __future__ import annotations

import json
import subprocess

import pytest

pytestmark = pytest.mark.root

RESERVED = [
    ("127.0.0.0/24", "127.0.0.0/8: loopback"),
    ("127.200.0.0/16", "127.0.0.0/8: loopback"),
    ("169.254.169.0/24", "169.254.0.0/16: link-local"),  # cloud metadata lives at .254
    ("224.0.0.0/24", "224.0.0.0/4: multicast"),
    ("239.255.0.0/16", "224.0.0.0/4: multicast"),
    ("240.0.0.0/24", "240.0.0.0/4"),
    ("255.255.255.252/30", "240.0.0.0/4: reserved addresses and broadcast"),
    ("0.0.0.0/24", "0.0.0.0/8"),
    ("0.0.0.0/0", "0.0.0.0/8"),  # everything at once
    ("126.0.0.0/7", "127.0.0.0/8"),  # a wide subnet that only includes loopback
]


def _networks(lg) -> list:
    return json.loads(lg.out("network", "ls", "--json"))


@pytest.mark.parametrize("subnet, named", RESERVED, ids=[s for s, _ in RESERVED])
def test_reserved_subnets_are_refused(lg, subnet, named):
    err = lg.fails("network", "create", "--subnet", subnet, "n1", code=2)
    assert named in err and "--subnet" in err, err
    assert _networks(lg) == []


def test_a_subnet_of_the_hosts_own_address_is_refused(lg):
    """An address the host has (here a /32 on lo, which /proc/net/route never lists) in a
    network namespace of the test's own, so that the host is left as it was."""
    script = 'ip link set lo up && ip addr add 10.213.50.7/32 dev lo && exec "$@"'
    argv = ["unshare", "--net", "sh", "-c", script, "sh", lg.python, "-m", "cli", "network", "create"]
    proc = subprocess.run([*argv, "--subnet", "10.213.50.0/24", "n1"], env=lg.env(), capture_output=True, timeout=60)
    err = proc.stderr.decode()
    assert proc.returncode == 1 and "overlaps 10.213.50.7/32, in use on this host" in err, (proc.returncode, err)
    assert len(err.strip().splitlines()) == 1
    assert _networks(lg) == []


def test_a_subnet_of_another_network_is_refused(lg):
    lg("network", "create", "--subnet", "10.213.51.0/24", "first")
    err = lg.fails("network", "create", "--subnet", "10.213.51.128/25", "second", code=1)
    assert "overlaps 10.213.51.0/24 of network first" in err, err
    assert [n["name"] for n in _networks(lg)] == ["first"]
    lg("network", "rm", "first")


@pytest.mark.parametrize("gateway", ["abc", "10.213.52.300", "::1", "10.213.52.0"])
def test_a_gateway_that_is_no_usable_address_is_refused(lg, gateway):
    err = lg.fails("network", "create", "--subnet", "10.213.52.0/24", "--gateway", gateway, "n1", code=2)
    assert "gateway" in err
    assert _networks(lg) == []
