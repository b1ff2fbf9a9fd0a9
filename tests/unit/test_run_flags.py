"""--add-host, --dns*, --label as Docker reads them (porcelain.runopts)."""

from __future__ import annotations

import pytest

from layergit.errors import UsageError
from layergit.porcelain.runopts import RunOptions, extra_hosts, labels, resolv_conf
from layergit.runtime.net import NetworkKind, initial_hosts


@pytest.mark.parametrize("flag,expected", [
    ("db:10.0.0.5", "db:10.0.0.5"), ("db=10.0.0.5", "db:10.0.0.5"), ("v6:::1", "v6:::1"),
    ("v6=[2001:db8::1]", "v6:2001:db8::1"), ("gw:host-gateway", "gw:host-gateway"),
])
def test_add_host(flag, expected):
    assert extra_hosts(RunOptions(add_hosts=[flag]), NetworkKind.BRIDGE) == [expected]


def test_host_gateway_by_network():
    assert extra_hosts(RunOptions(add_hosts=["gw:host-gateway"]), NetworkKind.HOST) == ["gw:127.0.0.1"]
    with pytest.raises(UsageError, match="host-gateway needs"):
        extra_hosts(RunOptions(add_hosts=["gw:host-gateway"]), NetworkKind.NONE)


@pytest.mark.parametrize("flag", ["db", "db:", ":1.2.3.4", "d b:1.2.3.4", "db\n1.2.3.4 evil:1.2.3.4",
                                  "db:1.2.3.4\n", "db:999.1.1.1"])
def test_add_host_refuses_what_breaks_the_hosts_file(flag):
    with pytest.raises(UsageError):
        extra_hosts(RunOptions(add_hosts=[flag]), NetworkKind.BRIDGE)


def test_hosts_text():
    text = initial_hosts("abc", ["db:10.0.0.5", "gw:host-gateway"], host_network=False)
    assert "10.0.0.5\tdb\n" in text and "gw" not in text and "127.0.1.1\tabc\n" in text  # gw: at attach
    text = initial_hosts("abc", ["db:10.0.0.5"], host_network=True)
    assert "10.0.0.5\tdb\n" in text and "abc" not in text


HOST = ["# from the host", "nameserver 10.1.1.1", "nameserver 10.1.1.2", "search corp.example", "options ndots:5"]


def test_resolv_conf():
    assert resolv_conf(RunOptions(), HOST) == HOST
    out = resolv_conf(RunOptions(dns=["9.9.9.9", "2620:fe::fe"]), HOST)
    assert [line for line in out if line.startswith("nameserver")] == ["nameserver 9.9.9.9", "nameserver 2620:fe::fe"]
    assert "search corp.example" in out and "options ndots:5" in out
    out = resolv_conf(RunOptions(dns_search=["a.example", "b.example"], dns_options=["ndots:2", "rotate"]), HOST)
    assert "search a.example b.example" in out and "options ndots:2 rotate" in out
    assert "search corp.example" not in out and "nameserver 10.1.1.1" in out


@pytest.mark.parametrize("options", [RunOptions(dns=["dns.example"]), RunOptions(dns_search=["a b"]),
                                     RunOptions(dns_options=["x\ny"])])
def test_resolv_conf_refuses(options):
    with pytest.raises(UsageError):
        resolv_conf(options, HOST)


def test_labels(tmp_path):
    f = tmp_path / "labels"
    f.write_text("# comment\n\na=1\nflag\nb=x=y\n")
    assert labels(["a=2", "c"], [str(f)]) == {"a": "2", "flag": "", "b": "x=y", "c": ""}
    with pytest.raises(UsageError, match="needs a name"):
        labels(["=x"])


def test_ulimit():
    import resource

    from layergit.porcelain.runopts import ulimit

    assert ulimit("nofile=1024:2048") == [resource.RLIMIT_NOFILE, 1024, 2048]
    assert ulimit("core=-1") == [resource.RLIMIT_CORE, -1, -1]
    assert ulimit("nproc=10:-1") == [resource.RLIMIT_NPROC, 10, -1]
    for bad in ("nofile", "files=1", "nofile=a", "nofile=9:3", "nofile=-1:5", "nofile=-2"):
        with pytest.raises(UsageError, match="--ulimit"):
            ulimit(bad)


def test_env_file_follows_dockers_rules(tmp_path, monkeypatch):
    from layergit.porcelain.runopts import _env

    monkeypatch.setenv("FROM_HOST", "h")
    monkeypatch.delenv("NOT_SET", raising=False)
    f = tmp_path / "env"
    f.write_text('\ufeffA=1\n  B="quoted value"\n# comment\n\n\tC=x=y\nFROM_HOST\nNOT_SET\nD=\n')
    env = _env(RunOptions(env_files=[str(f)], env=["A=2"]), ["PATH=/bin", "B=image"])
    assert env == ["PATH=/bin", "B=\"quoted value\"", "A=2", "C=x=y", "FROM_HOST=h", "D="]
    f.write_text("BAD KEY=1\n")
    with pytest.raises(UsageError, match="invalid environment variable"):
        _env(RunOptions(env_files=[str(f)]), [])
