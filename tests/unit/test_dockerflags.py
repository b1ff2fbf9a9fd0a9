"""The note in --help of Docker's flags lg lacks."""

from __future__ import annotations

from cli.dockerflags import DOCKER_FLAGS, epilog, missing


def test_missing_counts_either_spelling():
    assert missing("ps", {"-a", "--filter", "--format", "-n", "--latest", "--no-trunc", "-q"}) == ["--size"]
    assert missing("wait", set()) == []
    assert epilog("kill", {"-s"}) == ""


def test_epilog_keeps_flags_whole():
    note = epilog("run", set())
    assert note.startswith("\b\n")
    lines = note.splitlines()[1:]
    assert all(len(line) <= 78 for line in lines)
    words = " ".join(lines).split()
    assert "--health-start-interval," in words and "--device-cgroup-rule," in words


def test_every_flag_is_well_formed():
    for command, flags in DOCKER_FLAGS.items():
        for flag in flags.split():
            assert all(name.startswith("-") for name in flag.split("/")), (command, flag)
