"""The shape of an image commit: a tree of ``config.json`` and ``rootfs/``.

config.json is the runtime part of a Docker/OCI image config (Cmd, Entrypoint, Env,
WorkingDir, User, ExposedPorts, Volumes, Labels, StopSignal, ...), written as
canonical JSON (sorted keys, two-space indent) so equal configs share one blob and
a changed field is a one-line git diff.
"""

from __future__ import annotations

import json

from ..errors import CorruptStore, LgError
from ..text import kind_of
from .rawobj import MODE_BLOB, MODE_TREE, OBJ_TREE, tree_bytes

CONFIG_NAME = b"config.json"
CONFIG_MAX = 16 << 20  # bytes of config.json lg reads: Docker's biggest real ones are a few KiB
ROOTFS_NAME = b"rootfs"

# Docker's Go types for the fields lg keeps, which is what ``docker load`` would refuse on.
_STRINGS = ("User", "WorkingDir", "StopSignal", "Architecture", "Os", "Variant")
_LISTS = ("Env", "OnBuild", "Shell")
_COMMANDS = ("Cmd", "Entrypoint")  # Docker's StrSlice: a list of strings, or one string
_SETS = ("ExposedPorts", "Volumes")  # map[string]struct{}: the keys are the data
_HEALTH_DURATIONS = ("Interval", "Timeout", "StartPeriod", "StartInterval")  # nanoseconds


class InvalidConfig(LgError):
    """An image config field that does not have the type Docker gives it (an Env that is
    a string, a WorkingDir that is a list): refused where a config enters lg, so that
    ``lg run`` and the rest never meet one."""


def _string(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise InvalidConfig(f"{what} must be a string, not {kind_of(value)}")
    if "\0" in value:
        raise InvalidConfig(f"{what} contains a NUL character")
    return value


def _string_list(value: object, what: str) -> list[str]:
    if not isinstance(value, list):
        raise InvalidConfig(f"{what} must be a list of strings, not {kind_of(value)}")
    return [_string(item, f"an item of {what}") for item in value]


def _healthcheck(value: object) -> dict:
    if not isinstance(value, dict):
        raise InvalidConfig(f"Healthcheck must be a map, not {kind_of(value)}")
    out: dict = {}
    if value.get("Test") is not None:
        out["Test"] = _string_list(value["Test"], "Healthcheck.Test")
    for key in (*_HEALTH_DURATIONS, "Retries"):
        number = value.get(key)
        if number is None:
            continue
        if not isinstance(number, int) or isinstance(number, bool) or not 0 <= number < 1 << 63:
            raise InvalidConfig(f"Healthcheck.{key} must be a non-negative whole number")
        out[key] = number
    return out


def check_config(config: object) -> dict:
    """config.json's fields with the types Docker gives them, or InvalidConfig naming the first
    that has not. Docker's own leniencies hold (a Cmd may be one string, a null field is
    absent); values that only a use can judge (a port number, a relative WorkingDir, an
    unknown user) are left to that use. The result is flat: ExposedPorts and Volumes values
    become ``{}`` and Healthcheck keeps its known fields, so no nesting a config arrived
    with survives into the store."""
    if not isinstance(config, dict):
        raise InvalidConfig(f"the config must be a map, not {kind_of(config)}")
    return {key: _field(key, value) for key, value in config.items() if value is not None}


def _field(key: str, value: object) -> object:
    if key in _STRINGS:
        return _string(value, key)
    if key in _LISTS:
        return _string_list(value, key)
    if key in _COMMANDS:
        return [_string(value, key)] if isinstance(value, str) else _string_list(value, key)
    if key in _SETS:
        if not isinstance(value, dict):
            raise InvalidConfig(f"{key} must be a map, not {kind_of(value)}")
        return {_string(k, f"a key of {key}"): {} for k in value}
    if key == "Labels":
        if not isinstance(value, dict):
            raise InvalidConfig(f"Labels must be a map of strings, not {kind_of(value)}")
        return {_string(k, "a label name"): _string(v, f"label {k!r}") for k, v in value.items()}
    if key == "Healthcheck":
        return _healthcheck(value)
    if key == "ArgsEscaped" and not isinstance(value, bool):
        raise InvalidConfig(f"ArgsEscaped must be a boolean, not {kind_of(value)}")
    return value


def config_bytes(config: dict) -> bytes:
    return (json.dumps(config, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def write_image_tree(writer, config: dict, rootfs: bytes) -> bytes:
    """Write (if new) the top-level tree of an image commit; returns its id."""
    blob_id = writer.put_blob(config_bytes(config))
    return writer.put(
        OBJ_TREE, tree_bytes([(CONFIG_NAME, MODE_BLOB, blob_id), (ROOTFS_NAME, MODE_TREE, rootfs)])
    )


def read_image_tree(store, tree: bytes) -> tuple[dict, bytes]:
    """(config, rootfs tree id) of an image commit's tree."""
    entries = {name: oid for name, _, oid in store.tree(tree)}
    if CONFIG_NAME not in entries or ROOTFS_NAME not in entries:
        raise CorruptStore(f"tree {tree.hex()[:12]} is not an image (needs config.json and rootfs/)")
    try:
        config = check_config(json.loads(store.read_blob(entries[CONFIG_NAME], CONFIG_MAX, "config.json")))
    except (ValueError, RecursionError) as exc:
        raise CorruptStore(f"config.json in {tree.hex()[:12]} is not JSON: {exc}") from None
    except InvalidConfig as exc:
        raise CorruptStore(f"config.json in {tree.hex()[:12]}: {exc}") from None
    return config, entries[ROOTFS_NAME]
