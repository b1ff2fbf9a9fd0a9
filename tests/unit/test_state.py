"""Container records: container.json as the previous lg wrote it reads back, and is written the same."""

import json

import pytest

from layergit.root import Root
from layergit.runtime.net import NetworkMode, PublishedPort
from layergit.runtime.spec import Mount, Spec
from layergit.runtime.state import ContainerDir, Record

CID = "c" * 64
# container.json as written before Record.spec held a Spec (asdict of a Record whose spec was Spec.to_dict()).
WRITTEN_BEFORE = """{
  "auto_remove": false,
  "config": {"Cmd": ["sh"]},
  "created": "2026-12-01T17:00:00.000000Z",
  "host_config": {"AutoRemove": false},
  "id": "%(cid)s",
  "image": "alpine:3",
  "image_id": "abababababababababababababababababababab",
  "name": "web",
  "spec": {
    "aliases": ["db"],
    "hostname": "web1",
    "id": "%(cid)s",
    "init": false,
    "mounts": [
      {"kind": "bind", "options": "", "readonly": true, "source": "/host/data", "target": "/data"},
      {"kind": "tmpfs", "options": "size=64m", "readonly": false, "source": "", "target": "/run"}
    ],
    "name": "web",
    "network": "mynet",
    "ports": [{"container_port": 80, "host_ip": "127.0.0.1", "host_port": 8080, "proto": "tcp"}],
    "process": {
      "args": ["/bin/sh", "-c", "echo hi"], "caps": ["CAP_CHOWN"], "cwd": "/srv", "env": ["PATH=/usr/bin"],
      "no_new_privileges": true, "seccomp": "/r/cache/seccomp/x.bpf", "stdin": true, "tty": true, "user": "1000:1000"
    },
    "readonly": false,
    "resources": {"cpus": 0.5, "memory": 67108864, "pids": 100},
    "rootfs_lower": "/r/cache/rootfs/abababababababababababababababababababab",
    "state_dir": "/r/containers/%(cid)s",
    "stop_signal": "SIGTERM"
  }
}
""" % {"cid": CID}


def _cdir(tmp_path) -> ContainerDir:
    cdir = ContainerDir(Root(str(tmp_path)), CID)
    (tmp_path / "containers" / CID).mkdir(parents=True)
    return cdir


def test_a_record_written_by_the_previous_lg_reads_back_as_a_spec(tmp_path):
    cdir = _cdir(tmp_path)
    with open(cdir.file("container.json"), "w") as f:
        f.write(WRITTEN_BEFORE)
    record = cdir.record()
    assert isinstance(record.spec, Spec)
    assert record.spec.network == NetworkMode.parse("mynet")
    assert record.spec.ports == PublishedPort.parse("127.0.0.1:8080:80/tcp")
    assert record.spec.mounts[1] == Mount("tmpfs", "/run", "", False, "size=64m")
    assert record.spec.process.args == ["/bin/sh", "-c", "echo hi"]
    assert record.spec.resources.memory == 1 << 26


def test_a_record_is_written_as_before(tmp_path):
    cdir = _cdir(tmp_path)
    with open(cdir.file("container.json"), "w") as f:
        f.write(WRITTEN_BEFORE)
    cdir.write_json("container.json", cdir.record().to_json())
    with open(cdir.file("container.json")) as f:
        assert json.load(f) == json.loads(WRITTEN_BEFORE)


def test_fields_with_defaults_may_be_absent():
    raw = json.loads(WRITTEN_BEFORE)
    for key in ("aliases", "mounts", "ports", "network", "resources", "init"):
        del raw["spec"][key]
    spec = Record.from_json(raw).spec
    assert (spec.aliases, spec.mounts, spec.ports, spec.network.bridged) == ([], [], [], False)


def test_a_name_of_a_creation_in_flight_is_neither_a_leftover_nor_free(tmp_path):
    """A creation owns its id before it reserves the name and has no directory yet: gc must
    not count the name as a leftover, nor another creation retake it. Once disowned with no
    container made (a creation that failed to clean up), the name is a leftover."""
    from layergit.errors import Conflict
    from layergit.runtime.state import Registry

    reg = Registry(Root(str(tmp_path)))
    reg.own(CID, "web")
    reg.reserve_name("web", CID)
    assert reg.leftovers() == [] and reg.drop_leftovers() == 0
    with pytest.raises(Conflict, match="the container name 'web' is already in use"):
        reg.reserve_name("web", "d" * 64)
    assert reg.by_name("web") == CID
    reg.disown(CID)
    assert reg.leftovers() == [str(tmp_path / "containers" / "by-name" / "web")]
    assert reg.drop_leftovers() == 1 and reg.by_name("web") is None
