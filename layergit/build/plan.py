"""Which stages a build runs, in what order, with which global args: decided from the
Dockerfile alone, before any step runs (builder.py then runs the plan).

A Dockerfile is global ARGs, then stages: a FROM and the instructions up to the next
one. A stage needs the earlier stage it is built FROM and those it COPYs or ADDs
--from, by name or index. Only the target (the last stage, or ``--target``) and what
it needs, transitively, are built, in the Dockerfile's order, as BuildKit does: a
broken stage nothing needs does not fail the build.

The global ARGs (and BuildKit's automatic platform args) are what FROM lines and
--from values expand; a stage sees one only if it declares it again with ARG.
"""

from __future__ import annotations

import platform
import re
from dataclasses import dataclass, field
from typing import Mapping

from ..errors import UsageError
from .dockerfile import (
    Dockerfile,
    DockerfileError,
    Expander,
    Instruction,
    arg_declarations,
    check_flags,
    split_flags,
)

_STAGE_NAME = re.compile(r"^[a-z][a-z0-9_.-]*$")
# platform.machine() to (GOARCH, variant), as BuildKit names them.
_ARCHES = {
    "x86_64": ("amd64", ""), "amd64": ("amd64", ""), "aarch64": ("arm64", ""), "arm64": ("arm64", ""),
    "armv7l": ("arm", "v7"), "armv6l": ("arm", "v6"), "i686": ("386", ""), "i386": ("386", ""),
}


@dataclass
class Stage:
    index: int
    name: str | None  # lower case, as stage names compare
    base: str  # what FROM names, global args expanded: an image, an earlier stage or scratch
    line: int
    body: list[Instruction] = field(default_factory=list)
    needs: set[int] = field(default_factory=set)  # indexes of the stages it uses


@dataclass
class Plan:
    stages: list[Stage]  # every stage of the Dockerfile
    order: list[Stage]  # the ones to build, in order; the last is the target
    globals: dict[str, str | None]  # platform args and global ARGs, --build-arg values applied
    declared: set[str]  # every ARG's name, global or not (other build args are reported unused)
    escape: str  # the Dockerfile's escape character, for expanding the rest


def plan(df: Dockerfile, name: str, build_args: Mapping[str, str], target: str | None = None) -> Plan:
    """The plan for building ``target`` of ``df`` (``name``: the Dockerfile's, for messages)."""
    instructions = df.instructions
    raw = Expander({}, df.escape)
    declared = {
        w.partition("=")[0]
        for instr in instructions if instr.keyword == "ARG"
        for w in raw.raw_words(instr.args)
    }
    scope: dict[str, str | None] = dict(platform_args())
    i = 0
    while i < len(instructions) and instructions[i].keyword == "ARG":
        for key, default in arg_declarations(instructions[i], _expander(scope, df.escape), name):
            scope[key] = build_args.get(key, default)
        i += 1
    if i == len(instructions) or instructions[i].keyword != "FROM":
        line = instructions[i].line if i < len(instructions) else 1
        raise DockerfileError(
            f"{name}:{line}: the first instruction must be FROM (only ARG may come before it)"
        )
    stages, by_name = _stages(instructions[i:], scope, df.escape, name)
    last = stages[-1]
    if target:
        if target.lower() not in by_name:
            raise UsageError(f"target stage {target!r} could not be found in {name}")
        last = stages[by_name[target.lower()]]
    return Plan(stages, _needed(stages, last), scope, declared, df.escape)


def platform_args() -> dict[str, str]:
    """BuildKit's automatic platform args (global scope: FROM sees them, a stage must declare them)."""
    machine = platform.machine().lower()
    arch, variant = _ARCHES.get(machine, (machine, ""))
    plat = f"linux/{arch}" + (f"/{variant}" if variant else "")
    out = {}
    for prefix in ("TARGET", "BUILD"):
        out.update({
            f"{prefix}PLATFORM": plat,
            f"{prefix}OS": "linux",
            f"{prefix}ARCH": arch,
            f"{prefix}VARIANT": variant,
        })
    return out


def _expander(scope: Mapping[str, str | None], escape: str) -> Expander:
    return Expander({k: v for k, v in scope.items() if v is not None}, escape)


def _stages(
    instructions: list[Instruction], scope: dict[str, str | None], escape: str, name: str
) -> tuple[list[Stage], dict[str, int]]:
    """The stages from the first FROM on, with what each needs, and the index of each name."""
    ex = _expander(scope, escape)
    stages: list[Stage] = []
    by_name: dict[str, int] = {}
    for instr in instructions:
        if instr.keyword == "FROM":
            stage = _from_line(instr, len(stages), ex, scope["TARGETPLATFORM"], name)
            if stage.base.lower() in by_name:
                stage.needs.add(by_name[stage.base.lower()])
            if stage.name:
                by_name[stage.name] = stage.index
            stages.append(stage)
            continue
        stage = stages[-1]
        stage.body.append(instr)
        for ref in _stage_refs(instr, ex):
            if ref in by_name:
                stage.needs.add(by_name[ref])
            elif ref.isdigit() and int(ref) < stage.index:
                stage.needs.add(int(ref))
    return stages, by_name


def _stage_refs(instr: Instruction, ex: Expander) -> list[str]:
    """What an instruction reads from other stages: COPY/ADD --from, RUN --mount from=."""
    flags = split_flags(instr.args)[0]
    if instr.keyword in ("COPY", "ADD"):
        return [ex.word(flags["from"][-1]).lower()] if flags.get("from") else []
    if instr.keyword != "RUN":
        return []
    refs = []
    for spec in flags.get("mount", []):
        for word in ex.word(spec).split(","):
            key, _, value = word.partition("=")
            if key.strip().lower() == "from" and value:
                refs.append(value.strip().strip('"').lower())
    return refs


def _from_line(instr: Instruction, index: int, ex: Expander, here: str | None, name: str) -> Stage:
    """FROM [--platform=PLATFORM] IMAGE|STAGE|scratch [AS NAME] (``here``: our own platform)"""
    flags, rest = split_flags(instr.args)
    check_flags(instr, flags, {"platform"}, name)
    for value in flags.get("platform", []):
        if ex.word(value) not in (here, "linux"):
            raise DockerfileError(
                f"{name}:{instr.line}: cannot build for platform {ex.word(value)}: lg runs {here} only"
            )
    words = ex.words(rest)
    stage_name = None
    if len(words) == 3 and words[1].lower() == "as":
        stage_name = words[2].lower()
        if not _STAGE_NAME.match(stage_name):
            raise DockerfileError(f"{name}:{instr.line}: invalid stage name {words[2]!r}")
    elif len(words) != 1:
        raise DockerfileError(f"{name}:{instr.line}: FROM requires either one or three arguments")
    return Stage(index, stage_name, words[0], instr.line)


def _needed(stages: list[Stage], target: Stage) -> list[Stage]:
    """``target`` and every stage it needs, directly or not, in the Dockerfile's order."""
    needed, todo = set(), [target.index]
    while todo:
        index = todo.pop()
        if index not in needed:
            needed.add(index)
            todo += stages[index].needs
    return [s for s in stages if s.index in needed]
