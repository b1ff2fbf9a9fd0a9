"""lg import: rootfs tarballs, docker-archives and OCI layouts become image commits.

A layered image becomes one commit per history entry, oldest first: a layer's
entry changes the rootfs, an ``empty_layer`` entry (ENV, CMD, ...) is a commit with
the same rootfs, so ``lg log`` reads like ``docker history``. Imported commits are
deterministic: author and dates come from the image's history and the committer is
the author, so importing the same image twice gives the same ids.

Everything is written into one pack that is only installed when the whole archive
checked out (digests, sizes, limits); tags move last. A failed import leaves nothing.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from ..background import ReadAhead
from ..errors import CorruptStore, LgError, UsageError, disk_full_names
from ..fs.imagearchive import DirSource, TarSource, detect, read_images
from ..fs.tarlayer import (
    ArchiveError,
    Digesting,
    LimitExceeded,
    Limits,
    TarEntry,
    apply_layer,
    decompressed,
    read_tar,
    split_path,
)
from ..store import names
from ..store.mutable import MutableTree
from ..store.rawobj import Signature
from .checkout import cache, deposit
from .images import force_tag
from .provenance import rebuild
from .repo import Repo, store_lock

if TYPE_CHECKING:
    from ..store.store import ObjectWriter

FORMATS = ("auto", "rootfs", "docker-archive", "oci")
_HEX64 = re.compile(rb"[0-9a-f]{64}")
_IMAGE_TOP = {b"manifest.json", b"index.json", b"oci-layout", b"repositories", b"blobs"}
# Fields of an image config's "config" object that config.json keeps (Docker's names).
_CONFIG_KEYS = ("User", "ExposedPorts", "Env", "Entrypoint", "Cmd", "Volumes", "WorkingDir", "Labels",
                "StopSignal", "Healthcheck", "OnBuild", "Shell", "ArgsEscaped")


@dataclass(frozen=True)
class ImportedImage:
    id: str
    tags: list[str]
    commits: int
    layers: int


def runtime_config(image_config: dict) -> dict:
    """config.json for an image: its runtime config, plus the platform it was built for.

    Checked here (store.image.check_config), before any layer is read: an image whose
    Env, Cmd or WorkingDir has a type no container can use is refused whole at import.
    """
    from ..store.image import InvalidConfig, check_config

    inner = image_config.get("config") or image_config.get("container_config") or {}
    if not isinstance(inner, dict):
        raise ArchiveError("the image config's \"config\" is not a map")
    out = {k: inner[k] for k in _CONFIG_KEYS if inner.get(k) is not None}
    for key, name in (("architecture", "Architecture"), ("os", "Os"), ("variant", "Variant")):
        if isinstance(image_config.get(key), str):
            out[name] = image_config[key]
    try:
        return check_config(out)
    except InvalidConfig as exc:
        raise ArchiveError(f"image config: {exc}") from None


def _parse_time(text) -> int:
    if not isinstance(text, str) or not text:
        return 0
    text = text.strip().replace("Z", "+00:00")
    if "." in text:  # RFC 3339 allows nanoseconds; datetime takes microseconds
        head, _, rest = text.partition(".")
        digits = "".join(c for c in rest if c.isdigit())
        text = head + "." + (digits[:6] or "0") + rest[len(digits):]
    try:
        return max(0, int(datetime.fromisoformat(text).timestamp()))  # git dates start at 1970
    except (ValueError, OverflowError):
        return 0


def _clean(message: str) -> str:
    """A history text fit for a commit message: git refuses NUL, and control bytes are noise."""
    return "".join(c if c in "\n\t" or c >= " " else " " for c in message) or "imported layer"


# Who made a layer whose history entry names nobody (most do: Docker fills "author" only
# for MAINTAINER and docker commit -a): git needs a name, and lg does not invent one.
NO_AUTHOR = "unknown"


def _signature_part(text: str) -> str:
    """One field of a git signature: one line, no angle brackets, no control bytes."""
    return "".join(" " if c < " " or c in "<>" else c for c in text).strip()


def _author(entry: dict, when: int) -> Signature:
    """The history entry's author ("Name <email>", or either part alone), else NO_AUTHOR."""
    author = entry.get("author")
    if not isinstance(author, str):
        author = ""
    name, _, email = author.partition("<")
    email = _signature_part(email.rstrip().removesuffix(">"))
    return Signature(_signature_part(name) or NO_AUTHOR, email, when, 0)


