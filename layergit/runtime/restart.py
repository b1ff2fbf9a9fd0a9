"""Restart policies as Docker has them, and the back-off between restarts.

Pure: the monitor (runtime/monitor.py) asks :func:`decide` when a container's
process has ended and :func:`next_delay` how long to wait; ``lg system boot``
asks :func:`wanted_at_boot`. Docker's rules, so that a compose file or a script
means the same here:

- ``no`` never restarts; ``always`` restarts whatever the exit code;
  ``unless-stopped`` likewise, but a container the user stopped stays stopped,
  across a reboot too; ``on-failure[:MAX]`` restarts on a non-zero exit code, at
  most MAX times (no MAX: without limit).
- A container stopped or killed by the user (``lg stop``, ``lg kill``) is never
  restarted by the monitor, whatever its policy: that is a stop, not a failure.
  At boot, ``always`` starts it again all the same; ``unless-stopped`` does not.
- The delay before a restart starts at 100 ms and doubles with every restart, up
  to a minute; a container that ran for 10 seconds or more starts again from 100 ms.
- An exit code nobody could read (the process ended while no monitor watched it,
  recorded as -1) counts as a failure.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import UsageError

POLICIES = ("no", "always", "unless-stopped", "on-failure")
FIRST_DELAY = 0.1  # seconds before the first restart
MAX_DELAY = 60.0  # Docker's cap on the doubling
RESET_UPTIME = 10.0  # a run at least this long resets the back-off


@dataclass(frozen=True)
class RestartPolicy:
    """``--restart`` parsed once (no, always, unless-stopped, on-failure[:N]): the
    monitor decides each restart from this value, never from the text."""

    name: str = "no"
    max_retries: int = 0  # on-failure only; 0 is no limit

    @classmethod
    def parse(cls, text: str) -> RestartPolicy:
        """``--restart`` as Docker takes it; one line naming the choices otherwise."""
        name, sep, count = text.partition(":")
        if name not in POLICIES:
            raise UsageError(f"invalid restart policy {text[:80]!r}: use no, always, unless-stopped"
                             " or on-failure[:MAX-RETRIES]")
        if not sep:
            return cls(name)
        if name != "on-failure":
            raise UsageError(f"invalid restart policy {text[:80]!r}: only on-failure takes a maximum")
        if not count.isdigit() or len(count) > 9:
            raise UsageError(f"invalid restart policy {text[:80]!r}: the maximum is a whole number")
        return cls(name, int(count))

    @classmethod
    def from_json(cls, raw: dict | None) -> RestartPolicy:
        """From HostConfig.RestartPolicy (Docker's field names)."""
        if not raw:
            return cls()
        return cls(raw.get("Name") or "no", int(raw.get("MaximumRetryCount") or 0))

    def to_json(self) -> dict:
        return {"Name": self.name, "MaximumRetryCount": self.max_retries}

    def __str__(self) -> str:
        return f"{self.name}:{self.max_retries}" if self.max_retries else self.name


def decide(policy: RestartPolicy, exit_code: int, restarts: int, stopped_by_user: bool) -> bool:
    """Whether a container that just ended (its ``restarts``-th restart behind it) starts again."""
    if stopped_by_user or policy.name == "no":
        return False
    if policy.name == "on-failure":
        return exit_code != 0 and (not policy.max_retries or restarts < policy.max_retries)
    return True


def next_delay(previous: float, uptime: float) -> float:
    """The wait before the next restart, given the last one and how long the run lasted."""
    if previous <= 0 or uptime >= RESET_UPTIME:
        return FIRST_DELAY
    return min(previous * 2, MAX_DELAY)


def wanted_at_boot(policy: RestartPolicy, was_running: bool, stopped_by_user: bool, exit_code: int,
                   restarts: int) -> bool:
    """Whether ``lg system boot`` starts the container, as Docker's daemon start does:
    always (even one the user stopped: that is the difference with unless-stopped),
    unless-stopped not stopped by the user, on-failure that was running when the
    machine went down or had failed, under its maximum."""
    if policy.name == "always":
        return True
    if stopped_by_user or policy.name == "no":
        return False
    if policy.name == "on-failure":
        return (was_running or exit_code != 0) and (not policy.max_retries or restarts < policy.max_retries)
    return True
