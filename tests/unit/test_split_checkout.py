"""fs.pieces and fs.checkout: a copy checkout written by two processes is the
checkout one process's plain walk writes, entry by entry (hardlinks across the pieces, directory mtimes after
them, put-off directories), and a failure on either side leaves no process and no
destination behind."""

from __future__ import annotations

import errno
import os
import signal
import threading
import time
from dataclasses import replace

import pytest

from layergit.errors import CorruptStore, LgError
from layergit.fs.checkout import CheckoutPolicy, DirectoryWriter, before, materialise_into, unmade
from layergit.fs.pieces import PIECES, PLAN_ENTRIES, Piece, Plan, plan, write_pieces
from layergit.store import treenames
from layergit.store.snapshot import read_dir

from ..treecompare import describe, differences
from .memstore import T0, Inode, MemStore, directory, file, meta, snapshot, symlink

DIRS, FILES = 40, 15  # 640 entries: more than SPLIT_FROM, in more pieces than PIECES


def big_tree(store: MemStore, extra: dict | None = None) -> bytes:
    """Forty directories of fifteen files, some nested, locked or linked across the
    tree, each entry with its own mtime, so a mtime put back wrong shows."""
    entries: dict = {}
    for d in range(DIRS):
        entries[f"/d{d:02}"] = directory(mode=0o555 if d % 7 == 3 else 0o755, mtime_ns=T0 + d)
        for f in range(FILES):
            entries[f"/d{d:02}/f{f:02}"] = file(store, b"%d/%d\n" % (d, f), mode=0o600 + f, mtime_ns=T0 + 1000 * d + f)
    entries["/d05/sub"] = directory(mtime_ns=T0 + 7)
    entries["/d05/sub/deeper"] = directory(mode=0o500, mtime_ns=T0 + 8)
    entries["/d05/sub/deeper/leaf"] = file(store, b"leaf\n")
    entries["/d06/to-leaf"] = symlink(store, b"../d05/sub/deeper/leaf")
    entries["/d07/fifo"] = Inode(meta("p", mode=0o640), None)
    early = file(store, b"linked from the first directory\n", mtime_ns=T0 + 5)
    late = file(store, b"linked within the last ones\n", mtime_ns=T0 + 6)
    top = file(store, b"a file of the root's\n")
    for path, inode in [("/d00/lead", early), ("/d20/again", early), ("/d39/again", early),
                        ("/d38/lead", late), ("/d39/late", late), ("/r", top), ("/d10/r-again", top)]:
        entries[path] = inode
    for d in range(5, DIRS, 6):  # a directory's files are a piece before its subdirectories'
        inode = file(store, b"leader in a subdirectory %d\n" % d)
        entries[f"/d{d:02}/a-sub"] = directory(mtime_ns=T0 + 9)
        entries[f"/d{d:02}/a-sub/x"] = inode
        entries[f"/d{d:02}/zz-follower"] = inode
    entries.update(extra or {})
    return snapshot(store, entries)


class Recorder:
    """A ``copies`` callback that notes which process wrote each file (an O_APPEND
    file, as the child's memory is its own), slowly enough that both take pieces,
    and stands aside for the store's bytes."""

    def __init__(self, path, fail=None):
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        self.path = path
        self.fail = fail

    def __call__(self, node, out):
        os.write(self.fd, b"%d\n" % os.getpid())
        if self.fail is not None:
            self.fail()
        time.sleep(0.001)
        return None

    def writers(self) -> set[int]:
        with open(self.path, "rb") as f:
            return {int(line) for line in f}


class OneWalk(DirectoryWriter):
    """The reference the pieces are held to: one process's plain depth-first walk, as
    checkouts were written before they came in pieces, refusing at once a hardlink
    whose leader it has not made (in a walk in the snapshot's order, one made is an
    earlier entry: the order check it inherits never refuses more)."""

    def directory(self, fd, tree):
        own, nodes = read_dir(self.store, tree)
        self.write_below(fd, nodes)
        return own

    def _put_off(self, node, admitted, path):
        raise unmade(path, node.meta.link or b"")


