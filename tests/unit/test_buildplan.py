"""Stage planning (build/plan.py): which stages a target needs, in what order, with which args."""

from __future__ import annotations

import pytest

from layergit.build.dockerfile import DockerfileError, parse
from layergit.build.plan import plan, platform_args
from layergit.errors import UsageError

MULTI = """\
FROM base:1 AS deps
FROM deps AS build
COPY --from=tools /bin/tool /
FROM base:1 AS tools
FROM base:1 AS unrelated
RUN false
FROM base:1 AS test
COPY --from=1 /out /
FROM scratch
COPY --from=build /out /
"""


def planned(text: str, target: str | None = None, **build_args: str):
    return plan(parse(text), "Dockerfile", build_args, target)


def order(text: str, target: str | None = None) -> list[str]:
    return [s.name or str(s.index) for s in planned(text, target).order]


@pytest.mark.parametrize(
    "target, expected",
    [
        (None, ["deps", "build", "5"]),  # the last stage; a --from to a later stage is an image name
        ("build", ["deps", "build"]),
        ("BUILD", ["deps", "build"]),  # stage names compare in lower case
        ("test", ["deps", "build", "test"]),  # --from=1 by index
        ("tools", ["tools"]),
        ("unrelated", ["unrelated"]),
    ],
)
def test_a_target_needs_its_base_and_from_stages_in_dockerfile_order(target, expected):
    assert order(MULTI, target) == expected


def test_every_stage_is_planned_with_its_body_and_line():
    p = planned(MULTI)
    assert [(s.index, s.name, s.base, s.line) for s in p.stages] == [
        (0, "deps", "base:1", 1), (1, "build", "deps", 2), (2, "tools", "base:1", 4),
        (3, "unrelated", "base:1", 5), (4, "test", "base:1", 7), (5, None, "scratch", 9),
    ]
    assert [i.keyword for i in p.stages[3].body] == ["RUN"]


def test_an_unknown_target_is_a_usage_error():
    with pytest.raises(UsageError, match="target stage 'nope' could not be found in Dockerfile"):
        planned(MULTI, "nope")


def test_global_args_expand_from_lines_and_from_flags_and_take_build_args():
    text = "ARG BASE=base:1\nARG STAGE=one\nARG EMPTY\nFROM $BASE AS one\nFROM ${BASE}-slim\nCOPY --from=$STAGE / /\n"
    p = planned(text, BASE="debian:12")
    assert [s.base for s in p.stages] == ["debian:12", "debian:12-slim"]
    assert p.stages[1].needs == {0}
    assert p.globals["BASE"] == "debian:12" and p.globals["STAGE"] == "one" and p.globals["EMPTY"] is None
    assert p.declared == {"BASE", "STAGE", "EMPTY"}


def test_platform_args_are_global_and_stage_args_are_declared_but_not_global():
    p = planned("FROM base:1\nARG VERSION=2\n")
    assert {k: p.globals[k] for k in platform_args()} == platform_args()
    assert platform_args()["TARGETPLATFORM"].startswith("linux/")
    assert "VERSION" not in p.globals and p.declared == {"VERSION"}


@pytest.mark.parametrize(
    "text, message",
    [
        ("RUN true\n", "Dockerfile:1: the first instruction must be FROM"),
        ("ARG A=1\n", "Dockerfile:1: the first instruction must be FROM"),
        ("FROM a b\n", "Dockerfile:1: FROM requires either one or three arguments"),
        ("FROM a AS 1st\n", "Dockerfile:1: invalid stage name '1st'"),
        ("FROM --platform=linux/s390x-nope a\n", "cannot build for platform linux/s390x-nope"),
        ("FROM --pull a\n", "FROM --pull is not supported"),
        ("ARG =x\nFROM a\n", "Dockerfile:1: ARG names can not be blank"),
    ],
)
def test_bad_stage_lines_are_refused_before_anything_runs(text, message):
    with pytest.raises(DockerfileError, match=message):
        planned(text)


def test_from_platform_may_name_ours():
    assert order(f"FROM --platform={platform_args()['TARGETPLATFORM']} a\nFROM --platform=$BUILDPLATFORM b\n") == ["1"]
