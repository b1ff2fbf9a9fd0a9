"""Compose files read into typed values (layergit/compose): YAML 1.2, interpolation, .env,
every key checked, refusals by name, dependency order. In process, no runtime."""

from __future__ import annotations

import pytest

from layergit.compose import ComposeError
from layergit.compose.interpolate import Variables, parse_env, substitute
from layergit.compose.model import Dependency, Mount, Port, document, load, project_name
from layergit.compose.yamlfile import NODES_MAX, parse


def project(text: str, tmp_path, environ=None, **kw):
    return load(parse(text.encode(), "compose.yaml"), str(tmp_path), environ or {}, **kw)


def refused(text: str, tmp_path, environ=None) -> str:
    with pytest.raises(ComposeError) as info:
        project(text, tmp_path, environ)
    message = str(info.value)
    assert "\n" not in message
    return message


# -- YAML ---------------------------------------------------------------------------------


def test_yaml_is_read_as_1_2_so_no_and_port_pairs_stay_strings():
    doc = parse(b"restart: no\nports:\n  - 22:22\nflag: on\n", "f")
    assert doc == {"restart": "no", "ports": ["22:22"], "flag": "on"}


@pytest.mark.parametrize("text, message", [
    (b"- a\n- b\n", "a compose file is a map"),
    (b"", "a compose file is a map"),
    (b"services: [\n", "not valid YAML at line"),
    (b"\xff\xfe", "not UTF-8"),
    (b"a: !!binary aGVsbG8=\n", "bytes values have no meaning"),
    (b"a: 2001-12-14\n", "date values have no meaning"),
    (b"1: x\n", "a key must be a string"),
    (b"a: " + b"[" * 100 + b"]" * 100 + b"\n", "nests more than 64 levels"),
])
def test_malformed_yaml_is_one_line(text, message):
    with pytest.raises(ComposeError, match=message):
        parse(text, "f")


def test_an_alias_bomb_is_refused_before_it_is_expanded():
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1},"
              f" *a{i - 1}, *a{i - 1}]" for i in range(1, 9)]
    with pytest.raises(ComposeError, match=f"more than {NODES_MAX} values"):
        parse("\n".join(lines).encode(), "f")


def test_a_value_that_contains_itself_is_refused():
    with pytest.raises(ComposeError, match="values|levels"):
        parse(b"a: &a [*a]\n", "f")


# -- interpolation ------------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("$A-${A}", "1-1"), ("$$A", "$A"), ("${EMPTY:-d}", "d"), ("${EMPTY-d}", ""), ("${UNSET-d}", "d"),
    ("${A:+alt}", "alt"), ("${EMPTY:+alt}", ""), ("${EMPTY+alt}", "alt"), ("${UNSET+alt}", ""),
    ("${UNSET:-${A}x}", "1x"), ("${UNSET:-${UNSET2:-deep}}", "deep"), ("cost: $", "cost: $"),
    ("${A:?never}", "1"), ("a}b", "a}b"),
])
def test_interpolation_forms(text, expected):
    assert substitute(text, Variables({"A": "1", "EMPTY": ""}), "x") == expected


@pytest.mark.parametrize("text, said", [
    ("${A" + "x" * 100_000, "invalid interpolation format '${A" + "x" * 77 + "...': no closing brace"),
    ("${A!" + "x" * 100_000 + "}", "invalid interpolation format ${A!" + "x" * 76 + "..."),
    ("${1" + "x" * 100_000 + "}", "invalid interpolation format ${1" + "x" * 77 + "...: not a variable name"),
    ("${B?" + "x" * 100_000 + "}", "required variable B is missing a value: " + "x" * 80 + "..."),
])
def test_a_long_value_is_clipped_in_errors(text, said):
    with pytest.raises(ComposeError) as info:
        substitute(text, Variables({}), "services.web.image")
    assert str(info.value) == f"services.web.image: {said}"


def test_defaults_nest_32_deep():
    assert substitute("${A:-" * 32 + "x" + "}" * 32, Variables({}), "x") == "x"


def test_an_unset_variable_is_empty_and_named_once():
    variables = Variables({})
    assert substitute("${NOPE}/$NOPE", variables, "x") == "/"
    assert variables.unset == ["NOPE"]


@pytest.mark.parametrize("text, message", [
    ("${REQ:?give it}", "required variable REQ is missing a value: give it"),
    ("${EMPTY:?}", "required variable EMPTY is missing a value"),
    ("${A", "no closing brace"), ("${1A}", "not a variable name"), ("${A!x}", "invalid interpolation format"),
    ("${A:-" * 33 + "x" + "}" * 33, "variables nest more than 32 levels deep"),
    ("${A:-" * 5000 + "x" + "}" * 5000, "variables nest more than 32 levels deep"),
])
def test_interpolation_errors(text, message):
    with pytest.raises(ComposeError, match=message.replace("(", r"\(")):
        substitute(text, Variables({"A": "1", "EMPTY": ""}), "services.web.image")


