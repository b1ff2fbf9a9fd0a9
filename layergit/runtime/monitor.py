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
``{"ok": false, "error": MESSAGE, "code": EXIT_CODE}``.
"""

from __future__ import annotations

import fcntl
import json
import os
import selectors
import shutil
import signal
import socket
import sys
import time

from ..errors import LgError
from ..removal import remove_tree
from .cgroups import Cgroup
from .connect import Controller, is_bridged
from .portproxy import PortProxy
from .process import SpawnError, Stdio, pty_pair, receive_master, spawn
from .spec import Spec
from .client import joined_netns, paths
from .state import ContainerDir, State, now_iso, pid_start_time
from .supervise import LOG_NAME, LogWriter, pump, record_exit

IDLE_EXIT_SECONDS = 30.0



class Monitor:
    def __init__(self, root: str, init_binary: str | None):
        self.root = root
        self.containers = os.path.join(root, "containers")
        self.init_binary = init_binary
        self.sel = selectors.DefaultSelector()
        self.watched: dict[int, tuple[ContainerDir, Cgroup, LogWriter, int]] = {}  # pidfd -> container
        self._owner: dict[int, int] = {}  # output fd -> pidfd of the container writing it
        self.last_activity = time.monotonic()
        self.proxy = PortProxy(self.sel)
        self.net = Controller(root, self.proxy)

    def start(self, cid: str) -> dict:
        cdir = ContainerDir(self.containers, cid)
        record = cdir.record()
        spec = Spec.from_json(json.dumps(record.spec))
        with cdir.lock():
            if cdir.state().running:
                return {"ok": False, "error": f"container {record.name} is already running", "code": 1}
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
                connect = (lambda child: self.net.attach(cdir, spec, child)) if is_bridged(spec) else None
                pid = spawn(spec, stdio, cgroup, connect, self.init_binary, joined_netns(self.containers, spec))
            except (SpawnError, LgError) as exc:
                for fd in closes + list(reads) + [devnull]:
                    os.close(fd)
                if pty is not None:
                    pty.close()
                cgroup.remove()
                code = exc.exit_code if isinstance(exc, SpawnError) else 125
                st = cdir.raw_state()
                st.status, st.exit_code, st.error, st.finished_at = "exited", code, str(exc), now_iso()
                cdir.save_state(st)
                return {"ok": False, "error": str(exc), "code": code}
            for fd in closes + [devnull]:
                os.close(fd)
            if pty is not None:
                reads[receive_master(pty)] = "stdout"
            cdir.save_state(State("running", pid, pid_start_time(pid) or 0, started_at=now_iso(), monitor_pid=os.getpid()))
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
            auto_remove = cdir.record().auto_remove
        except LgError:
            return
        if auto_remove:
            with cdir.lock():
                if cdir.exists():
                    remove_tree(cdir.path)
            cdir.forget_lock()

    def dispatch(self, request: dict) -> dict:
        op = request.get("op")
        if op == "start":
            return self.start(request["id"])
        if op == "net-attach":
            cdir = ContainerDir(self.containers, request["id"])
            spec = Spec.from_json(json.dumps(cdir.record().spec))
            return {"ok": True, "settings": self.net.attach(cdir, spec, int(request["pid"]))}
        if op == "net-detach":
            self.net.detach(request["id"])
            return {"ok": True}
        return {"ok": False, "error": f"unknown request {op!r}", "code": 125}

    def handle(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        with conn, conn.makefile("rwb") as stream:
            try:
                request = json.loads(stream.readline())
                reply = self.dispatch(request)
            except LgError as exc:
                reply = {"ok": False, "error": str(exc), "code": exc.exit_code}
            except Exception as exc:  # noqa: BLE001 - one bad request must not take every container's parent down
                reply = {"ok": False, "error": f"monitor: {type(exc).__name__}: {exc}", "code": 125}
            stream.write(json.dumps(reply).encode() + b"\n")
            stream.flush()

    def serve(self, listener: socket.socket) -> None:
        self.sel.register(listener, selectors.EVENT_READ, "accept")
        while self.watched or self.proxy.listeners or time.monotonic() - self.last_activity < IDLE_EXIT_SECONDS:
            for key, mask in self.sel.select(timeout=1.0):
                if key.data == "accept":
                    conn, _ = listener.accept()
                    conn.setblocking(True)
                    self.handle(conn)
                    self.last_activity = time.monotonic()
                elif key.data == "exit":
                    try:
                        self.reap(key.fd)
                    except Exception as exc:  # noqa: BLE001 - keep parenting the other containers
                        print(f"monitor: reaping failed: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
                    self.last_activity = time.monotonic()
                elif callable(key.data):
                    try:
                        key.data(key, mask)
                    except Exception as exc:  # noqa: BLE001 - a broken connection must not stop the monitor
                        print(f"monitor: port proxy: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
                else:
                    owner = self._owner.get(key.fd)
                    if owner is not None and not pump(self.sel, key, self.watched[owner][2], {}):
                        del self._owner[key.fd]


def main(root: str) -> None:
    run, sock_path, lock_path = paths(root)
    os.makedirs(run, exist_ok=True)
    lock = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return  # another monitor serves this root
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    try:
        os.unlink(sock_path)
    except FileNotFoundError:
        pass
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(sock_path)
    os.chmod(sock_path, 0o600)
    listener.listen(64)
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
