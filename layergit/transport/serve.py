"""``lg serve``: a store over git's smart HTTP protocol, through git's own git-http-backend.

Chosen by measurement over dulwich's server (issue 14): dulwich's web server refused
every path out of the box, capped request chunks at 1 MiB (a dulwich client could not
push to it), and a clone from it took 12-13 s where git-http-backend took about 3 s,
since the backend sends the store's packs as they are. This module is the HTTP side
only: a threaded server that hands each smart-protocol request to one CGI process,
streams the request body in and the response out, and answers nothing else (no dumb
protocol, no directory listing).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from ..errors import LgError, UsageError
from ..text import printable

# The only paths served: the advertisement and the two services.
_PATHS = re.compile(r"/(info/refs|git-upload-pack|git-receive-pack)")  # fullmatch
_SERVICES = {"git-upload-pack", "git-receive-pack"}
REQUEST_MAX = 64 << 20  # bytes of an upload-pack request (wants and haves): far beyond real ones
MAX_CLIENTS = 64  # connections served at once; more are answered 503 and closed
IDLE_TIMEOUT = 60.0  # seconds a client may stay silent (or not read) before it is dropped
_HEADER_MAX = 64 << 10  # bytes of CGI headers read back from the backend
_CHUNK = 1 << 16


def backend() -> str:
    """Where git keeps git-http-backend (``git --exec-path``)."""
    try:
        path = subprocess.run(["git", "--exec-path"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        raise LgError("git is not installed; lg serve runs its git-http-backend") from None
    exe = os.path.join(path, "git-http-backend")
    if not os.access(exe, os.X_OK):
        raise LgError(f"{exe} is missing: lg serve needs git's http backend")
    return exe


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT``, ``:PORT`` or ``[V6]:PORT``."""
    m = re.fullmatch(r"(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]*):([0-9]{1,5})", text)
    if not m or not 0 < int(m.group(2)) < 65536:
        raise UsageError(f"invalid --listen {text!r}: give HOST:PORT, e.g. 127.0.0.1:8787")
    return m.group(1).strip("[]") or "0.0.0.0", int(m.group(2))


