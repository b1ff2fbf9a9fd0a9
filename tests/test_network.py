"""Container networking, from the outside: names, published ports, isolation, teardown.

Every test has its own root (so its own networks, bridges and nftables table) and
the ``lg`` fixture's teardown removes its containers, prunes its networks and stops
its monitor. Traffic goes only to 127.0.0.1, the host's own addresses and the
test's own containers.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.request
import uuid

import pytest

from layergit.runtime import cgroups
from layergit.runtime.net import PublishedPort, sockredirect

pytestmark = pytest.mark.root

PAGE = b"<p>served by a layergit container</p>\n"


@pytest.fixture
def img(lg, busybox_copy):
    with open(os.path.join(busybox_copy, "var", "www", "index.html"), "wb") as f:
        f.write(PAGE)
    lg("commit", busybox_copy, "-t", "net:1")
    return "net:1"


def _free_ports(n: int) -> list[int]:
    """n distinct ports free now: the sockets stay bound until all are, or the kernel
    may hand the same port out twice (it did: -p 41325:80 -p 127.0.0.1:41325:80)."""
    with contextlib.ExitStack() as held:
        socks = [held.enter_context(socket.socket()) for _ in range(n)]
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]


def _free_port() -> int:
    return _free_ports(1)[0]


def _get(url: str, timeout: float = 10.0) -> bytes:
    """GET without any proxy from the environment; retried while the server starts."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + timeout
    while True:
        try:
            with opener.open(url, timeout=2) as resp:
                return resp.read()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _links() -> set[str]:
    with open("/proc/net/dev") as f:
        return {line.split(":")[0].strip() for line in f.readlines()[2:]}


def _nft_rules() -> int:
    out = subprocess.run(["nft", "list", "ruleset"], capture_output=True, text=True).stdout
    return sum(1 for line in out.splitlines() if line.strip() and not line.strip().startswith(("table", "chain", "type", "}", "#")))


def _inspect(lg, ref: str) -> dict:
    return json.loads(lg.out("inspect", ref))[0]


def _httpd(lg, img: str, *args: str) -> str:
    return lg.out("run", "-d", *args, img, "httpd", "-f", "-p", "80", "-h", "/var/www").strip()


