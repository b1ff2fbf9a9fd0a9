"""Restart policies, back-off, health transitions and log rotation: the pure parts of
issue 18's supervision (runtime/restart.py, runtime/health.py, runtime/logfile.py)."""

from __future__ import annotations

import json
import os

import pytest

from layergit.errors import UsageError
from layergit.runtime import restart
from layergit.runtime.health import Health, HealthConfig, HealthFlags, Result, configure, parse_duration
from layergit.runtime.logfile import LogWriter, files, parse_log_opts, read_lines, rotate, rotated
from layergit.runtime.restart import RestartPolicy


@pytest.mark.parametrize("text, name, count", [
    ("no", "no", 0), ("always", "always", 0), ("unless-stopped", "unless-stopped", 0),
    ("on-failure", "on-failure", 0), ("on-failure:3", "on-failure", 3), ("on-failure:0", "on-failure", 0),
])
def test_policy_parse(text, name, count):
    policy = RestartPolicy.parse(text)
    assert (policy.name, policy.max_retries) == (name, count)
    assert RestartPolicy.from_json(policy.to_json()) == policy


@pytest.mark.parametrize("text", ["sometimes", "always:3", "on-failure:x", "on-failure:-1", "", "On-Failure",
                                  "on-failure:1234567890", "no:"])
def test_policy_refused_in_one_line(text):
    with pytest.raises(UsageError) as err:
        RestartPolicy.parse(text)
    assert "\n" not in str(err.value) and "restart policy" in str(err.value)


def test_decide_follows_docker():
    always, failing = RestartPolicy("always"), RestartPolicy("on-failure", 3)
    assert restart.decide(always, 0, 100, False)
    assert not restart.decide(always, 1, 0, True)  # lg stop / kill: not a restart
    assert not restart.decide(RestartPolicy("no"), 1, 0, False)
    assert restart.decide(RestartPolicy("unless-stopped"), 0, 0, False)
    assert not restart.decide(failing, 0, 0, False)
    assert [restart.decide(failing, 1, n, False) for n in range(5)] == [True, True, True, False, False]
    assert restart.decide(failing, -1, 0, False)  # an unknown exit status is a failure
    assert restart.decide(RestartPolicy("on-failure"), 1, 10_000, False)  # no maximum


def test_backoff_doubles_from_100ms_caps_and_resets():
    delays, delay = [], 0.0
    for _ in range(12):
        delay = restart.next_delay(delay, uptime=0.5)
        delays.append(delay)
    assert delays[:4] == [0.1, 0.2, 0.4, 0.8]
    assert delays[-1] == restart.MAX_DELAY and max(delays) == 60.0
    assert restart.next_delay(25.6, uptime=10.0) == 0.1  # ten seconds up: back to the start
    assert restart.next_delay(25.6, uptime=9.9) == 51.2


def test_boot_wants():
    want = restart.wanted_at_boot
    assert want(RestartPolicy("always"), False, True, 0, 0)  # always comes back even after lg stop
    assert not want(RestartPolicy("unless-stopped"), True, True, 0, 0)
    assert want(RestartPolicy("unless-stopped"), True, False, -1, 0)
    assert not want(RestartPolicy("no"), True, False, -1, 0)
    assert want(RestartPolicy("on-failure", 2), True, False, -1, 1)
    assert not want(RestartPolicy("on-failure", 2), True, False, -1, 2)
    assert not want(RestartPolicy("on-failure"), False, False, 0, 0)


@pytest.mark.parametrize("text, seconds", [("30s", 30), ("1m30s", 90), ("500ms", 0.5), ("1h", 3600),
                                           ("1.5s", 1.5), ("100us", 1e-4)])
def test_durations(text, seconds):
    assert parse_duration(text, "--health-interval") == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "30", "s", "1x", "-1s", "1s ", "1m30"])
def test_bad_durations(text):
    with pytest.raises(UsageError):
        parse_duration(text, "--health-interval")


def test_health_config_from_image_and_flags():
    image = {"Test": ["CMD", "true"], "Interval": 5_000_000_000, "Retries": 7}
    config = configure(image, HealthFlags())
    assert config == HealthConfig(["CMD", "true"], 5.0, 30.0, 7, 0.0, 5.0)
    assert config.argv() == ["true"]
    over = configure(image, HealthFlags(cmd="curl -f localhost", interval="1s", timeout="2s", start_period="3s"))
    assert over == HealthConfig(["CMD-SHELL", "curl -f localhost"], 1.0, 2.0, 7, 3.0, 5.0)
    assert configure(image, HealthFlags(cmd="x", start_interval="100ms")).start_interval == 0.1
    assert over.argv() == ["/bin/sh", "-c", "curl -f localhost"]
    assert configure(image, HealthFlags(disabled=True)) is None
    assert configure({"Test": ["NONE"]}, HealthFlags()) is None
    assert configure(None, HealthFlags()) is None
    assert HealthConfig.from_json(over.to_json()) == over
    assert over.to_docker()["Interval"] == 1_000_000_000
    for bad in (HealthFlags(cmd="x", disabled=True), HealthFlags(cmd=" "), HealthFlags(cmd="x", retries=0),
                HealthFlags(cmd="x", interval="0s")):
        with pytest.raises(UsageError):
            configure(None, bad)
    with pytest.raises(UsageError):
        configure({"Test": ["EXEC", "x"]}, HealthFlags())


