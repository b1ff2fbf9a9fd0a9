"""Random container names in Docker's adjective_noun style, from our own word lists."""

from __future__ import annotations

import os

ADJECTIVES = (
    "amber", "brave", "bright", "calm", "clever", "cosy", "crisp", "daring", "eager", "fancy", "gentle",
    "glad", "golden", "happy", "hardy", "honest", "humble", "jolly", "keen", "kind", "lively", "lucky",
    "merry", "mighty", "modest", "nimble", "noble", "patient", "plucky", "polite", "proud", "quick", "quiet",
    "rapid", "ready", "rustic", "sharp", "shiny", "silent", "snug", "solid", "spry", "steady", "sunny",
    "swift", "tidy", "trusty", "vivid", "warm", "wise", "witty", "zesty",
)
NOUNS = (
    "alder", "aspen", "badger", "beacon", "birch", "bison", "cedar", "comet", "condor", "coral", "crane",
    "dolphin", "falcon", "fern", "finch", "fjord", "gecko", "glacier", "harbor", "hazel", "heron", "ibex",
    "juniper", "kestrel", "lagoon", "larch", "lynx", "magpie", "maple", "marmot", "meadow", "nebula", "otter",
    "owl", "pebble", "pine", "plover", "quartz", "raven", "reef", "robin", "rowan", "sparrow", "spruce",
    "summit", "tern", "thistle", "tundra", "walrus", "willow", "wren", "yak",
)


def _pick(words: tuple[str, ...]) -> str:
    # os.urandom rather than the random module, whose import is ~1 ms of every lg run
    return words[int.from_bytes(os.urandom(4), "big") % len(words)]


def random_name() -> str:
    return f"{_pick(ADJECTIVES)}_{_pick(NOUNS)}"
