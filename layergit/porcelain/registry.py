"""lg pull and lg push, the registry forms: images to and from OCI registries.

A pull reads the manifest (an index picks the platform), then hands the image to the
importer as an archive's would be (``importer.import_images``): one commit per history
entry, the same tar parser and limits, every blob checked against its digest and size
as it streams, the tag moved last. A manifest already pulled or pushed (the digest
index, ``refs/layergit/digests/NAME/sha256-HEX``) downloads nothing.

A push sends the first-parent history as layers, each commit's diff to its parent as
``lg export`` writes it, compressed and cached by (parent tree, tree, compressor), so
the same commit always gives the same digests. Blobs the registry has are skipped
(HEAD), blobs another repository of the registry has (known from the digest index)
are mounted, the rest go up in chunks, in parallel. The manifest carries the commit id
as ``org.opencontainers.image.revision`` and the config carries the records that let a
pull rebuild the very same commits (``porcelain/provenance.py``).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Callable

from ..errors import LgError, NotFound, UsageError
from ..store import names
from .repo import Repo, store_lock

if TYPE_CHECKING:
    from ..fs.spool import Spool
    from ..fs.tarlayer import Limits
    from ..registry.client import Client, Credentials, Upload
    from ..registry.reference import Reference

REVISION = "org.opencontainers.image.revision"
_INDEX_TYPES = ("application/vnd.oci.image.index.v1+json",
                "application/vnd.docker.distribution.manifest.list.v2+json")
_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
_MOUNT_TRIES = 3  # repositories asked for a mount before uploading
_STREAM_CHUNK = 8 << 20  # bytes per PATCH of a layer uploaded while it is made


@dataclass(frozen=True)
class RegistryOptions:
    """What ``lg pull``/``lg push`` take besides the reference."""

    platform: str | None = None  # os/arch[/variant]; the host's by default
    tls_verify: bool | None = None  # None: as podman decides (registries.conf, loopback)
    timeout: float | None = None  # seconds a registry may stay silent
    compression: str = "gzip"
    all_tags: bool = False
    jobs: int = 4  # blobs in flight
    chunk_size: int | None = None  # bytes per upload PATCH
    limits: Limits | None = None  # what a pulled image may unpack to (lg import's --max-bytes, --max-entries)
    # called with (item, done, total) as blobs move, in bytes for items named by their
    # digest ("sha256:..."), in layers for "preparing layers" (push, compressing)
    progress: Callable[[str, int, int | None], None] | None = field(default=None, compare=False)


@dataclass(frozen=True)
class PullResult:
    reference: str  # as normalised: docker.io/library/debian:latest
    id: str  # the tip commit
    digest: str  # the manifest's
    tags: list[str]
    commits: int
    layers: int
    downloaded: int  # blob bytes fetched (0 when it was already here)
    rebuilt: bool  # the commits are the ones the pushing lg had (provenance records held)


@dataclass(frozen=True)
class PushResult:
    reference: str
    id: str
    digest: str
    layers: int
    uploaded: int  # blobs sent
    skipped: int  # blobs the registry had
    mounted: int  # blobs mounted from another repository
    bytes: int  # bytes sent
    requests: int  # HTTP requests made
    skipped_sockets: int = 0


def platform_of(text: str | None) -> tuple[str, str, str | None]:
    """(os, architecture, variant) from ``os/arch[/variant]``; the host's when None."""
    from .exporter import host_arch

    if text is None:
        return "linux", host_arch(), None
    parts = text.split("/")
    if not 2 <= len(parts) <= 3 or not all(parts):
        raise UsageError(f"invalid platform {text!r}: use os/arch[/variant], as linux/amd64")
    return parts[0], parts[1], parts[2] if len(parts) == 3 else None


