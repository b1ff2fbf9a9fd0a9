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
import queue
import shutil
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timezone
from typing import TYPE_CHECKING

from ..background import signals_held
from ..errors import UsageError
from ..store import names
from .repo import Repo, signature_time, store_lock

if TYPE_CHECKING:
    from ..fs.imagewrite import LayerFile
    from ..fs.spool import Spool

FORMATS = ("rootfs", "docker-archive", "oci")
_SPOOL_STEP = 4 << 20  # bytes of a layer a following upload is told of at a time
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


def chain(repo: Repo, tip: bytes) -> list:
    chain = []
    oid: bytes | None = tip
    while oid is not None:
        img = repo.image(oid)
        chain.append(img)
        oid = img.commit.parents[0] if img.commit.parents else None
    return chain[::-1]


def image_config(images: list, diff_ids: list[str], history: list[dict]) -> dict:
    """The OCI/Docker image config for the tip of ``images``, with the records that let
    an import rebuild the same commits (porcelain/provenance.py)."""
    from .provenance import KEY, records

    tip = images[-1]
    runtime = {k: v for k, v in tip.config.items() if k not in _RUNTIME_PLATFORM_KEYS}
    config = {
        "architecture": tip.config.get("Architecture") or host_arch(),
        "os": tip.config.get("Os") or "linux",
        "config": runtime,
        "created": _iso(tip.commit.committer),
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": history,
        KEY: records(images),
    }
    if tip.config.get("Variant"):
        config["variant"] = tip.config["Variant"]
    return config


def image_history(images: list) -> tuple[list[dict], list[tuple[bytes | None, bytes]]]:
    """The history entries of a chain and its layers as (old rootfs, new rootfs) pairs:
    a commit that kept its parent's rootfs is an ``empty_layer`` entry, not a layer."""
    history: list[dict] = []
    changes: list[tuple[bytes | None, bytes]] = []
    previous: bytes | None = None
    for img in images:
        entry = {"created": _iso(img.commit.author), "created_by": img.commit.message.rstrip("\n"),
                 "author": f"{img.commit.author.name} <{img.commit.author.email}>"}
        if previous is not None and img.rootfs == previous:
            entry["empty_layer"] = True
        else:
            changes.append((previous, img.rootfs))
        history.append(entry)
        previous = img.rootfs
    return history, changes


def host_arch() -> str:
    machine = os.uname().machine
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}.get(machine, machine)


def export(repo: Repo, rev: str, output: str | None = None, fmt: str = "docker-archive",
           progress=None) -> ExportResult:
    """Write ``rev`` to ``output``: a file, "-"/None for stdout, or for OCI a directory.

    An OCI layout goes into a directory when ``output`` is one or ends with "/";
    every other output is one archive, written as fs.hostpath says (into a FIFO or
    device, atomically over a file). The path is checked before any work.
    """
    from ..fs.hostpath import check_output, is_stdout, output_file
    from ..fs.tarwrite import TarWriter, pax_stream, write_snapshot

    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    tip = repo.resolve(rev)
    if is_stdout(output) and sys.stdout.isatty():
        raise UsageError("refusing to write an archive to a terminal; use -o FILE or a pipe")
    layout = None  # the directory an OCI layout goes into, if it goes into one
    if fmt == "oci" and output is not None and not is_stdout(output):
        if output.endswith("/") or os.path.isdir(output):
            layout = output
    check_output(output, directory=layout is not None)
    if fmt == "rootfs":
        with output_file(output) as out, pax_stream(out) as tar, _farm(repo) as farm:
            writer = TarWriter(tar, repo.store, farm)
            write_snapshot(writer, repo.image(tip).rootfs)
        return ExportResult(fmt, tip.hex(), 1, 1, writer.sockets)
    with store_lock(repo):  # its spool is in tmp/, which lg gc empties under the exclusive lock
        return _export_image(repo, rev, tip, output, fmt, layout, progress)