@dataclass
class ServeOptions:
    store: str
    host: str
    port: int
    allow_push: bool = False
    env: dict[str, str] = field(default_factory=dict)  # git config for the backend: hidden refs, push checks
    log: Callable[[str], None] = lambda line: None
    around_push: Callable[[], object] | None = None  # a context manager factory: the store's lock
    timeout: float = IDLE_TIMEOUT


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.0"  # one request per connection: the response ends at close

    def setup(self) -> None:
        super().setup()
        # Every read and write of the connection times out: a client that opens it and
        # says nothing, or stops sending a body half way, or stops reading, holds a
        # thread (and a backend) for this long, not for ever.
        self.connection.settimeout(self.server.options.timeout)

    def do_GET(self) -> None:
        self._cgi()

    def do_POST(self) -> None:
        self._cgi()

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (the base class's name)
        self.server.options.log(printable(f"{self.client_address[0]} {format % args}"))

    def _cgi(self) -> None:
        path, _, query = self.path.partition("?")
        service = path[1:] if path[1:] in _SERVICES else dict(
            p.partition("=")[::2] for p in query.split("&")).get("service", "")
        if not _PATHS.fullmatch(path) or service not in _SERVICES:
            self.send_error(404, "not a smart git request")
            return
        options = self.server.options
        if service == "git-receive-pack" and not options.allow_push:
            self.send_error(403, "read-only: lg serve --allow-push accepts pushes")
            return
        length = self.headers.get("Content-Length")
        chunked = self.headers.get("Transfer-Encoding", "").lower() == "chunked"
        if self.command == "POST" and length is None and not chunked:
            self.send_error(411, "a request body needs a length")
            return
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GATEWAY_INTERFACE": "CGI/1.1", "SERVER_PROTOCOL": "HTTP/1.0",
            "REQUEST_METHOD": self.command, "PATH_INFO": path, "QUERY_STRING": query,
            "REMOTE_ADDR": self.client_address[0], "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "GIT_PROJECT_ROOT": options.store, "GIT_HTTP_EXPORT_ALL": "1",
            "GIT_HTTP_MAX_REQUEST_BUFFER": str(REQUEST_MAX),
        }
        if length is not None:
            env["CONTENT_LENGTH"] = length
        # No Git-Protocol header is passed on, so every client speaks protocol v0: v2's
        # upload-pack gives any object asked for by id, even one only hidden refs reach
        # (containers' commits, the build cache), where v0 gives what is advertised.
        if self.headers.get("Content-Encoding"):
            env["HTTP_CONTENT_ENCODING"] = self.headers["Content-Encoding"]
        env.update(options.env)
        if service == "git-receive-pack":
            env["REMOTE_USER"] = "lg"  # git-http-backend refuses anonymous pushes by default
            if options.around_push is not None and self.command == "POST":
                with options.around_push():  # type: ignore[attr-defined]
                    self._run(env, length, chunked, service)
                return
        self._run(env, length, chunked, service)

    def _run(self, env: dict[str, str], length: str | None, chunked: bool, service: str) -> None:
        proc = subprocess.Popen([self.server.exe], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        self.server.children.add(proc)
        try:
            limit = None if service == "git-receive-pack" else REQUEST_MAX
            feeder = threading.Thread(target=self._feed, args=(proc, length, chunked, limit), daemon=True)
            feeder.start()
            self._respond(proc)
            feeder.join()
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            self.server.children.discard(proc)

    def _feed(self, proc: subprocess.Popen, length: str | None, chunked: bool, limit: int | None) -> None:
        """The request body into the backend's stdin, as it arrives: by Content-Length, or
        chunk by chunk (git's client sends big requests chunked), at most ``limit`` bytes."""
        assert proc.stdin is not None
        sent = 0
        try:
            with proc.stdin:
                for piece in self._body(length, chunked):
                    sent += len(piece)
                    if limit is not None and sent > limit:
                        proc.kill()
                        return
                    proc.stdin.write(piece)
        except (OSError, ValueError):
            proc.kill()  # the client went away or sent garbage: the backend stops too

    def _body(self, length: str | None, chunked: bool):
        """The request body in pieces: Content-Length bytes, or HTTP/1.1 chunks decoded.
        A body cut short raises ValueError, so the backend is killed, not fed half."""
        if length is not None:
            yield from self._exactly(int(length))
            return
        while chunked:
            size = int(self.rfile.readline(100).split(b";")[0].strip() or b"0", 16)
            yield from self._exactly(size)
            self.rfile.readline(100)  # the CRLF after a chunk (or the end of the trailer)
            chunked = size > 0

    def _exactly(self, size: int):
        while size > 0:
            piece = self.rfile.read(min(size, _CHUNK))
            if not piece:
                raise ValueError("request body cut short")
            size -= len(piece)
            yield piece

    def _respond(self, proc: subprocess.Popen) -> None:
        assert proc.stdout is not None
        status, headers, read = 200, [], 0
        while True:
            line = proc.stdout.readline(_HEADER_MAX)
            read += len(line)
            if not line or read > _HEADER_MAX:
                self.send_error(502, "git-http-backend said nothing")
                return
            line = line.rstrip(b"\r\n")
            if not line:
                break
            name, _, value = line.decode("latin-1").partition(":")
            if name.lower() == "status":
                status = int(value.split()[0])
            else:
                headers.append((name, value.strip()))
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        shutil.copyfileobj(proc.stdout, self.wfile, _CHUNK)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = MAX_CLIENTS  # the listen backlog: socketserver's 5 drops a burst's SYNs

    def __init__(self, options: ServeOptions):
        self.options = options
        self.exe = backend()
        self.children: set[subprocess.Popen] = set()
        self.slots = threading.BoundedSemaphore(MAX_CLIENTS)
        import socket

        if ":" in options.host:
            self.address_family = socket.AF_INET6
        try:
            super().__init__((options.host, options.port), _Handler)
        except OSError as exc:
            raise LgError(f"cannot listen on {options.host}:{options.port}: {exc.strerror}") from None


    def process_request(self, request, client_address) -> None:
        """A thread per connection, at most MAX_CLIENTS of them: one more is told 503 and
        closed at once, so that a flood of connections cannot take every thread and fd."""
        if not self.slots.acquire(blocking=False):
            try:
                request.settimeout(1.0)
                request.sendall(b"HTTP/1.0 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")
            except OSError:
                pass
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()

    def handle_error(self, request, client_address) -> None:
        """A client that went away or timed out: one line in the log, not a traceback."""
        import sys

        exc = sys.exc_info()[1]
        self.options.log(printable(f"{client_address[0]} dropped: {type(exc).__name__}: {exc}"))


def serve(options: ServeOptions, ready: Callable[[str], None]) -> None:
    """Serve until interrupted (Ctrl-C, or SIGTERM raised as an exception by the CLI);
    backends still running are killed on the way out."""
    server = _Server(options)
    host, port = server.server_address[:2]
    shown = str(host)
    ready(f"http://{f'[{shown}]' if ':' in shown else shown}:{port}/")
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        for proc in list(server.children):
            proc.kill()
