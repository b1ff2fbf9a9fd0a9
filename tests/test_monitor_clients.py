"""The root's monitor against broken and hostile clients of its socket (ROOT/run/monitor.sock).

The monitor parents every detached container of a root: if it dies, logs stop and
exit codes are lost; if it waits on one client, every container's log pumping and
port relaying wait too. Each test starts a container that prints a line every
0.1 s, attacks the socket from outside as any process of the host could, then
checks that the same monitor process still does its work: the log keeps growing,
lg ps, logs and stop work, and the stopped container's exit code is the one it
exited with (only the monitor, which reaps it, can record that).
"""

from __future__ import annotations

import json
import os
import resource
import socket
import time

import pytest

from .runtime_helpers import IMAGE, RuntimeLg, monitor_pids, rt, runtime_template  # noqa: F401

pytestmark = pytest.mark.root

TALKER = "trap 'exit 3' TERM; i=0; while true; do echo $i; i=$((i+1)); sleep 0.1; done"
REQUEST_MAX = 64 * 1024  # the monitor's bound on a request line
STALL = 10.0  # how long a monitor that blocked on a client would stall: proofs of progress must take less


class Talker:
    """The printing container, the monitor parenting it, and a way to reach that monitor's socket."""

    def __init__(self, runner: RuntimeLg):
        self.rt = runner
        self.cid = runner.run_d("--name", "talker", IMAGE, "sh", "-c", TALKER)
        runner.wait_log("talker", "2\n")
        pids = monitor_pids(runner.root)
        assert len(pids) == 1, pids
        self.monitor = pids[0]
        self.sock_path = os.path.join(runner.root, "run", "monitor.sock")

    def connect(self, rcvbuf: int | None = None) -> socket.socket:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if rcvbuf is not None:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.connect(self.sock_path)  # blocking: waits for room in the listen backlog rather than fail with EAGAIN
        s.settimeout(STALL + 10)
        return s

    def start_request(self, cid: str | None = None) -> bytes:
        return json.dumps({"op": "start", "id": cid or self.cid}).encode() + b"\n"

    def exchange(self, payload: bytes, shut: bool = False) -> bytes:
        """Send ``payload`` on a new connection (then half-close it if ``shut``); the raw reply, b"" if none."""
        with self.connect() as s:
            try:
                s.sendall(payload)
                if shut:
                    s.shutdown(socket.SHUT_WR)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the monitor may refuse an over-long request before taking all of it
            return read_reply(s)

    def log_lines(self) -> int:
        return len(self.rt.logs("talker").splitlines())

    def sockets(self) -> int:
        """How many sockets the monitor holds open (its listener, its clients)."""
        n = 0
        for fd in os.listdir(f"/proc/{self.monitor}/fd"):
            try:
                n += os.readlink(f"/proc/{self.monitor}/fd/{fd}").startswith("socket:")
            except OSError:
                pass  # closed meanwhile
        return n

    def assert_log_grows(self) -> None:
        """Five more lines, well within the time a monitor blocked on one client would stall."""
        before = self.log_lines()
        self.rt.wait_until(lambda: self.log_lines() >= before + 5, timeout=STALL / 2, what="the talker's log to grow")

    def assert_survived(self) -> None:
        """The same monitor still pumps the log, lg ps/logs work, and lg stop's exit code gets recorded."""
        assert monitor_pids(self.rt.root) == [self.monitor], "the monitor died or was replaced"
        self.assert_log_grows()
        rows = self.rt.ps_json()
        assert [(r["name"], r["status"][:2]) for r in rows if r["name"] == "talker"] == [("talker", "Up")], rows
        self.rt("stop", "talker", timeout=60)
        state = self.rt.wait_exited("talker")
        assert state["ExitCode"] == 3, state
        assert monitor_pids(self.rt.root) == [self.monitor]
        with open(os.path.join(self.rt.root, "run", "monitor.log"), errors="replace") as f:
            assert "Traceback" not in f.read()


def read_reply(s: socket.socket) -> bytes:
    """Everything up to the first newline, or up to the monitor's closing the connection."""
    data = b""
    while b"\n" not in data:
        try:
            chunk = s.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    return data


def assert_refusal(raw: bytes, code: int = 125) -> dict:
    """One JSON line: ok false, a one-line message, the exit code."""
    assert raw.endswith(b"\n") and raw.count(b"\n") == 1, raw
    reply = json.loads(raw)
    assert reply.keys() == {"ok", "error", "code"} and reply["ok"] is False and reply["code"] == code, reply
    assert isinstance(reply["error"], str) and reply["error"], reply
    return reply


@pytest.fixture
def talker(rt) -> Talker:
    return Talker(rt)


def test_clients_that_hang_up_at_once(talker):
    """A valid request whose client closes before the reply (an interrupted lg) costs the monitor nothing,
    300 times over: writing the reply to the gone client fails quietly."""
    for _ in range(300):
        with talker.connect() as s:
            s.sendall(talker.start_request())
    assert_refusal(talker.exchange(talker.start_request()), code=1)  # "already running": requests still served
    talker.assert_survived()


