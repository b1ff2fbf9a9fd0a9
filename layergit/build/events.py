"""What a build reports while it runs: progress events for the CLI to render, and
BuildError when a step fails. Nothing in the build prints."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..errors import LgError


@dataclass(frozen=True)
class Step:
    number: int  # 1, 2, ... across the whole build
    label: str  # "[2/5]", or "[builder 2/5]" in a multi-stage build
    text: str  # the instruction's first line


@dataclass(frozen=True)
class StepStarted:
    step: Step


@dataclass(frozen=True)
class StepOutput:
    step: Step
    stream: str  # "stdout" or "stderr"
    line: bytes


@dataclass(frozen=True)
class StepCached:
    step: Step


@dataclass(frozen=True)
class StepDone:
    step: Step
    seconds: float


@dataclass(frozen=True)
class StepFailed:
    step: Step
    error: str


@dataclass(frozen=True)
class BuildWarning:
    text: str


Progress = Callable[[object], None]


class BuildError(LgError):
    """A step that failed; a failed RUN exits with the command's own code."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code
