"""The monitor: one small process per layergit root that parents detached containers.

A detached container needs a parent that outlives ``lg run -d``: something must
collect its output into the log and its exit status into the state, restart it
as its policy says (runtime/restart.py), run its health checks (runtime/checks.py)
and serve its published ports. Rather than a process per container (a Python
process costs ~3 MB, more than podman's conmon), one monitor per root parents them
all, started on demand by the first ``lg run -d`` or ``lg start`` and exiting once
it has had nothing to supervise for a while. It is not a daemon in Docker's sense:
nothing talks to it but ``start`` requests, and every command reads container
state from disk.

Surviving its own death (SIGKILL, OOM, a bug): containers keep running, and a
new monitor takes them over. Each container it starts is marked in
``run/supervised/ID`` until it has ended for good (no restart to come); a
detached container's stdout and stderr are FIFOs (``run/fifo/ID.stdout``) that the
container opens for reading *and* writing, so its writes never meet a pipe
without a reader (no SIGPIPE, no EPIPE): with no monitor they fill the pipe's
buffer and then block until one drains it. The next lg command that finds marks
and no monitor (runtime/client.resume) starts one, and the new monitor adopts
every marked container: reopens its FIFOs and its log, serves its published ports
on the same host ports again, resumes its health checks, and restarts what ended
meanwhile as its policy says. What cannot be recovered is said so: an adopted
container is not our child, so its exit status is unknown (-1, with an error
saying why), which on-failure counts as a failure; a tty container's pty master
died with the old monitor.

Protocol: one JSON line per connection on ``ROOT/run/monitor.sock``:
``{"op": "start", "id": ID}`` -> ``{"ok": true, "pid": N}`` or
``{"ok": false, "error": MESSAGE, "code": EXIT_CODE}``; ``{"op": "adopt", "id": ID}``
(a foreground run handing over a container its policy restarts) -> ``{"ok": true}``. A request that is not a
JSON object with a known op and fields of the right types, or that is longer than
_REQUEST_MAX, gets that error reply with code 125 (ExitCode.RUN_FAILED).
"""

from __future__ import annotations

import fcntl
import heapq
import json
import os
import re
import resource
import selectors
import signal
import socket
import sys
import time
from collections.abc import Callable

from ..errors import Conflict, ExitCode, LgError, NotFound
from ..removal import remove_tree
from ..root import Root
from . import restart
from .cgroups import of_container
from .checks import Checker
from .client import joined_netns
from .logfile import LOG_NAME, LogWriter, limits
from .net.controller import Controller
from .process import SpawnError, Stdio, pty_pair, receive_master, spawn
from .rootfs import init_binary
from .rootless import netstack
from .spec import Spec
from .state import ContainerDir, Record, Registry, State, now_iso
from .supervise import pump, record_exit

IDLE_EXIT_SECONDS = 30.0
_REQUEST_MAX = 64 * 1024  # bytes in a request line; a real one is ~100, a longer one is garbage
_CLIENT_SECONDS = 10.0  # a client must have sent its request and taken its reply by then
_MAX_CLIENTS = 1024  # open client connections; later ones wait in the listen backlog
_ACCEPT_PAUSE = 1.0  # seconds without accepting after accept() ran out of descriptors or memory
_TICK = 1.0  # seconds between sweeps of overdue clients
_CONTAINER_ID = re.compile(r"[0-9a-f]{64}")
_FIELDS: dict[str, dict[str, type]] = {
    "start": {"id": str},
    "net-attach": {"id": str, "pid": int},
    "net-detach": {"id": str},
    "adopt": {"id": str},
}


class BadRequest(LgError):
    """A request line the monitor cannot act on (a broken or hostile client)."""

    exit_code = ExitCode.RUN_FAILED


