"""Subnets a network may take (runtime/net/ipam.py): the pure checks, with the host's
routes and subnets passed in as link.py would read them."""

from __future__ import annotations

import ipaddress

import pytest

from layergit.errors import Conflict, UsageError
from layergit.runtime.net.ipam import Networks, check_subnet


@pytest.mark.parametrize("subnet", ["10.213.7.0/24", "172.16.0.0/12", "192.168.1.0/30", "100.64.0.0/16",
                                    "126.255.255.0/24", "128.0.0.0/24", "169.253.0.0/16", "223.255.255.0/24"])
def test_ordinary_subnets_pass(subnet):
    assert check_subnet(subnet) == ipaddress.ip_network(subnet)


@pytest.mark.parametrize("subnet, message", [
    ("127.0.0.0/24", "overlaps 127.0.0.0/8: loopback"),
    ("127.255.255.252/30", "loopback"),
    ("169.254.0.0/16", "link-local"),
    ("224.0.0.0/4", "multicast"),
    ("239.255.255.0/24", "multicast"),
    ("240.0.0.0/4", "reserved"),
    ("255.255.255.252/30", "broadcast"),
    ("0.0.0.0/8", "this-network"),
    ("0.0.0.0/0", "this-network"),
    ("64.0.0.0/2", "loopback"),  # covers 127/8
    ("10.0.0.1/24", "host bits set"),
    ("10.0.0.0/31", "/30 or larger"),
    ("fd00::/64", "IPv4"),
    ("bridge", "invalid --subnet"),
])
def test_bad_subnets_are_usage_errors(subnet, message):
    with pytest.raises(UsageError) as caught:
        check_subnet(subnet)
    assert message in str(caught.value) and "\n" not in str(caught.value)


HOST = [ipaddress.ip_network(n) for n in ("192.0.2.0/24", "10.213.50.7/32")]


def test_plan_refuses_the_hosts_subnets_and_other_networks(tmp_path):
    nets = Networks(str(tmp_path))
    with pytest.raises(Conflict, match=r"overlaps 10\.213\.50\.7/32, in use on this host"):
        nets.plan("n1", HOST, "10.213.50.0/24")
    first = nets.plan("first", HOST, "10.213.51.0/24")
    nets.add(first)
    with pytest.raises(Conflict, match="overlaps 10.213.51.0/24 of network first"):
        nets.plan("n2", HOST, "10.213.51.128/25")
    with pytest.raises(UsageError, match="loopback"):
        nets.plan("n3", HOST, "127.0.0.0/24")


def test_a_picked_subnet_avoids_the_hosts(tmp_path):
    picked = Networks(str(tmp_path)).plan("n1", [ipaddress.ip_network("10.89.0.0/23")])
    assert picked.subnet == "10.89.2.0/24" and picked.gateway == "10.89.2.1"


@pytest.mark.parametrize("gateway", ["abc", "::1", "10.213.52.0", "10.213.52.255", "10.213.53.1"])
def test_a_gateway_must_be_a_usable_address_of_the_subnet(tmp_path, gateway):
    with pytest.raises(UsageError, match="gateway"):
        Networks(str(tmp_path)).plan("n1", HOST, "10.213.52.0/24", gateway)
