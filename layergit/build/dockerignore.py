""".dockerignore (and .containerignore): which context paths COPY and ADD cannot see.

Docker's rules exactly (moby/patternmatcher), so an ignore file behaves as users
know it from ``docker build``: lines starting with ``#`` are comments; patterns are
cleaned (``/foo/`` is ``foo``); ``*`` and ``?`` never match ``/``, ``**`` matches any
number of directories; a pattern that matches a directory matches everything below
it; ``!`` re-includes, and the last matching pattern decides.
"""

from __future__ import annotations

import os
import posixpath
import re
from dataclasses import dataclass

_ESCAPE_IN_REGEX = set(".+()|{}$")


@dataclass(frozen=True)
class Pattern:
    text: str
    exclusion: bool  # a "!" line: re-include what it matches
    regex: re.Pattern


def compile_pattern(text: str) -> re.Pattern:
    """A Docker path pattern as a regular expression over "/"-separated relative paths."""
    out = ["^"]
    i = 0
    while i < len(text):
        ch = text[i]
        i += 1
        if ch == "*":
            if i < len(text) and text[i] == "*":
                i += 1
                if i < len(text) and text[i] == "/":
                    i += 1
                out.append(".*" if i == len(text) else "(.*/)?")
            else:
                out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch in _ESCAPE_IN_REGEX:
            out.append("\\" + ch)
        elif ch == "\\":
            out.append(re.escape(text[i]) if i < len(text) else "\\\\")
            i += 1
        else:
            out.append(ch)
    out.append("$")
    return re.compile("".join(out), re.S)


def parse(text: str) -> list[Pattern]:
    patterns = []
    for n, line in enumerate(text.split("\n")):
        if n == 0:
            line = line.lstrip("\ufeff")
        if line.startswith("#"):
            continue
        line = line.strip()
        if not line:
            continue
        exclusion = line.startswith("!")
        if exclusion:
            line = line[1:].strip()
        if line:
            line = posixpath.normpath(line)
            if len(line) > 1 and line.startswith("/"):
                line = line.lstrip("/") or "."
        patterns.append(Pattern(line, exclusion, compile_pattern(line)))
    return patterns


class Ignore:
    """The patterns of one context; ``excluded(path)`` for "/"-separated relative paths."""

    def __init__(self, patterns: list[Pattern]):
        self.patterns = patterns
        # Without "!" lines nothing below an excluded directory can come back.
        self.has_exclusions = any(p.exclusion for p in patterns)

    @classmethod
    def for_context(cls, context: str, dockerfile: str | None) -> Ignore:
        """The Dockerfile's own ``NAME.dockerignore``, else .containerignore, else .dockerignore."""
        candidates = [dockerfile + ".dockerignore"] if dockerfile else []
        candidates += [os.path.join(context, ".containerignore"), os.path.join(context, ".dockerignore")]
        for path in candidates:
            try:
                with open(path, encoding="utf-8") as f:
                    return cls(parse(f.read()))
            except FileNotFoundError:
                continue
        return cls([])

    def excluded(self, path: str) -> bool:
        matched = False
        parents = path.split("/")[:-1]
        for p in self.patterns:
            if p.exclusion != matched:
                continue
            hit = bool(p.regex.match(path))
            hit = hit or any(p.regex.match("/".join(parents[: i + 1])) for i in range(len(parents)))
            if hit:
                matched = not p.exclusion
        return matched
