"""The shape of an image commit: a tree of ``config.json`` and ``rootfs/``.

config.json is the runtime part of a Docker/OCI image config (Cmd, Entrypoint, Env,
WorkingDir, User, ExposedPorts, Volumes, Labels, StopSignal, ...), written as
canonical JSON (sorted keys, two-space indent) so equal configs share one blob and
a changed field is a one-line git diff.
"""

from __future__ import annotations

import json

from ..errors import CorruptStore
from .rawobj import MODE_BLOB, MODE_TREE, OBJ_TREE, tree_bytes

CONFIG_NAME = b"config.json"
ROOTFS_NAME = b"rootfs"


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
        config = json.loads(store.read_blob(entries[CONFIG_NAME]))
    except ValueError as exc:
        raise CorruptStore(f"config.json in {tree.hex()[:12]} is not JSON: {exc}") from None
    return config, entries[ROOTFS_NAME]
