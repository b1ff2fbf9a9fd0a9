""".dockerignore rules (build/dockerignore.py), in process: moby/patternmatcher's
patterns, its ignore-file cleaning, and which file a context's rules come from."""

from __future__ import annotations

import pytest

from layergit.build.dockerignore import Ignore, compile_pattern, parse


@pytest.mark.parametrize(
    "pattern, matches, misses",
    [
        ("*.log", ["a.log", ".log"], ["sub/a.log", "a.logx"]),  # * never crosses a /
        ("a?c", ["abc", "a.c"], ["a/c", "ac"]),
        ("**/*.tmp", ["x.tmp", "a/b/x.tmp"], ["x.tmpl"]),  # ** is any number of directories, none too
        ("dir/**/x", ["dir/x", "dir/a/b/x"], ["dirx", "other/dir/x"]),
        ("a/**", ["a/b", "a/b/c"], ["a", "ab"]),
        ("**", ["a", "a/b"], []),
        ("[ab].txt", ["a.txt", "b.txt"], ["c.txt", "ab.txt"]),
        ("[^a]", ["b"], ["a"]),
        ("f\\*", ["f*"], ["fo"]),  # \ escapes
        ("a.b(c)+{d}|$", ["a.b(c)+{d}|$"], ["axb(c)+{d}|$"]),  # regex characters mean themselves
    ],
)
def test_patterns(pattern, matches, misses):
    regex = compile_pattern(pattern)
    assert [p for p in matches + misses if regex.match(p)] == matches


def test_ignore_files_are_cleaned_like_dockers():
    text = "\ufeff# comment\n*.log\n  !  keep.log  \n/secret/\n./build//out\n  spaced  \n\n # not a comment\n/\n"
    assert [(p.text, p.exclusion) for p in parse(text)] == [
        ("*.log", False), ("keep.log", True), ("secret", False), ("build/out", False), ("spaced", False),
        ("# not a comment", False), ("/", False),
    ]


RULES = "*.log\n!keep.log\nbuild\n!build/keep\n**/*.tmp\n/secret/\n"


@pytest.mark.parametrize(
    "path, excluded",
    [
        ("a.log", True),
        ("keep.log", False),  # re-included by a later "!"
        ("sub/b.log", False),  # *.log is the top directory's only
        ("build", True),
        ("build/out.o", True),  # a matching directory excludes what is below it
        ("build/keep", False),
        ("build/keep/x", False),  # ... unless a later "!" brings it back
        ("deep/y/z.tmp", True),
        ("x.tmp", True),
        ("secret/key", True),
        ("readme.md", False),
    ],
)
def test_the_last_matching_rule_decides(path, excluded):
    assert Ignore(parse(RULES)).excluded(path) is excluded


def test_without_exclusions_nothing_below_an_excluded_directory_comes_back():
    assert not Ignore(parse("build\n")).has_exclusions
    assert Ignore(parse("build\n!build/keep\n")).has_exclusions


@pytest.mark.parametrize(
    "files, dockerfile, expected",
    [
        ({".dockerignore": "a\n"}, None, ["a"]),
        ({".dockerignore": "a\n", ".containerignore": "b\n"}, None, ["b"]),  # podman's name wins
        ({".dockerignore": "a\n", "app.Dockerfile.dockerignore": "c\n"}, "app.Dockerfile", ["c"]),  # then the Dockerfile's own
        ({".dockerignore": "a\n"}, "app.Dockerfile", ["a"]),
        ({}, None, []),
    ],
)
def test_which_file_a_context_takes_its_rules_from(tmp_path, files, dockerfile, expected):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    ignore = Ignore.for_context(str(tmp_path), str(tmp_path / dockerfile) if dockerfile else None)
    assert [p.text for p in ignore.patterns] == expected
