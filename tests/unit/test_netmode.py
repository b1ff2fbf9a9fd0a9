"""Networking values (runtime/net/__init__.py): parsed once from the user's flags, read back
from records, and written as the previous lg wrote them, so that upgrading lg while its
containers run works both ways (the new lg reads the old records; a monitor of the old lg,
still running, reads the new ones)."""

from __future__ import annotations

import copy
import json

import pytest

from layergit.errors import UsageError
from layergit.runtime.net import NetworkKind, NetworkMode, PublishedPort, firewall, sockredirect
from layergit.runtime.net.ipam import Network, Networks
from layergit.runtime.spec import Spec

CID = "ddf825d5f5f584852932ed66b88acf4d0849803a37d787058dfcdff587fb327f"

# container.json's "spec" of a container the previous lg created with
# ``lg create --name blog --network web --network-alias www -p 8080:80 -p 127.0.0.1:9000-9001:90-91/udp``
OLD_SPEC = {
    "aliases": ["www"], "hostname": CID[:12], "id": CID, "init": False, "mounts": [], "name": "blog", "network": "web",
    "ports": [{"container_port": 80, "host_ip": "", "host_port": 8080, "proto": "tcp"},
              {"container_port": 90, "host_ip": "127.0.0.1", "host_port": 9000, "proto": "udp"},
              {"container_port": 91, "host_ip": "127.0.0.1", "host_port": 9001, "proto": "udp"}],
    "process": {"args": ["httpd", "-f"], "caps": ["CHOWN", "KILL"], "cwd": "/", "env": [], "no_new_privileges": False,
                "seccomp": "/var/lib/layergit/cache/seccomp/seccomp-x86_64-ad60cbfb.bpf", "stdin": False, "tty": False, "user": ""},
    "readonly": False, "resources": {"cpus": None, "memory": None, "pids": None},
    "rootfs_lower": "/var/lib/layergit/cache/rootfs/fdc412259fa493bb9c8620ff9fb7a4a454cfa419",
    "state_dir": f"/var/lib/layergit/containers/{CID}", "stop_signal": "SIGTERM",
}
# The same container's lease (networks/web/leases.json) once the previous lg's monitor started it;
# network.json in its directory lists the same "ports" as NetworkSettings.
OLD_LEASES = {
    "10.213.9.2": {
        "aliases": ["www"], "id": CID, "name": "blog",
        "ports": [{"ContainerPort": "80/tcp", "HostIp": "0.0.0.0", "HostPort": "8080"},
                  {"ContainerPort": "90/udp", "HostIp": "127.0.0.1", "HostPort": "9000"},
                  {"ContainerPort": "91/udp", "HostIp": "127.0.0.1", "HostPort": "9001"}],
    },
}
WEB = Network("web", "f" * 64, "10.213.9.0/24", "10.213.9.1", "lg-ffffffffffff", "2026-12-01T16:53:06.000000Z")

# -- --network -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, kind, name, bridged, is_host, container",
    [
        ("none", NetworkKind.NONE, "", False, False, ""),
        ("host", NetworkKind.HOST, "", False, True, ""),
        ("bridge", NetworkKind.BRIDGE, "bridge", True, False, ""),
        ("web", NetworkKind.BRIDGE, "web", True, False, ""),
        ("Web_2.b-c", NetworkKind.BRIDGE, "Web_2.b-c", True, False, ""),
        ("NONE", NetworkKind.BRIDGE, "NONE", True, False, ""),  # a network's name, as before
        ("container:blog", NetworkKind.CONTAINER, "blog", False, False, "blog"),
        (f"container:{CID}", NetworkKind.CONTAINER, CID, False, False, CID),
    ],
)
def test_network_mode_parses_what_docker_takes(text, kind, name, bridged, is_host, container):
    mode = NetworkMode.parse(text)
    assert (mode.kind, mode.name) == (kind, name)
    assert (mode.bridged, mode.is_host, mode.container) == (bridged, is_host, container)
    assert mode.to_json() == str(mode) == text
    assert NetworkMode.from_json(mode.to_json()) == mode


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "invalid --network ''"),
        ("a b", "invalid --network 'a b'"),
        ("host:x", "invalid --network 'host:x'"),
        ("-web", "invalid --network '-web'"),
        ("web\n", "invalid --network 'web\\n'"),
        ("w" * 65, "invalid --network 'www"),
        ("container:", "--network container: needs the name or id"),
    ],
)
def test_network_mode_refuses_bad_ones_in_one_line(text, message):
    with pytest.raises(UsageError) as exc:
        NetworkMode.parse(text)
    assert str(exc.value).startswith(message) and "\n" not in str(exc.value)


def test_spec_reads_records_of_the_previous_lg_and_writes_them_unchanged():
    spec = Spec.from_dict(copy.deepcopy(OLD_SPEC))
    assert spec.network == NetworkMode(NetworkKind.BRIDGE, "web")
    assert spec.to_dict() == OLD_SPEC


@pytest.mark.parametrize("recorded", ["none", "host", "bridge", f"container:{CID}"])
def test_every_recorded_mode_round_trips(recorded):
    spec = Spec.from_dict(dict(copy.deepcopy(OLD_SPEC), network=recorded, ports=[]))
    assert spec.to_dict()["network"] == recorded


