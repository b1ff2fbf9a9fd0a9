"""Cgroups without root, on trees of plain files: the recorded place of a container's
cgroup (checked before lg writes under it), and how a delegated unit hands its
controllers on. This host's unified tree has no controllers, so the enabling is
played where the files are the test's; tests/test_rootless.py runs the rest for real."""

from __future__ import annotations

import os

import pytest


class _Dir:
    id = "c" * 64

    def __init__(self, path):
        self.path = path

    def file(self, name: str) -> str:
        return os.path.join(self.path, name)


def test_a_recorded_cgroup_place_must_be_a_plain_path_of_the_v2_mount(tmp_path):
    from layergit.runtime import cgroups

    mount = cgroups.v2_mount()
    if mount is None:
        pytest.skip("no cgroup2 hierarchy mounted")
    cdir = _Dir(str(tmp_path))
    assert cgroups._recorded_place(cdir) is None  # made before places were recorded
    for text, place in [("", ""), ("relative/dir", ""), ("/etc", ""), (f"{mount}/a/../../../etc", ""),
                        (mount, ""), (f"{mount}/user.slice/x", f"{mount}/user.slice/x")]:
        (tmp_path / "cgroup-root").write_text(text + "\n")
        assert cgroups._recorded_place(cdir) == place, text
    os.unlink(tmp_path / "cgroup-root")
    os.symlink(f"{mount}/cgroup.procs", tmp_path / "cgroup-root")
    assert cgroups._recorded_place(cdir) == ""  # never followed


def _fake_unit(path, controllers: str, procs: str) -> None:
    os.makedirs(path)
    for name, text in (("cgroup.controllers", controllers), ("cgroup.subtree_control", ""),
                       ("cgroup.procs", procs)):
        with open(os.path.join(path, name), "w") as f:
            f.write(text)


def test_a_marked_unit_moves_its_own_processes_to_a_leaf_then_hands_on_its_controllers(tmp_path, monkeypatch):
    """On a v2 host, a unit systemd delegated (``user.delegate``) whose own cgroup holds
    lg cannot enable controllers for its children: lg first moves those processes into
    a leaf, as systemd's delegation rules ask, then enables what the container's limits
    need. Played on a tree of plain files: this host's unified tree has no controllers."""
    from layergit.runtime import cgroups

    unit = tmp_path / "lg.scope"
    _fake_unit(unit, "cpu memory pids io", "4242\n")
    os.setxattr(unit, "user.delegate", b"1")
    monkeypatch.setattr(cgroups, "inside", lambda: True)
    cgroup = cgroups.Cgroup("c" * 64, delegated_root=str(unit))
    assert cgroup.unenforceable(True, True, True) == []
    os.makedirs(unit / cgroups.PARENT)  # the kernel makes a cgroup's files: here, the test
    (unit / cgroups.PARENT / "cgroup.subtree_control").write_text("")
    cgroup.create(64 << 20, None, 50)
    assert (unit / cgroups.SUPERVISOR / "cgroup.procs").read_text() == "4242"
    assert (unit / "cgroup.subtree_control").read_text() == "+cpu +memory +pids"  # as root enables them
    assert (unit / cgroups.PARENT / "cgroup.subtree_control").read_text() == "+cpu +memory +pids"
    assert (unit / cgroups.PARENT / ("c" * 64) / "memory.max").read_text() == str(64 << 20)


def test_an_unmarked_subtree_is_left_as_its_owner_set_it(tmp_path, monkeypatch):
    """The user manager's own tree (found without a mark) hands on only what systemd
    enabled for its children; lg moves nothing there and enables nothing in it."""
    from layergit.runtime import cgroups

    tree = tmp_path / "user@1000.service"
    _fake_unit(tree, "cpu memory pids io", "")
    (tree / "cgroup.subtree_control").write_text("memory pids")
    monkeypatch.setattr(cgroups, "inside", lambda: True)
    cgroup = cgroups.Cgroup("c" * 64, delegated_root=str(tree))
    assert cgroup.unenforceable(True, True, True) == ["--cpus"]
    os.makedirs(tree / cgroups.PARENT)
    (tree / cgroups.PARENT / "cgroup.subtree_control").write_text("")
    cgroup.create(64 << 20, None, 50)
    assert not (tree / cgroups.SUPERVISOR).exists()
    assert (tree / "cgroup.subtree_control").read_text() == "memory pids"
    assert (tree / cgroups.PARENT / "cgroup.subtree_control").read_text() == "+memory +pids"