def _open_source(repo: Repo, source: str, limits: Limits, cleanup: list):
    """A path we can read twice: stdin is spooled, a compressed file decompressed."""
    if source == "-":
        os.makedirs(repo.root.tmp, exist_ok=True)
        spool = tempfile.NamedTemporaryFile(dir=repo.root.tmp, prefix="import-", delete=False)
        cleanup.append(spool.name)
        with disk_full_names(spool.name), spool:
            shutil.copyfileobj(sys.stdin.buffer, spool, 1 << 20)
        source = spool.name
    if os.path.isdir(source):
        return source, True
    if not os.path.exists(source):
        raise LgError(f"no such file or directory: {source}")
    with open(source, "rb") as f:
        magic = f.read(6)
    if magic[:2] == b"\x1f\x8b" or magic == b"\xfd7zXZ\x00" or magic[:4] == b"\x28\xb5\x2f\xfd":
        os.makedirs(repo.root.tmp, exist_ok=True)
        plain = tempfile.NamedTemporaryFile(dir=repo.root.tmp, prefix="import-", delete=False)
        cleanup.append(plain.name)
        with disk_full_names(plain.name), open(source, "rb") as raw, plain:
            stream = decompressed(raw, limits)
            shutil.copyfileobj(stream, plain, 1 << 20)
        limits.bytes = 0  # counted again when the tar is parsed
        source = plain.name
    return source, False


def _read_layer(layer, limits: Limits, writer, deposit):
    """Parse one layer blob, verifying its size and digests; returns its entries."""
    raw = Digesting(layer.open(), digest=not layer.checked)
    stream = decompressed(io.BufferedReader(raw), limits)
    with ReadAhead(stream) as ahead:  # received, hashed and inflated beside the parse
        entries = read_tar(ahead, writer, limits, whiteouts=True, deposit=deposit)
        while ahead.read(1 << 20):  # the padding after the tar's end is hashed too
            pass
    stream.drain()
    raw.drain()
    if layer.size is not None and layer.size != raw.size:
        raise ArchiveError(f"layer {layer.name}: size {raw.size} does not match the manifest's {layer.size}")
    if layer.digest is not None and not layer.checked and "sha256:" + raw.sha256.hexdigest() != layer.digest:
        raise ArchiveError(f"layer {layer.name}: content does not match its digest")
    if layer.diff_id is not None and "sha256:" + stream.sha256.hexdigest() != layer.diff_id:
        raise ArchiveError(f"layer {layer.name}: uncompressed content does not match the config's diff_id")
    return entries


def _history(spec) -> list[tuple[dict, bool]]:
    """(history entry, has a layer) pairs; made up from the layers when history is missing."""
    listed = spec.config.get("history") or []
    if not isinstance(listed, list):
        raise ArchiveError("the image config's \"history\" is not a list")
    history = [h for h in listed if isinstance(h, dict)]
    if sum(1 for h in history if not h.get("empty_layer")) != len(spec.layers):
        created = spec.config.get("created")
        history = [{"created": created, "created_by": f"layer {i + 1} ({layer.name})"}
                   for i, layer in enumerate(spec.layers)]
    return [(h, not h.get("empty_layer")) for h in history]


def _import_spec(
    repo: Repo, spec, writer, deposit, limits: Limits, progress
) -> tuple[bytes, bytes | None, int, int]:
    """Commit one image's chain; returns (tip commit, its rootfs tree if it may be
    materialised now (see _materialise), commits, layers)."""
    from ..store.image import write_image_tree

    config = runtime_config(spec.config)
    tree = MutableTree.empty(repo.store)
    rootfs = tree.write(writer)
    parent: bytes | None = None
    layers = iter(spec.layers)
    done = 0
    specials = False
    history = _history(spec)
    trees = []  # the rootfs after each history entry, for provenance.rebuild
    for entry, has_layer in history:
        if has_layer:
            layer = next(layers)
            entries = _read_layer(layer, limits, writer, deposit)
            specials = specials or _has_specials(entries)
            apply_layer(tree, entries)
            rootfs = tree.write(writer)
            done += 1
            if progress:
                progress(done, len(spec.layers), limits.bytes)
        trees.append(rootfs)
        when = _parse_time(entry.get("created"))
        sig = _author(entry, when)
        texts = (entry.get("created_by"), entry.get("comment"))  # strings in Docker's and OCI's schema
        message = _clean(next((t for t in texts if isinstance(t, str) and t), "imported layer"))
        parent = writer.commit(write_image_tree(writer, config, rootfs), [parent] if parent else [], sig, sig,
                               message)
    if parent is None:  # an image with no layers and no history
        sig = _author({}, _parse_time(spec.config.get("created")))
        parent = writer.commit(write_image_tree(writer, config, rootfs), [], sig, sig, "empty image")
    parent = rebuild(writer, spec.config, trees) or parent  # the exact commits lg exported, if they are
    return parent, None if specials else rootfs, len(history), done