def connect(registry: str, options: RegistryOptions, credentials: Credentials | None = None) -> Client:
    """A client for ``registry`` on the first endpoint that answers /v2/, with the
    credentials given or else those the auth files hold."""
    from ..registry import auth, settings
    from ..registry.client import AuthError, Client, RegistryError, TransportError, answers_plain_http
    from ..registry.reference import DOCKER_HUB, DOCKER_HUB_API

    host = DOCKER_HUB_API if registry == DOCKER_HUB else registry
    credentials = credentials or auth.lookup(registry)
    failure: TransportError | None = None
    candidates = settings.endpoints(host, options.tls_verify, options.timeout)
    if len(candidates) > 1 and answers_plain_http(candidates[0]):
        candidates = candidates[1:]  # https would fail as the probe did, having loaded the CA store first
    for endpoint in candidates:
        client = Client(endpoint, credentials)
        try:
            client.ping(refused_ok=True)
            return client
        except TransportError as exc:  # no answer here: the next endpoint may give one
            failure = failure or exc
            client.close()
        except RegistryError as exc:
            client.close()
            # Plain HTTP to a TLS registry answers 400: the TLS failure is the news.
            if failure is not None and not isinstance(exc, AuthError):
                raise failure from None
            raise
    assert failure is not None
    raise failure


# --- pull ---------------------------------------------------------------------------


def pull(repo: Repo, reference: str, options: RegistryOptions | None = None) -> list[PullResult]:
    """Pull ``reference`` (Docker's grammar); with ``all_tags``, every tag of its repository."""
    from ..registry.reference import parse
    from ..registry.settings import mirrors

    options = options or RegistryOptions()
    ref = parse(reference)
    platform = platform_of(options.platform)
    for mirror in mirrors(ref.registry):  # registries.conf's mirrors first, as podman
        try:
            return _pull_from(repo, connect(mirror, options), ref, platform, options)
        except LgError:
            continue  # a mirror that fails or lacks the image: the next, then the registry itself
    return _pull_from(repo, connect(ref.registry, options), ref, platform, options)


def _pull_from(repo: Repo, client: Client, ref: Reference, platform, options: RegistryOptions
               ) -> list[PullResult]:
    try:
        if not options.all_tags:
            return [_pull_one(repo, client, ref, platform, options)]
        if ref.tag not in (None, "latest") or ref.digest:
            raise UsageError("--all-tags takes a name without a tag or digest")
        tags = client.tags(ref.repository)
        if not tags:
            raise NotFound(f"{ref.registry}/{ref.repository} has no tags")
        return [_pull_one(repo, client, _with_tag(ref, tag), platform, options) for tag in sorted(tags)]
    finally:
        client.close()


def _with_tag(ref: Reference, tag: str) -> Reference:
    from ..registry.reference import parse

    return parse(f"{ref.registry}/{ref.repository}:{tag}")  # a tag from the registry is checked as any


def _json_doc(data: bytes, what: str) -> dict:
    from ..registry.client import RegistryError

    try:
        doc = json.loads(data)
    except (ValueError, RecursionError):
        raise RegistryError(f"{what} is not valid JSON") from None
    if not isinstance(doc, dict):
        raise RegistryError(f"{what} is not a JSON object")
    return doc


def _describe(p: object) -> str:
    if not isinstance(p, dict):
        return "?"
    text = f"{p.get('os')}/{p.get('architecture')}"
    return text + (f"/{p['variant']}" if isinstance(p.get("variant"), str) else "")


def select_platform(index: dict, platform: tuple[str, str, str | None], what: str) -> dict:
    """The descriptor of ``index`` for ``platform``; NotFound listing what it has."""
    from ..text import printable

    want_os, want_arch, want_variant = platform
    found = []
    for desc in index.get("manifests") or []:
        if not isinstance(desc, dict):
            continue
        p = desc.get("platform")
        if not isinstance(p, dict) or p.get("os") == "unknown":
            continue  # attestations and other non-images
        found.append(_describe(p))
        if p.get("os") == want_os and p.get("architecture") == want_arch and \
                (want_variant is None or p.get("variant") == want_variant):
            return desc
    wanted = "/".join(x for x in platform if x)
    listed = printable(", ".join(found[:20])) or "none"
    raise NotFound(f"{what} has no image for {wanted}; it has: {listed}")


