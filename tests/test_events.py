"""lg events (issue 20): Docker's container events, logged where each state change is saved."""

from __future__ import annotations

import subprocess
import time

import pytest

pytestmark = pytest.mark.root

FMT = "{{.Action}} {{.Actor.Attributes.name}}"


def _since(lg, start: float, *extra: str, fmt: str = FMT) -> list[str]:
    out = lg.out("events", "--since", f"{start:.9f}", "--until", "0s", "--format", fmt, *extra)
    return [line.strip() for line in out.splitlines()]


def test_a_lifecycle_is_logged_as_docker_logs_it(lg, busybox_rootfs):
    lg("commit", busybox_rootfs, "-t", "bb:1")
    start = time.time()
    lg("run", "--rm", "--network", "none", "--name", "once", "bb:1", "sh", "-c", "exit 3", check=False)
    lg("run", "-d", "--network", "none", "--name", "svc", "bb:1", "sleep", "300")
    lg("rename", "svc", "svc2")
    lg("pause", "svc2")
    lg("unpause", "svc2")
    lg("kill", "svc2")
    lg("wait", "svc2")
    lg("rm", "svc2")
    assert _since(lg, start) == [
        "create once", "start once", "die once", "destroy once",
        "create svc", "start svc", "rename svc2", "pause svc2", "unpause svc2", "kill svc2", "die svc2",
        "destroy svc2",
    ]
    assert _since(lg, start, "-f", "event=die", fmt="{{.Actor.Attributes.exitCode}}") == ["3", "137"]
    assert _since(lg, start, "-f", "event=kill", fmt="{{.Actor.Attributes.signal}}") == ["9"]
    assert _since(lg, start, "-f", "event=die", "-f", "container=svc2") == ["die svc2"]
    full = lg.out("events", "--since", f"{start:.9f}", "--until", "0s", "-f", "event=rename")
    assert full.count("\n") == 1 and " container rename " in full and "(image=bb:1, name=svc2, oldName=svc)" in full


def test_a_restart_policy_shows_as_die_then_start(lg, busybox_rootfs):
    lg("commit", busybox_rootfs, "-t", "bb:1")
    start = time.time()
    lg("run", "-d", "--network", "none", "--name", "flaky", "--restart", "on-failure:1", "bb:1", "sh", "-c", "exit 4")
    deadline = time.monotonic() + 20
    while _since(lg, start).count("die flaky") < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _since(lg, start) == ["create flaky", "start flaky", "die flaky", "start flaky", "die flaky"]
    lg("rm", "flaky")


def test_following_prints_each_event_as_it_happens(lg, busybox_rootfs):
    lg("commit", busybox_rootfs, "-t", "bb:1")
    start = time.time()
    follower = subprocess.Popen([lg.python, "-m", "cli", "events", "--since", f"{start:.9f}", "--format", FMT],
                                env=lg.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lg("run", "--rm", "--network", "none", "--name", "live", "bb:1", "true")
        seen = [follower.stdout.readline().strip() for _ in range(4)]
        assert seen == ["create live", "start live", "die live", "destroy live"]
        assert follower.poll() is None  # still following
    finally:
        follower.terminate()
        follower.communicate(timeout=10)


def test_bad_arguments_are_one_line(lg):
    for args, words in ((("-f", "event=explode"), "invalid filter 'event=explode'"),
                        (("-f", "colour=red"), "invalid filter 'colour'"),
                        (("--since", "yesterday"), "invalid --since value")):
        err = lg.fails("events", "--until", "0s", *args)
        assert words in err and len(err.strip().splitlines()) == 1, err