def _tags_for(spec, override: str | None) -> list[names.ImageName]:
    if override:
        return [names.parse(override)]
    out = []
    for text in spec.tags:
        try:
            out.append(names.parse(text))
        except UsageError:
            continue
    return out


def import_archive(
    repo: Repo,
    source: str,
    tag: str | None = None,
    fmt: str = "auto",
    message: str | None = None,
    limits: Limits | None = None,
    progress=None,
) -> list[ImportedImage]:
    """Import ``source`` (a path, a directory or "-" for stdin); returns what was tagged."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    target = names.parse(tag) if tag else None
    limits = limits or Limits()
    cleanup: list[str] = []
    try:
        # Spools name themselves; what fills up later is the store (packs, refs).
        with store_lock(repo), disk_full_names(repo.root.store):
            return _import(repo, source, target, fmt, message, limits, progress, cleanup)
    finally:
        for path in cleanup:
            os.unlink(path)


def _import(repo, source, target, fmt, message, limits, progress, cleanup) -> list[ImportedImage]:
    path, is_dir = _open_source(repo, source, limits, cleanup)
    if fmt == "auto" and not is_dir and target is not None:
        # Most tarballs given a name are a rootfs: import it in one pass, stopping at the
        # first member an image archive has at its top (detection then reads the whole
        # archive, as it did up front for every tar: a third of a minbase import).
        counted = limits.bytes, limits.entries
        try:
            return [_import_rootfs(repo, path, target, message, limits, _stop_at_image_member)]
        except _ImageMember:
            limits.bytes, limits.entries = counted
    if fmt == "rootfs" or (fmt == "auto" and not is_dir and not _is_image_tar(path, limits)):
        if is_dir:
            raise UsageError("a rootfs import needs a tar file; use lg commit for a directory")
        return [_import_rootfs(repo, path, target, message, limits)]
    source_obj = DirSource(path) if is_dir else TarSource(path, limits)
    detected = detect(source_obj)
    if fmt != "auto" and fmt != detected:
        raise ArchiveError(f"{source} is a {detected}, not a {fmt}")
    return _land(repo, read_images(source_obj, detected), target, source, limits, progress)


def import_images(repo: Repo, specs: list, target: names.ImageName | None, source: str,
                  limits: Limits | None = None, progress=None) -> list[ImportedImage]:
    """Import images read elsewhere (``lg pull``'s, whose layers stream from a registry),
    exactly as an archive's: the same commits, checks, limits and materialising."""
    limits = limits or Limits()
    with store_lock(repo), disk_full_names(repo.root.store):
        return _land(repo, specs, target, source, limits, progress)


def _land(repo, specs, target, source, limits, progress) -> list[ImportedImage]:
    if target and len(specs) > 1:
        raise UsageError(f"{source} holds {len(specs)} images; -t can name only one")
    results = []
    with repo.store.writer() as writer:
        with deposit(repo) as farm:
            landed = [(spec, *_import_spec(repo, spec, writer, farm, limits, progress)) for spec in specs]
        _materialise(repo, writer, [rootfs for _, _, rootfs, _, _ in landed if rootfs is not None])
    for spec, tip, _, commits, layers in landed:
        tags = _tags_for(spec, target.__str__() if target else None)
        for image in tags:
            force_tag(repo, image, tip, f"import: {source}")
        results.append(ImportedImage(tip.hex(), [str(t) for t in tags], commits, layers))
    return results


def _materialise(repo: Repo, writer: ObjectWriter, trees: list[bytes]) -> None:
    """Each imported rootfs in ``trees`` as the cached directory lg run mounts, made
    before any tag moves: with every file already in the farm (closed by now) this costs
    directories and links, made while ``writer`` seals its pack. The sealing starts
    once the first tree's walk is under way (its fork made, fs.pieces), so that this
    walk has two processes, not one beside the sealing thread; the trees after it (an
    archive of several images) are written by one. A failure here leaves no tag, like
    any other failed import.

    Not for a rootfs holding device nodes or fifos (_has_specials): an import makes no
    special file on the host; the first run makes them, the files already in the farm.
    Nor for one this host cannot hold (an xattr too big for the cache's filesystem):
    the image is sound, and its first run says what stops it.

    A tree made here goes again if the sealing fails and the store does not hold it
    otherwise (the writer removes the pack): the cache holds only what the store can
    check. One the store holds stays (another command's container may be using it).
    The removal is best-effort: the failure on its way is the one to report, and a tree
    left behind is gc's (an import of the same image racing this one may have removed
    it, or may find it gone and make it again).
    """
    rootfs_cache = cache(repo)
    made: list[bytes] = []
    try:
        with writer.sealing() as (written, seal):
            for rootfs in trees:
                if rootfs_cache.has(rootfs):
                    continue
                try:
                    rootfs_cache.materialise(written.verifying(), rootfs, begun=seal)
                except CorruptStore:
                    raise
                except LgError:
                    continue
                made.append(rootfs)
    except BaseException:
        for rootfs in made:
            try:
                if not repo.store.has(rootfs):  # the sealing has ended: our pack is in place or not
                    rootfs_cache.discard(rootfs)
            except (OSError, LgError):
                pass
        raise


def _has_specials(entries: list[TarEntry]) -> bool:
    return any(e.kind in ("c", "b", "p") for e in entries)


class _ImageMember(Exception):
    """A member that may make a tar an image archive rather than a rootfs."""


def _stop_at_image_member(member) -> None:
    """Stop a rootfs pass at a member that detection could take for an image archive's.

    Detection looks for manifest.json, index.json and oci-layout at the top, so a rootfs
    parsed to the end without any of them is what detection calls a rootfs. The other
    names image archives start with (OCI's ``blobs``, docker's ``repositories`` and
    layer directories and podman's layer tars named by a digest) stop it at once, before
    a layer is stored as a file.
    """
    try:
        parts = split_path(member.name)
    except ArchiveError:
        return  # the rootfs parse refuses the name itself
    if parts and (parts[0] in _IMAGE_TOP or _HEX64.match(parts[0])):
        raise _ImageMember


def _is_image_tar(path: str, limits: Limits) -> bool:
    """Whether detection takes this tar for an image archive. Its members count against
    ``limits`` (a tar of a million members is refused here at --max-entries), and are
    counted again by the pass that imports it."""
    counted = limits.bytes, limits.entries
    try:
        source = TarSource(path, limits)
    except LimitExceeded:
        raise
    except ArchiveError:
        return False
    finally:
        limits.bytes, limits.entries = counted
    return source.exists("manifest.json") or (source.exists("index.json") and source.exists("oci-layout"))


def _import_rootfs(repo: Repo, path: str, target, message, limits: Limits, watch=None) -> ImportedImage:
    from ..store.image import write_image_tree

    if target is None:
        raise UsageError("a rootfs tarball has no name inside; give -t NAME[:TAG]")
    store = repo.store
    parent = store.ref(target.ref)
    config = repo.image(parent).config if parent else {}
    who = store.default_author()
    with store.writer() as writer:
        with deposit(repo) as farm, open(path, "rb") as f:
            tree = MutableTree.empty(store)
            stream = decompressed(f, limits, digest=False)
            entries = read_tar(stream, writer, limits, whiteouts=False, deposit=farm, watch=watch)
            apply_layer(tree, entries)
            rootfs = tree.write(writer)
            oid = writer.commit(write_image_tree(writer, config, rootfs), [parent] if parent else [],
                                who, who, message or f"lg import {os.path.basename(path)}")
        _materialise(repo, writer, [] if _has_specials(entries) else [rootfs])
    force_tag(repo, target, oid, f"import: {path}")
    return ImportedImage(oid.hex(), [str(target)], 1, 1)
