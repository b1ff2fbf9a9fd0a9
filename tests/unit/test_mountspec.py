"""Docker's -v, --mount and --tmpfs grammars (porcelain/mountspec.py): values or one UsageError."""

from __future__ import annotations

import pytest

from layergit.errors import UsageError
from layergit.porcelain.mountspec import (
    MountRequest,
    check_targets,
    check_volume_name,
    parse_mount,
    parse_tmpfs,
    parse_volume,
)


@pytest.mark.parametrize("text, want", [
    ("data:/var/lib/db", MountRequest("volume", "/var/lib/db", "data")),
    ("data:/var/lib/db:ro", MountRequest("volume", "/var/lib/db", "data", readonly=True)),
    ("data:/x:nocopy", MountRequest("volume", "/x", "data", nocopy=True)),
    ("data:/x:rw,z", MountRequest("volume", "/x", "data")),
    ("/srv/www:/usr/share/html:ro", MountRequest("bind", "/usr/share/html", "/srv/www", readonly=True)),
    ("/srv//www/:/a/./b/", MountRequest("bind", "/a/b", "/srv/www")),
    ("/cache", MountRequest("volume", "/cache")),
])
def test_dash_v(text, want):
    assert parse_volume(text) == want


@pytest.mark.parametrize("text", [
    "./data:/x",  # a relative path is neither a name nor a host path
    "a/b:/x",
    "x:/data",  # one character
    "data:relative",
    "data:/",
    "data:/x:ro:extra",
    "data:/x:shared",  # propagation into the host's tree
    "/host:/x:nocopy",
    ":/x",
    "-bad:/x",
])
def test_dash_v_refused(text):
    with pytest.raises(UsageError) as exc:
        parse_volume(text)
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize("text, want", [
    ("type=volume,source=db,target=/var/lib/db", MountRequest("volume", "/var/lib/db", "db")),
    ("src=db,dst=/d,readonly", MountRequest("volume", "/d", "db", readonly=True)),
    ("target=/d", MountRequest("volume", "/d")),
    ("type=volume,src=db,dst=/d,volume-nocopy=true,volume-label=a=b",
     MountRequest("volume", "/d", "db", nocopy=True, labels={"a": "b"})),
    ("type=bind,source=/etc,destination=/host-etc,ro=1", MountRequest("bind", "/host-etc", "/etc", readonly=True)),
    ("type=tmpfs,dst=/t,tmpfs-size=1m,tmpfs-mode=1770", MountRequest("tmpfs", "/t", tmpfs_options="size=1048576,mode=1770")),
    ('"type=bind","src=/a,b",dst=/x', MountRequest("bind", "/x", "/a,b")),
    ("type=bind,src=/a,dst=/b,bind-propagation=rprivate", MountRequest("bind", "/b", "/a")),
])
def test_dash_mount(text, want):
    assert parse_mount(text) == want


@pytest.mark.parametrize("text", [
    "type=volume,source=db",  # no target
    "type=nfs,dst=/x",
    "type=bind,src=rel,dst=/x",
    "type=bind,src=/a,dst=/x,volume-nocopy",
    "type=tmpfs,src=x,dst=/t",
    "type=tmpfs,dst=/t,tmpfs-mode=999",
    "type=volume,src=db,dst=/x,tmpfs-size=1m",
    "type=volume,src=db,dst=/x,readonly=maybe",
    "type=volume,src=../etc,dst=/x",
    "type=volume,src=db,dst=/x,volume-driver=nfs",
    "type=bind,src=/a,dst=/x,bind-propagation=shared",
    "type=volume,src=db,dst=/x,color=red",
])
def test_dash_mount_refused(text):
    with pytest.raises(UsageError) as exc:
        parse_mount(text)
    assert "\n" not in str(exc.value)


def test_tmpfs_and_duplicate_targets():
    assert parse_tmpfs("/run:size=1m") == MountRequest("tmpfs", "/run", tmpfs_options="size=1m")
    with pytest.raises(UsageError):
        parse_tmpfs("run")
    with pytest.raises(UsageError, match="duplicate mount point: /d"):
        check_targets([parse_volume("a1:/d"), parse_mount("type=tmpfs,dst=/d/")])


@pytest.mark.parametrize("name", ["db", "my-data_1.2", "A" * 255])
def test_volume_names(name):
    assert check_volume_name(name) == name


@pytest.mark.parametrize("name", ["", "a", "/etc", "../x", ".hidden", "a/b", "a b", "a\nb", "A" * 256, "-x", "é1"])
def test_volume_names_refused(name):
    with pytest.raises(UsageError) as exc:
        check_volume_name(name)
    assert "\n" not in str(exc.value)
