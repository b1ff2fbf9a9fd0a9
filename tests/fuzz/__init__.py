"""The fuzz layer: property-based fuzzing (hypothesis) of what lg parses from outside.

Every target is a parser of hostile input, run in process: the tar reader, the archive
importer (docker-archive and OCI layouts, as files), the Dockerfile parser and planner,
revision and image name parsing, and the metadata blob reader. The property is the one
every command promises: the input gives a typed value, or an LgError whose message is
one printable line; never another exception, and never more than :data:`DEADLINE` of
CPU time (the whole process's: the importer's deposit thread works for the input too).
CPU time, not wall time: the bound is on the work an input can cause, and a busy
machine (the rest of the suite, a benchmark) must not fail an example that did no more
work than before. :data:`WALL_BACKSTOP`, hypothesis's own deadline, fails an example
that waited long without working, once it returns (it interrupts nothing).

CI runs a few hundred examples per target (the layer takes about a minute), drawn from
a seed fixed by each target's name: the suite's verdict on a tree is the same on every
run, so a pass or a failure belongs to the change that caused it. Exploring is the
longer runs' job: ``LG_FUZZ=long`` runs 20 times as many from a fresh seed each time
(half an hour on a busy machine, by hand, see CONTRIBUTING.md), ``LG_FUZZ_EXAMPLES=N``
exactly N per target, also freshly seeded. A failure prints the smallest input found
and a ``@reproduce_failure`` blob to replay it.
"""

from __future__ import annotations

import os
import time
from datetime import timedelta

from hypothesis import HealthCheck, event, settings

from layergit.errors import LgError
from layergit.text import printable

DEADLINE = 10.0  # CPU seconds per parser call: "bounded time" (the importer's are the slowest)
WALL_BACKSTOP = timedelta(seconds=120)  # hypothesis's own deadline: a long wait, reported after it
_LONG_FACTOR = 20


def fuzz(ci_examples: int):
    """The settings of one fuzz target that runs ``ci_examples`` examples in CI."""
    override = os.environ.get("LG_FUZZ_EXAMPLES")
    if override:
        examples = int(override)
    elif os.environ.get("LG_FUZZ") == "long":
        examples = ci_examples * _LONG_FACTOR
    else:
        examples = ci_examples
    exploring = bool(override) or os.environ.get("LG_FUZZ") == "long"
    return settings(
        max_examples=examples,
        deadline=WALL_BACKSTOP,
        database=None,
        print_blob=True,
        derandomize=not exploring,
        suppress_health_check=list(HealthCheck),
    )


def outcome(fn, *args, **kwargs):
    """``fn(*args, **kwargs)``, or the LgError it raised after checking its message is one
    non-empty line once printed (as cli.main prints it). Any other exception fails the test,
    and so does a call that used more than :data:`DEADLINE` seconds of CPU."""
    started = time.process_time()
    try:
        result = fn(*args, **kwargs)
    except LgError as exc:
        _within_deadline(started)
        shown = printable(str(exc))
        assert shown.strip(), f"{type(exc).__name__} with an empty message"
        assert "\n" not in shown
        event(f"refused: {type(exc).__name__}: {shown[:40]}")  # --hypothesis-show-statistics
        return exc
    _within_deadline(started)
    event("accepted")
    return result


def _within_deadline(started: float) -> None:
    used = time.process_time() - started
    assert used <= DEADLINE, f"one input cost {used:.1f} s of CPU (bound {DEADLINE} s)"
