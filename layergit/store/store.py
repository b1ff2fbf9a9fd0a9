"""The object store: the one module that talks to libgit2 (through pygit2).

Object ids cross this boundary as raw 20-byte ``bytes`` and trees as lists of
``(stored name, mode, id)`` so the rest of layergit never sees a pygit2 type.
New objects go into one pack per operation (:mod:`layergit.store.pack`); refs are
updated with compare-and-swap so that two writers racing on a tag never lose an
update silently.
"""

from __future__ import annotations

import copy
import os
import stat
import time
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, TypeVar

from ..errors import Conflict, CorruptStore, LgError, NotFound
from ..removal import remove_tree
from . import gitenv
from .packread import PackReader, PendingPack
from .rawobj import (
    CHUNK,
    OBJ_BLOB,
    OBJ_COMMIT,
    OBJ_TREE,
    STREAM_FROM,
    Signature,
    commit_bytes,
    object_hasher,
    object_id,
    parse_commit,
    parse_tree,
)

if TYPE_CHECKING:
    from .pack import PackWriter

_ZERO = b"\0" * 20
# The largest tree and commit lg reads (whole, as libgit2 does). A git tree entry is at
# most ~300 bytes (mode, a 255-byte name, NUL, id): 256 MiB holds about a million of
# the longest and several million of ordinary length, more than any real directory;
# a commit is a few hundred bytes and its message. Beyond these the object is hostile:
# its size is checked before a byte is inflated.
TREE_MAX = 256 << 20
COMMIT_MAX = 16 << 20
_LOOSE_HEAD_MAX = 32  # "blob " + up to 20 digits of size + NUL: all a loose header holds
REFLOG_MAX = 64 << 20  # bytes of a reflog lg reads: a line is ~150 bytes, so 400,000 moves
_SYMREF_HOPS = 5  # git's limit on symbolic refs followed (refs.c, SYMREF_MAXDEPTH)


def pygit2():
    """libgit2's bindings, imported on first use (the import is the slow part of start-up)."""
    import pygit2 as module

    return module


_Piece = TypeVar("_Piece", bound=bytes | memoryview)


def corrupt(oid: bytes, why: str) -> CorruptStore:
    """The error for an object that is there but does not read as itself."""
    return CorruptStore(f"object {oid.hex()} is corrupt in the store: {why}")


def verified_blob(oid: bytes, size: int, chunks: Iterable[_Piece]) -> Iterator[_Piece]:
    """``chunks`` passed on, hashed as they go; wrong content raises CorruptStore at the end,
    and a byte beyond the announced ``size`` at once: a loose object of 300 KB whose
    header says 9 MiB may inflate to 300 MB, which would otherwise all be written out.
    Also fs.farm.FarmReads' check of a big farm object as it streams."""
    digest, done = object_hasher(OBJ_BLOB, size), 0
    try:
        for chunk in chunks:
            done += len(chunk)
            if done > size:
                raise corrupt(oid, f"it holds more than the {size} bytes its header announces")
            digest.update(chunk)
            yield chunk
    except (ValueError, OSError, PackReader.InflateError, zlib.error) as exc:
        raise corrupt(oid, str(exc)) from None
    if done != size or digest.digest() != oid:
        raise corrupt(oid, "its content does not match its id")


def _login_at_host() -> tuple[str, str]:
    """(user name, user@host): git's fallback identity when nothing configures one,
    taken as git takes it, from the password database (getpass would add its imports
    to every container start, and prefer $LOGNAME)."""
    import pwd

    try:
        user = pwd.getpwuid(os.getuid()).pw_name
    except KeyError:  # a uid with no entry, as in some containers
        user = str(os.getuid())
    return user, f"{user}@{os.uname().nodename}"


def _light_identity() -> Signature:
    """Who we are for a reflog line, without reading git config through libgit2."""
    user, email = _login_at_host()
    return Signature.now(
        os.environ.get("GIT_COMMITTER_NAME") or user, os.environ.get("GIT_COMMITTER_EMAIL") or email
    )


@dataclass(frozen=True)
class CommitInfo:
    """An image commit as read from the store: what ``lg log``, ``lg show`` and the
    porcelain need of it, without the object itself."""

    id: bytes
    tree: bytes
    parents: tuple[bytes, ...]
    author: Signature
    committer: Signature
    message: str