def parse_request(line: bytes) -> dict:
    """The request on ``line``, checked before any of it is used, so that garbage
    gets an error reply instead of an exception somewhere inside an operation."""
    try:
        request = json.loads(line)
    except (ValueError, RecursionError):  # RecursionError: deeply nested arrays
        raise BadRequest("monitor: a request is one line of JSON") from None
    if not isinstance(request, dict):
        raise BadRequest("monitor: a request is a JSON object")
    op = request.get("op")
    fields = _FIELDS.get(op) if isinstance(op, str) else None
    if fields is None:
        raise BadRequest(f"monitor: unknown request {op!r}")
    for name, kind in fields.items():
        value = request.get(name)
        if not isinstance(value, kind) or isinstance(value, bool):  # bool is an int to isinstance
            raise BadRequest(f"monitor: {op} needs {name!r} of type {kind.__name__}")
    if not _CONTAINER_ID.fullmatch(request["id"]):  # it becomes a path and a cgroup name
        raise BadRequest(f"monitor: {op}: {request['id'][:80]!r} is not a container id")
    return request


def refusal(exc: Exception, code: int | None = None) -> dict:
    """The reply for a failed request; runtime.client.refused turns it back into an error."""
    if code is None:
        code = exc.exit_code if isinstance(exc, LgError) else ExitCode.RUN_FAILED
    return {"ok": False, "error": str(exc), "code": code}


class _Client:
    """One connection on the monitor's socket, served without ever blocking the loop.

    The same loop pumps every container's output into its log, reaps exits and relays
    published ports, so whatever a client does (send nothing, half a line or garbage,
    never read its reply, vanish mid-request) must cost only its descriptor and at
    most _REQUEST_MAX bytes of buffer. It gets one reply line, then is closed; the
    monitor drops it if the exchange has not ended _CLIENT_SECONDS after it connected.
    """

    __slots__ = ("closed", "inbuf", "monitor", "opened", "outbuf", "sock")

    def __init__(self, monitor: Monitor, sock: socket.socket):
        self.monitor, self.sock = monitor, sock
        self.inbuf = bytearray()
        self.outbuf = b""
        self.opened = time.monotonic()
        self.closed = False
        sock.setblocking(False)
        monitor.sel.register(sock, selectors.EVENT_READ, self.on_event)

    def on_event(self, key, mask: int) -> None:
        if self.closed:  # an event of the current batch, for a descriptor closed meanwhile
            return
        if self.outbuf:
            self.flush()
        else:
            self.read()

    def read(self) -> None:
        try:
            data = self.sock.recv(_REQUEST_MAX - len(self.inbuf))
        except BlockingIOError:
            return
        except OSError:  # ECONNRESET: nobody left to answer
            self.close()
            return
        # Only new bytes are searched: no quadratic rescans.
        start, newline = len(self.inbuf), data.find(b"\n")
        self.inbuf += data
        if newline >= 0:
            self.reply(self.monitor.answer(bytes(self.inbuf[: start + newline])))
        elif not data and not self.inbuf:
            self.close()  # connected and left: nothing to answer
        elif not data:  # an interrupted client, or one that half-closed after a partial line
            self.reply(refusal(BadRequest("monitor: the request ended before its newline")))
        elif len(self.inbuf) >= _REQUEST_MAX:
            self.reply(refusal(BadRequest(f"monitor: a request is a line of less than {_REQUEST_MAX} bytes")))

    def reply(self, answer: dict) -> None:
        """Send the reply line, then close; what the client sent after its request is ignored."""
        self.outbuf = json.dumps(answer).encode() + b"\n"
        self.flush()
        if not self.closed:  # the client is not reading: wait until it can take the rest
            self.monitor.sel.modify(self.sock, selectors.EVENT_WRITE, self.on_event)

    def flush(self) -> None:
        try:
            sent = self.sock.send(self.outbuf)
        except BlockingIOError:
            return
        except OSError:  # EPIPE, ECONNRESET: the client left without its reply
            self.close()
            return
        self.outbuf = self.outbuf[sent:]
        if not self.outbuf:
            self.close()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.monitor.sel.unregister(self.sock)
        self.sock.close()
        self.monitor.forget(self)


class _Watched:
    """A running container the monitor supervises."""

    __slots__ = ("cdir", "cgroup", "checker", "child", "log", "pid", "started")

    def __init__(self, cdir: ContainerDir, log: LogWriter, pid: int, child: bool):
        self.cdir, self.cgroup, self.log, self.pid, self.child = cdir, of_container(cdir), log, pid, child
        self.started = time.monotonic()
        self.checker: Checker | None = None


STREAMS = ("stdout", "stderr")


