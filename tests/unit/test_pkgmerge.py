"""Merging package databases and configs for lg rebase (porcelain/pkgmerge.py, rebase.merge_config)."""

from __future__ import annotations

import pytest

from layergit.porcelain import pkgmerge as P
from layergit.porcelain.rebase import Rule, merge_config


def stanza(name: str, version: str, arch: str = "amd64") -> bytes:
    return f"Package: {name}\nStatus: install ok installed\nArchitecture: {arch}\nVersion: {version}\n".encode()


def status(*records: bytes) -> bytes:
    return b"\n".join(records)


BASE = status(stanza("base-files", "12"), stanza("libc6", "2.36-1"), stanza("zlib1g", "1.2"))


def test_upgrade_on_one_side_install_on_the_other():
    ours = status(stanza("base-files", "12"), stanza("libc6", "2.36-9"), stanza("zlib1g", "1.2"))
    theirs = status(stanza("base-files", "12"), stanza("curl", "7.88"), stanza("libc6", "2.36-1"),
                    stanza("zlib1g", "1.2"))
    assert P.merge_records(BASE, ours, theirs, P.DPKG, "status") == status(
        stanza("base-files", "12"), stanza("curl", "7.88"), stanza("libc6", "2.36-9"), stanza("zlib1g", "1.2"))


def test_removal_and_multiarch_are_per_record():
    ours = status(BASE, stanza("libc6", "2.36-1", "i386"))
    theirs = status(stanza("base-files", "12"), stanza("libc6", "2.36-1"))  # zlib1g removed
    assert P.merge_records(BASE, ours, theirs, P.DPKG, "status") == status(
        stanza("base-files", "12"), stanza("libc6", "2.36-1"), stanza("libc6", "2.36-1", "i386"))


def test_a_package_changed_on_both_sides_is_a_conflict_unless_preferred():
    ours = BASE.replace(b"2.36-1", b"2.36-9")
    theirs = BASE.replace(b"2.36-1", b"2.36-1+app").replace(b"Version: 1.2", b"Version: 1.3")
    with pytest.raises(P.DbConflict, match="libc6:amd64 changed on both sides"):
        P.merge_records(BASE, ours, theirs, P.DPKG, "status")
    merged = P.merge_records(BASE, ours, theirs, P.DPKG, "status", prefer="ours")
    assert b"2.36-9" in merged and b"Version: 1.3" in merged
    assert b"2.36-1+app" in P.merge_records(BASE, ours, theirs, P.DPKG, "status", prefer="theirs")


def test_malformed_databases_are_refused():
    with pytest.raises(P.DbConflict, match="no Package field"):
        P.merge_records(BASE, b"Status: x\n", BASE, P.DPKG, "status")
    with pytest.raises(P.DbConflict, match="recorded twice"):
        P.merge_records(BASE, status(BASE, stanza("libc6", "9")), BASE, P.DPKG, "status")


def test_apk_installed_and_world():
    base = b"P:musl\nV:1.2\n\nP:busybox\nV:1.36\n"
    ours = b"P:musl\nV:1.2.4\n\nP:busybox\nV:1.36\n"
    theirs = base + b"\nP:curl\nV:8\n"
    assert P.merge_records(base, ours, theirs, P.APK, "installed") == ours + b"\nP:curl\nV:8\n"
    assert P.merge_lines(b"alpine-base\nmusl\n", b"alpine-base\nmusl\nca-certificates\n",
                         b"alpine-base\ncurl\n") == b"alpine-base\nca-certificates\ncurl\n"


def test_appended_logs():
    assert P.merge_appended(b"a\n", b"a\nbase\n", b"a\napp\n", "log") == b"a\nbase\napp\n"
    with pytest.raises(P.DbConflict, match="rewrote"):
        P.merge_appended(b"a\n", b"a\n", b"b\n", "log")


def test_config_merge():
    base = {"Env": ["PATH=/bin", "A=1"], "Cmd": ["sh"], "Architecture": "amd64", "Labels": {"x": "1"}}
    ours = {"Env": ["PATH=/bin", "A=1", "BASE=2"], "Cmd": ["sh"], "Architecture": "arm64",
            "Labels": {"x": "1", "base": "y"}}
    theirs = {"Env": ["PATH=/bin:/app", "A=1"], "Cmd": ["app"], "Architecture": "amd64",
              "Labels": {"app": "z"}, "WorkingDir": "/app"}
    assert merge_config(base, ours, theirs) == {
        "Env": ["PATH=/bin:/app", "A=1", "BASE=2"], "Cmd": ["app"], "Architecture": "arm64",
        "Labels": {"base": "y", "app": "z"}, "WorkingDir": "/app"}
    both = merge_config({"Architecture": "amd64", "Cmd": ["a"]}, {"Architecture": "arm64", "Cmd": ["b"]},
                        {"Architecture": "riscv64", "Cmd": ["c"]})
    assert both == {"Architecture": "arm64", "Cmd": ["c"]}


def test_prefer_rules():
    assert Rule.parse("ours") == Rule("ours")
    rule = Rule.parse("/etc/=theirs")
    assert rule == Rule("theirs", b"/etc") and rule.covers(b"/etc/conf") and not rule.covers(b"/etcetera")
    for bad in ("mine", "etc=ours", "/etc=both"):
        with pytest.raises(Exception, match="--prefer"):
            Rule.parse(bad)


def test_accounts_merge_by_name():
    """The base adds a system user, the app another: both stay; one edited on both sides conflicts."""
    base = b"root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1::/:/bin/false\n"
    ours = base + b"systemd-network:x:998:998::/:/bin/false\n"
    theirs = base.replace(b"daemon:x:1:1::/", b"daemon:x:1:1:d:/") + b"www-data:x:33:33::/var/www:/bin/false\n"
    assert P.merge_records(base, ours, theirs, P.ACCOUNTS, "/etc/passwd") == (
        b"root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:d:/:/bin/false\n"
        b"www-data:x:33:33::/var/www:/bin/false\n"  # theirs' new line after the one before it there
        b"systemd-network:x:998:998::/:/bin/false\n")
    with pytest.raises(P.DbConflict, match="root changed on both sides"):
        P.merge_records(base, base.replace(b"/bin/sh", b"/bin/bash"), base.replace(b"/bin/sh", b"/bin/zsh"),
                        P.ACCOUNTS, "/etc/passwd")


def test_debconf_templates_by_name():
    base = b"Name: a/q\nTemplate: a/q\nValue: 1\n\n"
    ours = base + b"Name: b/q\nTemplate: b/q\n"
    theirs = base.replace(b"Value: 1", b"Value: 2")
    assert P.merge_records(base, ours, theirs, P.DEBCONF, "config.dat") == (
        b"Name: a/q\nTemplate: a/q\nValue: 2\n\nName: b/q\nTemplate: b/q\n")


def test_many_records_merge_in_linear_time():
    def record(n: int) -> bytes:
        return f"Package: p{n}\nArchitecture: amd64\nVersion: 1\n".encode()

    base = b"\n".join(record(i) for i in range(0, 20000, 2))
    theirs = b"\n".join(record(i) for i in range(20000))
    assert P.merge_records(base, base, theirs, P.DPKG, "status") == theirs