# -- -p and -P -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, ports",
    [
        ("80", [("", 0, 80, "tcp")]),
        (":80", [("", 0, 80, "tcp")]),
        ("8080:80", [("", 8080, 80, "tcp")]),
        ("127.0.0.1:8080:80", [("127.0.0.1", 8080, 80, "tcp")]),
        ("0.0.0.0:8080:80", [("0.0.0.0", 8080, 80, "tcp")]),
        ("10.0.0.1::80", [("10.0.0.1", 0, 80, "tcp")]),
        ("10.0.0.1:80", [("10.0.0.1", 0, 80, "tcp")]),  # IP:CTR, any host port on IP, as before
        ("53:53/udp", [("", 53, 53, "udp")]),
        ("80/tcp", [("", 0, 80, "tcp")]),
        ("8000-8001:80-81", [("", 8000, 80, "tcp"), ("", 8001, 81, "tcp")]),
        ("127.0.0.1:9000-9001:90-91/udp", [("127.0.0.1", 9000, 90, "udp"), ("127.0.0.1", 9001, 91, "udp")]),
        ("90-91", [("", 0, 90, "tcp"), ("", 0, 91, "tcp")]),
        ("65535:1", [("", 65535, 1, "tcp")]),
    ],
)
def test_publish_parses_dockers_forms(text, ports):
    assert PublishedPort.parse(text) == [PublishedPort(*p) for p in ports]


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "invalid -p ''"),
        ("::80", "invalid -p '::80'"),
        ("a:80", "invalid -p 'a:80'"),
        ("80/sctp", "invalid -p '80/sctp'"),
        ("80/TCP", "invalid -p '80/TCP'"),
        (" 80", "invalid -p ' 80'"),
        ("80\n", "invalid -p '80\\n'"),
        ("1.2.3:80:80", "invalid -p '1.2.3:80:80'"),
        ("300.1.1.1:80:80", "invalid -p '300.1.1.1:80:80'"),
        ("0:80", "invalid port range '0'"),
        ("80:0", "invalid port range '0'"),
        ("70000:80", "invalid port range '70000'"),
        ("80-79", "invalid port range '80-79'"),
        ("8000-8002:80-81", "invalid -p '8000-8002:80-81': the host and container ranges differ in size"),
    ],
)
def test_publish_refuses_bad_ones_in_one_line(text, message):
    with pytest.raises(UsageError) as exc:
        PublishedPort.parse(text)
    assert str(exc.value).startswith(message) and "\n" not in str(exc.value)


@pytest.mark.parametrize("key, port", [("80/tcp", ("", 0, 80, "tcp")), ("53/udp", ("", 0, 53, "udp")), ("8080", ("", 0, 8080, "tcp"))])
def test_publish_all_takes_the_images_exposed_ports(key, port):
    assert PublishedPort.exposed(key) == PublishedPort(*port)


def test_a_published_port_in_docker_terms():
    anywhere, local = PublishedPort("", 8080, 80), PublishedPort("127.0.0.1", 9000, 90, "udp")
    assert (str(anywhere), str(local)) == ("0.0.0.0:8080->80/tcp", "127.0.0.1:9000->90/udp")
    assert (anywhere.key, anywhere.bind_ip, anywhere.any_address, local.any_address) == ("80/tcp", "0.0.0.0", True, False)


def test_spec_ports_are_values_read_from_and_written_as_the_previous_lg_did():
    spec = Spec.from_dict(copy.deepcopy(OLD_SPEC))
    assert spec.ports == PublishedPort.parse("8080:80") + PublishedPort.parse("127.0.0.1:9000-9001:90-91/udp")
    assert spec.to_dict()["ports"] == OLD_SPEC["ports"]


def test_leases_of_the_previous_lg_read_and_ours_are_written_alike(tmp_path):
    """leases.json: the new lg computes its rules from an old monitor's leases, and an old
    monitor (or lg rm of the previous lg) reads the leases the new one writes."""
    nets = Networks(str(tmp_path))
    (tmp_path / "networks" / "web").mkdir(parents=True)
    (tmp_path / "networks" / "web" / "leases.json").write_text(json.dumps(OLD_LEASES))
    [(ip, ports)] = nets.published("web")
    assert ip == "10.213.9.2" and [p.to_docker() for p in ports] == OLD_LEASES[ip]["ports"]
    assert firewall.forwards(ip, ports) == [firewall.Forward("", 8080, "tcp", ip, 80)]
    assert sorted(sockredirect.entries(ip, ports)) == sorted(
        sockredirect._address("127.0.0.1", port, proto) for port, proto in ((8080, 6), (9000, 17), (9001, 17)))
    assert nets.published("web", leaving=CID) == []

    (tmp_path / "networks" / "web" / "leases.json").unlink()
    assert nets.allocate(WEB, CID, "blog", ["www"]) == ip
    nets.publish(WEB, ip, ports)
    assert json.loads((tmp_path / "networks" / "web" / "leases.json").read_text()) == OLD_LEASES