def _manifest(client: Client, ref: Reference, platform) -> tuple[dict, str, str]:
    """(image manifest, its digest, the digest the reference names) after index selection."""
    from ..registry.client import RegistryError

    what = f"{ref.registry}/{ref.repository}:{ref.tag}" if not ref.digest else str(ref)
    body, media, digest = client.get_manifest(ref.repository, ref.reference)
    doc = _json_doc(body, f"manifest of {what}")
    named = digest
    kind = doc.get("mediaType") or media
    if doc.get("schemaVersion") == 1:
        raise RegistryError(f"{what}: Docker schema 1 manifests are not supported")
    if kind in _INDEX_TYPES or isinstance(doc.get("manifests"), list):
        target, size = _descriptor(select_platform(doc, platform, what), f"{what}: the index's manifest")
        body, media, digest = client.get_manifest(ref.repository, target)
        if len(body) != size:
            raise RegistryError(f"{what}: the index says its manifest is {size} bytes, it is {len(body)}")
        doc = _json_doc(body, f"manifest {target}")
        if isinstance(doc.get("manifests"), list):
            raise RegistryError(f"{what}: an index inside an index is not supported")
    if not isinstance(doc.get("config"), dict) or not isinstance(doc.get("layers"), list):
        raise RegistryError(f"{what}: the manifest lacks config or layers")
    return doc, digest, named


def _descriptor(desc: object, what: str) -> tuple[str, int]:
    from ..registry.client import RegistryError

    if not isinstance(desc, dict):
        raise RegistryError(f"{what}: malformed descriptor")
    digest, size = desc.get("digest"), desc.get("size")
    if not isinstance(digest, str) or not digest.startswith("sha256:") or len(digest) != 71 \
            or not all(c in "0123456789abcdef" for c in digest[7:]):
        raise RegistryError(f"{what}: unsupported or malformed digest")
    if type(size) is not int or size < 0:
        raise RegistryError(f"{what}: malformed size")
    return digest, size


def _config(client: Client, repository: str, manifest: dict) -> dict:
    from ..registry.client import MAX_JSON, BlobStream, RegistryError

    digest, size = _descriptor(manifest["config"], "image config")
    if size > MAX_JSON:
        raise RegistryError(f"image config of {size} bytes is over {MAX_JSON}")
    with BlobStream(client.open_blob(repository, digest), digest, size, "image config",
                    seconds=client.document_time) as stream:
        data = stream.read()
        stream.read()  # the end: size and digest checked
    return _json_doc(data, "image config")


_LAYER_TYPES = (
    "application/vnd.oci.image.layer.v1.tar", "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd", "application/vnd.docker.image.rootfs.diff.tar.gzip",
)


def _layers(client: Client, ref: Reference, manifest: dict, config: dict, counter: list[int], progress,
            max_bytes: int) -> list:
    from ..fs.imagearchive import LayerRef
    from ..fs.tarlayer import LimitExceeded
    from ..registry.client import RegistryError

    rootfs = config.get("rootfs")
    diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if not isinstance(diff_ids, list) or len(diff_ids) != len(manifest["layers"]):
        raise RegistryError(f"{ref}: the manifest and the image config disagree on the layers")
    out = []
    for desc, diff_id in zip(manifest["layers"], diff_ids, strict=True):
        digest, size = _descriptor(desc, "layer")
        media = desc.get("mediaType")
        if media not in _LAYER_TYPES:
            from ..text import printable

            raise RegistryError(f"{ref}: unsupported layer media type {printable(str(media)[:100])!r}")
        out.append(LayerRef(partial(_open_layer, client, ref.repository, digest, size, counter, progress),
                            f"{digest[:19]}", digest, size, diff_id if isinstance(diff_id, str) else None,
                            checked=True))  # a BlobStream checks digest and size as it ends
    declared = sum(layer.size or 0 for layer in out)
    if declared > max_bytes + max_bytes // 1000 + len(out) * (64 << 10):
        # gzip and zstd store incompressible data with well under 0.1% added, so these
        # layers must unpack to more than --max-bytes: refused before any is downloaded
        # (the later ones would be spooled to disk in parallel, as large as they claim).
        raise LimitExceeded(f"{ref}: its layers are {declared} bytes compressed; they would unpack to more"
                            f" than {max_bytes} bytes (raise the limit with --max-bytes)")
    return out


def _open_layer(client: Client, repository: str, digest: str, size: int, counter: list[int], progress):
    from ..registry.client import BlobStream

    on_bytes = _bytes_to(progress, digest[:19], size)
    stream = BlobStream(client.open_blob(repository, digest), digest, size, f"layer {digest[:19]}", on_bytes)
    counter.append(size)
    return stream


