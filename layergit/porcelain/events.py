"""lg events: a root's container events, past and as they come, filtered as Docker filters them.

The log itself is the runtime's (runtime/events.py); here is what ``docker events``
adds on top: ``--since``/``--until`` (timespec), and ``--filter container=|event=|
image=|type=`` (filters.py's rules: values of one key are alternatives, keys must all
hold; a container matches by full id, id prefix or name, as Docker's filter does).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from ..errors import UsageError
from ..runtime import events as log
from . import filters as filtering

if TYPE_CHECKING:
    from .repo import Repo

KEYS = ("container", "event", "image", "type")
ACTIONS = ("create", "start", "die", "kill", "stop", "pause", "unpause", "rename", "destroy")


def _matches(event: log.Event, wanted: filtering.Filters) -> bool:
    name = event.attributes.get("name", "")
    if "container" in wanted and not any(v in (event.id, name) or event.id.startswith(v)
                                         for v in wanted.get("container")):
        return False
    if "event" in wanted and event.action not in wanted.get("event"):
        return False
    if "image" in wanted and event.attributes.get("image", "") not in wanted.get("image"):
        return False
    return "type" not in wanted or event.type in wanted.get("type")


def events(repo: Repo, since: float | None, until: float | None, words: list[str]) -> Iterator[log.Event]:
    """The events from ``since`` (None: from now) until ``until`` (None: for ever), seconds
    since the epoch, that pass the ``--filter`` words (checked before anything is read)."""
    wanted = filtering.parse(words, KEYS)
    for value in wanted.get("event"):
        if value not in ACTIONS:
            raise UsageError(f"invalid filter 'event={value}' (one of: {', '.join(ACTIONS)})")
    since_ns = None if since is None else int(since * 1e9)
    until_ns = None if until is None else int(until * 1e9)
    for event in log.watch(repo.root.run, since_ns, until_ns):
        if _matches(event, wanted):
            yield event