def test_the_environment_wins_over_dotenv(tmp_path):
    (tmp_path / ".env").write_text("TAG=from-dotenv\nOTHER=dotenv\n")
    p = project("services:\n  web:\n    image: app:${TAG}-${OTHER}\n", tmp_path, {"TAG": "shell"})
    assert p.services["web"].image == "app:shell-dotenv"


def test_dotenv_syntax():
    env = parse_env("# comment\n\nexport A=1\nB = two words # note\nC='raw $A # kept'\n"
                    'D="x\\ty $A"\nE=${A}-${Z:-z}\nF=\n', ".env", {})
    assert env == {"A": "1", "B": "two words", "C": "raw $A # kept", "D": "x\ty 1", "E": "1-z", "F": ""}
    with pytest.raises(ComposeError, match=".env:1: not a NAME=VALUE line"):
        parse_env("just words\n", ".env", {})
    with pytest.raises(ComposeError, match="not closed"):
        parse_env('A="open\n', ".env", {})
    with pytest.raises(ComposeError, match=".env:2: a single quote is not closed"):
        parse_env("A=1\nB='open\nC=3\n", ".env", {})


def test_dotenv_quoted_values_go_on_over_lines():
    """As compose's .env: a quoted value runs to its closing quote, lines and all (a PEM key);
    an escaped double quote does not close one; the lines after it are read as lines again."""
    env = parse_env('KEY="-----BEGIN KEY-----\nabc\\"def\n-----END KEY-----"\nRAW=\'one\ntwo $X\'\nAFTER=1\n',
                    ".env", {"X": "x"})
    assert env == {"KEY": '-----BEGIN KEY-----\nabc"def\n-----END KEY-----', "RAW": "one\ntwo $X", "AFTER": "1"}


# -- the model ----------------------------------------------------------------------------

FULL = """
name: shop
services:
  db:
    image: mariadb:11
    volumes: [dbdata:/var/lib/mysql, /srv/conf:/etc/mysql/conf.d:ro, ./init:/docker-entrypoint-initdb.d]
    healthcheck: {test: "mariadb-admin ping", interval: 2s, timeout: 1m30s, retries: 5}
    restart: unless-stopped
  web:
    build: {context: ./app, args: [VERSION=2, DEBUG]}
    command: php -S "0.0.0.0:80"
    environment: {A: 1, B: true, C: null}
    ports: [8080:80, "127.0.0.1::443", 9000, {target: 53, published: 5353, protocol: udp}]
    networks: {front: {aliases: [shop-web]}, default: null}
    depends_on: {db: {condition: service_healthy}}
    deploy: {resources: {limits: {cpus: 0.5, memory: 256m, pids: 100}}}
    labels: [tier=web]
    extra_hosts: ["db2:10.0.0.5"]
    devices: ["/dev/fuse:/dev/fuse:rw"]
    stop_grace_period: 20s
    x-note: free text
networks:
  front:
volumes:
  dbdata:
x-common: {anything: [1]}
"""


def test_a_full_file_is_read_into_typed_values(tmp_path):
    p = project(FULL, tmp_path, {"C": "from-shell"})
    assert p.name == "shop" and p.start_order() == ["db", "web"]
    db, web = p.services["db"], p.services["web"]
    assert db.volumes == [Mount("volume", "/var/lib/mysql", "dbdata"), Mount("bind", "/etc/mysql/conf.d", "/srv/conf", True),
                          Mount("bind", "/docker-entrypoint-initdb.d", str(tmp_path / "init"))]
    assert db.healthcheck is not None and db.healthcheck.test == ["CMD-SHELL", "mariadb-admin ping"]
    assert (db.healthcheck.interval, db.healthcheck.timeout, db.healthcheck.retries) == (2, 90, 5)
    assert web.build is not None and web.build.context == str(tmp_path / "app")
    assert web.build.args == {"VERSION": "2", "DEBUG": None}
    assert web.command == ["php", "-S", "0.0.0.0:80"]
    assert web.environment == {"A": "1", "B": "true", "C": "from-shell"}
    assert web.ports == [Port("80", "8080"), Port("443", None, "127.0.0.1"), Port("9000"), Port("53", "5353", None, "udp")]
    assert [port.publish_flag() for port in web.ports] == ["8080:80/tcp", "127.0.0.1::443/tcp", "9000/tcp", "5353:53/udp"]
    assert web.networks == {"front": ["shop-web"], "default": []}
    assert web.depends_on == [Dependency("db", "service_healthy")]
    assert (web.limits.cpus, web.limits.memory, web.limits.pids) == (0.5, "256m", 100)
    assert web.labels == {"tier": "web"} and web.extra_hosts == ["db2:10.0.0.5"] and web.stop_grace_period == 20
    assert web.devices == ["/dev/fuse:/dev/fuse:rw"]
    assert p.networks["front"].name == "shop_front" and p.networks["default"].name == "shop_default"
    assert p.volumes["dbdata"].name == "shop_dbdata"
    assert p.container_name("web") == "shop-web-1"
    doc = document(p)
    assert doc["services"]["db"]["healthcheck"]["timeout"] == "90s"
    assert doc["services"]["web"]["ports"][0] == {"target": 80, "published": "8080", "protocol": "tcp"}
    assert doc["volumes"] == {"dbdata": {"name": "shop_dbdata"}}


