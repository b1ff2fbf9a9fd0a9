"""Health checks: what to run and how often (HealthConfig), and what the results mean
(Health): Docker's HEALTHCHECK semantics, pure, so that the monitor only runs commands.

The image's ``Healthcheck`` (Docker's config field: ``Test``, durations in
nanoseconds) is the base; ``--health-*`` flags replace its fields one by one and
``--no-healthcheck`` (or ``HEALTHCHECK NONE``) turns it off. The monitor runs
the test as ``lg exec`` runs a command (the container's namespaces, cgroup, user
and limits) every ``interval``; one that runs past ``timeout`` is killed and
counts as a failure. A success makes the container healthy at once; ``retries``
failures in a row make it unhealthy, except that failures within ``start_period``
of the start do not count. The last five results are kept with their output
(at most 4 KiB each), as ``docker inspect`` shows them in State.Health.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

from ..errors import UsageError

DEFAULT_INTERVAL = 30.0  # seconds, Docker's defaults
DEFAULT_TIMEOUT = 30.0
DEFAULT_RETRIES = 3
DEFAULT_START_INTERVAL = 5.0
KEEP_RESULTS = 5
OUTPUT_MAX = 4096
_NS = 1e9
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str, flag: str) -> float:
    """A Go duration (``30s``, ``1m30s``, ``500ms``) in seconds, as Docker's flags take it."""
    parts = re.findall(r"([0-9]+(?:\.[0-9]*)?)(ns|us|µs|ms|s|m|h)", text)
    if not text or "".join(n + u for n, u in parts) != text:
        raise UsageError(f"invalid {flag} {text[:80]!r}: use a duration such as 30s, 1m30s or 500ms")
    return sum(float(n) * _UNITS[u] for n, u in parts)


@dataclass(frozen=True)
class HealthConfig:
    """A healthcheck as it runs: the image's HEALTHCHECK under the ``--health-*``
    flags, with Docker's defaults for what neither sets."""

    test: list[str]  # ["CMD", arg...] or ["CMD-SHELL", command]
    interval: float = DEFAULT_INTERVAL
    timeout: float = DEFAULT_TIMEOUT
    retries: int = DEFAULT_RETRIES
    start_period: float = 0.0
    start_interval: float = DEFAULT_START_INTERVAL  # between checks during the start period

    def next_check(self, since_start: float, status: str) -> float:
        """Seconds until the next check: ``start_interval`` while a container in its
        start period has not been healthy yet, else ``interval`` (Docker 25's rule)."""
        if status == "starting" and since_start < self.start_period:
            return self.start_interval
        return self.interval

    def argv(self) -> list[str]:
        """The command the check runs."""
        if self.test[0] == "CMD-SHELL":
            return ["/bin/sh", "-c", self.test[1]]
        return list(self.test[1:])

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: dict | None) -> HealthConfig | None:
        return cls(**raw) if raw else None  # start_interval may be absent (an older record)

    def to_docker(self) -> dict:
        """As Docker's config shows it (durations in nanoseconds)."""
        return {"Test": list(self.test), "Interval": int(self.interval * _NS),
                "Timeout": int(self.timeout * _NS), "Retries": self.retries,
                "StartPeriod": int(self.start_period * _NS), "StartInterval": int(self.start_interval * _NS)}


@dataclass
class HealthFlags:
    """The ``--health-*`` flags as given (None: not given)."""

    cmd: str | None = None
    interval: str | None = None
    timeout: str | None = None
    retries: int | None = None
    start_period: str | None = None
    disabled: bool = False
    start_interval: str | None = None
    test: list[str] | None = None  # a whole test, CMD or CMD-SHELL form (compose's healthcheck.test)


def _positive(value: float, flag: str, allow_zero: bool = False) -> float:
    if value < 0 or (value == 0 and not allow_zero) or (0 < value < 0.001):
        raise UsageError(f"{flag} must be at least 1ms")
    return value


def configure(image: dict | None, flags: HealthFlags) -> HealthConfig | None:
    """The check a container gets: the image's ``Healthcheck`` with the flags over it;
    None for none (no test anywhere, ``NONE``, or ``--no-healthcheck``)."""
    if flags.disabled:
        if flags.cmd is not None:
            raise UsageError("--no-healthcheck conflicts with --health-cmd")
        return None
    image = image or {}
    test = list(image.get("Test") or [])
    if flags.cmd is not None:
        if not flags.cmd.strip():
            raise UsageError("--health-cmd needs a command")
        test = ["CMD-SHELL", flags.cmd]
    elif flags.test is not None:
        test = list(flags.test)
    if not test or test[0] == "NONE":
        return None
    if test[0] not in ("CMD", "CMD-SHELL") or len(test) < 2 or not all(isinstance(t, str) for t in test):
        raise UsageError(f"unusable health check test {str(test)[:80]!r} in the image")

    def seconds(flag_value: str | None, flag: str, key: str, default: float,
                allow_zero: bool = False) -> float:
        if flag_value is not None:
            return _positive(parse_duration(flag_value, flag), flag, allow_zero)
        raw = image.get(key)
        return raw / _NS if isinstance(raw, int) and raw > 0 else default

    retries = flags.retries if flags.retries is not None else image.get("Retries")
    if not isinstance(retries, int) or retries <= 0:
        if flags.retries is not None:
            raise UsageError("--health-retries must be at least 1")
        retries = DEFAULT_RETRIES
    return HealthConfig(test, seconds(flags.interval, "--health-interval", "Interval", DEFAULT_INTERVAL),
                        seconds(flags.timeout, "--health-timeout", "Timeout", DEFAULT_TIMEOUT), retries,
                        seconds(flags.start_period, "--health-start-period", "StartPeriod", 0.0, True),
                        seconds(flags.start_interval, "--health-start-interval", "StartInterval",
                                DEFAULT_START_INTERVAL))


@dataclass
class Result:
    """One healthcheck's run, as ``lg inspect`` shows the last few (Docker's Log)."""

    start: str
    end: str
    exit_code: int
    output: str


@dataclass
class Health:
    """A container's health (health.json beside its state; docs/format.md)."""

    status: str = "starting"  # starting, healthy, unhealthy
    failing_streak: int = 0
    log: list[Result] = field(default_factory=list)

    def record(self, result: Result, config: HealthConfig, in_start_period: bool) -> None:
        """Take one check's result: Docker's transitions."""
        self.log = (self.log + [Result(result.start, result.end, result.exit_code,
                                       result.output[:OUTPUT_MAX])])[-KEEP_RESULTS:]
        if result.exit_code == 0:
            self.status, self.failing_streak = "healthy", 0
            return
        if in_start_period and self.status == "starting":
            return  # failures while the service starts do not count
        self.failing_streak += 1
        if self.failing_streak >= config.retries:
            self.status = "unhealthy"

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: dict) -> Health:
        return cls(raw.get("status", "starting"), int(raw.get("failing_streak", 0)),
                   [Result(**r) for r in raw.get("log", [])])

    def to_docker(self) -> dict:
        """State.Health as ``docker inspect`` shows it."""
        return {"Status": self.status, "FailingStreak": self.failing_streak,
                "Log": [{"Start": r.start, "End": r.end, "ExitCode": r.exit_code, "Output": r.output}
                        for r in self.log]}
