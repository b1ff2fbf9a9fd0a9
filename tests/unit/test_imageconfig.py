"""config.json's field types (store/image.py check_config): what Docker's Go types take is
kept (normalised where Docker is lenient), anything else is InvalidConfig naming the field."""

from __future__ import annotations

import pytest

from layergit.store.image import InvalidConfig, check_config

GOOD = {
    "User": "app:app", "WorkingDir": "srv", "StopSignal": "SIGQUIT", "Env": ["A=1", "B"], "Shell": ["/bin/sh", "-c"],
    "OnBuild": [], "Cmd": ["nginx"], "Entrypoint": [], "ExposedPorts": {"80/tcp": {}, "abc/tcp": {}},
    "Volumes": {"/data": {}}, "Labels": {"a": "b"}, "ArgsEscaped": True, "Architecture": "amd64", "Os": "linux",
    "Healthcheck": {"Test": ["CMD", "true"], "Interval": 5_000_000_000, "Retries": 3}, "Unknown": {"kept": [1]},
}


def test_a_config_docker_takes_is_kept():
    assert check_config(GOOD) == GOOD


@pytest.mark.parametrize("given, kept", [
    ({"Cmd": "/bin/sh"}, {"Cmd": ["/bin/sh"]}),  # Docker's StrSlice: one string is a list of one
    ({"Entrypoint": "run"}, {"Entrypoint": ["run"]}),
    ({"Env": None, "User": None}, {}),  # null is absent
    ({"ExposedPorts": {"80/tcp": {"a": {"b": [1]}}}}, {"ExposedPorts": {"80/tcp": {}}}),  # nothing nested survives
    ({"Volumes": {"/v": None}}, {"Volumes": {"/v": {}}}),
    ({"Healthcheck": {"Test": ["NONE"], "Other": {"deep": [[]]}}}, {"Healthcheck": {"Test": ["NONE"]}}),
])
def test_docker_leniencies_are_normalised(given, kept):
    assert check_config(given) == kept


@pytest.mark.parametrize("config, message", [
    ([], "the config must be a map, not a list"),
    ({"Env": "A=1"}, "Env must be a list of strings, not a string"),
    ({"Env": ["A=1", 2]}, "an item of Env must be a string, not a number"),
    ({"Env": ["A=\0"]}, "an item of Env contains a NUL character"),
    ({"Cmd": {"a": 1}}, "Cmd must be a list of strings, not a map"),
    ({"Cmd": [None]}, "an item of Cmd must be a string, not null"),
    ({"Entrypoint": True}, "Entrypoint must be a list of strings, not a boolean"),
    ({"Shell": "sh"}, "Shell must be a list of strings"),
    ({"OnBuild": [["RUN x"]]}, "an item of OnBuild must be a string, not a list"),
    ({"User": 0}, "User must be a string, not a number"),
    ({"User": "a\0b"}, "User contains a NUL character"),
    ({"WorkingDir": ["/"]}, "WorkingDir must be a string, not a list"),
    ({"StopSignal": 15}, "StopSignal must be a string"),
    ({"Architecture": 1}, "Architecture must be a string"),
    ({"ExposedPorts": ["80/tcp"]}, "ExposedPorts must be a map, not a list"),
    ({"Volumes": "/data"}, "Volumes must be a map, not a string"),
    ({"Labels": ["a=b"]}, "Labels must be a map of strings, not a list"),
    ({"Labels": {"a": None}}, "label 'a' must be a string"),
    ({"Labels": {"a\0": "b"}}, "a label name contains a NUL"),
    ({"Healthcheck": []}, "Healthcheck must be a map, not a list"),
    ({"Healthcheck": {"Test": "curl"}}, "Healthcheck.Test must be a list of strings"),
    ({"Healthcheck": {"Interval": "5s"}}, "Healthcheck.Interval must be a non-negative whole number"),
    ({"Healthcheck": {"Retries": -1}}, "Healthcheck.Retries must be a non-negative whole number"),
    ({"Healthcheck": {"Timeout": True}}, "Healthcheck.Timeout must be a non-negative whole number"),
    ({"Healthcheck": {"StartPeriod": 1.5}}, "Healthcheck.StartPeriod must be a non-negative whole number"),
    ({"ArgsEscaped": "true"}, "ArgsEscaped must be a boolean, not a string"),
])
def test_wrong_types_are_refused_naming_the_field(config, message):
    with pytest.raises(InvalidConfig) as info:
        check_config(config)
    assert str(info.value) == message or str(info.value).startswith(message), str(info.value)