def test_interpolated_booleans_and_numbers_are_cast_as_compose_casts_them(tmp_path):
    """Interpolation gives strings; where a key wants a boolean or a number, compose reads
    the string as one (``read_only: ${RO:-false}``, ``target: ${PORT}``), and so does lg."""
    p = project("""\
services:
  db: {image: x, healthcheck: {test: "true", retries: "${RETRIES}"}}
  web:
    image: x
    read_only: ${RO:-false}
    tty: "${TTY}"
    init: "yes"
    pids_limit: ${PIDS}
    ports: [{target: "${PORT}", published: "${PORT}"}]
    volumes: [{type: bind, source: ., target: /src, read_only: "${RO:-off}"}]
    depends_on: {db: {condition: service_started, required: "${REQ}"}}
volumes:
  data: {external: "${EXT}", name: shared}
""", tmp_path, {"RETRIES": "3", "TTY": "True", "PIDS": "100", "PORT": "8080", "REQ": "false", "EXT": "true"})
    db, web = p.services["db"], p.services["web"]
    assert db.healthcheck is not None and db.healthcheck.retries == 3
    assert (web.read_only, web.tty, web.init, web.limits.pids) == (False, True, True, 100)
    assert web.ports == [Port("8080", "8080")] and web.volumes[0].read_only is False
    assert web.depends_on == [Dependency("db", "service_started", False)] and p.volumes["data"].external
    assert "must be a port number" in refused("services:\n  web: {image: x, ports: [{target: 'http'}]}\n", tmp_path)
    assert "must be true or false" in refused("services:\n  web: {image: x, tty: 'maybe'}\n", tmp_path)
    assert "must be a whole number" in refused("services:\n  web: {image: x, pids_limit: '1e3'}\n", tmp_path)


def test_short_volume_modes_are_compose_specs_comma_list(tmp_path):
    """ro or rw, with SELinux's z/Z and Docker Desktop's cached/delegated in any order."""
    p = project("services:\n  web:\n    image: x\n    volumes: ['data:/a:rw,z', './src:/b:z,ro', './c:/c:cached',"
                " './d:/d:ro,delegated', 'e:/e:Z']\nvolumes: {data: null, e: null}\n", tmp_path)
    assert [(m.target, m.read_only) for m in p.services["web"].volumes] == [
        ("/a", False), ("/b", True), ("/c", False), ("/d", True), ("/e", False)]
    for bad in ("./x:/x:ro,rw", "./x:/x:rx", "./x:/x:ro,", "./x:/x:nocopy"):
        assert "is not SOURCE:TARGET[:ro|rw][,z|Z]" in refused(
            f"services:\n  web: {{image: x, volumes: ['{bad}']}}\n", tmp_path), bad


def test_dotenv_names_the_project_below_the_shell(tmp_path):
    (tmp_path / ".env").write_text("COMPOSE_PROJECT_NAME=fromdotenv\n")
    text = "name: fromfile\nservices:\n  web: {image: x}\n"
    assert project(text, tmp_path).name == "fromdotenv"
    assert project(text, tmp_path, {"COMPOSE_PROJECT_NAME": "fromshell"}).name == "fromshell"
    assert project(text, tmp_path, name="given").name == "given"


def test_env_file_values_yield_to_environment(tmp_path):
    (tmp_path / "web.env").write_text("A=file\nB=file\n")
    p = project("services:\n  web:\n    image: x\n    env_file: web.env\n    environment: {A: key}\n", tmp_path)
    assert p.services["web"].environment == {"A": "key", "B": "file"}
    (tmp_path / "later.env").write_text("B=later\nC=later\n")
    p = project("services:\n  web:\n    image: x\n    env_file: [web.env, later.env]\n    environment: {A: key}\n",
                tmp_path)
    assert p.services["web"].environment == {"A": "key", "B": "later", "C": "later"}
    assert "env file" in refused("services:\n  web:\n    image: x\n    env_file: missing.env\n", tmp_path)
    p = project("services:\n  web:\n    image: x\n    env_file: [{path: missing.env, required: false}]\n", tmp_path)
    assert p.services["web"].environment == {}


