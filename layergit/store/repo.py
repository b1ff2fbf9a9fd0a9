"""The object store: the one module that talks to libgit2 (through pygit2).

Object ids cross this boundary as raw 20-byte ``bytes`` and trees as lists of
``(stored name, mode, id)`` so the rest of layergit never sees a pygit2 type.
New objects go into one pack per operation (:mod:`layergit.store.pack`); refs are
updated with compare-and-swap so that two writers racing on a tag never lose an
update silently.
"""

from __future__ import annotations

import os
import subprocess
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import pygit2

from ..errors import Conflict, CorruptStore, LgError, NotFound
from .pack import PackWriter
from .packread import PackReader
from .rawobj import OBJ_BLOB, OBJ_COMMIT, OBJ_TREE, Signature, commit_bytes

_ZERO = b"\0" * 20


@dataclass(frozen=True)
class CommitInfo:
    id: bytes
    tree: bytes
    parents: tuple[bytes, ...]
    author: Signature
    committer: Signature
    message: str


class ObjectWriter:
    """Collects the objects one operation creates; see :meth:`Store.writer`."""

    def __init__(self, store: Store, pack: PackWriter):
        self._store = store
        self._pack = pack

    def has(self, oid: bytes) -> bool:
        return oid in self._pack or self._store.has(oid)

    def add(self, obj_type: int, data: bytes, oid: bytes | None = None) -> bytes:
        return self._pack.add(obj_type, data, oid)

    def blob(self, data: bytes) -> bytes:
        return self._pack.add(OBJ_BLOB, data)

    def tree(self, raw: bytes) -> bytes:
        return self._pack.add(OBJ_TREE, raw)

    def commit(self, tree: bytes, parents: list[bytes], author: Signature, committer: Signature, message: str) -> bytes:
        return self._pack.add(OBJ_COMMIT, commit_bytes(tree, parents, author, committer, message))


def _sig(s: pygit2.Signature) -> Signature:
    return Signature(s.name, s.email, s.time, s.offset)


