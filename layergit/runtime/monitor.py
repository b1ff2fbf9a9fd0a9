"""The monitor: one small process per layergit root that parents detached containers.

A detached container needs a parent that outlives ``lg run -d``: something must
collect its output into the log and its exit status into the state. Rather than a
process per container (a Python process costs ~3 MB, more than podman's conmon),
one monitor per root parents them all, started on demand by the first ``lg run -d``
or ``lg start`` and exiting once it has had no container for a while. It is not a
daemon in Docker's sense: nothing talks to it but ``start`` requests, every command
reads container state from disk, and containers keep running if it is killed (their
status then reads from the kernel; see state.py).

Protocol: one JSON line per connection on ``ROOT/run/monitor.sock``:
``{"op": "start", "id": ID}`` -> ``{"ok": true, "pid": N}`` or
``{"ok": false, "error": MESSAGE, "code": EXIT_CODE}``. A request that is not a
JSON object with a known op and fields of the right types, or that is longer than
_REQUEST_MAX, gets that error reply with code 125 (ExitCode.RUN_FAILED).
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import resource
import selectors
import shutil
import signal
import socket
import sys
import time

from ..errors import Conflict, ExitCode, LgError
from ..removal import remove_tree
from ..root import Root
from .cgroups import Cgroup
from .client import joined_netns
from .net.controller import Controller
from .process import SpawnError, Stdio, pty_pair, receive_master, spawn
from .rootless import netstack
from .state import ContainerDir, Registry, State, now_iso
from .supervise import LOG_NAME, LogWriter, pump, record_exit

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


class Monitor:
    def __init__(self, root: str, init_binary: str | None):
        self.root = root
        self.registry = Registry(Root(root))
        self.init_binary = init_binary
        self.sel = selectors.DefaultSelector()
        self.watched: dict[int, tuple[ContainerDir, Cgroup, LogWriter, int]] = {}  # pidfd -> container
        self._owner: dict[int, int] = {}  # output fd -> pidfd of the container writing it
        self.last_activity = time.monotonic()
        self.net = Controller(root, self.sel)
        self.clients: set[_Client] = set()
        # A quarter of the descriptors at most: clients must not starve containers' pipes and pidfds.
        self.max_clients = min(_MAX_CLIENTS, resource.getrlimit(resource.RLIMIT_NOFILE)[0] // 4)
        self.listener: socket.socket | None = None
        self.accepting = False
        self.accept_after = 0.0  # accept() ran out of resources: wait until then

    def start(self, cid: str) -> dict:
        cdir = self.registry.container(cid)
        record = cdir.record()
        spec = record.spec
        with cdir.lock():
            if cdir.state().running:
                return refusal(Conflict(f"container {record.name} is already running"))
            cgroup = Cgroup(cid)
            cgroup.create(spec.resources.memory, spec.resources.cpus, spec.resources.pids)
            devnull = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
            pty = None
            if spec.process.tty:
                pty, stdio = pty_pair()
                reads, closes = {}, [stdio.pty_socket]
            else:
                out_r, out_w = os.pipe2(os.O_CLOEXEC)
                err_r, err_w = os.pipe2(os.O_CLOEXEC)
                stdio, reads = Stdio(devnull, out_w, err_w), {out_r: "stdout", err_r: "stderr"}
                closes = [out_w, err_w]
            try:
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
                cdir.save_state(st)
                return refusal(exc, code)
            for fd in closes + [devnull]:
                os.close(fd)
            if pty is not None:
                reads[receive_master(pty)] = "stdout"
            cdir.save_state(State.started(pid))
        log = LogWriter(cdir.file(LOG_NAME))
        pidfd = os.pidfd_open(pid)
        self.watched[pidfd] = (cdir, cgroup, log, pid)
        self.sel.register(pidfd, selectors.EVENT_READ, "exit")
        for fd, stream in reads.items():
            os.set_blocking(fd, False)
            self.sel.register(fd, selectors.EVENT_READ, stream)
            self._owner[fd] = pidfd
        return {"ok": True, "pid": pid}

    def reap(self, pidfd: int) -> None:
        cdir, cgroup, log, pid = self.watched.pop(pidfd)
        self.sel.unregister(pidfd)
        os.close(pidfd)
        _, status = os.waitpid(pid, 0)
        # Drain what the container wrote before it died.
        for fd, owner in list(self._owner.items()):
            if owner == pidfd:
                key = self.sel.get_key(fd)
                while pump(self.sel, key, log, {}):
                    pass
                del self._owner[fd]
        log.close()
        record_exit(cdir, cgroup, status)
        self.net.detach(cdir.id)
        try:
            record = cdir.record()
        except LgError:
            return
        if record.auto_remove:
            with cdir.lock():
                if cdir.exists():
                    remove_tree(cdir.path)
            cdir.forget_lock()
            self.registry.release_name(record.name, cdir.id)
            self.registry.disown(cdir.id)  # last: an owner marker is what finishes a removal cut short

    def dispatch(self, request: dict) -> dict:
        """Carry out a request that parse_request accepted (so its op and fields are known good)."""
        op = request["op"]
        if op == "start":
            return self.start(request["id"])
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
        while (self.watched or self.net.publishing
               or time.monotonic() - self.last_activity < IDLE_EXIT_SECONDS):
            for key, mask in self.sel.select(timeout=_TICK):
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
                    if owner is not None and not pump(self.sel, key, self.watched[owner][2], {}):
                        del self._owner[key.fd]
            if time.monotonic() >= next_sweep:
                self.sweep()
                next_sweep = time.monotonic() + _TICK


def raise_fd_limit() -> None:
    """Take every descriptor we may: each container costs the monitor a pidfd and its
    pipes, each relayed connection two sockets, each client one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def main(root: str) -> None:
    netstack.join()  # lg without root: serve its networks in the user's network namespace
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
    init_binary = shutil.which("tini-static") or shutil.which("tini")
    try:
        Monitor(root, init_binary).serve(listener)
    finally:
        listener.close()
        try:
            os.unlink(sock_path)
        except FileNotFoundError:
            pass  # the root was removed under us


if __name__ == "__main__":
    main(sys.argv[1])