class _Prefetch:
    """Layers after the first download in parallel into spools under tmp/ while the
    importer reads the first straight from the registry; each spool is checked (digest,
    size) as it is written and read again by the importer, which checks it again. A
    failure or Ctrl-C stops the downloads and removes the spools."""

    def __init__(self, repo: Repo, layers: list, jobs: int):
        self.repo, self.layers, self.jobs = repo, layers, max(1, jobs)
        self.stop = threading.Event()

    def __enter__(self) -> list:
        from dataclasses import replace

        if len(self.layers) < 2 or self.jobs < 2:
            self.pool = None
            return self.layers
        os.makedirs(self.repo.root.tmp, exist_ok=True)
        self.dir = tempfile.mkdtemp(dir=self.repo.root.tmp, prefix="pull-")
        self.pool = ThreadPoolExecutor(min(self.jobs, len(self.layers) - 1))
        out = [self.layers[0]]
        for i, layer in enumerate(self.layers[1:], 1):
            path = os.path.join(self.dir, str(i))
            future = self.pool.submit(self._spool, layer, path)
            last = i == len(self.layers) - 1
            out.append(replace(layer, open=partial(self._open, future, path, last), checked=False))
        return out

    def _spool(self, layer, path: str) -> None:
        with layer.open() as stream, open(path, "wb") as f:
            while chunk := stream.read(1 << 20):
                if self.stop.is_set():
                    raise LgError("pull interrupted")
                f.write(chunk)

    def _open(self, future, path: str, last: bool):
        future.result()  # its error, if the download failed
        if last:  # every download is done: the threads end, so that materialising may fork (fs.pieces)
            assert self.pool is not None
            self.pool.shutdown(wait=True)
        return open(path, "rb")

    def __exit__(self, *exc) -> None:
        if self.pool is None:
            return
        self.stop.set()
        self.pool.shutdown(wait=True, cancel_futures=True)
        shutil.rmtree(self.dir, ignore_errors=True)


def _bytes_to(progress, item: str, total: int) -> Callable[[int], None] | None:
    """A callback(bytes so far) reporting ``item``'s transfer to ``progress``, if any."""
    if progress is None:
        return None
    return lambda done: progress(item, done, total)


def _known(repo: Repo, digest: str) -> bytes | None:
    """The commit any repository's manifest ``digest`` was pulled into or pushed from."""
    leaf = "/" + digest.replace(":", "-")
    for ref, oid in repo.store.refs(names.DIGEST_PREFIX):
        if ref.endswith(leaf) and repo.store.has(oid):
            return oid
    return None


def _pull_one(repo: Repo, client: Client, ref: Reference, platform, options: RegistryOptions) -> PullResult:
    from .importer import import_images

    manifest, digest, named = _manifest(client, ref, platform)
    target = names.parse(ref.local()) if ref.tag else None
    keys = {named, digest}
    known = next((oid for oid in map(partial(_known, repo), keys) if oid), None)
    if known is not None:
        with store_lock(repo):
            _record(repo, ref.name, keys, known)
            if target:
                _tag(repo, target, known, str(ref))
        return PullResult(str(ref), known.hex(), digest, [str(target)] if target else [], 0, 0, 0, True)
    from ..fs.imagearchive import ImageSpec
    from ..fs.tarlayer import Limits

    config = _config(client, ref.repository, manifest)
    counter: list[int] = []
    layers = _layers(client, ref, manifest, config, counter, options.progress,
                     (options.limits or Limits()).max_bytes)
    with store_lock(repo), _Prefetch(repo, layers, options.jobs) as prefetched:
        spec = ImageSpec(config, prefetched, [])
        [result] = import_images(repo, [spec], target, str(ref), options.limits)
        tip = bytes.fromhex(result.id)
        _record(repo, ref.name, keys, tip)
    rebuilt = _rebuilt(config, result.id)
    return PullResult(str(ref), result.id, digest, result.tags, result.commits, result.layers, sum(counter),
                      rebuilt)


def _rebuilt(config: dict, tip: str) -> bool:
    from .provenance import KEY

    commits = (config.get(KEY) or {}).get("commits") if isinstance(config.get(KEY), dict) else None
    return isinstance(commits, list) and bool(commits) and isinstance(commits[-1], dict) \
        and commits[-1].get("id") == tip


