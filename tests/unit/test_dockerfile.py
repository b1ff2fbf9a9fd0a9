"""The Dockerfile grammar (build/dockerfile.py), in process: logical lines, parser
directives, here-documents, flags, and Docker's word processing and expansion.

Where BuildKit's own parser tests (moby/buildkit frontend/dockerfile/parser/testfiles)
pin a case, the expectation here is BuildKit's.
"""

from __future__ import annotations

import pytest

from layergit.build import changes, steps
from layergit.build.dockerfile import (
    INSTRUCTIONS,
    DockerfileError,
    Expander,
    Heredoc,
    Instruction,
    arg_declarations,
    copy_words,
    heredoc_name,
    json_list,
    name_values,
    parse,
    split_flags,
)
from layergit.build.plan import plan
from layergit.errors import UsageError


def lines(text: str) -> list[tuple[str, str, int]]:
    """(keyword, arguments, line) of each instruction."""
    return [(i.keyword, i.args, i.line) for i in parse(text).instructions]


# -- logical lines ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("FROM a\nRUN x\n", [("FROM", "a", 1), ("RUN", "x", 2)]),
        ("from a\nRun x", [("FROM", "a", 1), ("RUN", "x", 2)]),  # keywords in any case, no final newline
        ("\ufeffFROM a\r\nRUN x\r\n", [("FROM", "a", 1), ("RUN", "x", 2)]),  # BOM and CRLF
        ("  FROM a\n\n# comment\n   # indented comment\nRUN   x  y", [("FROM", "a", 1), ("RUN", "x  y", 5)]),
        # An escape at the end of a line continues it; blank and comment lines inside are skipped.
        ("FROM a\nRUN echo \\\n  one \\\n\n# note\n  two\n", [("FROM", "a", 1), ("RUN", "echo   one   two", 2)]),
        ("FROM a\nRUN echo \\   \nb\n", [("FROM", "a", 1), ("RUN", "echo b", 2)]),  # blanks after the escape
        ("FROM a\nRUN echo \\", [("FROM", "a", 1), ("RUN", "echo", 2)]),  # continued at the end of the file
        # BuildKit's trailing-backslash cases E, F and G: a continuation alone on its line.
        ("FROM a\nENV E hello\\\n\\\nworld\n", [("FROM", "a", 1), ("ENV", "E helloworld", 2)]),
        ("FROM a\nENV F hello\\\n \\\nworld\n", [("FROM", "a", 1), ("ENV", "F hello world", 2)]),
        ("FROM a\nENV G hello \\\n\\\nworld\n", [("FROM", "a", 1), ("ENV", "G hello world", 2)]),
        ("FROM a\nENV B another\\\\path\n", [("FROM", "a", 1), ("ENV", "B another\\\\path", 2)]),
        # An escaped escape ends the line (BuildKit's case C and D, docker/for-win#5254) ...
        (
            "FROM a\nENV C trailing\\\\backslash\\\\\nENV D not appended to C\n",
            [("FROM", "a", 1), ("ENV", "C trailing\\\\backslash\\\\", 2), ("ENV", "D not appended to C", 3)],
        ),
        ("# escape=`\nFROM a\nENV P C:\\``\nENV Q x\n", [("FROM", "a", 2), ("ENV", "P C:\\``", 3), ("ENV", "Q x", 4)]),
        # ... and so does an escaped escape then an escape, as BuildKit's regular expression has it.
        ("FROM a\nRUN echo \\\\\\\nRUN b\n", [("FROM", "a", 1), ("RUN", "echo \\\\\\", 2), ("RUN", "b", 3)]),
    ],
)
def test_logical_lines(text, expected):
    assert lines(text) == expected


def test_an_escaped_escape_ends_the_value_it_is_in():
    (_, env) = parse("FROM a\nENV C trailing\\\\backslash\\\\\n").instructions
    assert name_values(env, Expander({})) == [("C", "trailing\\backslash\\")]


@pytest.mark.parametrize(
    "text, message",
    [
        ("FROM a\nFROBNICATE x\n", "Dockerfile:2: unknown instruction: FROBNICATE"),
        ("FROM a\nRUN <<EOF\nnever ends\n", "Dockerfile:2: here-document EOF is not terminated"),
        ("# escape=x\nFROM a\n", "invalid escape token 'x'"),
        ("# escape=`\n# ESCAPE=\\\nFROM a\n", "Dockerfile:2: only one escape parser directive can be used"),
    ],
)
def test_parse_errors_name_the_line(text, message):
    with pytest.raises(DockerfileError, match=message):
        parse(text)


