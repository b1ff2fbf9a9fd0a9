"""The materialised cache: rootfs directories that overlayfs (and checkout -H) can use.

Mounting needs directories, not git objects. Like OSTree's bare repositories, we
keep every file once in an object farm (fs.farm), and a materialised rootfs,
``cache/rootfs/TREE``, is a directory tree whose files are hardlinks into the farm:
a commit seen before costs nothing, a new one costs its directories, a link per
entry and the files that are new.

Trees are built under a temporary name and renamed into place, so a directory at
``cache/rootfs/TREE`` is always complete. Nothing there is modified afterwards;
``verify`` (lg fsck) checks that, and ``prune`` (lg gc) drops what no image needs
(farm objects whose link count fell to one). Measured on the Debian minbase
(6,768 entries): a hardlink farm checkout costs about as much as ``cp -al``; the
alternative, one overlay lower per layer, makes every lookup walk the layer stack.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

from ..removal import remove_tree
from ..store import meta as M
from ..store.rawobj import OBJ_BLOB, object_id
from ..store.snapshot import Node, read_dir
from .capture import entry_meta
from .checkout import (
    NEW_FILE,
    CheckoutPolicy,
    CheckoutResult,
    Specials,
    TreeWriter,
    materialise_into,
)
from .content import file_blob_id
from .farm import FarmCopies, FarmDeposit, FarmReads, FarmWriter, copy_object, private_dir
from .pieces import Piece, plan, write_pieces
from .safeio import DIR_FLAGS, WINDOW, DirStack, open_below, open_dir, open_file, read_xattrs

_T = TypeVar("_T")


class RootfsClone(TreeWriter):
    """A hardlink checkout made from a materialised rootfs, as ``cp -al`` makes one.

    A checkout that keeps every entry as the image has it (no policy, or
    Specials.KEEP) links exactly the farm objects the cached rootfs links, so walking
    that directory gives the same tree as walking the snapshot's git trees, without
    reading, parsing and hashing a metadata line per entry: what ``ostree checkout -H``
    costs. The cached rootfs is lg's own and trusted as lg run trusts it (its
    directories are what containers mount); nothing is followed out of it, and its
    directories' metadata is copied as read from them.

    Only for root of the host's user namespace, and a cached tree built without
    warnings (see MaterialisedCache.hardlink_checkout). An entry whose inode has all the
    links its filesystem allows gets a private copy. Privileged entries are not counted
    here (CheckoutResult.privileged is None).
    """

    def __init__(self, store, source: str, policy: CheckoutPolicy | None):
        super().__init__(store, policy)
        self._source = source
        self._src = -1  # the source tree's root while cloning
        self._pieces: list[Piece[tuple[bytes, ...], tuple[bytes, bool]]] = []
        self.result.privileged = None

    def directory(self, fd: int, tree: bytes) -> M.EntryMeta | None:
        """Clone the cached tree in pieces, by two processes when it is big enough
        (fs.pieces): linking is half system calls, half Python."""
        self._src = os.open(self._source, DIR_FLAGS)
        try:
            own = entry_meta(os.fstat(self._src), read_xattrs(self._src, b".", self._src))
            top: tuple[bytes, ...] = ()
            planned = plan(top, _listing(self._src), _listed_dir, self._expand)
            self._pieces = planned.pieces
            write_pieces(self, planned)
            for parts in sorted(planned.opened, key=len, reverse=True):
                self._at(parts, self._copy_dir_meta)
            return own
        finally:
            os.close(self._src)

    def _at(self, parts: tuple[bytes, ...], work: Callable[[int, int], _T]) -> _T:
        """``work(source, destination)`` on the directory ``parts`` of both trees."""
        src = open_below(self._src, list(parts))
        try:
            dest = self._open_path(list(parts))
            try:
                return work(src, dest)
            finally:
                os.close(dest)
        finally:
            os.close(src)

    def _expand(self, parts: tuple[bytes, ...], entries: list[_Listed], budget: int) -> list[_Below]:
        def make(src: int, dest: int) -> list[_Below]:
            made: list[_Below] = []
            left = budget
            for i, (name, is_dir) in enumerate(entries):
                if is_dir:
                    self.result.entries += 1
                    os.mkdir(name, 0o700, dir_fd=dest)
                    listed = None
                    if left > 0:
                        below = open_dir(src, name)
                        try:
                            listed = _listing(below)
                        finally:
                            os.close(below)
                        left -= len(listed)
                    made.append((i, parts + (name,), listed))
            return made

        return self._at(parts, make)

    def take(self, number: int) -> None:
        piece = self._pieces[number]

        def write(src: int, dest: int) -> None:
            entries = piece.entries if piece.entries is not None else _listing(src)  # None: unread
            if piece.whole:
                self._clone_below(src, dest, entries)
                self._copy_dir_meta(src, dest)
            else:
                for name, _ in entries:
                    self._clone_entry(src, dest, name)

        self._at(piece.place, write)

    def _clone_below(self, src: int, dest: int, entries: list[tuple[bytes, bool]]) -> None:
        """Clone ``entries`` of the source directory ``src`` and everything below them."""
        with DirStack(src, WINDOW // 2) as sources, DirStack(dest, WINDOW // 2) as dests:
            pending = [iter(entries)]
            while True:
                item = next(pending[-1], None)
                if item is None:
                    pending.pop()
                    if not pending:
                        return
                    self._copy_dir_meta(sources.fd, dests.fd)
                    sources.pop()
                    dests.pop()
                    continue
                name, is_dir = item
                if is_dir:
                    self.result.entries += 1
                    os.mkdir(name, 0o700, dir_fd=dests.fd)
                    sources.push(open_dir(sources.fd, name), name)
                    dests.push(open_dir(dests.fd, name), name)
                    pending.append(iter(_listing(sources.fd)))
                else:
                    self._clone_entry(sources.fd, dests.fd, name)

    def _clone_entry(self, src: int, dest: int, name: bytes) -> None:
        self.result.entries += 1
        try:
            os.link(name, name, src_dir_fd=src, dst_dir_fd=dest, follow_symlinks=False)
        except OSError as exc:
            if exc.errno != errno.EMLINK:
                raise
            self._private_copy(src, dest, name)

    def forked(self) -> None:
        self.result = CheckoutResult(privileged=None)

    def ledger(self) -> CheckoutResult:
        return self.result

    def merge(self, ledger: CheckoutResult) -> None:
        self.result.add(ledger)

    def answer(self, question: None) -> None:
        return None

    def join(self, answer: None) -> None:
        """Nothing waits for the end: every name links the cached inode itself."""

    def _copy_dir_meta(self, src: int, dest: int) -> None:
        self.apply_meta(dest, b".", entry_meta(os.fstat(src), read_xattrs(src, b".", src)), dest)

    def _private_copy(self, src: int, dest: int, name: bytes) -> None:
        """A copy of its own for an entry whose cached inode has all the links its
        filesystem allows (ext4: 65,000; an image can hold that many alike files), made
        from that inode with its metadata, as FarmWriter makes one from the store."""
        st = os.stat(name, dir_fd=src, follow_symlinks=False)
        meta = entry_meta(st, read_xattrs(src, name))
        if stat.S_ISREG(st.st_mode):
            fd, st = open_file(src, name, st)
            try:
                out = os.open(name, NEW_FILE, 0o600, dir_fd=dest)
                try:
                    copy_object(fd, out, st.st_size)
                    self.apply_meta(dest, name, meta, out)
                finally:
                    os.close(out)
            finally:
                os.close(fd)
            return
        if stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(name, dir_fd=src), name, dir_fd=dest)
        else:  # a device node, fifo or socket: made as the cache has it (root only comes here)
            os.mknod(name, stat.S_IFMT(st.st_mode) | 0o600, st.st_rdev, dir_fd=dest)
        self.apply_meta(dest, name, meta, None)


_WARNINGS_MAX = 64 << 10  # a marker longer than this is not lg's: read as one warning


def _read_warnings(path: str) -> list[str]:
    try:
        with open(path, "rb") as f:
            text = f.read(_WARNINGS_MAX + 1)
    except FileNotFoundError:
        return []
    lines = text[:_WARNINGS_MAX].decode(errors="replace").splitlines()
    return lines or ["the cached tree's build warned"]


def _write_warnings(path: str, warnings: list[str]) -> None:
    tmp = f"{path}.{os.getpid()}"
    with open(tmp, "w") as f:
        f.write("\n".join(w.replace("\n", " ") for w in warnings) + "\n")
    os.replace(tmp, path)


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _fully_privileged() -> bool:
    """Root of the host's user namespace: whatever a cached tree could not be given (a
    device node, an owner outside a user namespace's map) is then never missing."""
    if os.geteuid() != 0:
        return False
    try:
        with open("/proc/self/uid_map") as f:
            return f.read().split() == ["0", "0", "4294967295"]
    except OSError:
        return False