def _tag(repo: Repo, target: names.ImageName, oid: bytes, source: str) -> None:
    from .images import force_tag

    force_tag(repo, target, oid, f"pull: {source}")


def _record(repo: Repo, name: str, digests, oid: bytes) -> None:
    """Point the digest index at ``oid`` for each of ``digests`` of image ``name``."""
    store = repo.store
    for digest in digests:
        ref = names.digest_ref(name, digest)
        old = store.ref(ref)
        if old != oid:
            store.set_ref(ref, oid, old, f"digest: {name}@{digest}")


# --- push ---------------------------------------------------------------------------


@dataclass
class _Blob:
    digest: str
    size: int
    path: str | None = None  # a file, or
    data: bytes | None = None  # bytes in memory (the config)


@dataclass
class _Tally:
    uploaded: int = 0
    skipped: int = 0
    mounted: int = 0
    bytes: int = 0


def push(repo: Repo, reference: str, options: RegistryOptions | None = None) -> PushResult:
    """Push the image ``reference`` names (``localhost:5000/app:1``) to its registry.

    A layer the layer cache does not hold is uploaded while it is made (a spool the
    upload follows): a cold push costs about the longer of making and sending, not
    their sum. Its digest is known only at its end, so the check that the registry
    has it already, or can mount it, comes then, and a needless upload is cancelled.
    """
    from ..registry.reference import parse

    options = options or RegistryOptions()
    ref = parse(reference)
    if ref.digest or not ref.tag:
        raise UsageError(f"push takes NAME[:TAG], not a digest: {reference}")
    tip = repo.resolve(ref.local())
    os.makedirs(repo.root.tmp, exist_ok=True)
    with store_lock(repo):
        tmpdir = tempfile.mkdtemp(dir=repo.root.tmp, prefix="push-")
        try:
            client = connect(ref.registry, options)
            try:
                from .exporter import chain

                images = chain(repo, tip)
                sender = _Sender(repo, client, ref, options, stream=not _seen_there(repo, ref, images))
                with ThreadPoolExecutor(max(1, options.jobs)) as pool:
                    try:
                        follow = sender.follow(pool)
                        blobs, manifest, sockets, layers = _prepare(repo, images, options, tmpdir, follow)
                        sender.send(pool, blobs)
                    except BaseException:
                        sender.abort(pool)
                        raise
                body = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
                digest = client.put_manifest(ref.repository, ref.tag, body, _OCI_MANIFEST)
                requests = client.requests
            finally:
                client.close()
            _record(repo, ref.name, [digest], tip)
        finally:
            shutil.rmtree(tmpdir, ignore_errors=True)
    tally = sender.tally
    return PushResult(str(ref), tip.hex(), digest, layers, tally.uploaded, tally.skipped, tally.mounted,
                      tally.bytes, requests, sockets)


def _prepare(repo: Repo, images: list, options: RegistryOptions, tmpdir: str,
             follow: Callable[[Spool, int], None] | None) -> tuple[list[_Blob], dict, int, int]:
    """The blobs (layers, config) and the manifest of the image whose first-parent history
    is ``images``; ``follow``, if any, is given the spool of each layer that has to be
    made (exporter.layer) and the layer's number in the image."""
    from ..fs.imagewrite import canonical_json
    from . import exporter

    how = exporter.compression(options.compression)
    history, changes = exporter.image_history(images)
    made = []
    for i, (old, new) in enumerate(changes):
        step = partial(_numbered, follow, i + 1) if follow else None
        made.append(exporter.layer(repo, old, new, tmpdir, how, step))
        if options.progress:
            options.progress("preparing layers", i + 1, len(changes))
    config = exporter.image_config(images, ["sha256:" + m.diff_id for m in made], history)
    cfg = canonical_json(config)
    cfg_blob = _Blob(_sha256(cfg), len(cfg), data=cfg)
    layer_blobs = [_Blob("sha256:" + m.file.sha256, m.file.size, path=m.file.path) for m in made]
    manifest = {
        "schemaVersion": 2,
        "mediaType": _OCI_MANIFEST,
        "config": {"mediaType": _OCI_CONFIG, "digest": cfg_blob.digest, "size": cfg_blob.size},
        "layers": [{"mediaType": how.media_type, "digest": b.digest, "size": b.size} for b in layer_blobs],
        "annotations": {REVISION: images[-1].id.hex()},
    }
    unique = list({b.digest: b for b in [*layer_blobs, cfg_blob]}.values())
    return unique, manifest, sum(m.sockets for m in made), len(made)


