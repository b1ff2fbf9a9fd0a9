"""The pure parts of remotes: which grammar a push/pull speaks, URLs as lg hands them to
git, hosts' limits, remote-tracking names and their revisions."""

from __future__ import annotations

import os

import pytest

from layergit.errors import UsageError
from layergit.porcelain.remotes import check_remote_name, could_name_remote, is_ancestor, is_git_operand
from layergit.store import names
from layergit.store.revisions import resolve
from layergit.transport import urls

from .test_revisions import FakeStore, oid


@pytest.mark.parametrize("operand, git", [
    ("origin", True),  # a configured remote
    ("backup", True),
    ("/srv/images.git", True),
    ("./images.git", True),
    ("../images.git", True),
    (".", True),
    ("file:///srv/images.git", True),
    ("ssh://host/srv/images.git", True),
    ("git://127.0.0.1:9418/images.git", True),
    ("https://example.org/team/images.git", True),
    ("debian", False),  # an image on a registry: Docker's grammar
    ("debian:bookworm", False),
    ("localhost:5000/app:1", False),
    ("host:path.git", False),  # scp-style reads like app:1: lg remote add only
    ("originals", False),
    ("images.git", False),
])
def test_which_grammar_an_operand_speaks(operand, git):
    assert is_git_operand(operand, {"origin", "backup"}) is git


def test_a_remote_named_like_an_image_is_git():
    assert is_git_operand("debian", {"debian"})


@pytest.mark.parametrize("url, scp, want", [
    ("/srv/x.git", False, "/srv/x.git"),
    ("./x.git", False, os.path.abspath("x.git")),
    ("file:///srv/x.git", False, "file:///srv/x.git"),
    ("HTTPS://example.org/x.git", False, "HTTPS://example.org/x.git"),
    ("git@example.org:team/x.git", True, "git@example.org:team/x.git"),
    ("example.org:x.git", True, "example.org:x.git"),
])
def test_urls_accepted(url, scp, want):
    assert urls.normalise(url, scp=scp) == want


@pytest.mark.parametrize("url, scp, why", [
    ("git@example.org:team/x.git", False, "give a path"),
    ("ext::sh -c touch% /tmp/x", True, "helpers"),
    ("fd::17", True, "helpers"),
    ("--upload-pack=touch /tmp/x", True, "option"),
    ("ftp://example.org/x.git", True, "unsupported"),
    ("/srv/x\n.git", False, "control"),
    ("", True, "1 to"),
    ("x.git", True, "give a path"),
])
def test_urls_refused(url, scp, why):
    with pytest.raises(UsageError, match=why):
        urls.normalise(url, scp=scp)


@pytest.mark.parametrize("url, host", [
    ("https://github.com/a/b.git", "github.com"),
    ("ssh://git@GitHub.com:22/a/b.git", "github.com"),
    ("git@github.com:a/b.git", "github.com"),
    ("https://user@gitlab.com/a/b.git", "gitlab.com"),
    ("file:///srv/x.git", ""),
    ("/srv/x.git", ""),
    ("http://[::1]:8787/", "::1"),
])
def test_host_of(url, host):
    assert urls.host_of(url) == host


def test_limits_by_host():
    assert urls.limits_for("git@github.com:a/b.git").max_file == 100_000_000
    assert urls.limits_for("https://gitlab.com/a.git").max_push == 5_000_000_000
    assert urls.limits_for("https://notgithub.com/a.git").max_file == 0
    assert urls.limits_for("/srv/x.git").max_push == 0


@pytest.mark.parametrize("name", ["origin", "ci-box", "a.b", "x1"])
def test_remote_names_accepted(name):
    assert check_remote_name(name) == name


@pytest.mark.parametrize("name", ["Origin", "a/b", "-x", "a..b", "", "x" * 65, "o\n"])
def test_remote_names_refused(name):
    with pytest.raises(UsageError):
        check_remote_name(name)


@pytest.mark.parametrize("text", ["app:1", "localhost:5000/team/app:v1.0", "a/b:x..y"])
def test_tracking_refs_round_trip(text):
    image = names.parse(text)
    ref = names.tracking_ref("origin", image)
    assert ref.startswith("refs/remotes/origin/")
    assert names.from_tracking_ref(ref) == ("origin", image)