def _listing(fd: int) -> list[tuple[bytes, bool]]:
    """A directory's entries as (name, is a directory), read whole so no fd stays open."""
    with os.scandir(fd) as it:
        return [(os.fsencode(e.name), e.is_dir(follow_symlinks=False)) for e in it]


def _listed_dir(entry: tuple[bytes, bool]) -> bool:
    return entry[1]


# A subdirectory made while planning (fs.pieces.plan): its index, its names from the root, its listing.
_Listed = tuple[bytes, bool]  # (name, is a directory)
_Below = tuple[int, tuple[bytes, ...], list[_Listed] | None]


@dataclass(frozen=True)
class CacheEntry:
    tree: str
    path: str


class MaterialisedCache:
    def __init__(self, cache_dir: str):
        self.rootfs_dir = os.path.join(cache_dir, "rootfs")
        self.objects_dir = os.path.join(cache_dir, "objects")

    def path(self, tree: bytes) -> str:
        return os.path.join(self.rootfs_dir, tree.hex())

    def has(self, tree: bytes) -> bool:
        return os.path.isdir(self.path(tree))

    def materialise(self, store, tree: bytes, begun: Callable[[], None] | None = None) -> str:
        """The cached rootfs directory for snapshot ``tree``, built if missing; ``begun``
        is called once the build is under way (TreeWriter.on_begun), if it is built."""
        final = self.path(tree)
        return final if os.path.isdir(final) else self._materialised(store, tree, begun)[0]

    def _materialised(
        self, store, tree: bytes, begun: Callable[[], None] | None = None
    ) -> tuple[str, list[str]]:
        """materialise(), and what building the tree had to leave out (device nodes,
        owners, xattrs this host or filesystem refused), whichever command built it: the
        warnings are kept beside the tree (``.warned-TREE``), written before the tree
        takes its name, so a tree is never there without them."""
        private_dir(self.rootfs_dir)
        final = self.path(tree)
        marker = os.path.join(self.rootfs_dir, f".warned-{tree.hex()}")
        if os.path.isdir(final):
            return final, _read_warnings(marker)
        tmp = os.path.join(self.rootfs_dir, f".tmp-{tree.hex()}-{os.getpid()}")
        # exact (no policy): the root's own mode is the container's /
        built = self._farm_checkout(store, tree, tmp, None, begun)
        if built.warnings:
            _write_warnings(marker, built.warnings)
        else:
            _unlink_quietly(marker)  # left by a pruned tree built elsewhere
        try:
            os.rename(tmp, final)
        except OSError as exc:  # another process finished the same tree first
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
            remove_tree(tmp)
        return final, _read_warnings(marker)

    def copies(self, store) -> FarmCopies | None:
        """The farm as a copy checkout's source of file bytes (None when there is none)."""
        try:
            return FarmCopies(store, self.objects_dir)
        except FileNotFoundError:
            return None

    @contextmanager
    def reads(self) -> Iterator[FarmReads | None]:
        """The farm as an export's source of file bytes (None when there is none)."""
        try:
            farm = FarmReads(self.objects_dir)
        except FileNotFoundError:
            yield None
            return
        try:
            yield farm
        finally:
            farm.close()

    def deposit(self, store) -> FarmDeposit:
        """A FarmDeposit into this cache's farm, for an import or a commit."""
        return FarmDeposit(store, self.objects_dir)

    def hardlink_checkout(
        self, store, tree: bytes, dest: str, policy: CheckoutPolicy | None
    ) -> CheckoutResult:
        """Check ``tree`` out into ``dest`` with every file a hardlink into the farm.

        A user's checkout that keeps every entry is cloned from the cached rootfs
        (RootfsClone), which it materialises first if this is the tree's first use:
        the first checkout costs a materialisation more, every later one a ``cp -al``.
        Not when building the cached tree had to leave something out (it then says what,
        as the walk does), nor for root of a user namespace, whose cached trees may lack
        what it could not make.
        """
        private_dir(self.objects_dir)  # tightened if an older lg left it wider, as below
        if policy is not None and policy.specials is Specials.KEEP and _fully_privileged():
            source, warnings = self._materialised(store, tree)
            if not warnings:  # else the walk below says what it could not make, as the build did
                return materialise_into(RootfsClone(store, source, policy), tree, dest)
        return self._farm_checkout(store, tree, dest, policy)

    def _farm_checkout(
        self, store, tree: bytes, dest: str, policy: CheckoutPolicy | None,
        begun: Callable[[], None] | None = None,
    ) -> CheckoutResult:
        """Walk the snapshot's trees, linking each file to its farm object (made if missing)."""
        private_dir(self.objects_dir)
        writer = FarmWriter(store, self.objects_dir, policy)
        writer.on_begun = begun
        try:
            return materialise_into(writer, tree, dest)
        finally:
            writer.close()

    def entries(self) -> list[CacheEntry]:
        try:
            names = os.listdir(self.rootfs_dir)
        except FileNotFoundError:
            return []
        return [
            CacheEntry(n, os.path.join(self.rootfs_dir, n)) for n in sorted(names) if not n.startswith(".")
        ]

    def verify(self, store, entry: CacheEntry) -> list[str]:
        """Differences between a cached rootfs and its snapshot (empty when intact)."""
        problems: list[str] = []
        fd = os.open(entry.path, DIR_FLAGS)
        try:
            with DirStack(fd) as dirs:  # depth first without recursion: trees nest deep
                pending = [self._verify_dir(store, bytes.fromhex(entry.tree), dirs, b"", problems)]
                while pending:
                    below = next(pending[-1], None)
                    if below is None:
                        pending.pop()
                        if pending:
                            dirs.pop()
                        continue
                    node, child = below
                    dirs.push(os.open(node.name, DIR_FLAGS, dir_fd=dirs.fd), node.name)
                    pending.append(self._verify_dir(store, node.tree, dirs, child, problems))
        finally:
            os.close(fd)
        return problems

    def _verify_dir(
        self, store, tree: bytes, dirs: DirStack, path: bytes, problems: list[str]
    ) -> Iterator[tuple[Node, bytes]]:
        """Check the entries of the directory ``dirs`` is at; yields each subdirectory
        (node, path) for the caller to check, with ``dirs`` moved down and back up."""
        fd = dirs.fd
        _, nodes = read_dir(store, tree)
        on_disk = {os.fsencode(n) for n in os.listdir(fd)}
        expected = {n.name for n in nodes}
        for extra in sorted(on_disk - expected):
            problems.append(f"{(path + b'/' + extra).decode(errors='replace')}: not in the snapshot")
        for node in nodes:
            child = path + b"/" + node.name
            where = child.decode(errors="replace")
            if node.name not in on_disk:
                problems.append(f"{where}: missing")
                continue
            st = os.stat(node.name, dir_fd=fd, follow_symlinks=False)
            m = node.meta
            if (
                M.TYPE_CHARS.get(stat.S_IFMT(st.st_mode)) != m.kind
                or (m.kind != "l" and stat.S_IMODE(st.st_mode) != m.mode)
                or (st.st_uid, st.st_gid) != (m.uid, m.gid)
                or st.st_mtime_ns != m.mtime_ns
            ):
                problems.append(f"{where}: metadata differs from the snapshot")
                continue
            if m.kind == "d":
                yield node, child
                fd = dirs.fd  # the same directory, perhaps reopened (DirStack)
            elif m.kind == "f":
                content = os.open(node.name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
                try:
                    if file_blob_id(content, node.name) != node.oid:
                        problems.append(f"{where}: content differs from the snapshot")
                finally:
                    os.close(content)
            elif m.kind == "l" and object_id(OBJ_BLOB, os.readlink(node.name, dir_fd=fd)) != node.oid:
                problems.append(f"{where}: link target differs from the snapshot")

    def discard(self, tree: bytes) -> None:
        """Remove the cached tree ``tree`` if it is there (its farm objects stay until a
        prune)."""
        import secrets  # gc and a failed import come here: not on every command's start-up

        # Out of its name first: a removal killed half-way must not leave a partial tree
        # where materialise (and a checkout -H clone of it) takes it as complete.
        unique = f"{tree.hex()}-gc{secrets.token_hex(4)}-{os.getpid()}"  # the sweep reads the pid
        going = os.path.join(self.rootfs_dir, f".tmp-{unique}")
        try:
            os.rename(self.path(tree), going)
        except FileNotFoundError:  # another command's failed import removed it first
            return
        remove_tree(going)

    def prune(self, keep: set[bytes]) -> tuple[int, int]:
        """Remove cached trees not in ``keep`` and farm objects nothing links to.

        Returns (trees removed, objects removed).
        """
        trees = 0
        for entry in self.entries():
            if bytes.fromhex(entry.tree) not in keep:
                self.discard(bytes.fromhex(entry.tree))
                trees += 1
        for name in os.listdir(self.rootfs_dir) if os.path.isdir(self.rootfs_dir) else []:
            if name.startswith(".tmp-") and not _pid_alive(name.rsplit("-", 1)[-1]):
                remove_tree(os.path.join(self.rootfs_dir, name))
            elif name.startswith(".warned-") and not os.path.isdir(os.path.join(self.rootfs_dir, name[8:])):
                _unlink_quietly(os.path.join(self.rootfs_dir, name))  # its tree is gone
        objects = 0
        for dirpath, _, files in os.walk(self.objects_dir):
            for f in files:
                path = os.path.join(dirpath, f)
                if f.startswith("tmp-") or os.lstat(path).st_nlink == 1:
                    os.unlink(path)
                    objects += 1
        return trees, objects


def _pid_alive(pid: str) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True
