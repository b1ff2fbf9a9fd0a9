"""Image archives from the OCI/Docker world: docker-archive and OCI image layouts.

Both come as a directory or a tar file. :class:`DirSource` and :class:`TarSource` give
read access to their regular files by path, never following a symlink out of the
archive. :func:`read_images` turns the manifests into :class:`ImageSpec` values: the
image config and, for each layer, a way to open its blob plus the digests it must
match. Every path or digest named by a manifest is validated before use.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import posixpath
import re
import stat
from dataclasses import dataclass, field
from functools import partial
from typing import Callable

from .safeio import DIR_FLAGS, FILE_FLAGS
from .tarlayer import ArchiveError, LimitExceeded, Limits, split_path
from .tarread import Member, TarBoundError, TarError, TarReader

_DIGEST = re.compile(r"sha256:([0-9a-f]{64})")  # fullmatch
_MAX_JSON = 16 << 20
_MAX_LINK_HOPS = 8


class DirSource:
    """Regular files below a directory, reached component by component with O_NOFOLLOW."""

    def __init__(self, path: str):
        self.path = path

    def open(self, name: str):
        parts = split_path(name, "archive path")
        if not parts:
            raise ArchiveError(f"archive path {name!r} names no file")
        fd = os.open(self.path, DIR_FLAGS)
        try:
            for part in parts[:-1]:
                nxt = os.open(part, DIR_FLAGS, dir_fd=fd)
                os.close(fd)
                fd = nxt
            file_fd = os.open(parts[-1], FILE_FLAGS & ~os.O_NONBLOCK, dir_fd=fd)
        except FileNotFoundError:
            raise ArchiveError(f"archive has no file {name!r}") from None
        except OSError as exc:
            raise ArchiveError(
                f"cannot open {name!r} in the archive without leaving it: {exc.strerror}"
            ) from None
        finally:
            os.close(fd)
        if not stat.S_ISREG(os.fstat(file_fd).st_mode):
            os.close(file_fd)
            raise ArchiveError(f"{name!r} in the archive is not a regular file")
        return os.fdopen(file_fd, "rb")

    def exists(self, name: str) -> bool:
        try:
            self.open(name).close()
        except ArchiveError:
            return False
        return True


class TarSource:
    """Regular files inside a (seekable, uncompressed) tar; symlinks resolved inside it."""

    def __init__(self, path: str, limits: Limits | None = None):
        """Read every header once (content is seeked over), its name checked and counted
        against ``limits`` (an entry, and the header's bytes), so a tar of a million
        members is refused at --max-entries instead of indexed whole."""
        limits = limits or Limits()
        self._file = open(path, "rb")
        self._members: dict[bytes, Member] = {}
        try:
            for m in TarReader(self._file, seekable=True):
                limits.count(entries=1, nbytes=m.offset_data - m.offset)
                self._members[b"/".join(split_path(m.name, "archive member"))] = m
        except TarBoundError as exc:
            self._file.close()
            raise LimitExceeded(str(exc)) from None
        except TarError as exc:
            self._file.close()
            raise ArchiveError(str(exc)) from None
        except ArchiveError:
            self._file.close()
            raise

    def _member(self, name: str) -> Member:
        key = b"/".join(split_path(name, "archive path"))
        for _ in range(_MAX_LINK_HOPS):
            m = self._members.get(key)
            if m is None:
                raise ArchiveError(f"archive has no file {name!r}")
            if m.is_file() and m.sparse is None:
                return m
            if not m.is_symlink():
                raise ArchiveError(f"{name!r} in the archive is not a regular file")
            # docker save links duplicate layers ("../abc/layer.tar"): resolve inside the archive.
            joined = posixpath.normpath(
                posixpath.join(posixpath.dirname(key.decode("utf-8", "surrogateescape")), m.linkname)
            )
            if joined.startswith("..") or joined.startswith("/"):
                raise ArchiveError(f"{name!r} links outside the archive")
            key = b"/".join(split_path(joined, "archive link"))
        raise ArchiveError(f"{name!r}: too many links in the archive")

    def open(self, name: str) -> io.BufferedReader:
        m = self._member(name)
        return io.BufferedReader(_Slice(self._file.fileno(), m.offset_data, m.size), 1 << 20)

    def exists(self, name: str) -> bool:
        try:
            self._member(name)
        except ArchiveError:
            return False
        return True


class _Slice(io.RawIOBase):
    """One member's bytes in the archive's file, read with pread, so that each opened
    member keeps its own position (the indexing pass checked they lie inside the file)."""

    def __init__(self, fd: int, start: int, size: int):
        self._fd = fd
        self._pos = start
        self._left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:
        want = min(len(buf), self._left)
        data = os.pread(self._fd, want, self._pos) if want else b""
        if len(data) < want:
            raise ArchiveError("archive is truncated")
        buf[:len(data)] = data
        self._pos += len(data)
        self._left -= len(data)
        return len(data)


@dataclass
class LayerRef:
    open: Callable[[], object]  # raw (possibly compressed) blob stream
    name: str  # for messages
    digest: str | None = None  # sha256:... of the raw blob
    size: int | None = None
    diff_id: str | None = None  # sha256:... of the uncompressed tar
    checked: bool = False  # what open() gives checks digest and size itself (a registry's stream)


@dataclass
class ImageSpec:
    config: dict
    layers: list[LayerRef]
    tags: list[str] = field(default_factory=list)


def detect(source) -> str:
    if source.exists("manifest.json"):
        return "docker-archive"
    if source.exists("index.json") and source.exists("oci-layout"):
        return "oci"
    raise ArchiveError("neither a docker-archive (manifest.json) nor an OCI layout (index.json, oci-layout)")


def _read_capped(source, name: str) -> bytes:
    with source.open(name) as f:
        data = f.read(_MAX_JSON + 1)
    if len(data) > _MAX_JSON:
        raise ArchiveError(f"{name} is too large to be a manifest or config")
    return data


def _parse_json(data: bytes, name: str):
    try:
        return json.loads(data)
    except ValueError as exc:
        raise ArchiveError(f"{name} is not valid JSON: {exc}") from None
    except RecursionError:  # json's C parser stops at the interpreter's recursion limit
        raise ArchiveError(f"{name} nests arrays or objects too deeply to be a manifest or config") from None


def _json(source, name: str):
    return _parse_json(_read_capped(source, name), name)


def _blob_path(digest: object) -> str:
    m = _DIGEST.fullmatch(digest) if isinstance(digest, str) else None
    if not m:
        raise ArchiveError(f"unsupported or malformed digest {digest!r}")
    return f"blobs/sha256/{m.group(1)}"


def _verified_json(source, descriptor: dict):
    """Read a blob named by an OCI descriptor, checking its size and digest."""
    path = _blob_path(descriptor.get("digest"))
    data = _read_capped(source, path)
    if "size" in descriptor and descriptor["size"] != len(data):
        raise ArchiveError(f"{path}: size {len(data)} does not match the descriptor's {descriptor['size']}")
    if "sha256:" + hashlib.sha256(data).hexdigest() != descriptor["digest"]:
        raise ArchiveError(f"{path}: content does not match its digest")
    return _parse_json(data, path)


def _diff_ids(config: dict) -> list:
    rootfs = config.get("rootfs") if isinstance(config, dict) else None
    ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    return ids if isinstance(ids, list) else []


def _docker_images(source) -> list[ImageSpec]:
    manifest = _json(source, "manifest.json")
    if not isinstance(manifest, list) or not manifest:
        raise ArchiveError("manifest.json lists no images")
    images = []
    for entry in manifest:
        if (
            not isinstance(entry, dict)
            or not isinstance(entry.get("Config"), str)
            or not isinstance(entry.get("Layers"), list)
        ):
            raise ArchiveError("manifest.json entry lacks Config or Layers")
        config = _json(source, entry["Config"])
        if not isinstance(config, dict):
            raise ArchiveError(f"{entry['Config']} is not an image config")
        diff_ids = _diff_ids(config)
        if diff_ids and len(diff_ids) != len(entry["Layers"]):
            raise ArchiveError("manifest.json and the image config disagree on the number of layers")
        layers = []
        for i, name in enumerate(entry["Layers"]):
            if not isinstance(name, str):
                raise ArchiveError("manifest.json names a layer that is not a path")
            split_path(name, "layer path")
            diff_id = diff_ids[i] if diff_ids else None
            layers.append(LayerRef(partial(source.open, name), name, diff_id=diff_id))
        repo_tags = entry.get("RepoTags")
        tags = [t for t in repo_tags if isinstance(t, str)] if isinstance(repo_tags, list) else []
        images.append(ImageSpec(config, layers, tags))
    return images


_LAYER_TYPES = re.compile(
    r"^application/vnd\.(oci\.image|docker\.image\.rootfs)\.(diff\.tar|layer\.v1\.tar)"
    r"(\.gzip|\+gzip|\+zstd)?$"
)


def _oci_manifests(source, index: dict, depth: int = 0):
    for desc in index.get("manifests") or []:
        if not isinstance(desc, dict):
            raise ArchiveError("index.json has a malformed descriptor")
        doc = _verified_json(source, desc)
        if not isinstance(doc, dict):
            raise ArchiveError(f"{_blob_path(desc.get('digest'))} is not an image manifest or index")
        if isinstance(doc.get("manifests"), list):
            if depth > 2:
                raise ArchiveError("image index nested too deeply")
            yield from _oci_manifests(source, doc, depth + 1)
        else:
            yield desc, doc


def _oci_images(source) -> list[ImageSpec]:
    index = _json(source, "index.json")
    if not isinstance(index, dict):
        raise ArchiveError("index.json is not an image index")
    images = []
    for desc, manifest in _oci_manifests(source, index):
        if not isinstance(manifest.get("config"), dict) or not isinstance(manifest.get("layers"), list):
            raise ArchiveError("an image manifest lacks config or layers")
        config = _verified_json(source, manifest["config"])
        if not isinstance(config, dict):
            raise ArchiveError(f"{_blob_path(manifest['config'].get('digest'))} is not an image config")
        diff_ids = _diff_ids(config)
        if diff_ids and len(diff_ids) != len(manifest["layers"]):
            raise ArchiveError("the manifest and the image config disagree on the number of layers")
        layers = []
        for i, layer in enumerate(manifest["layers"]):
            if not isinstance(layer, dict) or not _LAYER_TYPES.match(str(layer.get("mediaType", ""))):
                what = layer.get("mediaType") if isinstance(layer, dict) else layer
                raise ArchiveError(f"unsupported layer media type {what!r}")
            path = _blob_path(layer.get("digest"))
            layers.append(
                LayerRef(
                    partial(source.open, path),
                    path,
                    layer["digest"],
                    layer.get("size"),
                    diff_ids[i] if diff_ids else None,
                )
            )
        annotations = desc.get("annotations")
        annotations = annotations if isinstance(annotations, dict) else {}
        # containerd's annotation holds the full name; the OCI one is often only the tag.
        ref = annotations.get("io.containerd.image.name")
        ref = ref or annotations.get("org.opencontainers.image.ref.name")
        images.append(ImageSpec(config, layers, [ref] if isinstance(ref, str) else []))
    if not images:
        raise ArchiveError("index.json lists no images")
    return images


def read_images(source, fmt: str) -> list[ImageSpec]:
    return _docker_images(source) if fmt == "docker-archive" else _oci_images(source)