# -- parser directives ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, escape, expected",
    [
        ("# escape=`\nFROM a\nRUN a `\n b\n", "`", [("FROM", "a", 2), ("RUN", "a  b", 3)]),
        ("# syntax=docker/dockerfile:1\n#escape = `\nFROM a\n", "`", [("FROM", "a", 3)]),
        ("\ufeff# escape=`\r\nFROM C:\\dir\r\n", "`", [("FROM", "C:\\dir", 2)]),
        # Directives only before anything else: after an unknown one or an instruction, a comment.
        ("# foo=bar\n# escape=`\nFROM a\nRUN a \\\nb\n", "\\", [("FROM", "a", 3), ("RUN", "a b", 4)]),
        ("FROM a\n# escape=`\nRUN a \\\n b\n", "\\", [("FROM", "a", 1), ("RUN", "a  b", 3)]),
    ],
)
def test_directives(text, escape, expected):
    assert parse(text).escape == escape
    assert lines(text) == expected


# -- here-documents ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, heredocs",
    [
        ("RUN <<EOF\necho hi\nEOF\n", (Heredoc("EOF", "echo hi\n", True),)),
        ("RUN <<-EOF cat\n\techo hi\n\tEOF\n", (Heredoc("EOF", "echo hi\n", True),)),  # <<- strips tabs
        ("RUN 3<<EOF\nx\nEOF\n", (Heredoc("EOF", "x\n", True),)),  # a file descriptor before <<
        ("COPY <<A <<'B' /x/\na\nA\n$b\nB\n", (Heredoc("A", "a\n", True), Heredoc("B", "$b\n", False))),
        ('ADD <<"EOF" /x\n$y\n\nEOF\n', (Heredoc("EOF", "$y\n\n", False),)),  # quoted: no expansion
        ("ENV X <<EOF\n", ()),  # only RUN, COPY and ADD take here-documents
    ],
)
def test_heredocs_are_read_after_their_line(text, heredocs):
    (instr,) = parse(text).instructions
    assert instr.heredocs == heredocs


def test_text_is_the_instruction_as_written_with_its_heredocs():
    (instr,) = parse("COPY <<EOF /etc/x.conf\nmode=$MODE\nEOF\n").instructions
    assert instr.text() == "COPY <<EOF /etc/x.conf\nmode=$MODE\nEOF"
    assert instr.text("<<EOF /etc/y.conf") == "COPY <<EOF /etc/y.conf\nmode=$MODE\nEOF"
    assert Instruction("CMD", "", 1).text() == "CMD"


@pytest.mark.parametrize(
    "word, name",
    [("<<EOF", "EOF"), ("<<-'EOF'", "EOF"), ('<<"E.1"', "E.1"), ("2<<X", "X"), ("<<E'", None), ("x<<EOF", None), ("EOF", None)],
)
def test_heredoc_name(word, name):
    assert heredoc_name(word) == name


# -- flags and forms --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, flags, rest",
    [
        ("--from=a --chown='x y' --link b c", {"from": ["a"], "chown": ["x y"], "link": ["true"]}, "b c"),
        ('--mount=type=cache,target=/x --a="b c" echo', {"mount": ["type=cache,target=/x"], "a": ["b c"]}, "echo"),
        ("--network=none --network=host x", {"network": ["none", "host"]}, "x"),
        ("-- --not-a-flag b", {}, "--not-a-flag b"),
        ("echo --not-a-flag", {}, "echo --not-a-flag"),
    ],
)
def test_split_flags(args, flags, rest):
    assert split_flags(args) == (flags, rest)


@pytest.mark.parametrize(
    "args, words",
    [
        ("a b\t c/ ", ["a", "b", "c/"]),
        ('["a b", "c"]', ["a b", "c"]),
        ('"a b" $S', ['"a', 'b"', "$S"]),  # quotes and variables are each word's, for its expansion
        ('\\conf\\\\" /.znc', ['\\conf\\\\"', "/.znc"]),  # BuildKit's testfile escapes
        ("<<EOF <<-'X' /d/", ["<<EOF", "<<-'X'", "/d/"]),
        ("", []),
    ],
)
def test_copy_words_are_split_at_blanks_before_expansion(args, words):
    assert copy_words(args) == words


def test_escaped_quotes_in_add_copy_and_label_words():
    """BuildKit's parser testfile escapes: none of these lines opens a quote."""
    df = parse(
        "FROM ubuntu:14.04\n"
        "LABEL maintainer Erik \\\\Hollensbe <erik@hollensbe.org>\\\"\n"
        "RUN apt-get \\update && \\\n"
        "  apt-get \\\"install znc -y\n"
        "ADD \\conf\\\\\" /.znc\n"
    )
    label, run, add = df.instructions[1:]
    assert name_values(label, Expander({})) == [("maintainer", 'Erik \\Hollensbe <erik@hollensbe.org>"')]
    assert run.args == 'apt-get \\update &&   apt-get \\"install znc -y' and run.heredocs == ()
    assert copy_words(add.args) == ['\\conf\\\\"', "/.znc"]
    # Each word then expands on its own, as BuildKit's dispatch does: this one has an open quote.
    with pytest.raises(DockerfileError, match="matching double-quote"):
        Expander({}).word(copy_words(add.args)[0])