def _create_lock(path: str, stale_after: float | None) -> int:
    """Create the lock file ``path`` exclusively; one older than ``stale_after`` seconds
    is removed first (see Store._ref_lock). FileExistsError while another holds it."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
    try:
        return os.open(path, flags, 0o644)
    except FileExistsError:
        if stale_after is None:
            raise
        try:
            age: float | None = time.time() - os.lstat(path).st_mtime
        except FileNotFoundError:
            age = None  # its holder finished meanwhile
        if age is not None and age < stale_after:
            raise
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    return os.open(path, flags, 0o644)


class ObjectWriter:
    """Collects the objects one operation creates; see :meth:`Store.writer`."""

    def __init__(self, store: Store, pack: PackWriter):
        self._store = store
        self._pack = pack
        self.sealed = False  # by :meth:`sealing`: the store's writer has nothing left to do

    def has(self, oid: bytes) -> bool:
        """Whether the object need not be written: in this pack, or in the store as
        :meth:`Store.has_seen` sees it (a miss costs a duplicate, never a loss)."""
        return oid in self._pack or self._store.has_seen(oid)

    def add(self, obj_type: int, data: bytes, oid: bytes | None = None) -> bytes:
        return self._pack.add(obj_type, data, oid)

    def put(self, obj_type: int, data: bytes) -> bytes:
        """Store an object unless the store (or this pack) has it already; returns its id.

        This is what makes an unchanged file or directory cost a hash and no write.
        """
        oid = object_id(obj_type, data)
        if not self.has(oid):
            self._pack.add(obj_type, data, oid)
        return oid

    def put_blob(self, data: bytes) -> bytes:
        return self.put(OBJ_BLOB, data)

    def put_blob_stream(self, size: int, chunks: Iterable[bytes | memoryview]) -> bytes:
        """:meth:`put_blob` for content that arrives in pieces (a big file): memory is a
        chunk, not the file (see :meth:`PackWriter.add_stream` for how a duplicate goes)."""
        return self._pack.add_stream(OBJ_BLOB, size, chunks, self._store.has_seen)

    def commit(
        self, tree: bytes, parents: list[bytes], author: Signature, committer: Signature, message: str
    ) -> bytes:
        return self._pack.add(OBJ_COMMIT, commit_bytes(tree, parents, author, committer, message))

    @contextmanager
    def sealing(self) -> Iterator[tuple[Store, Callable[[], None]]]:
        """End the writing: the pack is sealed (hashed whole, synced, given its index and
        its name) by a thread of its own, while the block reads what was written through
        the store it is given; the pack is in place when the block ends. An import
        materialises its rootfs meanwhile: sealing is a read of the whole pack, two
        fsyncs and the index, which had followed the import's other work.

        The block gets the store and ``seal``, which starts the thread: the block calls
        it once its own fork is made (materialising forks to write a tree with two
        processes, fs.pieces, which it would not do beside a thread), and the block's
        end starts it at the latest. A second call does nothing.

        Nothing may be written after (a write raises). A failure in the block, or an
        interrupted wait for the sealing, gives the pack up: the sealing stops at its
        next look (PackWriter.give_up), and is waited for whatever further interrupts
        come; the pack is then the store's writer's, which removes it unless it got its
        name (the sealing had begun to install it), and lg gc removes its objects, then
        unreferenced, as any others.
        """
        from ..background import Background

        pack, self._pack = self._pack, _SEALING
        sealers: list[Background] = []

        def finish() -> None:
            pack.finish()

        def seal() -> None:
            if not sealers:
                sealers.append(Background("pack-seal", 1))
                sealers[0].submit(finish)

        view = self._store._reading(pack.pending())
        try:
            yield view, seal
            seal()
            sealers[0].close()  # raises what stopped the sealing (a full disk)
        except BaseException:
            pack.give_up()  # the writer removes it: a finish under way need not end first,
            for sealer in sealers:
                sealer.abandon()  # but the abort must not run beside its renames
            raise
        self.sealed = True


class _Sealing:
    """An ObjectWriter's pack once it is being sealed: an object written then would be
    missing from the pack's index and count, so every write is refused."""

    def _refuse(self, *args, **kwargs):
        raise RuntimeError("an object was written to a pack being sealed")

    add = add_stream = __contains__ = _refuse


_SEALING: Any = _Sealing()