def _numbered(follow: Callable[[Spool, int], None], number: int, spool: Spool) -> None:
    follow(spool, number)


def _sha256(data: bytes) -> str:
    import hashlib

    return "sha256:" + hashlib.sha256(data).hexdigest()


def _mount_sources(repo: Repo, ref: Reference) -> list[str]:
    """Repositories of the same registry that lg pushed to or pulled from (digest index)."""
    from ..registry.reference import parse

    out: list[str] = []
    for name_ref, _ in repo.store.refs(names.DIGEST_PREFIX):
        parsed = names.from_digest_ref(name_ref)
        if parsed is None:
            continue
        try:
            other = parse(parsed[0])
        except UsageError:
            continue
        if other.registry == ref.registry and other.repository != ref.repository \
                and other.repository not in out:
            out.append(other.repository)
    return out[:_MOUNT_TRIES]


class _Sender:
    """Sends a push's blobs, at most ``options.jobs`` at a time: with ``stream``, the layers
    being made as they grow (:meth:`follow`), then every other blob (:meth:`send`), each
    skipped when the registry has it, mounted when another repository of it has,
    uploaded otherwise. A digest is counted once, however many layers have it."""

    def __init__(self, repo: Repo, client: Client, ref: Reference, options: RegistryOptions, stream: bool):
        from ..registry.client import DEFAULT_CHUNK_UPLOAD

        self.client, self.ref, self.options, self.stream = client, ref, options, stream
        self.chunk = options.chunk_size or DEFAULT_CHUNK_UPLOAD
        # A layer sent as it is made goes in smaller pieces: its first waits for that many
        # bytes to be made, and the registry's work on each overlaps the making of the next.
        self.stream_chunk = options.chunk_size or _STREAM_CHUNK
        self.sources = _mount_sources(repo, ref)
        self.tally = _Tally()
        self._streamed: list[tuple[Future, Spool]] = []
        self._slots = threading.Semaphore(2 * max(1, options.jobs))  # spools (open files) in flight
        self._counted: set[str] = set()
        self._lock = threading.Lock()

    def _count(self, digest: str, outcome: str, size: int) -> None:
        with self._lock:
            if digest in self._counted:
                return
            self._counted.add(digest)
            setattr(self.tally, outcome, getattr(self.tally, outcome) + 1)
            self.tally.bytes += size if outcome == "uploaded" else 0

    def follow(self, pool: ThreadPoolExecutor) -> Callable[[Spool, int], None] | None:
        """What exporter.layer calls with each layer it makes: its upload, queued."""
        if not self.stream:
            return None

        def start(spool: Spool, number: int) -> None:
            try:
                for future, _ in self._streamed:  # an upload that failed stops the making of more
                    if future.done() and future.exception() is not None:
                        future.result()
                self._slots.acquire()
                label = f"layer {number} (sent as it is made)"
                self._streamed.append((pool.submit(self._stream, spool, label), spool))
            except BaseException:
                spool.close()
                raise
        return start

    def _stream(self, spool: Spool, label: str) -> None:
        from ..fs.spool import SpoolFailed
        from ..registry.client import Upload

        repository = self.ref.repository
        progress = self.options.progress
        on_bytes = (lambda done: progress(label, done, None)) if progress else None  # size: at the end
        try:
            upload = Upload(repository, self.client.start_upload(repository))
            try:
                self.client.send_chunks(upload, spool, self.stream_chunk, on_bytes)
                digest = spool.digest()
                outcome, opened = _found(self.client, repository, digest, self.sources)
                if opened is not None:  # ours is already under way
                    self.client.cancel_upload(opened)
                if outcome == "uploaded":
                    self.client.finish_upload(upload, digest)
                else:
                    self.client.cancel_upload(upload)
            except BaseException:
                self.client.cancel_upload(upload)
                raise
            self._count(digest, outcome, spool.size())
            if progress:
                progress(label, spool.size(), spool.size())
        except SpoolFailed:
            return  # the layer could not be made, or the push stopped: that error is the push's
        finally:
            spool.close()
            self._slots.release()

    def abort(self, pool: ThreadPoolExecutor) -> None:
        """Stop every upload at its next chunk (the push failed, or was interrupted) rather
        than let each send its whole layer first; queued ones never start."""
        for _, spool in self._streamed:
            spool.fail()
        pool.shutdown(wait=True, cancel_futures=True)
        for future, spool in self._streamed:
            if future.cancelled():
                spool.close()

    def send(self, pool: ThreadPoolExecutor, blobs: list[_Blob]) -> None:
        """Wait for the streamed layers, then send the blobs that were not streamed."""
        streamed = set()
        for future, spool in self._streamed:
            future.result()
            streamed.add(spool.digest())

        def one(blob: _Blob) -> None:
            on_bytes = _bytes_to(self.options.progress, blob.digest[:19], blob.size)
            outcome = _send_one(self.client, self.ref.repository, blob, self.sources, self.chunk, on_bytes)
            self._count(blob.digest, outcome, blob.size)

        for future in [pool.submit(one, blob) for blob in blobs if blob.digest not in streamed]:
            future.result()