def no_children_left() -> bool:
    try:
        os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        return True
    return False


def checkout(writer, tree: bytes, dest) -> None:
    materialise_into(writer, tree, str(dest))


def test_two_processes_write_what_one_writes(tmp_path):
    store = MemStore()
    tree = big_tree(store)
    policy = CheckoutPolicy()
    recorder = Recorder(tmp_path / "writers")
    split = DirectoryWriter(store, policy, recorder)
    checkout(split, tree, tmp_path / "split")
    one = OneWalk(store, policy)
    checkout(one, tree, tmp_path / "one")
    assert len(recorder.writers()) == 2, "the checkout was not split"
    assert not differences(describe(tmp_path / "one"), describe(tmp_path / "split"))
    assert split.result == one.result
    leader = os.lstat(tmp_path / "split" / "d00" / "lead")
    assert leader.st_nlink == 3 and os.lstat(tmp_path / "split" / "d39" / "again").st_ino == leader.st_ino
    assert no_children_left()


def test_links_one_process_put_off_and_then_led_itself_are_made(tmp_path):
    """The parent stalls on its first file, so the child takes the pieces after it one
    by one: a directory's files (a follower) before its subdirectory (the leader). The
    child made that leader, and only it can say so."""
    parent, stalled = os.getpid(), []

    def stall_the_parent_once():
        if os.getpid() == parent and not stalled:
            stalled.append(1)
            time.sleep(0.5)

    store = MemStore()
    tree = big_tree(store)
    split = DirectoryWriter(store, CheckoutPolicy(), Recorder(tmp_path / "w", stall_the_parent_once))
    checkout(split, tree, tmp_path / "split")
    checkout(OneWalk(store, CheckoutPolicy()), tree, tmp_path / "one")
    assert not differences(describe(tmp_path / "one"), describe(tmp_path / "split"))


def test_a_small_tree_is_written_by_one_process(tmp_path):
    store = MemStore()
    tree = snapshot(store, {f"/d{d}/f": file(store, b"%d" % d) for d in range(10)})
    recorder = Recorder(tmp_path / "writers")
    checkout(DirectoryWriter(store, CheckoutPolicy(), recorder), tree, tmp_path / "out")
    assert recorder.writers() == {os.getpid()}


def test_a_process_with_other_threads_does_not_fork(tmp_path):
    """fork(2) copies only the calling thread: a lock another thread held would stay
    held in the child for ever."""
    store = MemStore()
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        recorder = Recorder(tmp_path / "writers")
        checkout(DirectoryWriter(store, CheckoutPolicy(), recorder), big_tree(store), tmp_path / "out")
    finally:
        stop.set()
        other.join()
    assert recorder.writers() == {os.getpid()}


def test_a_thread_started_once_the_walk_has_begun_leaves_it_two_processes(tmp_path):
    """An import seals its pack in a thread while its rootfs is materialised: started
    from on_begun, after the fork, it costs the walk none of its two processes (started
    before, the walk would keep to one). It is started once, by the parent alone."""
    store = MemStore()
    stop = threading.Event()
    started: list[tuple[int, int]] = []

    def start_a_thread():
        started.append((os.getpid(), threading.active_count()))
        threading.Thread(target=stop.wait, daemon=True).start()

    recorder = Recorder(tmp_path / "writers")
    split = DirectoryWriter(store, CheckoutPolicy(), recorder)
    split.on_begun = start_a_thread
    try:
        checkout(split, big_tree(store), tmp_path / "out")
    finally:
        stop.set()
    assert len(recorder.writers()) == 2, "the thread kept the walk to one process"
    assert started == [(os.getpid(), 1)], "started once, in the parent, beside no other thread"
    assert no_children_left()