def test_other_refs_are_not_tracking():
    assert names.from_tracking_ref("refs/heads/app/1") is None
    assert names.from_tracking_ref("refs/remotes/origin/HEAD") is None
    assert names.from_tracking_ref("refs/remotes//app/1") is None


def test_remote_tracking_revisions_and_the_local_image_wins():
    store = FakeStore()
    store.refs["refs/remotes/origin/app/1"] = oid(3)
    assert resolve(store, "origin/app:1") == oid(3)
    assert resolve(store, "origin/app:1~1") == oid(2)
    store.refs["refs/heads/origin/app/1"] = oid(1)  # a local image of that very name
    assert resolve(store, "origin/app:1") == oid(1)


def test_ancestry():
    store = FakeStore()
    assert is_ancestor(store, oid(1), oid(4))
    assert is_ancestor(store, oid(4), oid(4))
    assert not is_ancestor(store, oid(4), oid(2))


def test_host_limits_refuse_before_sending():
    from layergit.errors import Conflict
    from layergit.porcelain.remotes import _check_limits

    small = ("blob", 10, 10, "rootfs/etc/hostname")
    big = ("blob", 150_000_000, 149_000_000, "rootfs/srv/%%2Egit-dump")
    with pytest.raises(Conflict, match=r"github.com refuses files over 100 MB.*/srv/\.git-dump"):
        _check_limits("git@github.com:a/b.git", [small, big], 149_000_000, None)
    warned = _check_limits("/srv/images.git", [small, big], 149_000_000, None)
    assert warned == ["/srv/.git-dump is 143 MiB; git hosts warn above 50 MiB"]
    over = ("blob", 1 << 20, 1 << 20, "rootfs/x")
    with pytest.raises(Conflict, match="--max-pack"):
        _check_limits("https://github.com/a/b.git", [over], 3 << 30, None)
    assert _check_limits("https://github.com/a/b.git", [over], 3 << 30, 1 << 30) == []


def test_shadowed_tracking_names():
    from layergit.store.revisions import shadowed

    store = FakeStore()
    store.refs["refs/remotes/origin/app/1"] = oid(3)
    assert not shadowed(store, "origin/app:1")
    store.refs["refs/heads/origin/app/1"] = oid(1)
    assert shadowed(store, "origin/app:1~1")
    assert not shadowed(store, "app:1")


def test_git_progress_lines_become_bytes_and_the_rest_is_kept():
    """git's --progress stream (updates end in \\r): byte counts go to the callback, the
    completed pack is flagged, other lines (and a remote's look-alikes) are kept."""
    from layergit.transport import gitcli

    heard: list[tuple[int, bool]] = []
    err = gitcli._Stderr(lambda done, complete: heard.append((done, complete)))
    stream = (b"Enumerating objects: 3, done.\n"
              b"Writing objects:  33% (1/3)\r"
              b"Writing objects:  66% (2/3), 512 bytes | 1 KiB/s\r"
              b"Writing objects: 100% (3/3), 3.50 MiB | 9.48 MiB/s, done.\n"
              b"remote: Receiving objects: 100% (9/9), 9.00 GiB, done.\n"
              b"error: failed to push some refs\n" + b"x" * (gitcli.SEGMENT_MAX + 10))
    with os.fdopen(os.dup(err.write), "wb") as w:
        err.start()
        w.write(stream)
    kept = err.text()
    assert heard == [(512, False), (int(3.5 * (1 << 20)), True)]
    assert b"Writing objects" not in kept
    assert kept.startswith(b"Enumerating objects: 3, done.\nremote: Receiving objects")
    assert b"error: failed to push some refs\n" in kept and kept.count(b"x") == gitcli.SEGMENT_MAX + 10


@pytest.mark.parametrize("operand, could", [
    ("origin", True), ("debian", True), ("team/app", True),
    ("Upstream", True),  # a name plain git allows and lg's own rule does not: still a remote
    ("localhost:5000/app:1", False), ("app:1", False), ("app@sha256:" + "0" * 64, False),
])
def test_only_an_operand_without_a_colon_needs_the_remote_list(operand, could):
    """Git refuses ':' in a remote's name, so such an operand is an image whatever
    remotes exist, and lg pull need not ask git for them."""
    assert could_name_remote(operand) is could
    if not could:
        assert not is_git_operand(operand, ())