@pytest.mark.parametrize("text, message", [
    ("services:\n  web:\n    image: x\n    profiles: [a]\n", "services.web.profiles: not supported by lg"),
    ("services:\n  web:\n    image: x\n    deploy: {replicas: 2}\n", "services.web.deploy.replicas: not supported"),
    ("services:\n  web:\n    image: x\n    deploy: {resources: {reservations: {}}}\n", "resources.reservations: not supported"),
    ("services:\n  web:\n    image: x\nsecrets: {}\n", "secrets: not supported by lg"),
    ("servics:\n  web: {image: x}\n", "servics: not a compose top-level key"),
    ("services: {}\n", "defines no service"),
    ("services:\n  web: {}\n", "neither an image nor a build context"),
    ("services:\n  web: {image: [x]}\n", "services.web.image: must be a string, not a list"),
    ("services:\n  web: {image: x, restart: sometimes}\n", "is not no, always, unless-stopped or on-failure"),
    ("services:\n  web: {image: x, restart: 'always:3'}\n", "is not no, always"),
    ("services:\n  web: {image: x, ports: ['80:80:80']}\n", "services.web.ports[0]"),
    ("services:\n  web: {image: x, volumes: ['data:relative']}\n", "must be absolute"),
    ("services:\n  web: {image: x, volumes: ['data:/d']}\n", "volume 'data' is not declared"),
    ("services:\n  web: {image: x, networks: [back]}\n", "network 'back' is not declared"),
    ("services:\n  web: {image: x, depends_on: [db]}\n", "no service named 'db'"),
    ("services:\n  web: {image: x, depends_on: {db: {condition: ready}}}\n  db: {image: y}\n", "condition: must be one of"),
    ("services:\n  web: {image: x, healthcheck: {test: [curl]}}\n", "starts with CMD, CMD-SHELL or NONE"),
    ("services:\n  web: {image: x, healthcheck: {interval: soon}}\n", "is not a duration"),
    ("services:\n  web: {image: x, deploy: {resources: {limits: {cpus: lots}}}}\n", "number of CPUs"),
    ("services:\n  web: {image: x}\nnetworks:\n  n: {driver: overlay}\n", "networks.n.driver: not supported by lg (only driver: bridge)"),
    ("services:\n  'we b': {image: x}\n", "a service name is letters"),
    ("services:\n  a: {image: x, depends_on: [b]}\n  b: {image: x, depends_on: [c]}\n  c: {image: x, depends_on: [a]}\n",
     "cycle: a -> b -> c -> a"),
    ("services:\n  a: {image: x, depends_on: [a]}\n", "cannot depend on itself"),
    ("services:\n  web: {image: '${TAG:?the release tag}'}\n", "required variable TAG is missing a value: the release tag"),
])
def test_what_lg_cannot_use_is_refused_by_name(tmp_path, text, message):
    assert message in refused(text, tmp_path)


def test_start_order_follows_dependencies_then_the_file(tmp_path):
    p = project("services:\n  web: {image: x, depends_on: [api]}\n  api: {image: x, depends_on: [db, cache]}\n"
                "  cache: {image: x}\n  db: {image: x}\n  other: {image: x}\n", tmp_path)
    assert p.start_order() == ["db", "cache", "api", "web", "other"]


@pytest.mark.parametrize("given, environ, top, directory, expected", [
    ("Given", {}, None, "/x/dir", "Given"),
    (None, {"COMPOSE_PROJECT_NAME": "fromenv"}, "top", "/x/dir", "fromenv"),
    (None, {}, "top", "/x/dir", "top"),
    (None, {}, None, "/x/My Site.v2", "mysitev2"),
])
def test_project_name(given, environ, top, directory, expected):
    if expected != expected.lower():
        with pytest.raises(ComposeError, match="must be lower-case"):
            project_name(given, environ, top, directory)
    else:
        assert project_name(given, environ, top, directory) == expected


def test_a_file_without_end_is_read_only_to_its_bound(tmp_path):
    """/dev/zero as the compose file, as .env (--env-file) and as an env_file: each is read
    to its bound and refused in one line, never into all of memory."""
    from layergit.compose.yamlfile import read

    with pytest.raises(ComposeError, match="compose file /dev/zero is larger than 4 MiB"):
        read("/dev/zero")
    with pytest.raises(ComposeError, match="env file /dev/zero is larger than 1 MiB"):
        project("services:\n  web: {image: x}\n", tmp_path, env_file="/dev/zero")
    assert "env file /dev/zero is larger than 1 MiB" in refused(
        "services:\n  web: {image: x, env_file: /dev/zero}\n", tmp_path)
    assert f"env file {tmp_path}/missing.env not found" in refused(
        "services:\n  web: {image: x, env_file: missing.env}\n", tmp_path)