def _export_image(repo: Repo, rev: str, tip: bytes, output: str | None, fmt: str, layout: str | None,
                  progress) -> ExportResult:
    from ..fs.hostpath import output_directory, output_file
    from ..fs.imagewrite import write_docker_archive, write_oci

    images = chain(repo, tip)
    os.makedirs(repo.root.tmp, exist_ok=True)
    tmpdir = tempfile.mkdtemp(dir=repo.root.tmp, prefix="export-")
    try:
        layers, sockets = [], 0
        history, changes = image_history(images)
        for i, (old, new) in enumerate(changes):
            made = layer(repo, old, new, tmpdir)
            layers.append(made.file)
            sockets += made.sockets
            if progress:
                progress(i + 1, len(changes))
        config = image_config(images, ["sha256:" + layer.sha256 for layer in layers], history)
        image = names.parse(rev) if names.looks_like_name(rev) else None
        name, tag = (image.name, image.tag) if image else (None, None)
        if fmt == "docker-archive":
            with output_file(output) as out:
                write_docker_archive(out, config, layers, [str(image)] if image else [])
        elif layout is not None:
            with output_directory(layout) as directory:
                write_oci(None, directory, config, layers, name, tag)
        else:
            with output_file(output) as out:
                write_oci(out, None, config, layers, name, tag)
        return ExportResult(fmt, tip.hex(), len(layers), len(history), sockets)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


@dataclass(frozen=True)
class Compression:
    """How a pushed layer is compressed. ``tag`` names the compressor, its version and
    level: it is part of the layer cache's key, since another version or level gives
    other bytes, and the same commit must always give the same digest."""

    name: str  # "gzip", "zstd"
    media_type: str
    tag: str


def compression(name: str) -> Compression:
    """The compression called ``name`` as this lg makes it (ISA-L's gzip, zstandard's zstd)."""
    if name == "gzip":
        import isal

        return Compression(name, "application/vnd.oci.image.layer.v1.tar+gzip",
                           f"gzip-isal{isal.__version__}-{_GZIP_LEVEL}")
    if name == "zstd":
        import zstandard

        return Compression(name, "application/vnd.oci.image.layer.v1.tar+zstd",
                           f"zstd-{zstandard.__version__}-{_ZSTD_LEVEL}")
    raise UsageError(f"unknown compression {name!r}; use gzip or zstd")


_GZIP_LEVEL = 1  # ISA-L's levels are 0-3; 1 is about zlib's 6 in size at several times its speed
_ZSTD_LEVEL = 3


@contextmanager
def _compressing(f, how: Compression | None) -> Iterator:
    if how is None:
        yield f
    elif how.name == "gzip":
        from isal import igzip

        # mtime 0 and no file name: the same tar always gives the same bytes.
        with igzip.GzipFile(fileobj=f, mode="wb", compresslevel=_GZIP_LEVEL, mtime=0) as gz:
            yield gz
    else:
        import zstandard

        with zstandard.ZstdCompressor(level=_ZSTD_LEVEL).stream_writer(f, closefd=False) as z:
            yield z


@dataclass(frozen=True)
class Layer:
    file: LayerFile  # the blob as stored or sent (compressed when asked)
    diff_id: str  # hex sha256 of the uncompressed tar
    sockets: int  # sockets the tar could not hold


def layer(repo: Repo, old: bytes | None, new: bytes, tmpdir: str, how: Compression | None = None,
          follow: Callable[[Spool], None] | None = None) -> Layer:
    """The layer from rootfs ``old`` to ``new``, from the layer cache when made before.

    A layer is a pure function of two immutable trees (and the compressor), so it is
    kept under cache/layers/OLD-NEW.tar[.TAG] with its digests, and a later export or
    push of the same image, like podman's save of stored layers, only reads it. lg gc
    empties this cache.

    When the layer has to be made, ``follow`` (lg push's upload) is given a Spool of
    the file before its first byte, to read it as it grows; the spool is told how the
    making ended, and ``follow``'s side closes it.
    """
    from ..fs.imagewrite import LayerFile
    from ..fs.tarwrite import TarWriter, pax_stream, write_layer

    cache = repo.root.cache_dir("layers")
    key = f"{old.hex() if old else 'empty'}-{new.hex()}" + (f".{how.tag}" if how else "")
    tar, meta = os.path.join(cache, key + ".tar"), os.path.join(cache, key + ".sha256")
    try:
        with open(meta) as f:
            digest, size, *diff_id = f.read().split()
        if os.path.getsize(tar) == int(size):
            return Layer(LayerFile(tar, digest, int(size)), (diff_id or [digest])[0], 0)
    except (OSError, ValueError):
        pass
    os.makedirs(cache, exist_ok=True)
    # A name of its own: a layer made twice in one push (not cached, as it lost sockets)
    # must not truncate the file a spool of the first is still reading.
    fd, tmp = tempfile.mkstemp(dir=tmpdir, prefix=key, suffix=".tar")
    spool = None
    try:
        with os.fdopen(fd, "wb") as f:
            if follow is not None:
                from ..fs.spool import Spool

                spool = Spool(tmp)
                follow(spool)
            digesting = _HashingWriter(f, spool)
            with _compressing(digesting, how) as out:
                offloaded = _Offloaded(out) if how else None
                plain = _HashingWriter(offloaded) if offloaded else digesting
                try:
                    with pax_stream(plain) as stream, _farm(repo) as farm:
                        writer = TarWriter(stream, repo.store, farm)
                        write_layer(writer, old, new)
                except BaseException:
                    if offloaded:
                        offloaded.close(failing=True)
                    raise
                if offloaded:
                    offloaded.close()
        digest, diff = digesting.sha256.hexdigest(), plain.sha256.hexdigest()
        if spool is not None:
            spool.finish("sha256:" + digest, digesting.size)
    except BaseException:  # whatever stops the making (a close that failed, Ctrl-C) stops the reader too
        if spool is not None:
            spool.fail()
        raise
    if writer.sockets == 0:  # a layer that lost sockets is not kept: the warning must come again
        os.replace(tmp, tar)
        with open(meta + ".tmp", "w") as f:
            f.write(f"{digest} {digesting.size}" + (f" {diff}" if how else "") + "\n")
        os.replace(meta + ".tmp", meta)
        tmp = tar
    return Layer(LayerFile(tmp, digest, digesting.size), diff, writer.sockets)