def test_a_line_that_does_not_lex_has_no_heredocs_but_is_an_instruction():
    (_, run) = parse('FROM a\nRUN echo "<<EOF\nRUN b\n').instructions[:2]
    assert (run.args, run.heredocs) == ('echo "<<EOF', ())


@pytest.mark.parametrize(
    "args, value",
    [('["a", "b c"]', ["a", "b c"]), ('  [ "a" ]  ', ["a"]), ("[]", []), ("[1]", None), ('[ "a" ', None), ("echo [x]", None)],
)
def test_json_list_is_the_exec_form(args, value):
    assert json_list(args) == value


# -- words and expansion ----------------------------------------------------------------------

ENV = {"A": "1", "E": "", "S": "x y"}


@pytest.mark.parametrize(
    "text, word, words, rendered",
    [
        ("$A", "1", ["1"], "1"),
        ("${A}x$U.", "1x.", ["1x."], "1x."),  # unset is empty
        ("${U:-d} ${E:-d} ${E-d}", "d d ", ["d", "d"], "d d "),
        ("${A:+s}${U+s}${E+t}", "st", ["st"], "st"),
        ("$S", "x y", ["x", "y"], "x y"),  # an expansion outside quotes splits
        ('"$S"', "x y", ["x y"], '"x y"'),
        ("'$A'", "$A", ["$A"], "'$A'"),  # single quotes: nothing expands
        ("a\\ b \\$A", "a b $A", ["a b", "$A"], "a\\ b \\$A"),
        ('"\\$A \\" \\x"', '$A " \\x', ['$A " \\x'], '"\\$A \\" \\x"'),  # in double quotes \ escapes only $ " \
        ("$ $1 a$", "$  a$", ["$", "a$"], "$  a$"),  # no name: a $ is itself; $1 is unset
    ],
)
def test_expansion(text, word, words, rendered):
    ex = Expander(ENV)
    assert (ex.word(text), ex.words(text), ex.render(text)) == (word, words, rendered)


def test_raw_words_keep_quotes_and_escapes():
    assert Expander(ENV).raw_words("a 'b c' \"$A d\" e\\ f ${A}") == ["a", "'b c'", '"$A d"', "e\\ f", "${A}"]


def test_the_escape_directive_changes_the_escape_character():
    ex = Expander(ENV, "`")
    assert ex.word("C:\\dir `$A") == "C:\\dir $A"


@pytest.mark.parametrize(
    "text, message",
    [
        ("${U?must be set}", "U: must be set"),
        ("${U:?}", "U: is not allowed to be unset"),
        ("${A^x}", "unsupported modifier"),
        ("${A#x", "missing '}'"),
        ("${A/x/y", "missing '}'"),
        ("${", "bad substitution"),
        ("${A:-x", "missing '}'"),
        ("'x", "matching single-quote"),
        ('"x', "matching double-quote"),
    ],
)
def test_expansion_errors(text, message):
    with pytest.raises(DockerfileError, match=message):
        Expander(ENV).word(text)


# -- instruction arguments --------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, pairs",
    [
        ("A=1 B=$A", [("A", "1"), ("B", "1")]),  # all expanded with the variables before the line
        ('A="x y" B=z\\ w', [("A", "x y"), ("B", "z w")]),
        ("A x y  $A", [("A", "x y  1")]),  # the legacy form: the rest of the line, spaces kept
        ("maintainer Erik \\\\Hollensbe <erik@hollensbe.org>\\\"", [("maintainer", 'Erik \\Hollensbe <erik@hollensbe.org>"')]),
    ],
)
def test_name_values(args, pairs):
    assert name_values(Instruction("LABEL", args, 1), Expander(ENV)) == pairs


@pytest.mark.parametrize(
    "args, message",
    [("", "LABEL requires at least one argument"), ("A", "LABEL A needs a value"), ("A=1 B", "expects KEY=VALUE, got 'B'")],
)
def test_name_values_errors(args, message):
    with pytest.raises(DockerfileError, match=message):
        name_values(Instruction("LABEL", args, 1), Expander(ENV))


def test_arg_declarations():
    assert arg_declarations(Instruction("ARG", "V W=$A X=", 3), Expander(ENV), "Dockerfile") == [("V", None), ("W", "1"), ("X", "")]
    with pytest.raises(DockerfileError, match="Dockerfile:3: ARG requires at least one argument"):
        arg_declarations(Instruction("ARG", "", 3), Expander(ENV), "Dockerfile")


# -- the steps table and lg commit -c ----------------------------------------------------------


