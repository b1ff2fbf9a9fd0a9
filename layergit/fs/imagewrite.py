"""Packaging layers and configs as a docker-archive or an OCI image layout.

Layers arrive as finished, uncompressed tar files with their sha256 (which is both
the OCI blob digest and the diff_id). A docker-archive is the classic ``docker
save`` layout (manifest.json, CONFIG.json, DIFFID/layer.tar) that ``podman load``
and ``docker load`` read; an OCI layout is oci-layout, index.json and blobs/sha256,
written either as a directory or as a tar (an oci-archive).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from .tarwrite import pax_stream

MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER = "application/vnd.oci.image.layer.v1.tar"


@dataclass
class LayerFile:
    path: str  # a temporary file holding the layer tar
    sha256: str  # hex
    size: int


def canonical_json(value) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode("utf-8")


class _TarSink:
    """Files of a layout, appended to a tar stream."""

    def __init__(self, tar: tarfile.TarFile):
        self.tar = tar

    @staticmethod
    def _info(name: str, size: int) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.size = size
        info.mode = 0o644
        return info

    def bytes(self, name: str, data: bytes) -> None:
        self.tar.addfile(self._info(name, len(data)), io.BytesIO(data))

    def file(self, name: str, layer: LayerFile) -> None:
        with open(layer.path, "rb") as f:
            self.tar.addfile(self._info(name, layer.size), f)


class _DirSink:
    """Files of a layout, written into a directory."""

    def __init__(self, directory: str):
        self.directory = directory

    def _path(self, name: str) -> str:
        path = os.path.join(self.directory, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return path

    def bytes(self, name: str, data: bytes) -> None:
        with open(self._path(name), "wb") as f:
            f.write(data)

    def file(self, name: str, layer: LayerFile) -> None:
        shutil.copyfile(layer.path, self._path(name))


@contextmanager
def _sink(out, directory: str | None) -> Iterator[_TarSink | _DirSink]:
    if directory:
        yield _DirSink(directory)
        return
    with pax_stream(out) as tar:
        yield _TarSink(tar)


def unique(layers: list[LayerFile]) -> list[LayerFile]:
    """Layers with the same content are stored once (an image may repeat a layer)."""
    seen: dict[str, LayerFile] = {}
    for layer in layers:
        seen.setdefault(layer.sha256, layer)
    return list(seen.values())


def write_docker_archive(out, config: dict, layers: list[LayerFile], repo_tags: list[str]) -> None:
    cfg = canonical_json(config)
    cfg_name = hashlib.sha256(cfg).hexdigest() + ".json"
    paths = [f"{layer.sha256}/layer.tar" for layer in layers]
    manifest = [{"Config": cfg_name, "RepoTags": repo_tags, "Layers": paths}]
    with _sink(out, None) as sink:
        for layer in unique(layers):
            sink.file(f"{layer.sha256}/layer.tar", layer)
        sink.bytes(cfg_name, cfg)
        sink.bytes("manifest.json", json.dumps(manifest).encode())


def write_oci(
    out, directory: str | None, config: dict, layers: list[LayerFile], name: str | None, tag: str | None
) -> None:
    """An OCI layout; into ``directory`` if given, else as a tar on ``out``."""
    cfg = canonical_json(config)
    cfg_digest = hashlib.sha256(cfg).hexdigest()
    manifest = {
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": {"mediaType": MEDIA_CONFIG, "digest": "sha256:" + cfg_digest, "size": len(cfg)},
        "layers": [
            {"mediaType": MEDIA_LAYER, "digest": "sha256:" + layer.sha256, "size": layer.size}
            for layer in layers
        ],
    }
    man = canonical_json(manifest)
    man_digest = hashlib.sha256(man).hexdigest()
    descriptor: dict[str, Any] = {
        "mediaType": MEDIA_MANIFEST,
        "digest": "sha256:" + man_digest,
        "size": len(man),
    }
    if tag:
        descriptor["annotations"] = {"org.opencontainers.image.ref.name": tag}
        if name:
            descriptor["annotations"]["io.containerd.image.name"] = f"{name}:{tag}"
    with _sink(out, directory) as sink:
        sink.bytes("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        for layer in unique(layers):
            sink.file(f"blobs/sha256/{layer.sha256}", layer)
        sink.bytes(f"blobs/sha256/{cfg_digest}", cfg)
        sink.bytes(f"blobs/sha256/{man_digest}", man)
        sink.bytes("index.json", canonical_json({"schemaVersion": 2, "manifests": [descriptor]}))
