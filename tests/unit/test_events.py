"""The container event log (runtime/events.py): transitions, appends, reading while it grows and is cut."""

from __future__ import annotations

import os
import threading
import time

import pytest

from layergit.runtime import events


@pytest.mark.parametrize("before, after, action", [
    (None, "created", "create"), ("created", "running", "start"), ("exited", "running", "start"),
    ("restarting", "running", "start"), ("running", "paused", "pause"), ("paused", "running", "unpause"),
    ("running", "exited", "die"), ("paused", "exited", "die"), ("running", "restarting", "die"),
    ("restarting", "restarting", None), ("exited", "restarting", None),
    ("running", "running", None), ("created", "exited", None), ("exited", "exited", None),
])
def test_a_status_change_is_the_event_docker_logs(before, after, action):
    assert events.transition(before, after) == action


def _actions(found) -> list[str]:
    return [e.action for e in found]


def test_logged_events_between_since_and_until(tmp_path):
    run = str(tmp_path)
    for action in ("create", "start", "die"):
        events.emit(run, action, "c" * 64, {"name": "web", "image": "bb"})
    stamps = [e.time_ns for e in events.watch(run, 0, time.time_ns())]
    assert len(stamps) == 3 and stamps == sorted(stamps)
    assert _actions(events.watch(run, stamps[1], time.time_ns())) == ["start", "die"]
    assert _actions(events.watch(run, 0, stamps[1])) == ["create", "start"]
    first = next(events.watch(run, 0, time.time_ns()))
    assert first.to_json()["Actor"] == {"ID": "c" * 64, "Attributes": {"name": "web", "image": "bb"}}
    assert first.to_json()["from"] == "bb" and first.to_json()["timeNano"] == stamps[0]


def test_torn_foreign_and_long_lines_are_skipped(tmp_path):
    run = str(tmp_path)
    events.emit(run, "create", "a", {})
    with open(os.path.join(run, events.FILE), "ab") as f:
        f.write(b"not json\n" + b'{"Type": 1}\n' + b"x" * (events._LINE_MAX + 10) + b"\n")
    events.emit(run, "start", "a", {})
    with open(os.path.join(run, events.FILE), "ab") as f:
        f.write(b'{"half": ')  # a writer's line not finished yet
    assert _actions(events.watch(run, 0, time.time_ns())) == ["create", "start"]


def test_following_sees_new_events_across_a_cut(tmp_path, monkeypatch):
    """A follower sees each new event once, in order, also when the log is cut (renamed
    to .1) between them; nothing before its --since is shown."""
    run = str(tmp_path)
    events.emit(run, "create", "old", {})
    since = time.time_ns()
    monkeypatch.setattr(events, "MAX_BYTES", 700)  # a cut every three events
    seen: list[str] = []
    until = time.time_ns() + int(30e9)

    def follow():
        for event in events.watch(run, since, until):
            seen.append(event.id)
            if len(seen) == 12:
                return

    reader = threading.Thread(target=follow)
    reader.start()
    for i in range(12):  # each write waits for the last to be seen: the test never depends on speed
        events.emit(run, "start", f"n{i}", {"name": "x" * 40})
        deadline = time.monotonic() + 5
        while len(seen) <= i and time.monotonic() < deadline:
            time.sleep(0.01)
    reader.join(5)
    assert seen == [f"n{i}" for i in range(12)]
    assert os.path.exists(os.path.join(run, events.FILE + ".1"))  # the cut happened


def test_without_since_only_what_comes_after(tmp_path):
    run = str(tmp_path)
    events.emit(run, "create", "old", {})
    assert list(events.watch(run, None, time.time_ns() + int(0.3e9))) == []