GARBAGE = {
    "text": b"garbage\n",
    "array": b"[1, 2, 3]\n",
    "string": b'"a string"\n',
    "null": b"null\n",
    "no id": b'{"op": "start"}\n',
    "int id": b'{"op": "start", "id": 42}\n',
    "path id": b'{"op": "start", "id": "../../../etc"}\n',
    "unknown op": b'{"op": "reboot", "id": "0"}\n',
    "list op": b'{"op": ["start"]}\n',
    "deep": b"[" * 60_000 + b"\n",  # deeper than the JSON parser's recursion, shorter than the bound
    "binary": bytes(range(256)).replace(b"\n", b"") * 64 + b"\n",  # not UTF-8 (nor JSON)
    "huge": b"x" * (REQUEST_MAX + 4096),  # longer than the bound, and never ended
}


def test_garbage_gets_one_line_error(talker):
    """Anything but a well-formed request gets {"ok": false, "error": ..., "code": 125} and the monitor goes on."""
    for name, payload in GARBAGE.items():
        reply = talker.exchange(payload)
        assert reply.endswith(b"\n") and json.loads(reply)["code"] == 125, (name, reply)
        assert_refusal(reply)
        assert monitor_pids(talker.rt.root) == [talker.monitor], f"the monitor died of {name!r}"
    talker.assert_survived()


def test_malformed_fields_and_cut_requests(talker):
    """Fields of the wrong type are refused; a half line then a half-close gets an error, a half line then
    a close (or binary junk then a close) gets nothing, and nothing breaks."""
    assert_refusal(talker.exchange(json.dumps({"op": "net-attach", "id": talker.cid, "pid": "1"}).encode() + b"\n"))
    assert_refusal(talker.exchange(json.dumps({"op": "net-attach", "id": talker.cid, "pid": True}).encode() + b"\n"))
    assert_refusal(talker.exchange(b'{"op": "sta', shut=True))
    for junk in (b'{"op": "sta', bytes(range(256)) * 4):
        with talker.connect() as s:
            s.sendall(junk)
    talker.assert_survived()


def test_idle_client_stalls_nothing(talker):
    """A client that connects and never sends: the log keeps growing and other requests are served while it
    is connected, and the monitor drops it after its 10 s."""
    before = talker.sockets()
    with talker.connect() as idle:
        talker.rt.wait_until(lambda: talker.sockets() == before + 1, what="the monitor to accept the idle client")
        talker.assert_log_grows()
        assert_refusal(talker.exchange(talker.start_request()), code=1)
        assert monitor_pids(talker.rt.root) == [talker.monitor]
        assert idle.recv(1) == b""  # the monitor closed it (the socket's timeout is STALL + 10 s)
    talker.assert_survived()


def test_clients_that_never_read(talker):
    """Fifty clients with the smallest receive buffer send a request and do not read: nothing waits on them,
    and each finds its reply there when it finally reads."""
    slow = [talker.connect(rcvbuf=1) for _ in range(50)]
    try:
        for s in slow:
            s.sendall(talker.start_request())
        talker.assert_log_grows()
        assert_refusal(talker.exchange(talker.start_request()), code=1)
        for s in slow:
            assert_refusal(read_reply(s), code=1)
    finally:
        for s in slow:
            s.close()
    talker.assert_survived()


def test_thousand_concurrent_clients(talker):
    """1,000 connections opened at once are all held by the monitor without stalling the log or a real
    request; once they close, the monitor lets go of every one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 4096), max(hard, 4096)))  # room for 1,000 sockets here
    before = talker.sockets()
    held = []
    try:
        for _ in range(1000):
            held.append(talker.connect())
        talker.rt.wait_until(lambda: talker.sockets() >= before + 1000, what="the monitor to accept 1,000 clients")
        talker.assert_log_grows()
        assert_refusal(talker.exchange(talker.start_request()), code=1)
    finally:
        for s in held:
            s.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    talker.rt.wait_until(lambda: talker.sockets() == before, what="the monitor to close the 1,000 clients")
    talker.assert_survived()


def test_requests_sent_byte_by_byte(talker):
    """Two requests trickled in one byte at a time, interleaved, are each answered on their own connection:
    one starts a created container, the other is refused for the already running talker."""
    late = talker.rt.out("create", "--name", "late", IMAGE, "sh", "-c", "echo late-start; sleep 600", timeout=60).strip()
    requests = [talker.start_request(late), talker.start_request()]
    conns = [talker.connect() for _ in requests]
    try:
        for i in range(max(map(len, requests))):
            for s, req in zip(conns, requests):
                if i < len(req):
                    s.send(req[i : i + 1])
            time.sleep(0.005)  # pacing, so that the bytes arrive apart: the attack's shape, not a synchronisation
        started, refused = (read_reply(s) for s in conns)
    finally:
        for s in conns:
            s.close()
    reply = json.loads(started)
    assert reply["ok"] is True and isinstance(reply["pid"], int), reply
    assert_refusal(refused, code=1)
    talker.rt.wait_log("late", "late-start")
    assert talker.rt.state("late")["Running"]
    talker.assert_survived()
