"""The Go-template subset behind --format, checked against what Go and Docker print."""

from __future__ import annotations

import pytest

from cli.gotemplate import Record, TemplateError, parse, render, show, tabwrite

INSPECT = {
    "Id": "abc123",
    "Name": "/web",
    "State": {"Status": "running", "Pid": 4242, "Running": True, "ExitCode": 0},
    "Config": {"Env": ["PATH=/usr/bin", "A=1"], "Labels": {"com.example.tier": "front", "b": "2"},
               "Cmd": ["sh", "-c", "echo hi"]},
    "NetworkSettings": {"Networks": {"lgnet": {"IPAddress": "10.88.0.2"}, "bridge": {"IPAddress": "10.0.0.3"}}},
    "Mounts": [],
}


def run(source: str, data=INSPECT) -> str:
    return parse(source).execute(data)


@pytest.mark.parametrize("source,expected", [
    ("{{.State.Pid}}", "4242"),
    ("{{.Name}}", "/web"),
    ("{{.State.Running}}", "true"),
    ("x{{.Nope}}y", "x<no value>y"),
    ("{{.Config.Labels}}", "map[b:2 com.example.tier:front]"),
    ("{{.Config.Cmd}}", "[sh -c echo hi]"),
    ("{{json .State}}", '{"Status":"running","Pid":4242,"Running":true,"ExitCode":0}'),
    ("{{json .Mounts}}", "[]"),
    ("{{index .Config.Labels \"com.example.tier\"}}", "front"),
    ("{{index .Config.Cmd 2}}", "echo hi"),
    ("{{join .Config.Cmd \",\"}}", "sh,-c,echo hi"),
    ("{{.Name | upper}}", "/WEB"),
    ("{{upper .State.Status | lower}}", "running"),
    ("{{title .State.Status}}", "Running"),
    ("{{range .Config.Env}}{{.}};{{end}}", "PATH=/usr/bin;A=1;"),
    ("{{range $i, $e := .Config.Env}}{{$i}}={{$e}} {{end}}", "0=PATH=/usr/bin 1=A=1 "),
    ("{{range $k, $v := .NetworkSettings.Networks}}{{$k}}:{{$v.IPAddress}} {{end}}",
     "bridge:10.0.0.3 lgnet:10.88.0.2 "),
    ("{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", "10.0.0.310.88.0.2"),
    ("{{range .Mounts}}m{{else}}none{{end}}", "none"),
    ("{{if .State.Running}}up{{else}}down{{end}}", "up"),
    ("{{if eq .State.Status \"exited\"}}a{{else if eq .State.Pid 4242}}b{{else}}c{{end}}", "b"),
    ("{{if not .State.ExitCode}}ok{{end}}", "ok"),
    ("{{if and .State.Running (gt .State.Pid 1)}}yes{{end}}", "yes"),
    ("{{or .Nope \"fallback\"}}", "fallback"),
    ("{{with .State}}{{.Status}}{{end}}", "running"),
    ("{{with .Nope}}x{{else}}empty{{end}}", "empty"),
    ("{{$n := .Name}}{{range .Config.Env}}{{$n}}{{end}}", "/web/web"),
    ("{{$.Name}}", "/web"),
    ("{{(index .NetworkSettings.Networks \"lgnet\").IPAddress}}", "10.88.0.2"),
    ("{{len .Config.Env}}", "2"),
    ("{{printf \"%s-%d\" .Name .State.Pid}}", "/web-4242"),
    ("{{printf \"%-6s|\" \"ab\"}}", "ab    |"),
    ("{{split \"a:b\" \":\"}}", "[a b]"),
    ("{{pad \"x\" 1 2}}|", " x  |"),
    ("{{truncate .Id 3}}", "abc"),
    ("a  {{- .Name -}}  b", "a/webb"),
    ("{{/* a comment */}}z", "z"),
    ("{{`raw\\n`}}", "raw\\n"),
    ("{{println \"a\" 1}}", "a 1\n"),
    ("{{ne .Name \"x\"}}", "true"),
])
def test_evaluates_like_go(source, expected):
    assert run(source) == expected


@pytest.mark.parametrize("value,expected", [
    (1.5, "1.5"), (1e21, "1e+21"), (123456.0, "123456"), (0.0001, "0.0001"), (0.00001, "1e-05"),
    (None, "<no value>"), ([1, None], "[1 <nil>]"), ({"b": [1], "a": {}}, "map[a:map[] b:[1]]"),
])
def test_prints_values_as_go(value, expected):
    assert show(value) == expected


def test_record_is_a_struct_with_methods():
    row = Record(Names="web", Labels="a=1", Label=lambda key: {"a": "1"}.get(key, ""))
    assert run('{{.Names}} {{.Label "a"}}', row) == "web 1"
    with pytest.raises(TemplateError, match="can't evaluate field Nope"):
        run("{{.Nope}}", row)


@pytest.mark.parametrize("source,message", [
    ("{{.Name", "unclosed action"),
    ("{{nosuch .}}", 'function "nosuch" not defined'),
    ("{{define \"x\"}}{{end}}", "not supported"),
    ("{{template \"x\"}}", "not supported"),
    ("{{if .A}}x", "has no {{end}}"),
    ("{{end}}", "unexpected {{end}}"),
    ("{{else}}", "unexpected {{else}}"),
    ("{{}}", "missing value"),
    ("{{(index .A}}", "unclosed left paren"),
    ("{{ # }}", "unexpected"),
    ("{{$x}}", "undefined variable"),
])
def test_bad_templates_are_one_clear_error(source, message):
    with pytest.raises(TemplateError, match=message) as info:
        run(source)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("source", ["{{index .Config.Cmd 9}}", "{{lt .Name 3}}", "{{len .State.Pid}}",
                                    "{{.Name 1}}", "{{range \"s\"}}{{end}}"])
def test_execution_errors(source):
    with pytest.raises(TemplateError):
        run(source)


def test_tabwriter_aligns_like_go():
    # Go: tabwriter.NewWriter(out, 10, 1, 3, ' ', 0), as Docker's tables use it
    assert tabwrite("ID\tNAME\na\tlonger-name-here\n") == "ID        NAME\na         longer-name-here\n"
    assert tabwrite("CONTAINER ID\tX\tY\n1\t2\t3\n") == "CONTAINER ID   X         Y\n1              2         3\n"


def test_render_table_json_and_literal_escapes():
    rows = [Record(ID="abc", Names="web"), Record(ID="def", Names="db")]
    headers = {"ID": "CONTAINER ID", "Names": "NAMES"}
    assert render("table {{.ID}}\\t{{.Names}}", rows, headers, "") == (
        "CONTAINER ID   NAMES\nabc            web\ndef            db\n")
    assert render("{{.Names}}", rows, headers, "") == "web\ndb\n"
    assert render("json", rows, headers, "") == '{"ID":"abc","Names":"web"}\n{"ID":"def","Names":"db"}\n'
    method = [Record(Names="web", Label=lambda key: key, Able="x")]
    assert render("{{json .}}", method, headers, "") == '{"Able":"x","Names":"web"}\n'
    assert render("table", rows, headers, "{{.Names}}") == "NAMES\nweb\ndb\n"


def test_render_escapes_control_characters_from_values():
    rows = [Record(Names="evil\x1b]0;pwned\x07\ttab")]
    assert render("{{.Names}}", rows, {}, "") == "evil\\e]0;pwned\\x07\ttab\n"
