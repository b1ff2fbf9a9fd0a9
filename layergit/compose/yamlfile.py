"""Reading a compose file: bounded, YAML 1.2, plain data only.

ruamel.yaml's pure safe loader gives YAML 1.2's core schema (``no``, ``on`` and
``22:22`` are strings; PyYAML's 1.1 rules would make them False, True and 1342) and
builds only maps, lists and scalars. A file is hostile input like any other: it is
read up to :data:`FILE_MAX`, and the value it gives is walked once, with a budget of
:data:`NODES_MAX` nodes and :data:`DEPTH_MAX` levels, before anything else looks at
it, so anchors and aliases that multiply (a "billion laughs") or refer to themselves
end in one line instead of exhausting memory later.
"""

from __future__ import annotations

import datetime
import os

from . import ComposeError, read_small

FILE_MAX = 4 << 20  # bytes; forty services take about 20 KiB
NODES_MAX = 200_000  # values, aliases counted each time they are used
DEPTH_MAX = 64

_SCALARS = (str, int, float, bool, type(None))


def read(path: str) -> dict:
    """The top-level map of the compose file at ``path``."""
    return parse(read_small(path, FILE_MAX, "compose file"), path)


def parse(raw: bytes, name: str) -> dict:
    """``raw`` as a compose document: a map (an empty file is an error, as in compose)."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ComposeError(f"{name} is not UTF-8 text") from None
    yaml = YAML(typ="safe", pure=True)
    try:
        value = yaml.load(text)
    except YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" at line {where.line + 1}, column {where.column + 1}" if where is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ComposeError(f"{name}: not valid YAML{at}: {problem}") from None
    except RecursionError:
        raise ComposeError(f"{name}: nests more deeply than a compose file can") from None
    if not isinstance(value, dict):
        raise ComposeError(f"{name}: a compose file is a map of keys (services, networks, volumes, ...)")
    check_size(value, name)
    return value


def check_size(value: object, name: str) -> None:
    """Walk ``value`` once within the budgets; types YAML may give but compose has no use
    for (dates, binary) are refused here too, so later code meets plain data only."""
    budget = NODES_MAX
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        budget -= 1
        if budget < 0:
            raise ComposeError(f"{name}: more than {NODES_MAX} values once aliases are expanded")
        if depth > DEPTH_MAX:
            raise ComposeError(f"{name}: nests more than {DEPTH_MAX} levels deep")
        if isinstance(node, dict):
            for key, item in node.items():
                if not isinstance(key, str):
                    raise ComposeError(f"{name}: a key must be a string, not {key!r}")
                stack.append((item, depth + 1))
        elif isinstance(node, list):
            stack.extend((item, depth + 1) for item in node)
        elif isinstance(node, (datetime.date, bytes)) or not isinstance(node, _SCALARS):
            raise ComposeError(f"{name}: {type(node).__name__} values have no meaning in a compose file")


def find(directory: str) -> str | None:
    """The compose file of ``directory``, by compose's names and order."""
    for candidate in ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml"):
        path = os.path.join(directory, candidate)
        if os.path.isfile(path):
            return path
    return None
