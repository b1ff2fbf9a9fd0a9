"""lg export: a rootfs tar, or the commit chain as a docker-archive or OCI image.

Each commit of the first-parent chain is one history entry; a commit that changed
the rootfs is also one layer (its diff to the parent, deletions as whiteouts), a
commit that changed only the config is an ``empty_layer`` entry, so ``docker
history`` of the export reads like ``lg log``. Layers are uncompressed tars: their
digest is their diff_id, and writing them costs no compression time.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from datetime import timezone

from ..errors import LgError, UsageError
from ..store import names
from .repo import Repo, signature_time

FORMATS = ("rootfs", "docker-archive", "oci")
_RUNTIME_PLATFORM_KEYS = {"Architecture": "architecture", "Os": "os", "Variant": "variant"}


@dataclass(frozen=True)
class ExportResult:
    format: str
    id: str
    layers: int
    history: int
    skipped_sockets: int


def _iso(sig) -> str:
    return signature_time(sig).astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _chain(repo: Repo, tip: bytes) -> list:
    chain = []
    oid: bytes | None = tip
    while oid is not None:
        img = repo.image(oid)
        chain.append(img)
        oid = img.commit.parents[0] if img.commit.parents else None
    return chain[::-1]


def image_config(images: list, diff_ids: list[str], history: list[dict]) -> dict:
    """The OCI/Docker image config for the tip of ``images``."""
    tip = images[-1]
    runtime = {k: v for k, v in tip.config.items() if k not in _RUNTIME_PLATFORM_KEYS}
    config = {
        "architecture": tip.config.get("Architecture") or _host_arch(),
        "os": tip.config.get("Os") or "linux",
        "config": runtime,
        "created": _iso(tip.commit.committer),
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": history,
    }
    if tip.config.get("Variant"):
        config["variant"] = tip.config["Variant"]
    return config


def _host_arch() -> str:
    machine = os.uname().machine
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}.get(machine, machine)


def _output(path: str | None):
    if path in (None, "-"):
        if sys.stdout.isatty():
            raise UsageError("refusing to write an archive to a terminal; use -o FILE or a pipe")
        return sys.stdout.buffer, None
    return None, path


def export(repo: Repo, rev: str, output: str | None = None, fmt: str = "docker-archive", progress=None) -> ExportResult:
    """Write ``rev`` to ``output`` (a file, a directory for OCI, or "-"/None for stdout)."""
    from ..fs.tarwrite import TarWriter, write_snapshot

    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    tip = repo.resolve(rev)
    stream, path = _output(output)
    if fmt == "rootfs":
        with _atomic_file(path, stream) as out:
            writer = TarWriter(out, repo.store)
            write_snapshot(writer, repo.image(tip).rootfs)
            writer.close()
        return ExportResult(fmt, tip.hex(), 1, 1, writer.sockets)
    return _export_image(repo, rev, tip, stream, path, fmt, progress)


def _export_image(repo: Repo, rev: str, tip: bytes, stream, path: str | None, fmt: str, progress) -> ExportResult:
    from ..fs.imagewrite import write_docker_archive, write_oci

    chain = _chain(repo, tip)
    os.makedirs(repo.root.tmp, exist_ok=True)
    tmpdir = tempfile.mkdtemp(dir=repo.root.tmp, prefix="export-")
    try:
        layers, history, sockets = [], [], 0
        previous = None
        for i, img in enumerate(chain):
            entry = {"created": _iso(img.commit.author), "created_by": img.commit.message.rstrip("\n"), "author": f"{img.commit.author.name} <{img.commit.author.email}>"}
            if previous is not None and img.rootfs == previous:
                entry["empty_layer"] = True
            else:
                layer, skipped = _layer(repo, previous, img.rootfs, tmpdir)
                layers.append(layer)
                sockets += skipped
            history.append(entry)
            previous = img.rootfs
            if progress:
                progress(i + 1, len(chain))
        config = image_config(chain, ["sha256:" + l.sha256 for l in layers], history)
        image = names.parse(rev) if names.looks_like_name(rev) else None
        if fmt == "docker-archive":
            with _atomic_file(path, stream) as out:
                write_docker_archive(out, config, layers, [str(image)] if image else [])
        elif path and (os.path.isdir(path) or path.endswith("/")):
            write_oci(None, path, config, layers, image.name if image else None, image.tag if image else None)
        else:
            with _atomic_file(path, stream) as out:
                write_oci(out, None, config, layers, image.name if image else None, image.tag if image else None)
        return ExportResult(fmt, tip.hex(), len(layers), len(history), sockets)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


def _layer(repo: Repo, old: bytes | None, new: bytes, tmpdir: str):
    """The layer tar from rootfs ``old`` to ``new``, from the layer cache when made before.

    A layer is a pure function of two immutable trees, so it is kept under
    cache/layers/OLD-NEW.tar (with its digest) and a later export of the same image,
    like podman's save of stored layers, only copies it. lg gc empties this cache.
    """
    from ..fs.imagewrite import LayerFile
    from ..fs.tarwrite import TarWriter, write_layer

    cache = repo.root.cache_dir("layers")
    key = f"{old.hex() if old else 'empty'}-{new.hex()}"
    tar, meta = os.path.join(cache, key + ".tar"), os.path.join(cache, key + ".sha256")
    try:
        with open(meta) as f:
            digest, size = f.read().split()
        if os.path.getsize(tar) == int(size):
            return LayerFile(tar, digest, int(size)), 0
    except (OSError, ValueError):
        pass
    os.makedirs(cache, exist_ok=True)
    tmp = os.path.join(tmpdir, key + ".tar")
    with open(tmp, "wb") as f:
        digesting = _HashingWriter(f)
        writer = TarWriter(digesting, repo.store)
        write_layer(writer, old, new)
        writer.close()
    digest = digesting.sha256.hexdigest()
    if writer.sockets == 0:  # a layer that lost sockets is not kept: the warning must come again
        os.replace(tmp, tar)
        with open(meta + ".tmp", "w") as f:
            f.write(f"{digest} {digesting.size}\n")
        os.replace(meta + ".tmp", meta)
        tmp = tar
    return LayerFile(tmp, digest, digesting.size), writer.sockets


class _HashingWriter:
    def __init__(self, f):
        self._f = f
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data) -> int:
        self.sha256.update(data)
        self.size += len(data)
        return self._f.write(data)


class _atomic_file:
    """Write to PATH.tmp and rename on success (or pass a stream through)."""

    def __init__(self, path: str | None, stream):
        self.path = path
        self.stream = stream
        self.tmp = f"{path}.lg-tmp-{os.getpid()}" if path else None

    def __enter__(self):
        if self.stream is not None:
            return self.stream
        try:
            self.f = open(self.tmp, "wb")
        except OSError as exc:
            raise LgError(f"cannot write {self.path}: {exc.strerror}") from None
        return self.f

    def __exit__(self, exc_type, exc, tb):
        if self.stream is not None:
            self.stream.flush()
            return False
        self.f.close()
        if exc_type is None:
            os.replace(self.tmp, self.path)
        else:
            os.unlink(self.tmp)
        return False