# A new store is the bare repository `git init --bare` makes, less the samples, written
# here: libgit2's import alone would be a third of a first `lg pull`.
_LAYOUT = ("objects/info", "objects/pack", "refs/heads", "refs/tags")
_FILES = {
    "HEAD": "ref: refs/heads/master\n",
    "config": "[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = true\n"
              "\tlogAllRefUpdates = always\n"  # tag moves are history too
              "[gc]\n\tauto = 0\n",  # lg gc decides when to repack
}


class Store:
    """A bare git repository used as an image store.

    Reads of refs, commits, trees and blobs in our packs, ref listing and ref
    updates are served without libgit2, whose import alone would be most of a short
    command's start-up; pygit2 is loaded on first use for everything else (short ids,
    deleting packed refs, deltified or loose objects, creating a store).
    """

    def __init__(self, path: str):
        self.path = path
        self._git = None
        self._packs = PackReader(os.path.join(path, "objects", "pack"))
        self._packed_refs: dict[str, bytes] | None = None
        self._loose_fans: set[str] | None = None  # has_seen's look at the loose objects
        self._identity: dict[str, str] | None = None
        self._verify = False

    def _reading(self, pending: PendingPack) -> Store:
        """This store, reading the objects of a pack being sealed too (ObjectWriter.sealing)."""
        view = copy.copy(self)
        view._packs = self._packs.with_pending(pending)
        return view

    def verifying(self) -> Store:
        """This store, checking every object its fast pack reader returns against its id.

        That reader trusts the pack index: two offsets swapped in a .idx made a checkout
        write one file's content for another, and the materialised cache kept it. The
        check is SHA-1 at about 2 GB/s, plus OpenSSL's import on a command that would
        read only a commit and a config (every ``lg run``), so it is asked for where
        objects enter a checkout or the cache: once per object, as nothing there is read
        from the store again. Blobs from :meth:`open_blob` are checked as they flow in
        any store, and libgit2 checks what it reads itself (strict hash verification).
        """
        view = copy.copy(self)
        view._verify = True
        return view

    @property
    def _repo(self):
        if self._git is None:
            try:
                self._git = pygit2().Repository(self.path)
            except pygit2().GitError as exc:
                raise CorruptStore(f"cannot open store {self.path}: {exc}") from None
        return self._git

    @classmethod
    def open(cls, path: str, create: bool = True) -> Store:
        if not os.path.isdir(os.path.join(path, "objects")):
            if not create:
                raise NotFound(f"no layergit store at {path}")
            cls._init(path)
        return cls(path)

    @classmethod
    def _init(cls, path: str) -> None:
        parent = os.path.dirname(os.path.abspath(path))
        os.makedirs(parent, exist_ok=True)
        cls._drop_dead_inits(path)
        tmp = f"{path}.init-{os.getpid()}"
        os.mkdir(tmp, 0o700)  # every image's files are in here: no other user reads them (root.py)
        os.chmod(tmp, 0o700)  # whatever the umask
        for sub in _LAYOUT:
            os.makedirs(os.path.join(tmp, sub))
        for name, text in _FILES.items():
            with open(os.path.join(tmp, name), "w") as f:
                f.write(text)
        try:
            os.rename(tmp, path)  # atomic: a half-made store is never visible
        except OSError:
            _discard(tmp)
            if not os.path.isdir(os.path.join(path, "objects")):
                raise

    @staticmethod
    def _drop_dead_inits(path: str) -> None:
        """Remove the half-made stores (``PATH.init-PID``) of processes that are gone: an lg
        killed while it made the store leaves one, which would otherwise stay for ever."""
        from ..root import is_init_leftover

        parent, prefix = os.path.split(os.path.abspath(path))
        prefix += ".init-"
        for name in os.listdir(parent):
            if not is_init_leftover(name, prefix):
                continue
            leftover = os.path.join(parent, name)
            try:
                st = os.lstat(leftover)
                if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
                    continue  # not a directory of ours: not ours to remove
                pid = int(name[len(prefix):])
                if pid != os.getpid():  # ours is a killed lg's that had our pid: we make it now
                    os.kill(pid, 0)
                    continue  # still making it (or a pid reused: its entry stays)
            except ProcessLookupError:
                pass
            except (OSError, OverflowError):
                continue
            _discard(leftover)

    # -- objects -----------------------------------------------------------------

    def _oid(self, oid: bytes):
        return pygit2().Oid(raw=oid)

    def has(self, oid: bytes) -> bool:
        if self._packs.header(oid) is not None:
            return True
        return self._repo.odb.exists(self._oid(oid))

    def has_seen(self, oid: bytes) -> bool:
        """Whether the store holds ``oid`` in a pack it has already seen or as a loose
        object: the check before writing an object. libgit2's exists() re-reads the pack
        directory on every miss, and most objects an import or a commit writes are new;
        a pack another process adds meanwhile can only make us write a duplicate, which
        git tolerates and gc removes."""
        if self._packs.contains(oid):
            return True
        hexid = oid.hex()
        if self._loose_fans is None:  # lg writes packs: a store usually has no loose object at all
            self._loose_fans = {n for n in os.listdir(os.path.join(self.path, "objects")) if len(n) == 2}
        if hexid[:2] not in self._loose_fans:
            return False
        return os.path.exists(os.path.join(self.path, "objects", hexid[:2], hexid[2:]))

    def read(self, oid: bytes) -> tuple[int, bytes]:
        try:
            hit = self._packs.read(oid)
        except (ValueError, OSError, PackReader.InflateError):
            hit = None  # libgit2 below reports what is wrong
        if hit is not None:
            if self._verify and object_id(*hit) != oid:
                raise corrupt(oid, "its content does not match its id")
            return hit
        try:
            obj_type, data = self._repo.odb.read(self._oid(oid))
        except KeyError:
            raise NotFound(f"object {oid.hex()} is missing from the store") from None
        except pygit2().GitError as exc:  # a damaged pack or loose object: libgit2 says how
            raise corrupt(oid, str(exc)) from None
        return int(obj_type), data

    def _typed(self, oid: bytes, want: int, what: str, limit: int | None = None) -> bytes:
        if limit is not None and (size := self.object_size(oid)) > limit:
            raise CorruptStore(f"{what} {oid.hex()} is {size} bytes; lg reads at most {limit}")
        obj_type, data = self.read(oid)
        if obj_type != want:
            raise CorruptStore(f"object {oid.hex()} is not a {what}")
        return data

    def read_blob(self, oid: bytes, limit: int | None = None, what: str = "blob") -> bytes:
        """A blob, whole. ``limit``: the most lg will hold of what an image controls and
        is read whole (a symlink target, a config, a passwd file); a larger ``what`` is
        refused by its size before a byte is read: a store filled from a hostile remote
        may give a symlink a 4 GB target."""
        return self._typed(oid, OBJ_BLOB, what, limit)

    def open_blob(self, oid: bytes) -> tuple[int, Iterator[bytes]]:
        """(size, content in pieces) of a blob, verified against its id as it flows.

        An object of STREAM_FROM bytes or more in our packs (undeltified) or loose is
        inflated CHUNK bytes at a time, so a 4 GB file costs a chunk of memory; smaller
        ones come in one piece, as do deltified ones (which ``git gc`` makes only below
        core.bigFileThreshold, 512 MiB), rebuilt in memory: by store.packread under
        1 MiB, by libgit2 above. The pieces are
        hashed as they pass and the last ``next`` raises CorruptStore if they are not
        the object asked for: whoever writes them out removes what it wrote.
        """
        try:
            hit = self._packs.open(oid) or self._loose(oid)
        except (ValueError, OSError, PackReader.InflateError, zlib.error):
            hit = None  # libgit2 below reports what is wrong
        if hit is None:
            obj_type, data = self.read(oid)
            hit = (obj_type, len(data), iter((data,)))
        obj_type, size, chunks = hit
        if obj_type != OBJ_BLOB:
            raise CorruptStore(f"object {oid.hex()} is not a blob")
        return size, verified_blob(oid, size, chunks)

    def _loose(self, oid: bytes) -> tuple[int, int, Iterator[bytes]] | None:
        """A loose object's (type, size, pieces), or None if it is not loose here."""
        hexid = oid.hex()
        try:
            f = open(os.path.join(self.path, "objects", hexid[:2], hexid[2:]), "rb")
        except FileNotFoundError:
            return None
        with f:  # inflate only the header: libgit2 reads a small object again whole
            inflate, head = zlib.decompressobj(), b""
            while b"\0" not in head and len(head) < _LOOSE_HEAD_MAX and not inflate.eof:
                data = f.read(512)
                if not data:
                    break
                head += inflate.decompress(data, _LOOSE_HEAD_MAX - len(head))
        kind, _, rest = head.partition(b" ")
        size, nul, _ = rest.partition(b"\0")
        if kind != b"blob" or not nul or int(size) < STREAM_FROM:
            return None  # a small or non-blob object: libgit2's read is as good
        return OBJ_BLOB, int(size), self._loose_chunks(f.name, len(kind) + len(size) + 2)

    @staticmethod
    def _loose_chunks(path: str, skip: int) -> Iterator[bytes]:
        """The content of a loose object, its header (``skip`` bytes) left out."""
        inflate = zlib.decompressobj()
        with open(path, "rb") as f:
            while not inflate.eof:
                data = inflate.unconsumed_tail or f.read(CHUNK)
                out = inflate.decompress(data, CHUNK)
                if not data and not out:
                    break  # truncated: the size check below says so
                if skip:
                    out, skip = out[skip:], max(0, skip - len(out))
                if out:
                    yield out

    def object_size(self, oid: bytes) -> int:
        header = self._packs.header(oid)
        if header is not None:
            return header[1]
        try:
            return self._repo.odb.read_header(self._oid(oid))[1]
        except KeyError:
            raise NotFound(f"object {oid.hex()} is missing from the store") from None
        except pygit2().GitError as exc:  # a damaged loose object: libgit2 says how
            raise corrupt(oid, str(exc)) from None

    def tree(self, oid: bytes) -> list[tuple[bytes, int, bytes]]:
        try:
            return parse_tree(self._typed(oid, OBJ_TREE, "tree", TREE_MAX))
        except NotFound:
            raise NotFound(f"tree {oid.hex()} is missing from the store") from None
        except (ValueError, IndexError):
            raise CorruptStore(f"tree {oid.hex()} does not parse") from None

    def commit(self, oid: bytes) -> CommitInfo:
        try:
            if (size := self.object_size(oid)) > COMMIT_MAX:
                raise CorruptStore(f"commit {oid.hex()} is {size} bytes; lg reads at most {COMMIT_MAX}")
            obj_type, data = self.read(oid)
        except NotFound:
            raise NotFound(f"commit {oid.hex()} is missing from the store") from None
        if obj_type != OBJ_COMMIT:
            raise NotFound(f"{oid.hex()[:12]} is not an image commit")
        try:
            return CommitInfo(oid, *parse_commit(data))
        except ValueError:
            raise CorruptStore(f"commit {oid.hex()} does not parse") from None

    def expand_prefix(self, prefix: str) -> bytes | None:
        """The one object whose hex id starts with ``prefix``, None if none; ambiguity is an error."""
        git = pygit2()
        try:
            obj = self._repo.git_object_lookup_prefix(prefix)
        except git.AmbiguousError:
            raise LgError(f"short id {prefix} is ambiguous: give more digits") from None
        except (KeyError, git.GitError):
            return None
        return obj.id.raw if obj is not None else None

    @contextmanager
    def writer(self) -> Iterator[ObjectWriter]:
        """Objects written inside the block land as one pack if the block succeeds."""
        from .pack import PackWriter  # the writer's zlib and hashlib imports are for commands that write

        pack = PackWriter(os.path.join(self.path, "objects", "pack"))
        self._packs.refresh()  # what has_seen sees: the packs there when the writer starts
        self._loose_fans = None  # and the loose objects' directories then
        try:
            writer = ObjectWriter(self, pack)
            yield writer
            if not writer.sealed:
                pack.finish()  # a full disk can stop it half-way: abort removes what it wrote
        except BaseException:
            pack.abort()
            raise

    # -- refs --------------------------------------------------------------------

    def _loose_ref_path(self, name: str) -> str:
        if not name.startswith("refs/") or ".." in name.split("/") or "\0" in name:
            raise LgError(f"invalid ref name {name!r}")
        return os.path.join(self.path, name)

    def _packed(self) -> dict[str, bytes]:
        if self._packed_refs is None:
            self._packed_refs = {}
            try:
                with open(os.path.join(self.path, "packed-refs"), "rb") as f:
                    for line in f:
                        if line[:1] in (b"#", b"^", b"\n"):
                            continue
                        hexid, _, ref = line.strip().partition(b" ")
                        oid = bytes.fromhex(hexid.decode())
                        if len(oid) != 20:
                            raise ValueError(hexid)
                        self._packed_refs[ref.decode()] = oid
            except FileNotFoundError:
                pass
            except ValueError:  # also UnicodeDecodeError
                self._packed_refs = None
                raise CorruptStore(f"{self.path}/packed-refs has a line that is not an object id"
                                   " and a ref name") from None
        return self._packed_refs

    def _fresh_packed(self) -> dict[str, bytes]:
        self._packed_refs = None  # another process may have packed or rewritten them
        return self._packed()

    def ref(self, name: str) -> bytes | None:
        """The commit a ref points at (loose file, else packed-refs), None if absent.
        Symbolic refs are followed at most _SYMREF_HOPS deep, as git does: one that
        points at itself would otherwise be followed for ever."""
        first = name
        for _ in range(_SYMREF_HOPS + 1):
            try:
                with open(self._loose_ref_path(name), "rb") as f:
                    content = f.read().strip()
            except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
                return self._packed().get(name)
            try:
                if not content.startswith(b"ref: "):
                    return bytes.fromhex(content.decode())
                name = content[5:].decode()
            except ValueError:  # also UnicodeDecodeError
                raise CorruptStore(f"ref {name} does not hold an object id") from None
        raise CorruptStore(f"ref {first} is a chain of more than {_SYMREF_HOPS} symbolic refs (a loop?)")

    def refs(self, prefix: str) -> list[tuple[str, bytes]]:
        """Every ref whose name starts with ``prefix``, with its commit: the loose files
        below the prefix's directory (never following a symlink) and packed-refs."""
        packed = {name: oid for name, oid in self._fresh_packed().items() if name.startswith(prefix)}
        loose: set[str] = set()
        top = os.path.join(self.path, prefix.rpartition("/")[0])
        for directory, _, files in os.walk(top):
            rel = os.path.relpath(directory, self.path).replace(os.sep, "/")
            loose.update(
                n for n in (f"{rel}/{f}" for f in files if not f.endswith(".lock")) if n.startswith(prefix)
            )
        # A packed ref with no loose file is its packed value: no failed open per ref
        # (a store after lg gc has every ref packed).
        out = [(name, oid) for name, oid in packed.items() if name not in loose]
        for name in loose:
            target = self.ref(name)
            if target is not None:
                out.append((name, target))
        return sorted(out)

    def set_ref(self, name: str, new: bytes, old: bytes | None, message: str) -> None:
        """Point ``name`` at ``new`` if it still points at ``old`` (None: does not exist).

        git's own protocol, without libgit2 (whose import alone would be most of an
        ``lg tag``): ``NAME.lock`` created exclusively, the current value checked under
        it (the loose file, else packed-refs, read afresh), the new value renamed into
        place, a reflog line appended (core.logAllRefUpdates=always). Raises Conflict
        when another writer holds the lock or moved the ref first; the caller decides
        whether to retry on top of the new value.
        """
        with self._ref_lock(name) as (fd, path):
            self._fresh_packed()  # another process may have packed refs since we looked
            current = self.ref(name)
            if current != old:
                what = "was created" if old is None else "was removed" if current is None else "moved"
                raise Conflict(f"{name} {what} while we were working")
            os.write(fd, new.hex().encode() + b"\n")
            try:
                os.rename(path + ".lock", path)
            except IsADirectoryError:  # refs below this name exist: git cannot store both
                raise Conflict(f"{name} clashes with refs below it") from None
        self._log_ref(name, old or _ZERO, new, message)

    @contextmanager
    def _ref_lock(self, name: str, stale_after: float | None = None):
        """git's (and libgit2's) protocol: NAME.lock, created exclusively, is the lock.

        A writer killed while it held one leaves it, and nothing tells a live holder
        from a dead one (git asks the user to remove the file). ``stale_after``: seconds
        after which a lock is taken as left by a killed writer and broken, for a caller
        that keeps the ref's other writers out by its own lock (an update holds the file
        for a moment), so that two breakers never race."""
        path = self._loose_ref_path(name)
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            fd = _create_lock(path + ".lock", stale_after)
        except FileExistsError:
            raise Conflict(f"{name} is locked by another writer"
                           f" (if no lg or git is running, remove {path}.lock)") from None
        except NotADirectoryError:  # a ref where this one's directory would be
            raise Conflict(f"{name} clashes with a ref above it") from None
        try:
            yield fd, path
        finally:
            os.close(fd)
            try:
                os.unlink(path + ".lock")
            except FileNotFoundError:
                pass

    def _log_ref(self, name: str, old: bytes, new: bytes, message: str) -> None:
        who = _light_identity()
        log = os.path.join(self.path, "logs", name)
        os.makedirs(os.path.dirname(log), exist_ok=True)
        with open(log, "ab") as f:
            oneline = message.replace("\n", " ").encode()
            f.write(b"%s %s %s\t%s\n" % (old.hex().encode(), new.hex().encode(), who.to_bytes(), oneline))

    def reflog(self, name: str, limit: int = REFLOG_MAX) -> list[tuple[bytes, bytes, str]]:
        """A ref's reflog, oldest first: (old id, new id, message) per move, git's file read
        as git writes it (zero ids for a creation or a deletion). Lines that do not parse
        are refused: a store is read as it is, not guessed at. At most ``limit`` bytes."""
        try:
            with open(os.path.join(self.path, "logs", self._loose_ref_path(name)[len(self.path) + 1:]),
                      "rb") as f:
                data = f.read(limit + 1)
        except (FileNotFoundError, NotADirectoryError):
            return []
        if len(data) > limit:
            raise CorruptStore(f"the reflog of {name} is larger than {limit} bytes")
        out = []
        for line in data.splitlines():
            ids, _, message = line.partition(b"\t")
            parts = ids.split(b" ", 2)
            try:
                old, new = bytes.fromhex(parts[0].decode()), bytes.fromhex(parts[1].decode())
            except (ValueError, IndexError):
                raise CorruptStore(f"the reflog of {name} has a line that is not git's") from None
            if len(old) != 20 or len(new) != 20:
                raise CorruptStore(f"the reflog of {name} has a line that is not git's")
            out.append((old, new, message.decode(errors="replace")))
        return out

    def delete_ref(self, name: str, stale_lock: float | None = None) -> None:
        """Delete a ref and its reflog; a packed one through libgit2, which rewrites packed-refs.
        ``stale_lock``: when a lock on the loose ref is taken as a killed writer's (_ref_lock)."""
        if name not in self._fresh_packed():
            with self._ref_lock(name, stale_lock) as (_, path):
                try:
                    os.unlink(path)
                except (FileNotFoundError, IsADirectoryError):
                    raise NotFound(f"no such ref {name}") from None
            try:
                os.unlink(os.path.join(self.path, "logs", name))
            except FileNotFoundError:
                pass
            return
        try:
            self._repo.references.delete(name)
        except KeyError:
            raise NotFound(f"no such ref {name}") from None
        finally:
            self._packed_refs = None

    # -- remotes and received objects ---------------------------------------------

    def config_values(self, pattern: str) -> dict[str, str]:
        """Keys of the store's own git config matching the regular expression ``pattern``
        (section and key lowercased, as git gives them) -> value, read by the git command:
        every push and pull asks, and libgit2's import would be a third of a small push."""
        import subprocess

        out = subprocess.run(["git", "--git-dir", self.path, "config", "--file",
                              os.path.join(self.path, "config"), "-z", "--get-regexp", pattern],
                             capture_output=True, check=False, env=gitenv.environ()).stdout
        found = {}
        for item in out.split(b"\0"):
            key, _, value = item.decode(errors="surrogateescape").partition("\n")
            if key:
                found[key] = value
        return found

    def set_config(self, key: str, value: str | None) -> None:
        """Set (or with None, unset) one key of the store's git config."""
        if value is not None:
            self._repo.config[key] = value
        elif key in self._repo.config:
            del self._repo.config[key]

    def remotes(self) -> dict[str, str]:
        """Configured remotes, name -> URL, from the store's git config (``git remote -v``)."""
        return {key[len("remote."):-len(".url")]: url
                for key, url in self.config_values(r"^remote\..*\.url$").items() if url}

    def add_remote(self, name: str, url: str) -> None:
        """``remote.NAME.url`` and git's fetch refspec, so plain git fetches into the same
        remote-tracking refs lg does (``refs/remotes/NAME/...``)."""
        if name in self.remotes():
            raise Conflict(f"remote {name} already exists")
        self._repo.remotes.create(name, url)

    def remove_remote(self, name: str) -> None:
        """Drop the remote's config section; its remote-tracking refs are the caller's."""
        if name not in self.remotes():
            raise NotFound(f"no such remote: {name}")
        self._repo.remotes.delete(name)

    @contextmanager
    def quarantine(self, parent: str, incoming: str | None = None) -> Iterator[Store]:
        """A throw-away repository under ``parent`` for objects that arrive from elsewhere.

        As git's receive-pack does: what a fetch brings lands in the quarantine's own
        object directory, while reads fall through to this store (an alternate), and
        nothing reaches the store until :meth:`admit` moves it in, after lg's checks.
        Removed, with whatever it holds, when the block ends. ``incoming``: another
        object directory to read through as well (git's own quarantine of a push, which
        a pre-receive hook is given).
        """
        import tempfile

        path = tempfile.mkdtemp(prefix="quarantine-", dir=parent)
        try:
            for sub in ("objects/pack", "objects/info", "refs/heads"):
                os.makedirs(os.path.join(path, sub))
            with open(os.path.join(path, "HEAD"), "w") as f:
                f.write("ref: refs/heads/main\n")
            with open(os.path.join(path, "config"), "w") as f:
                f.write("[core]\n\trepositoryformatversion = 0\n\tbare = true\n")
            with open(os.path.join(path, "objects", "info", "alternates"), "w") as f:
                for directory in (incoming, os.path.join(self.path, "objects")):
                    if directory:
                        f.write(os.path.abspath(directory) + "\n")
            yield Store(path)
        finally:
            _discard(path)

    def admit(self, quarantine: Store) -> int:
        """Move a quarantine's objects into this store; returns how many objects moved.

        Loose objects first, then each pack with its index last: a pack is visible
        only once its ``.idx`` is in place, so a reader never finds half of one.
        Same file system (the quarantine is under the root), so every move is a rename.
        """
        moved = 0  # objects
        source = os.path.join(quarantine.path, "objects")
        target = os.path.join(self.path, "objects")
        for sub in sorted(os.listdir(source)):
            if len(sub) != 2:
                continue
            os.makedirs(os.path.join(target, sub), exist_ok=True)
            for name in os.listdir(os.path.join(source, sub)):
                os.replace(os.path.join(source, sub, name), os.path.join(target, sub, name))
                moved += 1
        pack_dir = os.path.join(source, "pack")
        order = {".pack": 0, ".rev": 1, ".idx": 2}
        for name in sorted(os.listdir(pack_dir), key=lambda n: (order.get(os.path.splitext(n)[1], 3), n)):
            if name.endswith(".idx"):
                with open(os.path.join(pack_dir, name), "rb") as f:
                    f.seek(8 + 255 * 4)  # version 2: the last fan-out entry counts every object
                    moved += int.from_bytes(f.read(4), "big")
            if os.path.splitext(name)[1] in order:
                os.replace(os.path.join(pack_dir, name), os.path.join(target, "pack", name))
        return moved  # the pack reader and libgit2 both look again on a miss

    # -- identity ----------------------------------------------------------------

    def _config_identity(self) -> dict[str, str]:
        """user.name and user.email from git config (repository, global, system) through
        the git command, which costs less than importing libgit2 to read it.
        Read once per Store (a commit asks for its author and its committer)."""
        if self._identity is not None:
            return self._identity
        import subprocess

        try:
            out = subprocess.run(
                ["git", "--git-dir", self.path, "config", "-z", "--get-regexp", r"^user\.(name|email)$"],
                capture_output=True,
                check=False,
                env=gitenv.environ(),
            ).stdout
        except OSError:
            return {}
        pairs = (item.decode(errors="replace").partition("\n") for item in out.split(b"\0") if item)
        self._identity = {key: value for key, _, value in pairs}
        return self._identity

    def default_author(self) -> Signature:
        """GIT_AUTHOR_* or git config like git does, else the login name at this host."""
        name = os.environ.get("GIT_AUTHOR_NAME")
        email = os.environ.get("GIT_AUTHOR_EMAIL")
        if not name or not email:
            configured = self._config_identity()
            name = name or configured.get("user.name")
            email = email or configured.get("user.email")
        if not name or not email:
            user, fallback = _login_at_host()
            name = name or user
            email = email or fallback
        return Signature.now(name, email)


def _discard(path: str) -> None:
    """Remove a temporary tree a step leaves (a half-made store, a quarantine); one that
    cannot be removed is left for lg gc, never an error of the step."""
    try:
        remove_tree(path)
    except (OSError, LgError):  # LgError: a directory moved while it was removed
        pass