def _host_address() -> str:
    """One of the host's own non-loopback IPv4 addresses (not a layergit bridge's)."""
    out = subprocess.run(["ip", "-4", "-o", "addr", "show", "scope", "global"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        fields = line.split()
        if not fields[1].startswith("lg"):
            return fields[3].split("/")[0]
    pytest.skip("the host has no non-loopback IPv4 address to publish on")


def _monitor_pid(root: str) -> int:
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if b"layergit.runtime.monitor" in argv and argv[-2:] == [root.encode(), b""]:
            return int(pid)
    raise AssertionError(f"no monitor runs for {root}")


def _nft_ruleset() -> str:
    return subprocess.run(["nft", "list", "ruleset"], capture_output=True, text=True, check=True).stdout


def _redirects(root: str) -> dict[int, list[int]]:
    """The kernel's view: this root's socket redirect programs attached to the cgroup2 root
    (BPF_PROG_QUERY, then each program's name), by attach type."""
    fd = os.open(cgroups.v2_mount(), os.O_RDONLY | os.O_DIRECTORY)
    try:
        return sockredirect.attached(root, fd)
    finally:
        os.close(fd)


def _established(sport: int | None = None) -> list[tuple[str, str]]:
    """(local, peer) of the host namespace's established TCP sockets, from ss."""
    args = ["ss", "-tnH", "state", "established"] + ([f"( sport = :{sport} )"] if sport else [])
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    return [(f[-2], f[-1]) for f in (line.split() for line in out.splitlines()) if len(f) >= 4]


# busybox httpd runs this for /cgi-bin/peer: the address the connection came from, as
# the container saw it.
PEER_CGI = "#!/bin/sh\necho Content-Type: text/plain\necho\necho \"$REMOTE_ADDR\"\n"


@pytest.fixture
def peer_img(lg, busybox_copy):
    with open(os.path.join(busybox_copy, "var", "www", "index.html"), "wb") as f:
        f.write(PAGE)
    cgi = os.path.join(busybox_copy, "var", "www", "cgi-bin")
    os.makedirs(cgi, exist_ok=True)
    with open(os.path.join(cgi, "peer"), "w") as f:
        f.write(PEER_CGI)
    os.chmod(os.path.join(cgi, "peer"), 0o755)
    lg("commit", busybox_copy, "-t", "peer:1")
    return "peer:1"


def test_two_containers_on_a_user_network_talk_by_name_and_alias(lg, img):
    """wget from one container reaches a busybox httpd in another by its name and alias, also when
    the client started before the server (its hosts file is updated)."""
    net = f"t{uuid.uuid4().hex[:8]}"
    lg("network", "create", net)
    early = lg.out("run", "-d", "--network", net, "--name", "early", img, "sleep", "600").strip()
    _httpd(lg, img, "--network", net, "--name", "web", "--network-alias", "www")
    for name in ("web", "www"):
        out = lg("run", "--rm", "--network", net, img, "wget", "-qO-", f"http://{name}/").stdout
        assert out == PAGE
    assert lg("exec", early, "wget", "-qO-", "http://web/").stdout == PAGE
    settings = _inspect(lg, "web")["NetworkSettings"]
    assert net in settings["Networks"] and settings["Networks"][net]["Aliases"] == ["www"]
    assert settings["IPAddress"].count(".") == 3


def test_default_bridge_does_not_resolve_names(lg, img):
    """As with Docker, containers on the default bridge do not know each other's names."""
    _httpd(lg, img, "--name", "web")
    proc = lg("run", "--rm", img, "wget", "-T", "2", "-qO-", "http://web/", check=False)
    assert proc.returncode != 0


def test_published_port_serves_the_host_on_loopback_and_host_addresses(lg, img):
    """-p HOST:80 answers curl-style requests on 127.0.0.1; lg port and ps show the mapping."""
    port = _free_port()
    cid = _httpd(lg, img, "-p", f"{port}:80")
    assert _get(f"http://127.0.0.1:{port}/") == PAGE
    assert f"80/tcp -> 0.0.0.0:{port}" in lg.out("port", cid)
    assert f"0.0.0.0:{port}->80/tcp" in lg.out("ps")
    ports = _inspect(lg, cid)["NetworkSettings"]["Ports"]
    assert ports["80/tcp"] == [{"HostIp": "0.0.0.0", "HostPort": str(port)}]


def test_published_port_on_host_address_is_kernel_nat_with_the_clients_real_source(lg, peer_img):
    """-p PORT:80 through the host's own non-loopback address is DNATed by the kernel: the
    container sees the client's real address (a proxy would show its gateway), while
    127.0.0.1 still works through the proxy. Other containers reach it through the host
    address, on the same network (hairpin, also the container itself) and from another
    network; a 127.0.0.1-bound port gets no rule and stays unreachable that way."""
    host = _host_address()
    port, local_only = _free_ports(2)
    cid = _httpd(lg, peer_img, "--name", "web", "-p", f"{port}:80", "-p", f"127.0.0.1:{local_only}:80")
    ruleset = _nft_ruleset()
    assert f"dport {port} " in ruleset and f"dport {local_only} " not in ruleset
    assert _get(f"http://{host}:{port}/cgi-bin/peer").decode().strip() in (host, f"[::ffff:{host}]")
    gateway = _inspect(lg, cid)["NetworkSettings"]["Gateway"]
    assert gateway in _get(f"http://127.0.0.1:{port}/cgi-bin/peer").decode()  # the proxy's own address
    assert _get(f"http://127.0.0.1:{local_only}/") == PAGE
    assert lg("exec", cid, "wget", "-qO-", f"http://{host}:{port}/").stdout == PAGE
    assert lg("run", "--rm", peer_img, "wget", "-qO-", f"http://{host}:{port}/").stdout == PAGE
    net = f"h{uuid.uuid4().hex[:8]}"
    lg("network", "create", net)
    assert lg("run", "--rm", "--network", net, peer_img, "wget", "-qO-", f"http://{host}:{port}/").stdout == PAGE
    proc = lg("run", "--rm", peer_img, "wget", "-T", "2", "-qO-", f"http://{host}:{local_only}/", check=False)
    assert proc.returncode != 0


def test_published_port_on_one_host_address_and_its_rules_go_with_the_container(lg, img):
    """-p IP:PORT:80 with a non-loopback IP is DNATed for that address only; lg rm takes
    the rule away, also when the monitor that made it was killed."""
    host = _host_address()
    port = _free_port()
    cid = _httpd(lg, img, "-p", f"{host}:{port}:80")
    assert f"ip daddr {host} tcp dport {port} " in _nft_ruleset()
    assert _get(f"http://{host}:{port}/") == PAGE
    with pytest.raises(OSError):
        _get(f"http://127.0.0.1:{port}/", timeout=0)
    lg("rm", "-f", cid)
    assert f"dport {port} " not in _nft_ruleset()
    cid = _httpd(lg, img, "-p", f"{port}:80")
    assert _get(f"http://{host}:{port}/") == PAGE
    os.kill(_monitor_pid(lg.root), signal.SIGKILL)  # a crashed monitor: lg rm cleans up alone
    lg("rm", "-f", cid)
    assert f"dport {port} " not in _nft_ruleset()
    leases = os.path.join(lg.root, "networks", "bridge", "leases.json")
    assert json.load(open(leases)) == {}


def test_loopback_proxy_relays_large_bodies_intact_and_survives_probes(lg, busybox_copy):
    """The 127.0.0.1 path is the userland proxy: a body much larger than its buffers
    arrives whole and in order, a request whose client half-closes still gets its answer,
    and clients that connect and leave at once (wrk's start-up probe, port checks,
    resets) do not stop it."""
    body = os.urandom(8 << 20)
    with open(os.path.join(busybox_copy, "var", "www", "big"), "wb") as f:
        f.write(body)
    lg("commit", busybox_copy, "-t", "big:1")
    port = _free_port()
    _httpd(lg, "big:1", "-p", f"127.0.0.1:{port}:80")
    assert _get(f"http://127.0.0.1:{port}/big") == body
    with socket.socket() as s:  # a reader slower than the container: the proxy must hold back, not drop
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.settimeout(10)
        s.connect(("127.0.0.1", port))
        s.sendall(b"GET /big HTTP/1.0\r\n\r\n")
        chunks = []
        while chunk := s.recv(1 << 16):
            chunks.append(chunk)
            time.sleep(0.0005)
    assert b"".join(chunks).endswith(body)
    for _ in range(50):
        socket.create_connection(("127.0.0.1", port)).close()
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")  # close with a reset
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET /big HTTP/1.0\r\n\r\n")
        s.shutdown(socket.SHUT_WR)
        answer = b"".join(iter(lambda: s.recv(1 << 16), b""))
    assert answer.endswith(body) and answer.startswith(b"HTTP/1.")


def test_loopback_port_is_one_kernel_connection_straight_to_the_container(lg, peer_img):
    """A host client's connect() to 127.0.0.1:PORT is rewritten by the root's socket redirect:
    the kernel's socket table shows the client connected to the container's address and no
    socket on the proxy's listening port, while getpeername still answers 127.0.0.1:PORT and
    the container sees the gateway as source. lg rm takes the programs away."""
    port = _free_port()
    cid = _httpd(lg, peer_img, "-p", f"127.0.0.1:{port}:80")
    settings = _inspect(lg, cid)["NetworkSettings"]
    assert sorted(_redirects(lg.root)) == sorted(sockredirect.FORWARD + sockredirect.REVERSE)
    assert settings["Gateway"] in _get(f"http://127.0.0.1:{port}/cgi-bin/peer").decode()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        assert s.getpeername() == ("127.0.0.1", port)
        local = "%s:%d" % s.getsockname()
        assert local.startswith(settings["Gateway"] + ":")
        assert (local, f"{settings['IPAddress']}:80") in _established()
        assert _established(port) == []  # nothing accepted on the published port: no proxy in between
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        assert b"".join(iter(lambda: s.recv(65536), b"")).endswith(PAGE)
    with socket.create_connection((settings["IPAddress"], 80), timeout=5) as s:  # asked for the container: left alone
        assert s.getpeername() == (settings["IPAddress"], 80)
    lg("rm", "-f", cid)
    assert _redirects(lg.root) == {}


def test_loopback_port_is_not_redirected_inside_another_namespace(lg, img):
    """A container's own 127.0.0.1:PORT is its own loopback: the redirect acts in the host's
    network namespace only, so the container reaches its own server, not the published port."""
    port = _free_port()
    _httpd(lg, img, "-p", f"127.0.0.1:{port}:80")
    assert _get(f"http://127.0.0.1:{port}/") == PAGE
    script = f"mkdir -p /tmp/own && echo own > /tmp/own/index.html && httpd -p 127.0.0.1:{port} -h /tmp/own && wget -qO- http://127.0.0.1:{port}/"
    assert lg.out("run", "--rm", img, "sh", "-c", script) == "own\n"


def test_redirect_goes_after_a_crash_and_with_network_prune(lg, img):
    """The programs are found in the kernel from the leases alone: after the monitor is
    SIGKILLed, lg rm detaches them; a set a crashed lg left with no lease behind it goes
    with lg network prune."""
    port = _free_port()
    cid = _httpd(lg, img, "-p", f"127.0.0.1:{port}:80")
    assert _get(f"http://127.0.0.1:{port}/") == PAGE
    assert _redirects(lg.root)
    os.kill(_monitor_pid(lg.root), signal.SIGKILL)
    lg("rm", "-f", cid)
    assert _redirects(lg.root) == {}
    sockredirect.sync(lg.root, sockredirect.entries("10.255.255.254", [PublishedPort("127.0.0.1", port, 80)]))
    try:
        assert _redirects(lg.root)
        lg("network", "prune")
        assert _redirects(lg.root) == {}
    finally:
        sockredirect.sync(lg.root, {})


def test_port_bound_to_loopback_is_not_reachable_from_another_namespace(lg, img):
    """A port published on 127.0.0.1 stays on the host's loopback: a container reaching for its
    gateway on that port finds nothing (route_localnet stays off)."""
    port = _free_port()
    _httpd(lg, img, "-p", f"127.0.0.1:{port}:80")
    assert _get(f"http://127.0.0.1:{port}/") == PAGE
    with open("/proc/sys/net/ipv4/conf/all/route_localnet") as f:
        assert f.read().strip() == "0"
    client = lg.out("run", "-d", img, "sleep", "600").strip()
    gateway = _inspect(lg, client)["NetworkSettings"]["Gateway"]
    proc = lg("exec", client, "wget", "-T", "2", "-qO-", f"http://{gateway}:{port}/", check=False)
    assert proc.returncode != 0


UDP_ECHO = """
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 9999))
while True:
    data, peer = s.recvfrom(100)
    s.sendto(data.upper(), peer)
"""


def test_udp_publish(lg, img):
    """-p HOST:CTR/udp relays datagrams both ways, on 127.0.0.1 and on a host address. busybox has no UDP server, so the container runs
    the host's Debian python from read-only volumes (bootstrap.sh installs it)."""
    port, everywhere = _free_ports(2)
    volumes = [a for d in ("/usr", "/lib", "/lib64") for a in ("-v", f"{d}:{d}:ro")]
    lg("run", "-d", "-p", f"127.0.0.1:{port}:9999/udp", "-p", f"{everywhere}:9999/udp", *volumes, img, "/usr/bin/python3", "-c", UDP_ECHO)
    for address in (("127.0.0.1", port), (_host_address(), everywhere)):  # the proxy, then the kernel's NAT
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(0.5)
            deadline = time.monotonic() + 15
            while True:
                s.sendto(b"ping", address)
                try:
                    data, source = s.recvfrom(100)
                    break
                except socket.timeout:
                    assert time.monotonic() < deadline, f"no UDP reply through the published port {address}"
        assert data == b"PING" and source == address  # the reply shows the address asked for
    assert sorted(_redirects(lg.root)) == sorted(sockredirect.FORWARD + sockredirect.REVERSE)


def test_port_in_use_is_a_clear_error_and_leaves_nothing(lg, img):
    """Publishing a port something else holds fails with one line and exit 125; no container,
    lease or veth remains."""
    lg("run", "--rm", img, "true")  # the default network's bridge exists from here on
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        links = _links()
        err = lg.fails("run", "-d", "-p", f"127.0.0.1:{port}:80", img, "sleep", "60", code=125)
        assert "already in use" in err
    assert lg.out("ps", "-aq") == ""
    assert _links() <= links
    leases = os.path.join(lg.root, "networks", "bridge", "leases.json")
    assert not os.path.exists(leases) or json.load(open(leases)) == {}


def test_networks_are_isolated_from_each_other(lg, img):
    """A container on one user network cannot reach a container on another."""
    a, b = (f"a{uuid.uuid4().hex[:7]}", f"b{uuid.uuid4().hex[:7]}")
    lg("network", "create", a)
    lg("network", "create", b)
    web = _httpd(lg, img, "--network", a)
    ip = _inspect(lg, web)["NetworkSettings"]["IPAddress"]
    assert lg("run", "--rm", "--network", a, img, "wget", "-qO-", f"http://{ip}/").stdout == PAGE
    proc = lg("run", "--rm", "--network", b, img, "wget", "-T", "2", "-qO-", f"http://{ip}/", check=False)
    assert proc.returncode != 0


def test_network_none_has_only_loopback_and_host_network_sees_the_host(lg, img):
    own = lg.out("run", "--rm", "--network", "none", img, "cat", "/proc/net/dev")
    assert [line.split(":")[0].strip() for line in own.splitlines()[2:]] == ["lo"]
    host = lg.out("run", "--rm", "--network", "host", img, "cat", "/proc/net/dev")
    assert "eth0" in {line.split(":")[0].strip() for line in host.splitlines()[2:]} & _links()


def test_container_cannot_change_links_or_routes(lg, img):
    """Without CAP_NET_ADMIN a container cannot touch even its own interfaces, let alone the host's."""
    proc = lg("run", "--rm", img, "ip", "link", "set", "eth0", "down", check=False)
    assert proc.returncode != 0
    proc = lg("run", "--rm", img, "ip", "route", "add", "10.99.0.0/24", "dev", "eth0", check=False)
    assert proc.returncode != 0


def test_network_commands(lg, img):
    """create with --subnet/--gateway, ls --json, inspect, rm (refused while in use), prune."""
    net = f"n{uuid.uuid4().hex[:8]}"
    lg("network", "create", "--subnet", "10.213.7.0/24", "--gateway", "10.213.7.254", net)
    rows = json.loads(lg.out("network", "ls", "--json"))
    row = next(r for r in rows if r["name"] == net)
    assert (row["subnet"], row["gateway"]) == ("10.213.7.0/24", "10.213.7.254")
    cid = lg.out("run", "-d", "--network", net, img, "sleep", "600").strip()
    info = json.loads(lg.out("network", "inspect", net))[0]
    assert cid in info["Containers"] and info["Containers"][cid]["IPv4Address"] == "10.213.7.1/24"
    lg.fails("network", "rm", net)
    lg("rm", "-f", cid)
    lg("network", "rm", net)
    assert net not in lg.out("network", "ls")
    lg.fails("network", "create", "--subnet", "10.213.8.0/24", "--gateway", "10.213.9.1", "bad")
    lg.fails("network", "create", "UPPER space")


def test_addresses_are_released_and_never_shared(lg, img):
    """Leases go with their container and two running containers never share an address."""
    net = f"l{uuid.uuid4().hex[:8]}"
    lg("network", "create", "--subnet", "10.214.3.0/29", net)  # 5 usable addresses after the gateway
    ids = [lg.out("run", "-d", "--network", net, img, "sleep", "600").strip() for _ in range(5)]
    ips = {_inspect(lg, c)["NetworkSettings"]["IPAddress"] for c in ids}
    assert len(ips) == 5
    err = lg.fails("run", "-d", "--network", net, img, "sleep", "600")
    assert "no free address" in err
    freed = _inspect(lg, ids[0])["NetworkSettings"]["IPAddress"]
    lg("rm", "-f", ids[0])
    again = lg.out("run", "-d", "--network", net, img, "sleep", "600").strip()
    assert _inspect(lg, again)["NetworkSettings"]["IPAddress"] == freed
    assert len({_inspect(lg, c)["NetworkSettings"]["IPAddress"] for c in ids[1:] + [again]}) == 5


def test_fifty_create_remove_cycles_leave_links_and_rules_as_they_were(lg, img):
    """50 runs on the default bridge with a published port, each removed: afterwards the host has
    the same links (no veth left), the same nftables rules and no socket redirect program attached,
    and once the network is pruned, no bridge."""
    lg("run", "--rm", img, "true")  # the default bridge and this root's rules exist from here on
    links, rules, programs = _links(), _nft_rules(), _redirects(lg.root)
    for _ in range(50):
        cid = lg.out("run", "-d", "-p", f"127.0.0.1:{_free_port()}:80", img, "sleep", "60").strip()
        lg("rm", "-f", cid)
    assert _links() == links
    assert _nft_rules() == rules
    assert _redirects(lg.root) == programs == {}
    leases = json.load(open(os.path.join(lg.root, "networks", "bridge", "leases.json")))
    assert leases == {}
    lg("network", "prune")
    assert not {name for name in _links() - links if name.startswith("lg")}


def test_host_side_of_networks_has_no_ipv6(lg, img):
    """Containers have CAP_NET_RAW: a router advertisement from one must not configure the host (the
    CVE-2020-13401 pattern). The bridge and the host's veth end have IPv6 disabled, so they hold no IPv6
    address and accept no advertisement, on the default network and a user network alike."""
    if not os.path.isdir("/proc/sys/net/ipv6"):
        pytest.fail("this host has no IPv6: the test would prove nothing")
    net = f"t{uuid.uuid4().hex[:8]}"
    lg("network", "create", net)
    for args in ([], ["--network", net]):
        cid = lg.out("run", "-d", *args, img, "sleep", "600").strip()
        veth = "lgv" + cid[:12]
        link = subprocess.run(["ip", "-o", "link", "show", "dev", veth], capture_output=True, text=True, check=True).stdout
        bridge = re.search(r" master (\S+) ", link).group(1)
        for ifname in (bridge, veth):
            with open(f"/proc/sys/net/ipv6/conf/{ifname}/disable_ipv6") as f:
                assert f.read().strip() == "1", ifname
            addrs = subprocess.run(["ip", "-6", "-o", "addr", "show", "dev", ifname], capture_output=True, text=True).stdout
            assert addrs == "", (ifname, addrs)