class Monitor:
    def __init__(self, root: str, init_binary: str | None):
        self.root = root
        self.layout = Root(root)
        self.registry = Registry(self.layout)
        self.init_binary = init_binary
        self.sel = selectors.DefaultSelector()
        self.watched: dict[int, _Watched] = {}  # pidfd -> container
        self._owner: dict[int, int] = {}  # output fd -> pidfd of the container writing it
        self.timers: list[tuple[float, int, Callable[[], None]]] = []  # a heap of (when, sequence, what)
        self._sequence = 0
        self.delays: dict[str, float] = {}  # container id -> its last back-off
        self.last_activity = time.monotonic()
        self.net = Controller(root, self.sel)
        self.clients: set[_Client] = set()
        # A quarter of the descriptors at most: clients must not starve containers' pipes and pidfds.
        self.max_clients = min(_MAX_CLIENTS, resource.getrlimit(resource.RLIMIT_NOFILE)[0] // 4)
        self.listener: socket.socket | None = None
        self.accepting = False
        self.accept_after = 0.0  # accept() ran out of resources: wait until then

    # -- timers -----------------------------------------------------------------

    def schedule(self, seconds: float, what: Callable[[], None]) -> None:
        self._sequence += 1
        heapq.heappush(self.timers, (time.monotonic() + seconds, self._sequence, what))

    def run_timers(self) -> None:
        now = time.monotonic()
        while self.timers and self.timers[0][0] <= now:
            _, _, what = heapq.heappop(self.timers)
            try:
                what()
            except Exception as exc:  # noqa: BLE001 - one container's trouble must not stop the others'
                print(f"monitor: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)

    def _timeout(self) -> float:
        if not self.timers:
            return _TICK
        return max(0.0, min(_TICK, self.timers[0][0] - time.monotonic()))

    # -- supervision marks ------------------------------------------------------

    def _mark(self, cid: str) -> None:
        os.makedirs(self.layout.supervised, exist_ok=True)
        with open(os.path.join(self.layout.supervised, cid), "w"):
            pass

    def _unmark(self, cid: str) -> None:
        fifos = [self.layout.output_fifo(cid, s) for s in STREAMS]
        for path in [os.path.join(self.layout.supervised, cid)] + fifos:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
        self.delays.pop(cid, None)

    # -- starting ---------------------------------------------------------------

    def start(self, cid: str, restarts: int | None = None) -> dict:
        """Start a container: for the user (``restarts`` None: a fresh count, the user's
        stop forgotten) or as its policy's ``restarts``-th restart (only while it is still
        waiting to be restarted: an lg stop or rm meanwhile wins)."""
        cdir = self.registry.container(cid)
        record = cdir.record()
        spec = record.spec
        with cdir.lock():
            st = cdir.state()
            if st.running:
                return refusal(Conflict(f"container {record.name} is already running"))
            if restarts is not None and (st.status != "restarting" or st.stopped_by_user):
                return {"ok": False, "error": "no longer to be restarted", "code": 0}
            if restarts is None:
                self.delays.pop(cid, None)
            self._mark(cid)
            cgroup = of_container(cdir, starting=True)
            devnull = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
            pty = None
            reads: dict[int, str] = {}
            if spec.process.tty:
                pty, stdio = pty_pair()
                closes = [stdio.pty_socket]
            else:
                reads, ends = self._fifos(cid)
                stdio, closes = Stdio(devnull, *ends), list(ends)
            try:  # a cgroup that cannot be made fails the start like a spawn: recorded, unmarked
                cgroup.create(spec.resources.memory, spec.resources.cpus, spec.resources.pids,
                              [d.rule() for d in spec.devices])
                connect = (lambda child: self.net.attach(cdir, spec, child)) if spec.network.bridged else None
                pid = spawn(spec, stdio, cgroup, connect, self.init_binary, joined_netns(self.root, spec))
            except (SpawnError, LgError) as exc:
                for fd in closes + list(reads) + [devnull]:
                    os.close(fd)
                if pty is not None:
                    pty.close()
                cgroup.remove()
                code = exc.exit_code if isinstance(exc, SpawnError) else ExitCode.RUN_FAILED
                st = cdir.raw_state()
                st.status, st.exit_code, st.error, st.finished_at = "exited", code, str(exc), now_iso()
                st.restart_count = restarts or st.restart_count  # a failed restart counts: no endless loop
                cdir.save_state(st)
                if restarts is None:
                    self._unmark(cid)
                else:  # a restart that failed is a failure like any: the policy decides again
                    self.schedule(0, lambda: self._ended(cdir, record, code, 0.0))
                return refusal(exc, code)
            for fd in closes + [devnull]:
                os.close(fd)
            if pty is not None:
                reads[receive_master(pty)] = "stdout"
            cdir.save_state(State.started(pid, restarts or 0))
        self._watch(cdir, spec, pid, reads, child=True)
        return {"ok": True, "pid": pid}

    def _fifos(self, cid: str) -> tuple[dict[int, str], tuple[int, int]]:
        """New FIFOs for a container's stdout and stderr: (our read ends, the container's ends).

        The container's ends are opened for reading and writing (module docstring)."""
        reads, ends = {}, []
        for stream in STREAMS:
            path = self.layout.output_fifo(cid, stream)
            os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            os.mkfifo(path, 0o600)
            ends.append(os.open(path, os.O_RDWR | os.O_CLOEXEC))
            reads[os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)] = stream
        return reads, (ends[0], ends[1])

    def _watch(self, cdir: ContainerDir, spec: Spec, pid: int, reads: dict[int, str], child: bool,
               fresh_health: bool = True) -> None:
        log = LogWriter(cdir.file(LOG_NAME), *limits(spec.log_opts))
        pidfd = os.pidfd_open(pid)
        watched = self.watched[pidfd] = _Watched(cdir, log, pid, child)
        self.sel.register(pidfd, selectors.EVENT_READ, "exit")
        for fd, stream in reads.items():
            os.set_blocking(fd, False)
            self.sel.register(fd, selectors.EVENT_READ, stream)
            self._owner[fd] = pidfd
        if spec.healthcheck is not None:
            watched.checker = Checker(self.sel, self.schedule, cdir, spec, spec.healthcheck, pid,
                                      watched.started, lambda: self._unhealthy(watched, spec), fresh_health)

    def _unhealthy(self, watched: _Watched, spec: Spec) -> None:
        """Restart an unhealthy container when its policy restarts anything (Docker leaves
        it running; lg's users asked for the restart): killed, it ends as a failure."""
        if spec.restart.name != "no":
            print(f"monitor: {watched.cdir.id[:12]} is unhealthy: restarting it", file=sys.stderr, flush=True)
            watched.cgroup.kill()

    # -- taking over after a monitor died ---------------------------------------

    def adopt_all(self) -> None:
        """Supervise again every container a previous monitor marked (module docstring)."""
        try:
            marked = os.listdir(self.layout.supervised)
        except FileNotFoundError:
            return
        for cid in marked:
            if not _CONTAINER_ID.fullmatch(cid):
                continue
            try:
                self.adopt(cid)
            except Exception as exc:  # noqa: BLE001 - the others still need a parent
                print(f"monitor: adopting {cid[:12]}: {type(exc).__name__}: {exc}",
                      file=sys.stderr, flush=True)

    def adopt(self, cid: str) -> None:
        cdir = self.registry.container(cid)
        try:
            record = cdir.record()
        except NotFound:
            self._unmark(cid)
            return
        with cdir.lock():
            st = cdir.state()
            if st.running and not _exists(st.pid):
                st = cdir.state()  # it ended this instant: read as exited now
            if st.running:
                raw = cdir.raw_state()
                raw.monitor_pid = os.getpid()
                cdir.save_state(raw)
            elif st.status == "exited" and cdir.raw_state().status != "exited":
                cdir.save_state(st)  # ended while nobody watched: its status unknown (state.py)
        # Outside the lock: watching starts health checks, which take it to write.
        if st.running:
            reads = {}
            for stream in STREAMS:
                path = self.layout.output_fifo(cid, stream)
                try:
                    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
                except FileNotFoundError:
                    continue  # a tty container: its output went with the old monitor
                reads[fd] = stream
            self._watch(cdir, record.spec, st.pid, reads, child=False, fresh_health=False)
            try:
                self.net.adopt(cdir)
            except LgError as exc:
                print(f"monitor: {cid[:12]}: {exc}", file=sys.stderr, flush=True)
        elif st.status == "restarting":
            self.schedule(restart.FIRST_DELAY, lambda: self._restart(cid))
        else:
            self.net.detach(cid)
            self._ended(cdir, record, st.exit_code, 0.0)

    # -- ending -----------------------------------------------------------------

    def reap(self, pidfd: int) -> None:
        watched = self.watched.pop(pidfd)
        cdir, cgroup, log = watched.cdir, watched.cgroup, watched.log
        self.sel.unregister(pidfd)
        os.close(pidfd)
        if watched.checker is not None:
            watched.checker.stop()
        status = None
        if watched.child:
            _, status = os.waitpid(watched.pid, 0)
        # Drain what the container wrote before it died.
        for fd, owner in list(self._owner.items()):
            if owner == pidfd:
                key = self.sel.get_key(fd)
                while pump(self.sel, key, log, {}):
                    pass
                self._owner.pop(fd, None)
        log.close()
        try:
            record: Record | None = cdir.record()
        except LgError:
            record = None
        restarting = None
        if record is not None and not record.auto_remove:
            policy = record.spec.restart

            def restarting(st: State) -> bool:
                return restart.decide(policy, st.exit_code, st.restart_count, st.stopped_by_user)
        st = record_exit(cdir, cgroup, status, restarting)
        self.net.detach(cdir.id)
        if record is None:
            self._unmark(cdir.id)
            return
        self._ended(cdir, record, st.exit_code, time.monotonic() - watched.started)

    def _ended(self, cdir: ContainerDir, record: Record, code: int, uptime: float) -> None:
        """A container's process has ended: remove it (``--rm``), restart it (its policy), or
        let it rest."""
        if record.auto_remove:
            self._unmark(cdir.id)
            with cdir.lock():
                if cdir.exists():
                    remove_tree(cdir.path)
            cdir.forget_lock()
            self.registry.release_name(record.name, cdir.id)
            self.registry.disown(cdir.id)  # last: an owner marker is what finishes a removal cut short
            return
        with cdir.lock():
            st = cdir.raw_state()
            again = cdir.exists() and restart.decide(record.spec.restart, code, st.restart_count,
                                                     st.stopped_by_user)
            if again:
                st.status = "restarting"
                cdir.save_state(st)
        if not again:
            self._unmark(cdir.id)
            return
        delay = self.delays[cdir.id] = restart.next_delay(self.delays.get(cdir.id, 0.0), uptime)
        self.schedule(delay, lambda: self._restart(cdir.id))

    def _restart(self, cid: str) -> None:
        cdir = self.registry.container(cid)
        if not cdir.exists():
            self._unmark(cid)
            return
        reply = self.start(cid, cdir.raw_state().restart_count + 1)
        if not reply["ok"] and reply.get("code") == 0:  # stopped or removed by the user meanwhile
            self._unmark(cid)

    def dispatch(self, request: dict) -> dict:
        """Carry out a request that parse_request accepted (so its op and fields are known good)."""
        op = request["op"]
        if op == "start":
            return self.start(request["id"])
        if op == "adopt":
            self.registry.container(request["id"]).record()  # NotFound for no such container
            self._mark(request["id"])
            self.adopt(request["id"])
            return {"ok": True}
        if op == "net-attach":
            cdir = self.registry.container(request["id"])
            spec = cdir.record().spec
            return {"ok": True, "settings": self.net.attach(cdir, spec, request["pid"])}
        self.net.detach(request["id"])  # net-detach
        return {"ok": True}

    def answer(self, line: bytes) -> dict:
        """The reply to one request line; never raises, so that no request can stop the loop."""
        try:
            return self.dispatch(parse_request(line))
        except LgError as exc:
            return refusal(exc)
        except Exception as exc:  # noqa: BLE001 - one bad request must not take every container's parent down
            return refusal(LgError(f"monitor: {type(exc).__name__}: {exc}"), ExitCode.RUN_FAILED)

    def accept(self) -> None:
        """Take every pending connection: one readiness event can stand for many."""
        while len(self.clients) < self.max_clients:
            try:
                sock, _ = self._listening().accept()
            except BlockingIOError:
                break
            except ConnectionAbortedError:
                continue  # that client left before we took it; the next may be there
            except OSError as exc:  # EMFILE, ENFILE, ENOBUFS: the listener stays readable, so pause or spin
                print(f"monitor: accept: {exc}; pausing", file=sys.stderr, flush=True)
                self.accept_after = time.monotonic() + _ACCEPT_PAUSE
                break
            self.clients.add(_Client(self, sock))
            self.last_activity = time.monotonic()
        self.update_accepting()

    def _listening(self) -> socket.socket:
        """The listener ``serve`` was given: accepting is only watched for once it has one."""
        if self.listener is None:
            raise LgError("monitor: no listening socket yet")
        return self.listener

    def forget(self, client: _Client) -> None:
        self.clients.discard(client)
        self.update_accepting()

    def update_accepting(self) -> None:
        """Watch the listener only while a new client can be taken: under the cap and
        not right after accept() failed (a level-triggered event would spin the loop)."""
        wanted = len(self.clients) < self.max_clients and time.monotonic() >= self.accept_after
        if wanted and not self.accepting:
            self.sel.register(self._listening(), selectors.EVENT_READ, "accept")
        elif self.accepting and not wanted:
            self.sel.unregister(self._listening())
        self.accepting = wanted

    def sweep(self) -> None:
        """Drop clients whose exchange outlived _CLIENT_SECONDS; resume a paused accept."""
        now = time.monotonic()
        for client in [c for c in self.clients if now - c.opened > _CLIENT_SECONDS]:
            client.close()
        self.update_accepting()

    def serve(self, listener: socket.socket) -> None:
        listener.setblocking(False)
        self.listener = listener
        self.update_accepting()
        next_sweep = time.monotonic() + _TICK
        while (self.watched or self.net.publishing or self.timers
               or time.monotonic() - self.last_activity < IDLE_EXIT_SECONDS):
            self.run_timers()
            for key, mask in self.sel.select(timeout=self._timeout()):
                if key.data == "accept":
                    self.accept()
                elif key.data == "exit":
                    try:
                        self.reap(key.fd)
                    except Exception as exc:  # noqa: BLE001 - keep parenting the other containers
                        print(f"monitor: reaping failed: {type(exc).__name__}: {exc}",
                              file=sys.stderr, flush=True)
                    self.last_activity = time.monotonic()
                elif callable(key.data):  # a client connection or the port proxy
                    try:
                        key.data(key, mask)
                    except Exception as exc:  # noqa: BLE001 - a broken connection must not stop the monitor
                        print(f"monitor: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
                else:
                    owner = self._owner.get(key.fd)
                    if owner is not None and not pump(self.sel, key, self.watched[owner].log, {}):
                        del self._owner[key.fd]
            if time.monotonic() >= next_sweep:
                self.sweep()
                next_sweep = time.monotonic() + _TICK


def _exists(pid: int) -> bool:
    try:
        os.close(os.pidfd_open(pid))
        return True
    except ProcessLookupError:
        return False


def raise_fd_limit() -> None:
    """Take every descriptor we may: each container costs the monitor a pidfd and its
    pipes, each relayed connection two sockets, each client one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def main(root: str) -> None:
    # lg without root: serve its networks in the user's network namespace, its ports on the host's
    netstack.join(keep_host_sockets=True)
    layout = Root(root)
    sock_path = layout.monitor_sock
    os.makedirs(layout.run, exist_ok=True)
    lock = os.open(layout.monitor_lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return  # another monitor serves this root
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    raise_fd_limit()
    try:
        os.unlink(sock_path)
    except FileNotFoundError:
        pass
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(sock_path)
    os.chmod(sock_path, 0o600)
    listener.listen(socket.SOMAXCONN)  # the kernel caps it at net.core.somaxconn
    try:
        monitor = Monitor(root, init_binary())
        monitor.adopt_all()
        monitor.serve(listener)
    finally:
        listener.close()
        try:
            os.unlink(sock_path)
        except FileNotFoundError:
            pass  # the root was removed under us


if __name__ == "__main__":
    main(sys.argv[1])
