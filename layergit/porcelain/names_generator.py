"""Random container names in Docker's adjective_noun style, from our own word lists."""

from __future__ import annotations

import random

ADJECTIVES = (
    "amber", "brave", "bright", "calm", "clever", "cosy", "crisp", "daring", "eager", "fancy", "gentle", "glad",
    "golden", "happy", "hardy", "honest", "humble", "jolly", "keen", "kind", "lively", "lucky", "merry", "mighty",
    "modest", "nimble", "noble", "patient", "plucky", "polite", "proud", "quick", "quiet", "rapid", "ready",
    "rustic", "sharp", "shiny", "silent", "snug", "solid", "spry", "steady", "sunny", "swift", "tidy", "trusty",
    "vivid", "warm", "wise", "witty", "zesty",
)
NOUNS = (
    "alder", "aspen", "badger", "beacon", "birch", "bison", "cedar", "comet", "condor", "coral", "crane",
    "dolphin", "falcon", "fern", "finch", "fjord", "gecko", "glacier", "harbor", "hazel", "heron", "ibex",
    "juniper", "kestrel", "lagoon", "larch", "lynx", "magpie", "maple", "marmot", "meadow", "nebula", "otter",
    "owl", "pebble", "pine", "plover", "quartz", "raven", "reef", "robin", "rowan", "sparrow", "spruce",
    "summit", "tern", "thistle", "tundra", "walrus", "willow", "wren", "yak",
)


def random_name() -> str:
    return f"{random.choice(ADJECTIVES)}_{random.choice(NOUNS)}"