def test_start_interval_applies_in_the_start_period_until_healthy():
    config = HealthConfig(["CMD", "x"], interval=30.0, start_period=60.0, start_interval=2.0)
    assert config.next_check(10.0, "starting") == 2.0
    assert config.next_check(10.0, "healthy") == 30.0
    assert config.next_check(61.0, "starting") == 30.0
    assert HealthConfig.from_json({"test": ["CMD", "x"]}).start_interval == 5.0  # an older record


def _result(code: int, output: str = "") -> Result:
    return Result("s", "e", code, output)


def test_health_transitions():
    config = HealthConfig(["CMD", "x"], retries=2)
    health = Health()
    health.record(_result(1), config, in_start_period=True)
    assert (health.status, health.failing_streak) == ("starting", 0)  # the start period forgives
    health.record(_result(1), config, in_start_period=False)
    assert (health.status, health.failing_streak) == ("starting", 1)
    health.record(_result(0), config, in_start_period=False)
    assert (health.status, health.failing_streak) == ("healthy", 0)
    health.record(_result(1), config, in_start_period=True)  # healthy once: the start period is over
    health.record(_result(-1, "Health check exceeded timeout (1s)"), config, in_start_period=False)
    assert (health.status, health.failing_streak) == ("unhealthy", 2)
    for _ in range(10):
        health.record(_result(0, "x" * 10_000), config, False)
    assert len(health.log) == 5 and len(health.log[-1].output) == 4096
    assert Health.from_json(json.loads(json.dumps(health.to_json()))) == health
    assert health.to_docker()["Status"] == "healthy"


def test_log_opts():
    assert parse_log_opts(["max-size=10m", "max-file=3"]) == {"max-size": 10_000_000, "max-file": 3}
    assert parse_log_opts(["max-size=1k"]) == {"max-size": 1000}
    assert parse_log_opts(["max-size=-1"]) == {"max-size": -1}
    for bad in (["max-size=0"], ["max-size=10q"], ["max-file=0"], ["max-file=x"], ["compress=true"], ["mode"],
                ["max-size=-1", "max-file=2"]):
        with pytest.raises(UsageError) as err:
            parse_log_opts(bad)
        assert "\n" not in str(err.value)


def test_rotation_names(tmp_path):
    path = str(tmp_path / "container.log")
    assert rotated(path, 0) == path and rotated(path, 2) == path + ".2"
    for text in ("a", "b", "c", "d"):
        with open(path, "w") as f:
            f.write(text)
        rotate(path, 3)
    assert sorted(os.listdir(tmp_path)) == ["container.log.1", "container.log.2"]
    assert [open(p).read() for p in files(path)] == ["c", "d"]
    (tmp_path / "container.log.x").write_text("not ours")
    (tmp_path / "container.log.10").write_text("old")
    assert files(path)[0] == path + ".10"


def test_writer_rotates_at_size_and_reads_across(tmp_path):
    path = str(tmp_path / "container.log")
    log = LogWriter(path, max_size=400, max_file=3)
    for i in range(40):
        log.write("stdout", f"line {i}\n".encode())
    log.close()
    names = files(path)
    assert len(names) == 3 and all(os.path.getsize(n) <= 400 for n in names)
    lines = [json.loads(raw)["log"] for raw in read_lines(path)]
    assert lines == [f"line {i}\n" for i in range(40 - len(lines), 40)]  # the newest, in order
    single = str(tmp_path / "one.log")
    log = LogWriter(single, max_size=200, max_file=1)
    for i in range(20):
        log.write("stderr", f"e{i}\n".encode())
    log.close()
    assert files(single) == [single] and os.path.getsize(single) <= 200


def test_boot_order_follows_compose_dependencies():
    from layergit.porcelain.services import DEPENDS_ON, PROJECT, SERVICE, dependency_order
    from layergit.runtime.spec import Process, Spec
    from layergit.runtime.state import Record

    def record(name: str, created: str, project: str = "blog", depends: str = "") -> Record:
        labels = {PROJECT: project, SERVICE: name} | ({DEPENDS_ON: depends} if depends else {})
        cid = f"{project}-{name}"
        return Record(cid, cid, "img", "0" * 40, created, Spec(cid, cid, "", "", Process([], [])), labels=labels)

    web = record("web", "1", depends="db:service_healthy:false,cache:service_started:false")
    db = record("db", "2", depends="volume-init:service_completed_successfully:false")  # not among them
    cache = record("cache", "3")
    other = record("db", "0", project="shop", depends="web:service_started:false")  # another project's
    order = [r.id for r in dependency_order([web, db, cache, other])]
    assert order == ["shop-db", "blog-db", "blog-cache", "blog-web"]  # oldest first, dependencies before
    loop_a, loop_b = record("a", "1", depends="b"), record("b", "2", depends="a")
    assert [r.id for r in dependency_order([loop_a, loop_b])] == ["blog-b", "blog-a"]  # a cycle: each once