def test_every_instruction_but_from_has_a_step_headed_by_its_syntax():
    assert set(steps.STEPS) == INSTRUCTIONS - {"FROM"}
    for keyword, function in steps.STEPS.items():
        assert function.__doc__.split()[0] == keyword, function.__name__


@pytest.mark.parametrize("text, ns", [("30s", 30_000_000_000), ("1m30s", 90_000_000_000), ("1.5ms", 1_500_000), ("2h", 7_200_000_000_000)])
def test_durations(text, ns):
    assert steps.duration_ns(text) == ns


@pytest.mark.parametrize("text", ["", "30", "s", "1d", "-1s"])
def test_bad_durations(text):
    with pytest.raises(DockerfileError, match="invalid duration"):
        steps.duration_ns(text)


@pytest.mark.parametrize(
    "change, config",
    [
        ('CMD ["nginx", "-g", "daemon off;"]', {"Cmd": ["nginx", "-g", "daemon off;"]}),
        ("cmd nginx -g 'daemon off;'", {"Cmd": ["/bin/sh", "-c", "nginx -g 'daemon off;'"]}),
        ("ENTRYPOINT", {}),
        ("ENV A=1 B='x y'", {"Env": ["A=1", "B=x y"]}),
        ("ENV C value with spaces", {"Env": ["C=value with spaces"]}),
        ("EXPOSE 80 53/udp", {"ExposedPorts": {"80/tcp": {}, "53/udp": {}}}),
        ('VOLUME ["/a", "/b"]', {"Volumes": {"/a": {}, "/b": {}}}),
        ("LABEL a=b", {"Labels": {"a": "b"}}),
        ("WORKDIR /srv", {"WorkingDir": "/srv"}),
        ("USER 1000:1000", {"User": "1000:1000"}),
        ("STOPSIGNAL SIGQUIT", {"StopSignal": "SIGQUIT"}),
    ],
)
def test_commit_changes(change, config):
    assert changes.apply({}, change) == config


@pytest.mark.parametrize("change", ["RUN true", "ENV", "ENV =x"])
def test_commit_changes_refused(change):
    with pytest.raises(UsageError):
        changes.apply({}, change)


# -- what the fuzzer found (issue 12) --------------------------------------------------------------


def test_substitutions_nested_past_the_limit_are_one_error():
    """${x:-${x:-...}} 3,000 deep ended in RecursionError; 64 levels still expand."""
    ok = "${x:-" * 64 + "v" + "}" * 64
    assert Expander({}).word(ok) == "v"
    deep = "${x:-" * 3000 + "}" * 3000
    with pytest.raises(DockerfileError, match="nested over 64 deep"):
        Expander({}).word(deep)
    with pytest.raises(DockerfileError, match="nested over 64 deep"):
        plan(parse("FROM " + deep), "Dockerfile", {})


def test_json_arrays_nested_past_json_s_limit_are_the_shell_form():
    """CMD [[[[... 100,000 deep: not an exec form (json gives up), so the shell form, as Docker does."""
    text = "[" * 100_000
    assert json_list(text) is None
    assert changes.apply({}, "CMD " + text) == {"Cmd": ["/bin/sh", "-c", text]}


PATHS = {"F": "/usr/local/lib/app.tar.gz", "V": "v1.2.3", "E": ""}


@pytest.mark.parametrize("text, expected", [
    ("${F#*/}", "usr/local/lib/app.tar.gz"),
    ("${F##*/}", "app.tar.gz"),
    ("${F%.*}", "/usr/local/lib/app.tar"),
    ("${F%%.*}", "/usr/local/lib/app"),
    ("${F%/*}", "/usr/local/lib"),
    ("${V#v}", "1.2.3"),
    ("${V#x}", "v1.2.3"),
    ("${V/./-}", "v1-2.3"),
    ("${V//./-}", "v1-2-3"),
    ("${V//[0-9]/N}", "vN.N.N"),
    ("${V/v}", "1.2.3"),
    ("${V/?/x}", "x1.2.3"),
    ("${E#*}", ""),
    ("${UNSET%%*}", ""),
    ("${F##*/}-${V#v}", "app.tar.gz-1.2.3"),
    ("${V/1/${E:-one}}", "vone.2.3"),
])
def test_buildkit_pattern_substitutions(text, expected):
    assert Expander(PATHS).word(text) == expected


def test_pattern_substitutions_take_bounded_time():
    import time

    started = time.monotonic()
    ex = Expander({"V": "a" * 3000})
    assert ex.word("${V#*a*a*a*a*b}") == "a" * 3000  # a regex would backtrack for hours here
    assert ex.word("${V%%*a*a*a*a*b}") == "a" * 3000
    with pytest.raises(DockerfileError, match="too costly"):
        Expander({"V": "a" * 20000}).word("${V//*a*a*a*b/x}")
    assert time.monotonic() - started < 10
