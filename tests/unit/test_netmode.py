"""Networking values (runtime/net/values.py): parsed once from the user's flags, read back
from records, and written as the previous lg wrote them, so that upgrading lg while its
containers run works both ways (the new lg reads the old records; a monitor of the old lg,
still running, reads the new ones)."""

from __future__ import annotations

import copy

import pytest

from layergit.errors import UsageError
from layergit.runtime.net.values import NetworkKind, NetworkMode
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
