"""Materialising a snapshot tree into a directory, exactly and safely.

Everything is created with ``O_EXCL``/``mkdir``/``mknod`` relative to directory fds
we created ourselves, so stored names and link targets can never make us write
outside the destination. Metadata is applied in the only order that sticks:
owner first (chown clears setuid bits and file capabilities), then mode, xattrs,
and the mtime last (directories after their children). Without the privileges for
owners, device nodes or trusted.* xattrs we say so once per kind and carry on,
as OSTree's user mode does.

A checkout for a user (not the cache) follows a :class:`CheckoutPolicy`: an
image's setuid-root binaries and world-writable device nodes are local root for
anyone who can reach them, so who may enter the checkout directory is the host's
decision, not the image's, and ``--no-special`` keeps such entries off the host.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import Enum

from ..errors import CorruptStore, LgError
from ..removal import remove_at, remove_tree
from ..store import meta as M
from ..store import treenames
from ..store.snapshot import Node, read_dir, walk
from .content import write_blob
from .pieces import Piece, plan, write_pieces
from .safeio import DirStack, open_below, open_dir, proc_path

_NODE_TYPES = {"c": 0o020000, "b": 0o060000, "p": 0o010000, "s": 0o140000}
NEW_DIR_MODE = 0o700  # a checkout directory lg creates, unless --mode says otherwise
NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC  # never one that is there
_SETID = stat.S_ISUID | stat.S_ISGID
_CAPABILITY = "security.capability"


def privileged(m: M.EntryMeta) -> bool:
    """Whether an entry gives whoever reaches it more than its owner's rights.

    That is a setuid or setgid file, a file with capabilities, or a device node;
    not the 0:0 character device (overlayfs' whiteout), which reaches no device
    and which anyone may create.
    """
    if m.kind in "cb":
        return m.kind == "b" or m.rdev not in (None, (0, 0))
    return m.kind == "f" and bool(m.mode & _SETID or any(key == _CAPABILITY for key, _ in m.xattrs))


class Specials(Enum):
    """What a checkout does with :func:`privileged` entries."""

    KEEP = "keep"  # as the image has them
    DROP = "drop"  # files without setuid/setgid bits and capabilities; device nodes left out


class RootOwner(Enum):
    """Whose the checkout directory is."""

    CALLER = "caller"  # the caller's, as mkdir makes it (an existing directory keeps its owner)
    IMAGE = "image"  # the image root's owner and ACLs: an exact copy, root included


_ACLS = ("system.posix_acl_access", "system.posix_acl_default")


@dataclass(frozen=True)
class CheckoutPolicy:
    """How a user's checkout meets the host; parsed once from lg checkout's flags.

    Who may enter the checkout directory is the host's decision, not the image's:
    its mode is ``mode``, else 0700 when the checkout creates it, else the mode it
    has; its owner and ACLs are the caller's (a new directory's) or its own (an
    existing one's). An image whose root belongs to uid 65534 would otherwise hand
    that user the way to every setuid-root binary below it, whatever the mode.
    ``root_owner`` IMAGE asks for the image's owner and ACLs. The directory's mtime
    and other xattrs, and everything below it, are the image's.
    """

    mode: int | None = None
    specials: Specials = Specials.KEEP
    root_owner: RootOwner = RootOwner.CALLER

    def root_meta(self, image_root: M.EntryMeta | None, st: os.stat_result, created: bool) -> M.EntryMeta:
        """The metadata to give the checkout directory (``st``: as it was before the checkout)."""
        mode = self.mode if self.mode is not None else NEW_DIR_MODE if created else stat.S_IMODE(st.st_mode)
        if image_root is None:
            return M.EntryMeta("d", mode, st.st_uid, st.st_gid, st.st_mtime_ns)
        if self.root_owner is RootOwner.IMAGE:
            return replace(image_root, mode=mode)
        xattrs = tuple(x for x in image_root.xattrs if x[0] not in _ACLS)
        return replace(image_root, mode=mode, uid=st.st_uid, gid=st.st_gid, xattrs=xattrs)


# setxattr's answers for an xattr the filesystem has no room for (Linux took the name and size).
_XATTR_TOO_BIG = (errno.ENOSPC, errno.E2BIG, errno.ERANGE)


@dataclass
class CheckoutResult:
    entries: int = 0
    bytes: int = 0
    warnings: list[str] = field(default_factory=list)
    # privileged entries written (hardlinks count once per name); None when not counted
    # (fs.cache.RootfsClone): privileged_entries() counts them from the snapshot
    privileged: int | None = 0
    devices_left_out: int = 0  # by Specials.DROP
    privileges_cleared: int = 0  # files written without setuid/setgid bits or capabilities

    def add(self, other: CheckoutResult) -> None:
        """Count in what another writer of the same checkout wrote (the other process, fs.pieces)."""
        self.entries += other.entries
        self.bytes += other.bytes
        self.warnings += [w for w in other.warnings if w not in self.warnings]
        if self.privileged is not None and other.privileged is not None:
            self.privileged += other.privileged
        self.devices_left_out += other.devices_left_out
        self.privileges_cleared += other.privileges_cleared


# Where a copy checkout may find a file's bytes already unpacked (fs.farm.FarmCopies):
# given the entry and the new file, it fills the file and returns its size, or returns
# None (then the bytes come from the store).
Copies = Callable[[Node, int], "int | None"]


class TreeWriter:
    """What every writer of a tree below a directory shares (:func:`materialise_into`
    runs one): the policy, the counts and warnings, metadata applied in the order
    that sticks, and the directory modes that must wait for the end. ``policy`` None
    is an exact copy (the cache)."""

    def __init__(self, store, policy: CheckoutPolicy | None = None):
        self.store = store
        self.policy = policy
        self.root_fd = -1  # set by materialise_into
        self.result = CheckoutResult()
        self._warned: set[str] = set()
        # Directories whose mode would lock us out (non-root only): applied at the end, as tar does.
        self._deferred: list[tuple[list[bytes], M.EntryMeta]] = []
        self._privileged_user = os.geteuid() == 0
        # Called once the walk is under way (fs.pieces: after its fork, if it forks): an
        # import starts sealing its pack there, in a thread that would have kept the walk
        # to one process had it been running already.
        self.on_begun: Callable[[], None] | None = None

    def begun(self) -> None:
        if self.on_begun is not None:
            self.on_begun()

    def directory(self, fd: int, tree: bytes) -> M.EntryMeta | None:
        """Write the tree into the open directory ``fd``; returns the metadata its root
        should get (None: leave it as it is)."""
        raise NotImplementedError

    def warn_once(self, kind: str, text: str) -> None:
        if kind not in self._warned:
            self._warned.add(kind)
            self.result.warnings.append(text)

    def _privileged(self, kind: str, what: str, fn, *args, **kwargs) -> None:
        try:
            fn(*args, **kwargs)
        except PermissionError:
            self.warn_once(kind, f"cannot {what} without privileges; left as the current user's")
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP):
                raise
            self.warn_once(kind, f"cannot {what} here ({exc.strerror}); skipped")

    def shown(self, name: bytes) -> str:
        """The entry ``name`` (in the directory being written) as messages name it."""
        return os.fsdecode(name)

    def apply_meta(self, dirfd: int, name: bytes, m: M.EntryMeta, fd: int | None) -> None:
        """Owner, mode, xattrs, mtime: for an open fd when we have one, else by name."""
        owner = ("owner", "restore file owners")
        try:
            if fd is not None:
                self._privileged(*owner, os.fchown, fd, m.uid, m.gid)
            else:
                self._privileged(*owner, os.chown, name, m.uid, m.gid, dir_fd=dirfd, follow_symlinks=False)
        except OSError as exc:  # in a user namespace: an id its map lacks
            if exc.errno != errno.EINVAL:
                raise
            self.warn_once("owner-range", "cannot keep owners outside the user namespace's id range"
                                          " (/etc/subuid, /etc/subgid); left those entries root's")
        # xattrs before the mode: an unprivileged user needs write access to set them.
        for key, value in m.xattrs:
            namespace = key.split(".")[0]
            what = f"set {namespace}.* xattrs"
            try:
                if fd is not None:
                    self._privileged("xattr-" + namespace, what, os.setxattr, fd, key, value)
                else:
                    target = proc_path(dirfd, name)
                    self._privileged(
                        "xattr-" + namespace, what, os.setxattr, target, key, value, follow_symlinks=False
                    )
            except OSError as exc:
                if exc.errno == errno.EINVAL:  # a value the kernel does not take (a malformed capability)
                    raise LgError(f"{self.shown(name)}: the kernel refuses the image's xattr {key!r}"
                                  f" ({exc.strerror})") from None
                if exc.errno not in _XATTR_TOO_BIG:
                    raise
                # ext4 keeps an inode's xattrs in one block: 4 KiB where Linux allows 64 KiB each.
                raise LgError(
                    f"{self.shown(name)}: this filesystem cannot hold the image's {len(value)}-byte xattr"
                    f" {key!r} ({exc.strerror})"
                ) from None
        if fd is not None:
            os.fchmod(fd, m.mode)
        elif m.kind != "l":
            os.chmod(name, m.mode, dir_fd=dirfd, follow_symlinks=False)
        if fd is not None:
            os.utime(fd, ns=(m.mtime_ns, m.mtime_ns))
        else:
            os.utime(name, ns=(m.mtime_ns, m.mtime_ns), dir_fd=dirfd, follow_symlinks=False)

    def _open_path(self, parts: list[bytes]) -> int:
        """Open a directory we created, by real names from the root."""
        return open_below(self.root_fd, parts)

    def finish(self) -> None:
        """Apply the directory metadata that had to wait, deepest first (the order they
        were finished in): a directory's own mode may shut us out of what is below it."""
        for parts, m in self._deferred:
            fd = self._open_path(parts)
            try:
                self.apply_meta(fd, b".", m, fd)
            finally:
                os.close(fd)


@dataclass(frozen=True)
class _Place:
    """A directory of the checkout: the directory nodes from the root down to it,
    and the stored path of each (the root's, b"", first)."""

    stack: tuple[Node, ...]
    paths: tuple[bytes, ...]

    @property
    def parts(self) -> list[bytes]:
        return [n.name for n in self.stack]

    def below(self, node: Node) -> _Place:
        return _Place(self.stack + (node,), self.paths + (self.paths[-1] + b"/" + node.stored,))


@dataclass(frozen=True)
class _Link:
    """A hardlink put off until every leader is made."""

    key: tuple[int, ...]  # the piece's key, then its place in the piece
    place: _Place
    node: Node
    admitted: Node  # as the policy lets it onto the host (DirectoryWriter.admit)
    path: bytes  # its stored path


@dataclass
class _Ledger:
    """What the child of a two-process write tells the parent (fs.pieces.PieceWriter)."""

    result: CheckoutResult
    links: list[_Link]
    deferred: list[tuple[list[bytes], M.EntryMeta]]


# A subdirectory made while planning: its index, its place, its entries if read.
_Below = tuple[int, _Place, list[Node] | None]


class DirectoryWriter(TreeWriter):
    """Writes a snapshot's trees out as directories and files below a directory, in
    pieces (fs.pieces): by two processes when the tree is big enough and a fork is
    safe, else by this one in the tree's order.

    Depth first within a piece, with stacks of our own, not recursion, and a bounded
    number of directory fds (safeio.DirStack): a snapshot may nest thousands of
    directories. A directory's metadata is applied once everything below it is
    written.

    A hardlink is made at once when its leader is an entry this process made, and
    comes before it in the snapshot's order (pieces are not taken in that order, so
    being made first does not say so). Any other is put off: it is made at the end
    (by the parent, once the child, if there was one, has said which of those leaders
    it made), when its leader is an earlier entry this checkout created, and the mtime
    of the directory it went into is put back.
    """

    def __init__(self, store, policy: CheckoutPolicy | None = None, copies: Copies | None = None):
        super().__init__(store, policy)
        self.copies = copies
        self._stack: list[Node] = []  # directories from the root to where we are
        self._paths: list[bytes] = [b""]  # the stored path of each, the root's first
        self._skipped: set[bytes] = set()  # stored paths we could not create
        self._made: set[bytes] = set()  # stored paths of the non-directories we created
        self._pieces: list[Piece[_Place, Node]] = []
        self._links: list[_Link] = []  # the hardlinks this process put off
        self._theirs: list[_Link] = []  # the child's
        self._key: tuple[int, ...] = ()  # where the piece being written is, and where in it
        self._here: _Place | None = None  # the directory of the last link put off (one place for many)

    def _leader(self, link: bytes) -> tuple[int, bytes]:
        """Open the directory holding a hardlink leader (a stored path from the root)."""
        parts = [treenames.decode(p) for p in link.strip(b"/").split(b"/")]
        try:
            return self._open_path(parts[:-1]), parts[-1]
        except OSError:
            raise LgError(
                f"hardlink target {link.decode(errors='replace')} is missing from the snapshot"
            ) from None

    def _stored_path(self, node: Node) -> bytes:
        return self._paths[-1] + b"/" + node.stored

    def directory(self, fd: int, tree: bytes) -> M.EntryMeta | None:
        """Write the entries of snapshot ``tree`` into the open directory ``fd``; returns
        the tree's own metadata (its root's, else None)."""
        own, nodes = read_dir(self.store, tree)
        planned = plan(_Place((), (b"",)), nodes, _is_dir, self._expand)
        self._pieces = planned.pieces
        write_pieces(self, planned)
        for place in sorted(planned.opened, key=lambda p: len(p.stack), reverse=True):
            self._finish(place)
        self._deferred.sort(key=lambda d: len(d[0]), reverse=True)  # deepest first, as finish() wants
        return own

    def _expand(self, place: _Place, nodes: list[Node], budget: int) -> list[_Below]:
        fd = self._open_path(place.parts)
        try:
            made: list[_Below] = []
            for i, node in enumerate(nodes):
                if node.meta.kind == "d":
                    self.result.entries += 1
                    os.mkdir(node.name, 0o700, dir_fd=fd)
                    below = read_dir(self.store, node.tree)[1] if budget > 0 else None
                    budget -= len(below or ())
                    made.append((i, place.below(node), below))
            return made
        finally:
            os.close(fd)

    def take(self, number: int) -> None:
        piece = self._pieces[number]
        self._key = piece.key + (0,)
        fd = self._open_path(piece.place.parts)
        try:
            self._stack, self._paths = list(piece.place.stack), list(piece.place.paths)
            entries = piece.entries
            if entries is None:  # a subdirectory the plan left unread
                entries = read_dir(self.store, piece.place.stack[-1].tree)[1]
            self.write_below(fd, entries)
            if piece.whole:
                self.finish_dir(fd)
        finally:
            os.close(fd)

    def _finish(self, place: _Place) -> None:
        """Finish a directory the planner opened."""
        fd = self._open_path(place.parts)
        try:
            self._stack, self._paths = list(place.stack), list(place.paths)
            self.finish_dir(fd)
        finally:
            os.close(fd)

    def write_below(self, fd: int, nodes: list[Node]) -> None:
        """Write ``nodes`` and everything below them into the open directory ``fd``
        (not closed here), finishing each subdirectory once its entries are written."""
        pending = [iter(nodes)]  # per level: the entries still to write
        with DirStack(fd) as dirs:
            while True:
                node = next(pending[-1], None)
                if node is None:
                    pending.pop()
                    if not pending:
                        return
                    self.finish_dir(dirs.fd)
                    dirs.pop()
                elif node.meta.kind == "d":
                    self.result.entries += 1
                    os.mkdir(node.name, 0o700, dir_fd=dirs.fd)
                    dirs.push(open_dir(dirs.fd, node.name), node.name)
                    self._paths.append(self._paths[-1] + b"/" + node.stored)
                    self._stack.append(node)
                    pending.append(iter(read_dir(self.store, node.tree)[1]))
                else:
                    self.entry(dirs.fd, node)

    def finish_dir(self, fd: int) -> None:
        """Apply the metadata of the directory just written (open as ``fd``), or defer it."""
        m = self._stack[-1].meta
        if self._privileged_user or m.mode & 0o700 == 0o700:
            self.apply_meta(fd, b".", m, fd)
        else:
            self._deferred.append(([n.name for n in self._stack], m))
        self._stack.pop()
        self._paths.pop()

    def admit(self, node: Node) -> Node | None:
        """``node`` as the policy lets it onto the host: as it is, without its
        privileges, or None when it is left out."""
        if self.policy is None or self.policy.specials is Specials.KEEP or not privileged(node.meta):
            return node
        if node.meta.kind in "cb":
            self.result.devices_left_out += 1
            return None
        self.result.privileges_cleared += 1
        m = node.meta
        xattrs = tuple(x for x in m.xattrs if x[0] != _CAPABILITY)
        return replace(node, meta=replace(m, mode=m.mode & ~_SETID, xattrs=xattrs))

    def written(self, node: Node) -> None:
        """Count a non-directory entry that is now on the host."""
        if privileged(node.meta):
            assert self.result.privileged is not None  # counted by every writer that calls this
            self.result.privileged += 1

    def entry(self, fd: int, node: Node) -> None:
        """Create one entry that is not a directory inside ``fd``."""
        self.result.entries += 1
        self._non_directory(fd, node)

    def _non_directory(self, fd: int, node: Node) -> None:
        path = self._stored_path(node)
        admitted = self.admit(node)
        link = node.meta.link
        if admitted is None or (link is not None and link in self._skipped):
            self._skipped.add(path)  # left out, or its leader could not be made either
            return
        if link is not None:
            if link not in self._made or not before(link, path):  # see the class's docstring
                self._put_off(node, admitted, path)
                return
            self.link(fd, node.name, link)
        elif self.create(fd, node.name, admitted):
            self._made.add(path)
        else:
            self._skipped.add(path)
            return
        self.written(admitted)

    def link(self, fd: int, name: bytes, link: bytes) -> None:
        """Make ``name`` in ``fd`` a hardlink to the entry this checkout made at stored path ``link``."""
        leader_dir, leader = self._leader(link)
        try:
            os.link(leader, name, src_dir_fd=leader_dir, dst_dir_fd=fd, follow_symlinks=False)
        finally:
            os.close(leader_dir)

    def create(self, fd: int, name: bytes, node: Node) -> bool:
        """Create a file, symlink or node from the store, with its metadata; False if skipped."""
        m = node.meta
        if m.kind == "f":
            assert node.oid is not None  # every file has its blob
            out = os.open(name, NEW_FILE, 0o600, dir_fd=fd)
            try:
                copied = self.copies(node, out) if self.copies is not None else None
                self.result.bytes += copied if copied is not None else write_blob(self.store, node.oid, out)
                self.apply_meta(fd, name, m, out)
            except BaseException:
                os.unlink(name, dir_fd=fd)  # content that failed its check never stays behind
                raise
            finally:
                os.close(out)
            return True
        if m.kind == "l":
            os.symlink(M.read_link_target(self.store, node.oid), name, dir_fd=fd)
        else:
            try:
                os.mknod(name, _NODE_TYPES[m.kind] | 0o600, os.makedev(*m.rdev) if m.rdev else 0, dir_fd=fd)
            except PermissionError:
                self.warn_once("mknod", "cannot create device nodes without privileges; skipped them")
                return False
        self.apply_meta(fd, name, m, None)
        return True

    def _put_off(self, node: Node, admitted: Node, path: bytes) -> None:
        """Keep the hardlink at stored ``path`` for the end (:meth:`join`)."""
        if self._here is None or self._here.paths[-1] != self._paths[-1]:
            self._here = _Place(tuple(self._stack), tuple(self._paths))
        self._links.append(_Link(self._key, self._here, node, admitted, path))
        self._key = self._key[:-1] + (self._key[-1] + 1,)

    # -- what the two processes say to each other (fs.pieces.PieceWriter) ------------

    def forked(self) -> None:
        self.result = CheckoutResult()
        self._deferred = []

    def ledger(self) -> _Ledger:
        return _Ledger(self.result, self._links, self._deferred)

    def merge(self, ledger: _Ledger) -> set[bytes]:
        """Count what the child wrote, take over what it put off, and ask which of the
        leaders only it may have made it did make."""
        self.result.add(ledger.result)
        self._deferred += ledger.deferred
        self._theirs = ledger.links
        leaders = {link.node.meta.link for link in self._links + self._theirs}
        return {lead for lead in leaders if lead is not None} - self._made - self._skipped

    def answer(self, question: set[bytes]) -> tuple[set[bytes], set[bytes]]:
        return question & self._made, question & self._skipped

    def join(self, answer: tuple[set[bytes], set[bytes]] | None) -> None:
        """Make the put-off links, then put back the mtimes they changed."""
        if answer is not None:
            self._made |= answer[0]
            self._skipped |= answer[1]
        touched: dict[bytes, _Place] = {}
        fd, at = -1, None  # the directory open for the links before: they come in runs
        try:
            for link in sorted(self._links + self._theirs, key=lambda lk: lk.key):
                leader = link.node.meta.link
                assert leader is not None  # only hardlinks are put off
                if leader in self._skipped:
                    self._skipped.add(link.path)
                    continue
                if leader not in self._made or not before(leader, link.path):
                    raise unmade(link.path, leader)
                if link.place.paths[-1] != at:
                    if fd >= 0:
                        os.close(fd)
                        fd = -1
                    fd, at = self._open_path(link.place.parts), link.place.paths[-1]
                self.link(fd, link.node.name, leader)
                self.written(link.admitted)
                if link.place.stack:  # the root's metadata comes last anyway
                    touched[at] = link.place
        finally:
            if fd >= 0:
                os.close(fd)
        for place in touched.values():
            m = place.stack[-1].meta
            fd = self._open_path(place.parts)
            try:
                os.utime(fd, ns=(m.mtime_ns, m.mtime_ns))
            finally:
                os.close(fd)


def before(a: bytes, b: bytes) -> bool:
    """Whether the entry at stored path ``a`` ("/x/y") comes before the one at ``b`` in a
    walk of their snapshot: depth first, each directory's entries by real name. Without
    an escaped name (the stored name is the real one) that is the order of the names
    as they stand, compared at C speed: a hostile tree's thousands of links deep down
    must not cost a decoding per level each."""
    if b"/%" not in a and b"/%" not in b:
        return a.split(b"/") < b.split(b"/")
    return _position(a) < _position(b)


def _position(path: bytes) -> list[bytes]:
    return [treenames.decode(part) for part in path.split(b"/")]


def _is_dir(node: Node) -> bool:
    return node.meta.kind == "d"


def unmade(path: bytes, link: bytes) -> CorruptStore:
    """The refusal of a hardlink to an entry the checkout did not make before it."""
    shown = [p.decode(errors="replace") for p in (path, link)]
    return CorruptStore(f"hardlink {shown[0]} points to {shown[1]},"
                        " which is not an earlier entry of the snapshot")


def privileged_entries(store, tree: bytes) -> int:
    """The privileged entries of snapshot ``tree``, each name of a hardlink counted, as a
    checkout that keeps them writes them."""
    return sum(1 for _, node in walk(store, tree) if node.meta.kind != "d" and privileged(node.meta))


def materialise_into(writer: TreeWriter, tree: bytes, dest: str) -> CheckoutResult:
    """Run ``writer`` over the snapshot ``tree`` into ``dest`` (empty or absent).

    A destination this call created is removed again if anything fails. Under a
    policy the directory is 0700 while entries are written (an existing one is
    tightened, and put back if the checkout fails): its final mode and owner, which
    may let others in, come only once the tree is complete.
    """
    created = False
    try:
        os.mkdir(dest, 0o700)
        created = True
    except FileExistsError:
        pass
    # A directory we just made is opened without following a link and must be ours: in a
    # directory another user may write, they could put their own (or a link) in its place.
    fd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC | (os.O_NOFOLLOW if created else 0))
    before = os.fstat(fd)
    if created and before.st_uid != os.geteuid():
        os.close(fd)
        raise LgError(f"checkout destination {dest} was replaced by someone else's directory")
    if os.listdir(fd):
        os.close(fd)
        raise occupied(dest)
    try:
        if writer.policy is not None and stat.S_IMODE(before.st_mode) & 0o7077:
            _try_fchmod(fd, 0o700)
        writer.root_fd = fd
        own = writer.directory(fd, tree)
        writer.finish()
        if writer.policy is not None:
            own = writer.policy.root_meta(own, before, created)
        if own is not None:
            writer.apply_meta(fd, b".", own, fd)
        return writer.result
    except BaseException:
        if created:
            remove_tree(dest)
        else:  # it was empty when we started (checked above): leave it empty again
            for name in os.listdir(fd):
                remove_at(fd, os.fsencode(name))
            _try_fchmod(fd, stat.S_IMODE(before.st_mode))
        raise
    finally:
        os.close(fd)


def occupied(dest: str) -> LgError:
    """The refusal of a destination that holds something (a checkout fills only a new or
    empty directory, and never takes what is there)."""
    return LgError(f"checkout destination {dest} is not empty")


def _try_fchmod(fd: int, mode: int) -> None:
    """Change the mode of a directory we may not own (an unprivileged caller's existing DEST)."""
    try:
        os.fchmod(fd, mode)
    except PermissionError:
        pass


def checkout(
    store, tree: bytes, dest: str, policy: CheckoutPolicy, copies: Copies | None = None
) -> CheckoutResult:
    """Write the snapshot ``tree`` into ``dest``, which must be empty or absent: a user's
    copy checkout."""
    return materialise_into(DirectoryWriter(store, policy, copies), tree, dest)