class Store:
    """A bare git repository used as an image store."""

    def __init__(self, path: str, repo: pygit2.Repository):
        self.path = path
        self._repo = repo
        self._packs = PackReader(os.path.join(path, "objects", "pack"))

    @classmethod
    def open(cls, path: str, create: bool = True) -> Store:
        if not os.path.isdir(os.path.join(path, "objects")):
            if not create:
                raise NotFound(f"no layergit store at {path}")
            return cls._init(path)
        try:
            return cls(path, pygit2.Repository(path))
        except pygit2.GitError as exc:
            raise CorruptStore(f"cannot open store {path}: {exc}") from None

    @classmethod
    def _init(cls, path: str) -> Store:
        parent = os.path.dirname(os.path.abspath(path))
        os.makedirs(parent, exist_ok=True)
        tmp = f"{path}.init-{os.getpid()}"
        repo = pygit2.init_repository(tmp, bare=True)
        repo.config["core.logAllRefUpdates"] = "always"  # tag moves are history too
        repo.config["gc.auto"] = "0"  # lg gc decides when to repack
        del repo
        try:
            os.rename(tmp, path)  # atomic: a half-made store is never visible
        except OSError:
            subprocess.run(["rm", "-rf", tmp], check=False)
            if not os.path.isdir(os.path.join(path, "objects")):
                raise
        return cls(path, pygit2.Repository(path))

    # -- objects -----------------------------------------------------------------

    def has(self, oid: bytes) -> bool:
        return self._repo.odb.exists(pygit2.Oid(raw=oid))

    def read(self, oid: bytes) -> tuple[int, bytes]:
        try:
            hit = self._packs.read(oid)
        except (ValueError, OSError, PackReader.InflateError):
            hit = None  # libgit2 below reports what is wrong
        if hit is not None:
            return hit
        try:
            obj_type, data = self._repo.odb.read(pygit2.Oid(raw=oid))
        except KeyError:
            raise NotFound(f"object {oid.hex()} is missing from the store") from None
        return int(obj_type), data

    def read_blob(self, oid: bytes) -> bytes:
        obj_type, data = self.read(oid)
        if obj_type != OBJ_BLOB:
            raise CorruptStore(f"object {oid.hex()} is not a blob")
        return data

    def object_size(self, oid: bytes) -> int:
        try:
            return self._repo.odb.read_header(pygit2.Oid(raw=oid))[1]
        except KeyError:
            raise NotFound(f"object {oid.hex()} is missing from the store") from None

    def tree(self, oid: bytes) -> list[tuple[bytes, int, bytes]]:
        try:
            tree = self._repo[pygit2.Oid(raw=oid)]
        except KeyError:
            raise NotFound(f"tree {oid.hex()} is missing from the store") from None
        if not isinstance(tree, pygit2.Tree):
            raise CorruptStore(f"object {oid.hex()} is not a tree")
        return [(e.raw_name, e.filemode, e.id.raw) for e in tree]

    def commit(self, oid: bytes) -> CommitInfo:
        try:
            c = self._repo[pygit2.Oid(raw=oid)]
        except KeyError:
            raise NotFound(f"commit {oid.hex()} is missing from the store") from None
        if not isinstance(c, pygit2.Commit):
            raise NotFound(f"{oid.hex()[:12]} is not an image commit")
        return CommitInfo(oid, c.tree_id.raw, tuple(p.raw for p in c.parent_ids), _sig(c.author), _sig(c.committer), c.message)

    def expand_prefix(self, prefix: str) -> bytes | None:
        """The one object whose hex id starts with ``prefix``, None if none; ambiguity is an error."""
        try:
            obj = self._repo.git_object_lookup_prefix(prefix)
        except pygit2.AmbiguousError:
            raise LgError(f"short id {prefix} is ambiguous: give more digits") from None
        except (KeyError, pygit2.GitError):
            return None
        return obj.id.raw if obj is not None else None

    @contextmanager
    def writer(self) -> Iterator[ObjectWriter]:
        """Objects written inside the block land as one pack if the block succeeds."""
        pack = PackWriter(os.path.join(self.path, "objects", "pack"))
        try:
            yield ObjectWriter(self, pack)
        except BaseException:
            pack.abort()
            raise
        pack.finish()

    # -- refs --------------------------------------------------------------------

    def ref(self, name: str) -> bytes | None:
        try:
            ref = self._repo.references[name]
        except (KeyError, pygit2.InvalidSpecError):
            return None
        target = ref.resolve().target
        return target.raw if isinstance(target, pygit2.Oid) else None

    def refs(self, prefix: str) -> list[tuple[str, bytes]]:
        out = []
        for name in self._repo.listall_references():
            if name.startswith(prefix):
                target = self.ref(name)
                if target is not None:
                    out.append((name, target))
        return sorted(out)

    def set_ref(self, name: str, new: bytes, old: bytes | None, message: str) -> None:
        """Point ``name`` at ``new`` if it still points at ``old`` (None: does not exist).

        Raises Conflict when another writer moved the ref first; the caller decides
        whether to retry on top of the new value.
        """
        oid = pygit2.Oid(raw=new)
        try:
            if old is None:
                self._repo.create_reference_direct(name, oid, False, message=message)
            else:
                ref = self._repo.references[name]
                if ref.target.raw != old:
                    raise Conflict(f"{name} moved while we were working")
                ref.set_target(oid, message)
        except pygit2.AlreadyExistsError:
            raise Conflict(f"{name} was created while we were working") from None
        except KeyError:
            raise Conflict(f"{name} was removed while we were working") from None
        except pygit2.GitError as exc:
            if "modified" in str(exc) or "exists" in str(exc) or "lock" in str(exc):
                raise Conflict(f"{name} changed while we were working: {exc}") from None
            raise LgError(f"cannot update {name}: {exc}") from None

    def delete_ref(self, name: str) -> None:
        try:
            self._repo.references.delete(name)
        except KeyError:
            raise NotFound(f"no such ref {name}") from None

    def reflog(self, name: str) -> list[tuple[bytes, bytes, str]]:
        """(old, new, message) entries for a ref, newest first."""
        try:
            ref = self._repo.references[name]
        except KeyError:
            return []
        return [(e.oid_old.raw, e.oid_new.raw, e.message or "") for e in ref.log()]

    # -- identity ----------------------------------------------------------------

    def default_author(self) -> Signature:
        """GIT_AUTHOR_* or git config like git does, else the login name at this host."""
        name = os.environ.get("GIT_AUTHOR_NAME")
        email = os.environ.get("GIT_AUTHOR_EMAIL")
        try:
            config = self._repo.config
            name = name or config["user.name"]
            email = email or config["user.email"]
        except KeyError:
            pass
        if not name or not email:
            import getpass
            import socket

            user = getpass.getuser()
            name = name or user
            email = email or f"{user}@{socket.gethostname()}"
        return Signature.now(name, email)