def _found(client: Client, repository: str, digest: str, sources: list[str]) -> tuple[str, Upload | None]:
    """"skipped" when the registry has ``digest`` in ``repository``, "mounted" when it could
    mount it from one of ``sources``, else "uploaded" (for the caller to upload), with the
    upload the last refused mount opened (a registry opens one instead; the others are
    cancelled), else None."""
    from ..registry.client import Upload

    if client.has_blob(repository, digest):
        return "skipped", None
    opened = None
    for source in sources:
        if opened is not None:
            client.cancel_upload(opened)
        location = client.mount_blob(repository, digest, source)
        if location is None:
            return "mounted", None
        opened = Upload(repository, location)
    return "uploaded", opened


def _seen_there(repo: Repo, ref: Reference, images: list) -> bool:
    """Whether the digest index records a commit of ``images`` at ``ref``'s registry (pushed
    to or pulled from it). Then its layers are likely there already: they are made first
    and checked, not streamed, so a push after lg gc emptied the layer cache, or of an
    image built on a base pulled from there, does not send what the registry holds."""
    from ..registry.reference import parse

    commits = {img.id for img in images}
    for name_ref, oid in repo.store.refs(names.DIGEST_PREFIX):
        parsed = names.from_digest_ref(name_ref)
        if parsed is None or oid not in commits:
            continue
        try:
            if parse(parsed[0]).registry == ref.registry:
                return True
        except UsageError:
            continue
    return False


def _send_one(client: Client, repository: str, blob: _Blob, sources: list[str], chunk: int, on_bytes
              ) -> str:
    """Skip, mount or upload one blob; says which."""
    outcome, opened = _found(client, repository, blob.digest, sources)
    if outcome == "uploaded":
        _upload(client, repository, blob, opened.location if opened else None, chunk, on_bytes)
    elif on_bytes:
        on_bytes(blob.size)
    return outcome


def _upload(client: Client, repository: str, blob: _Blob, location: str | None, chunk: int, on_bytes) -> None:
    import io

    if blob.data is not None:
        data = io.BytesIO(blob.data)
        client.upload_blob(repository, blob.digest, blob.size, data, location, chunk, on_bytes)
        return
    assert blob.path is not None
    try:
        with open(blob.path, "rb") as f:
            client.upload_blob(repository, blob.digest, blob.size, f, location, chunk, on_bytes)
    except FileNotFoundError:
        raise LgError(f"layer file {blob.path} vanished during the push (lg gc?); push again") from None


# --- login --------------------------------------------------------------------------


def login(host: str, username: str, password: str, options: RegistryOptions | None = None) -> str:
    """Check the credentials against ``host``'s /v2/ (Basic or a token), then record them
    where podman does; returns the file. Wrong ones are refused and nothing is written."""
    from ..registry import auth
    from ..registry.client import Credentials

    credentials = Credentials(username, password)
    client = connect(host, options or RegistryOptions(), credentials=credentials)
    try:
        client.ping()
    finally:
        client.close()
    return auth.save(host, credentials)
