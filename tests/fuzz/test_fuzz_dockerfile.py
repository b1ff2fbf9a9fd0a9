"""Fuzzing the Dockerfile parser and planner (build/dockerfile.py, build/plan.py): a
Dockerfile is text anyone hands to lg build. Lines made of instruction keywords and the
characters that mean something (quotes, escapes, $ expansions, heredoc markers, JSON
brackets, flags) parse and plan, with every argument helper the steps use applied to
every instruction, or give one line."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from layergit.build import dockerfile as D
from layergit.build import gitsource
from layergit.build.mounts import parse_run_mount, parse_secret
from layergit.build.plan import plan

from . import fuzz, outcome

_PIECES = st.sampled_from([
    " ", " ", "\t", "a", "b=c", "$x", "${x}", "${x:-d}", "${x:+e}", "${", "}", "$", "\\", "\\\n", "`", "'", "\"",
    "[", "]", "[\"a\"]", "[\"sh\", \"-c\"]", ",", "--from=s", "--chown=1:1", "--mount=type=cache,target=/x", "--",
    "<<EOF", "<<-EOF", "<<'EOF'", "<<\"E\"", "EOF", "E", "#", "=", "AS", "as", "s", "scratch", "alpine:3", "/x", "*",
    "\u00e9", "\x00", "\r", "[" * 50, "$" * 20, "{" * 20, "[" * 3000, "${x:-" * 400, "$(" * 200,
])
_KEYWORDS = st.sampled_from(sorted(D.INSTRUCTIONS) + ["from", "Run", "BOGUS", "#", "# escape=`", "# syntax=x", "# check=y", ""])


@st.composite
def dockerfiles(draw) -> str:
    lines = []
    for _ in range(draw(st.integers(1, 8))):
        args = "".join(draw(st.lists(_PIECES, max_size=10)))
        lines.append(f"{draw(_KEYWORDS)} {args}")
    if draw(st.booleans()):
        lines.insert(0, draw(st.sampled_from(["# escape=`", "# escape=\\", "# escape=x", "#escape=", "# syntax=docker/dockerfile:1"])))
    return draw(st.sampled_from(["\n", "\r\n", "\\\n"])).join(lines) + draw(st.sampled_from(["", "\n", "\\"]))


def _use(text: str, args: dict[str, str], target: str | None):
    df = D.parse(text)
    ex = D.Expander(args, df.escape)
    for instr in df.instructions:
        flags, rest = D.split_flags(instr.args)
        D.copy_words(rest)
        D.json_list(rest)
        ex.words(instr.args)
        ex.render(instr.args)
        ex.raw_words(instr.args)
        if instr.keyword in ("ENV", "LABEL"):
            D.name_values(instr, ex)
        if instr.keyword == "ARG":
            D.arg_declarations(instr, ex, "Dockerfile")
        for spec in flags.get("mount", []) if instr.keyword == "RUN" else []:
            parse_run_mount(ex.word(spec), "/w")
        for word in D.copy_words(rest) if instr.keyword == "ADD" else []:
            gitsource.parse(word)
    return plan(df, "Dockerfile", args, target)


@fuzz(300)
@given(dockerfiles(), st.dictionaries(st.sampled_from(["x", "y", "BASE"]), st.text(max_size=6), max_size=2),
       st.one_of(st.none(), st.sampled_from(["s", "0", "1", "nope"])))
def test_dockerfiles(text, args, target):
    outcome(_use, text, args, target)


@fuzz(200)
@given(st.text(max_size=200))
def test_dockerfile_text(text):
    outcome(_use, text, {}, None)


_MOUNT_PIECES = st.sampled_from([
    "type=", "bind", "cache", "secret", "tmpfs", "nfs", ",", "target=", "dst=", "/x", "x", "id=", "source=", "src=",
    "from=", "sharing=", "locked", "private", "mode=", "0700", "999", "uid=", "gid=", "-1", "1", "size=", "1m",
    "required", "env=", "E", "ro", "rw", "readonly=", "true", "maybe", "\"", "'", "=", "..", "/", "\n", "\x00",
    "#", ":", "git@h:r.git", "https://h/r.git", "é",
])


@fuzz(200)
@given(st.lists(_MOUNT_PIECES, max_size=14).map("".join))
def test_run_mounts_secrets_and_git_sources(text):
    outcome(parse_run_mount, text, "/w")
    outcome(parse_secret, text, {"E": "v"})
    outcome(gitsource.parse, text)
