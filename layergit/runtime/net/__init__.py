"""Container networking: bridges, veths, addresses, published ports, peer names.

The rest of lg calls ``controller`` (attach, detach, release, a network's bridge)
and reads records through ``ipam``; the other modules are the controller's steps:

- ``ipam``: networks and address leases as records on disk (no kernel calls);
- ``link``: bridges and veths, the one module that talks netlink (pyroute2);
- ``portproxy``: the host-side listeners of published ports, and the loopback relay;
- ``firewall``: the nftables rules (outbound NAT, isolation, published ports);
- ``sockredirect``: the connect()-time redirect of 127.0.0.1 ports (bpf/sockaddr.py);
- ``hostsfile``: the /etc/hosts of containers, so peers find each other by name.

Importing this package costs nothing: ``lg run --network none`` needs only
``link.loopback_up``, whose netlink parts load on first use.
"""