def test_a_fork_the_kernel_refuses_leaves_the_walk_to_one_process(tmp_path, monkeypatch):
    """A pids limit or strict overcommit refuses the fork (EAGAIN, ENOMEM): the tree is
    written by this process alone, in its order, as a small one is; no pipe is left open."""
    def refused():
        raise OSError(errno.EAGAIN, os.strerror(errno.EAGAIN))

    store = MemStore()
    tree = big_tree(store)
    fds = len(os.listdir("/proc/self/fd"))
    monkeypatch.setattr(os, "fork", refused)
    recorder = Recorder(tmp_path / "writers")
    checkout(DirectoryWriter(store, CheckoutPolicy(), recorder), tree, tmp_path / "out")
    monkeypatch.undo()
    assert recorder.writers() == {os.getpid()}
    checkout(OneWalk(store, CheckoutPolicy()), tree, tmp_path / "one")
    assert not differences(describe(tmp_path / "one"), describe(tmp_path / "out"))
    os.close(recorder.fd)
    assert len(os.listdir("/proc/self/fd")) == fds


def test_a_link_to_an_entry_nobody_made_is_refused_after_both_wrote(tmp_path):
    store = MemStore()
    shared = file(store, b"x\n")
    stray = Inode(replace(shared.meta, link=b"/nowhere"), shared.oid)
    tree = big_tree(store, {"/d30/stray": stray})
    with pytest.raises(CorruptStore, match="/d30/stray points to /nowhere"):
        checkout(DirectoryWriter(store, CheckoutPolicy(), Recorder(tmp_path / "writers")), tree, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert no_children_left()


@pytest.mark.parametrize("failure", [OSError(errno.ENOSPC, "No space left on device"), KeyboardInterrupt()],
                         ids=["disk-full", "ctrl-c"])
def test_the_childs_failure_is_raised_as_it_was_and_nothing_stays(tmp_path, failure):
    parent = os.getpid()

    def fail_in_the_child():
        if os.getpid() != parent:
            raise failure

    store = MemStore()
    with pytest.raises(type(failure)) as raised:
        checkout(DirectoryWriter(store, CheckoutPolicy(), Recorder(tmp_path / "w", fail_in_the_child)),
                 big_tree(store), tmp_path / "out")
    assert str(raised.value) == str(failure) and getattr(raised.value, "errno", None) == getattr(failure, "errno", None)
    assert not (tmp_path / "out").exists()
    assert no_children_left()


@pytest.mark.parametrize("stop", [LgError("the parent stops"), KeyboardInterrupt()], ids=["error", "ctrl-c"])
def test_the_parents_failure_stops_the_child_before_the_destination_goes(tmp_path, stop):
    parent = os.getpid()
    calls = []

    def stop_in_the_parent():
        if os.getpid() == parent:
            calls.append(1)
            if len(calls) == 40:
                raise stop

    store = MemStore()
    with pytest.raises(type(stop)):
        checkout(DirectoryWriter(store, CheckoutPolicy(), Recorder(tmp_path / "w", stop_in_the_parent)),
                 big_tree(store), tmp_path / "out")
    assert no_children_left()
    time.sleep(0.05)  # a child still writing would bring the destination back
    assert not (tmp_path / "out").exists()


def test_a_child_that_dies_is_said_with_how(tmp_path, monkeypatch):
    parent = os.getpid()

    def killed_in_the_child():
        if os.getpid() != parent:
            os.kill(os.getpid(), 9)

    store = MemStore()
    with pytest.raises(LgError, match=r"second process failed \(killed by SIGKILL\)"):
        checkout(DirectoryWriter(store, CheckoutPolicy(), Recorder(tmp_path / "w", killed_in_the_child)),
                 big_tree(store), tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert no_children_left()


def test_the_plan_has_every_entry_once_in_the_trees_order():
    """The pieces cover the tree: each entry in exactly one piece or made by the
    planner, the biggest directories opened first, none without subdirectories."""
    tree = {"": [f"d{d:02}/" for d in range(DIRS)] + ["r"]}
    for d in range(DIRS):
        tree[f"d{d:02}/"] = [f"d{d:02}/f{f:02}" for f in range(FILES)]
    tree["d05/"] += ["d05/sub/"]
    tree["d05/sub/"] = ["d05/sub/deeper/"]
    tree["d05/sub/deeper/"] = ["d05/sub/deeper/leaf"]
    tree["d07/"] += [f"d07/s{i:02}/" for i in range(30)]
    for i in range(30):
        tree[f"d07/s{i:02}/"] = [f"d07/s{i:02}/x", f"d07/s{i:02}/y/"]
        tree[f"d07/s{i:02}/y/"] = []
    made = []

    def expand(place, entries, budget):
        made.extend(e for e in entries if e.endswith("/"))
        return [(i, e, tree[e]) for i, e in enumerate(entries) if e.endswith("/")]

    planned = plan("", tree[""], lambda e: e.endswith("/"), expand)
    firsts = [p.place if p.whole else p.entries[0] for p in planned.pieces]
    assert firsts == sorted(firsts)  # the pieces in the tree's order, runs of files and subdirectories alike
    assert planned.opened == ["d07/"]  # the most entries first, and then enough pieces; never d00/ and the like
    assert len([p for p in planned.pieces if p.whole]) >= PIECES and planned.worth_two
    whole = [p.place for p in planned.pieces if p.whole]
    assert set(whole).isdisjoint(planned.opened) and len(whole) == len(set(whole))
    below_whole = set()
    for top in whole:  # everything below a whole piece is its own
        stack = list(tree[top])
        while stack:
            e = stack.pop()
            below_whole.add(e)
            stack += tree.get(e, [])
    everything = {e for entries in tree.values() for e in entries}
    files = [e for p in planned.pieces if not p.whole for e in p.entries]
    assert len(files) == len(set(files))
    assert set(files) | set(made) | below_whole | set(whole) == everything
    assert planned.seen == sum(len(tree[p]) for p in ["", *made])


def test_a_tree_of_many_leaf_directories_is_queued_in_groups(tmp_path):
    """More pieces than the smallest pipe holds numbers before anyone reads (1,024 in
    4 KiB): the queue carries groups of pieces, and every piece is taken once."""
    taken = []

    class Writer:
        def begun(self):
            taken.append("begun")

        def take(self, number):
            taken.append(number)

        def join(self, answer):
            taken.append(answer)

    pieces = [Piece((i,), "", [], whole=True) for i in range(20_000)]
    write_pieces(Writer(), Plan(pieces, [], 0))
    assert taken[0] == "begun", "one process: begun before the first piece"
    assert taken[1:-1] == list(range(20_000)) and taken[-1] is None


def test_the_plan_reads_a_bounded_number_of_entries():
    """A thousand directories that are one shared subtree of a thousand files (a store
    of kilobytes): the plan stops reading at PLAN_ENTRIES and leaves the rest to the
    pieces' takers, one directory at a time."""
    reads = []

    def expand(place, entries, budget):
        out = []
        for i, e in enumerate(entries):
            listing = None
            if budget > 0:
                listing = [f"{e}f{j}" for j in range(1000)] if e.count("/") == 1 else [f"{e}d{j}/" for j in range(1000)]
                reads.append(len(listing))
                budget -= len(listing)
            out.append((i, e, listing))
        return out

    root = [f"d{j}/" for j in range(1000)]
    planned = plan("", root, lambda e: e.endswith("/"), expand)
    assert planned.seen <= PLAN_ENTRIES + 1000 + len(root) and sum(reads) + len(root) == planned.seen
    unread = [p for p in planned.pieces if p.entries is None]
    assert unread and all(p.whole for p in unread)


def test_an_empty_tree_is_checked_out(tmp_path):
    store = MemStore()
    tree = snapshot(store, {})
    writer = DirectoryWriter(store, CheckoutPolicy())
    checkout(writer, tree, tmp_path / "out")
    assert os.listdir(tmp_path / "out") == [] and writer.result.entries == 0


def test_with_sigchld_ignored_one_process_writes_it_all(tmp_path):
    """Children reap themselves when SIGCHLD is ignored (as a caller may leave it, across
    exec): the child could not be waited for, so there is none."""
    store = MemStore()
    recorder = Recorder(tmp_path / "writers")
    before = signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    try:
        checkout(DirectoryWriter(store, CheckoutPolicy(), recorder), big_tree(store), tmp_path / "out")
    finally:
        signal.signal(signal.SIGCHLD, before)
    assert recorder.writers() == {os.getpid()}


@pytest.mark.parametrize("crowd", [False, True], ids=["one-writer", "two-writers"])
def test_a_link_to_a_later_entry_is_refused_as_before(tmp_path, crowd):
    """The leader of a hardlink is an earlier entry of the snapshot: one written later
    (by this process or the other) is refused, as the one-process writer refuses it."""
    store = MemStore()
    later = file(store, b"later\n")
    entries = {"/a-link": Inode(replace(later.meta, link=b"/zz"), later.oid), "/zz": later}
    tree = big_tree(store, entries) if crowd else snapshot(store, entries)
    for writer in (OneWalk(store, CheckoutPolicy()), DirectoryWriter(store, CheckoutPolicy())):
        with pytest.raises(CorruptStore, match="/a-link points to /zz, which is not an earlier entry"):
            checkout(writer, tree, tmp_path / type(writer).__name__)
        assert not (tmp_path / type(writer).__name__).exists()
    assert no_children_left()


def test_many_links_deep_down_are_made_once_each(tmp_path):
    """Links put off deep in a tree keep one copy of their directory, and are made
    with one open of it per run of links (a hostile tree has thousands)."""
    store = MemStore()
    shared = file(store, b"shared\n")
    deep = "/" + "/".join(["d"] * 200)
    entries = {"/0-leader": shared, **{f"{deep}/l{i:04}": shared for i in range(2000)}}
    tree = big_tree(store, entries)
    split = DirectoryWriter(store, CheckoutPolicy(), Recorder(tmp_path / "w"))
    checkout(split, tree, tmp_path / "split")
    checkout(OneWalk(store, CheckoutPolicy()), tree, tmp_path / "one")
    assert not differences(describe(tmp_path / "one"), describe(tmp_path / "split"))
    assert os.lstat(tmp_path / "split" / "0-leader").st_nlink == 2001


def test_the_parent_stops_soon_after_the_child_failed(tmp_path):
    """The child fails at once; the parent, writing slowly, looks up between pieces
    and stops, rather than write the rest of the tree for nothing."""
    parent, written = os.getpid(), []

    def slow_parent_failing_child():
        if os.getpid() != parent:
            raise OSError(errno.ENOSPC, "No space left on device")
        written.append(1)
        time.sleep(0.005)

    store = MemStore()
    with pytest.raises(OSError):
        checkout(DirectoryWriter(store, CheckoutPolicy(), Recorder(tmp_path / "w", slow_parent_failing_child)),
                 big_tree(store), tmp_path / "out")
    assert len(written) < 100, f"the parent wrote {len(written)} files after the child had failed"
    assert no_children_left()


def test_the_snapshots_order_is_the_real_names_order_escaped_or_not():
    """before() compares stored paths as a walk meets their entries: by real name, level
    by level, whatever the escaping (a "%" name's real one may sort elsewhere)."""
    names = [b"a", b"b", b".git", b"%x", b"\xff", b"z\nline", b"a b", b"0"]
    real = sorted(names)
    stored = {n: treenames.encode(n) for n in names}
    assert any(stored[n] != n for n in names)  # escapes are in play
    paths = [b"/" + stored[n] for n in real] + [b"/" + stored[real[-1]] + b"/" + stored[n] for n in real]
    for i, a in enumerate(paths):
        for b in paths[i + 1:]:
            assert before(a, b) and not before(b, a), (a, b)
        assert not before(a, a)