def _farm(repo: Repo):
    """Where a layer's files are read from where it holds them: the farm (fs.farm.FarmReads)."""
    from .checkout import cache

    return cache(repo).reads()


class _Offloaded:
    """Hands what is written to a thread that writes it to ``out`` (the compressor), so that
    compressing (ISA-L and zstd release the GIL), the compressed bytes' digest and the
    file's writes overlap the making of the tar on another core.

    The pieces go through in order and exactly as they were written, in batches of about
    _BATCH bytes: ISA-L's output depends on how its input is cut, and a layer's digest
    must not change with lg's version. The tar's own digest stays with the making
    thread: measured, hashing it here (piece by piece or a batch at a time) made a cold
    push slower, as this thread, the busier one, waits for the GIL after each call.
    """

    _BATCH = 1 << 20
    _QUEUED = 8  # batches in flight: the memory bound

    def __init__(self, out):
        self._out = out
        self._batch: list[bytes] = []
        self._size = 0
        self._queue: queue.Queue[list[bytes] | None] = queue.Queue(self._QUEUED)
        self._error: BaseException | None = None
        self._stop = False
        self._ended = threading.Event()  # waited on, not join: see background.Background
        self._thread = threading.Thread(target=self._work, name="layer-compress", daemon=True)
        self._thread.start()

    def write(self, data) -> int:
        if self._error is not None:
            raise self._error
        self._batch.append(bytes(data))
        self._size += len(data)
        if self._size >= self._BATCH:
            self._queue.put(self._batch)
            self._batch, self._size = [], 0
        return len(data)

    def flush(self) -> None:
        pass  # close() hands over what is left

    def _work(self) -> None:
        try:
            while (batch := self._queue.get()) is not None:
                for piece in batch:
                    if self._stop or self._error is not None:
                        break  # drain the queue, so that the writer never blocks on it
                    try:
                        self._out.write(piece)
                    except BaseException as exc:  # raised in the making thread, by write() or close()
                        self._error = exc
        finally:
            self._ended.set()

    def close(self, failing: bool = False) -> None:
        """Hand over what is left and wait for the thread; raise what stopped it. With
        ``failing`` (the layer is being given up), nothing more is compressed and its
        error is not raised over the one on its way. The wait holds Ctrl-C and
        termination signals (background.signals_held), raised once the thread has ended:
        the compressor is never left to a thread while its file closes. A signal held
        stops the compressing too, as the layer will not be finished."""
        self._stop = self._stop or failing
        with signals_held("waiting for the layer's compression to stop", hurry=self._give_up):
            if not failing:
                self._queue.put(self._batch)
            self._queue.put(None)
            self._ended.wait()
        self._batch = []
        if self._error is not None and not failing:
            raise self._error

    def _give_up(self) -> None:
        self._stop = True


class _HashingWriter:
    """``f``, counting and hashing what goes through; with a spool, also telling it how far
    the file is written, every _SPOOL_STEP bytes (flushed first, so a reader can pread them)."""

    def __init__(self, f, spool: Spool | None = None):
        self._f = f
        self._spool = spool
        self._told = 0
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data) -> int:
        self.sha256.update(data)
        self.size += len(data)
        written = self._f.write(data)
        if self._spool is not None and self.size - self._told >= _SPOOL_STEP:
            self._f.flush()
            self._told = self.size
            self._spool.wrote(self.size)
        return written

    def flush(self) -> None:
        self._f.flush()
