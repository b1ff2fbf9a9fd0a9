"""Published ports: the host-side listeners, and a userland relay for loopback.

``-p [IP:]HOST:CTR[/tcp|/udp]`` binds HOST on the host (all addresses, or IP). The
kernel serves what arrives for the host's non-loopback addresses (DNAT, see
firewall.py); loopback cannot be DNATed without route_localnet, which would make
127.0.0.1-bound ports reachable from other network namespaces, so connections to
127.0.0.1 reach the listener and are relayed here, as Docker's userland proxy does,
unless the root's socket redirect (sockredirect.py) already sent the host's own
connect() straight to the container: then the relay serves only what that hook
does not cover, such as a kernel that refused to load it.
The listener is bound either way, so the port stays reserved on the host and a
port in use fails the container's start with one clear line.

One event loop serves every port of every container, so publishing costs no
process. The relay keeps an epoll set of its own, seen by the monitor's selector as
a single descriptor: raw epoll dispatches an event with a dict lookup and a call,
where selectors builds key objects per registration and per event. Every socket
is non-blocking, including the connect to the container, so a container that does
not answer stalls only its own clients.
"""

from __future__ import annotations

import errno
import select
import selectors
import socket
import sys
import time
from typing import Callable

from ...errors import Conflict
from ..rootless import netstack
from . import PublishedPort

_CHUNK = 65536
_MAX_EVENTS = 256
_ACCEPTS_PER_EVENT = 64  # then let the other ports have a turn
_SYN_RETRIES = 2  # an unresponsive container fails its client after ~7 s, not the kernel's ~2 min
_UDP_IDLE = 90.0  # seconds before a UDP client's relay socket goes (Docker's figure)
_IN, _OUT, _ERR, _HUP = select.EPOLLIN, select.EPOLLOUT, select.EPOLLERR, select.EPOLLHUP
_Handler = Callable[[int, int], None]  # called with an fd and its epoll events


class _End:
    """One socket of a relayed connection, and what still has to be written to it."""

    __slots__ = ("sock", "fd", "peer", "out", "reading", "eof_sent", "mask")
    peer: _End  # the other socket of the pipe: set by _Pipe as soon as both ends exist

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.fd = sock.fileno()
        self.out = b""  # bytes the peer sent that this socket has not taken yet
        self.reading = True  # until this socket's sender closes its side
        self.eof_sent = False  # we shut down writing to this socket
        self.mask = 0


class _Pipe:
    """A TCP connection relayed both ways, half-closes included (a client may shut
    down its side and still read the answer), with backpressure: while one side
    cannot take more, the other is not read, so nothing is buffered beyond one chunk
    and nothing is ever reordered or dropped."""

    __slots__ = ("proxy", "client", "upstream", "closed")

    def __init__(self, proxy: PortProxy, client: socket.socket, upstream: socket.socket):
        self.proxy = proxy
        self.client, self.upstream = _End(client), _End(upstream)
        self.client.peer, self.upstream.peer = self.upstream, self.client
        self.closed = False

    def connecting(self) -> None:
        self.upstream.mask = _OUT
        self.proxy.watch(self.upstream.fd, _OUT, self.on_connected)

    def on_connected(self, fd: int, events: int) -> None:
        err = self.upstream.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            self.close()
        elif events & _OUT:
            self.relaying(registered=True)

    def relaying(self, registered: bool = False) -> None:
        up, client = self.upstream, self.client
        up.mask = client.mask = _IN
        if registered:
            self.proxy.rewatch(up.fd, _IN, self.on_event)
        else:
            self.proxy.watch(up.fd, _IN, self.on_event)
        self.proxy.watch(client.fd, _IN, self.on_event)

    def on_event(self, fd: int, events: int) -> None:
        if events & _ERR:  # a reset or unreachable peer: nothing more can pass either way
            self.close()
            return
        end = self.client if fd == self.client.fd else self.upstream
        if events & _OUT and end.out:
            self._flush(end)
        if not self.closed and events & (_IN | _HUP) and end.reading and not end.peer.out:
            self._read(end)

    def _read(self, src: _End) -> None:
        proxy, dst = self.proxy, src.peer
        try:
            n = src.sock.recv_into(proxy.buf)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:  # reset: the other side learns by its connection closing
            self.close()
            return
        if n == 0:
            src.reading = False
            if not dst.out:
                self._shutdown(dst)
            self._update(src)
            return
        try:
            sent = dst.sock.send(proxy.view[:n])
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            self.close()
            return
        if sent < n:
            dst.out = bytes(proxy.view[sent:n])  # the rare copy: dst is full
            self._update(dst)
            self._update(src)

    def _flush(self, dst: _End) -> None:
        try:
            sent = dst.sock.send(dst.out)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.close()
            return
        dst.out = dst.out[sent:]
        if not dst.out:
            if not dst.peer.reading:
                self._shutdown(dst)
            self._update(dst.peer)
        if not self.closed:
            self._update(dst)

    def _shutdown(self, dst: _End) -> None:
        """Pass an end-of-stream on; the pipe is done once both directions are."""
        if dst.eof_sent:
            return
        dst.eof_sent = True
        try:
            dst.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self.close()
            return
        if self.client.eof_sent and self.upstream.eof_sent:
            self.close()

    def _update(self, end: _End) -> None:
        if self.closed:
            return
        mask = (_IN if end.reading and not end.peer.out else 0) | (_OUT if end.out else 0)
        if mask != end.mask:
            end.mask = mask
            self.proxy.rewatch(end.fd, mask, self.on_event)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for end in (self.client, self.upstream):
            self.proxy.forget(end.fd)
            end.sock.close()


class _UdpPort:
    """A published UDP port: one connected socket per client towards the container,
    so answers find their way back; each goes after _UDP_IDLE seconds of silence."""

    def __init__(self, proxy: PortProxy, listener: socket.socket, target: tuple[str, int]):
        self.proxy, self.listener, self.target = proxy, listener, target
        self.peers: dict[tuple, tuple[socket.socket, list]] = {}  # client -> (socket, [last use])
        self.swept = time.monotonic()

    def on_datagram(self, fd: int, events: int) -> None:
        try:
            data, client = self.listener.recvfrom(_CHUNK)
        except OSError:
            return
        now = time.monotonic()
        entry = self.peers.get(client)
        if entry is None:
            peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            peer.setblocking(False)
            peer.connect(self.target)
            entry = self.peers[client] = (peer, [now])
            self.proxy.watch(peer.fileno(), _IN, lambda _fd, _events: self.on_reply(peer, client))
        entry[1][0] = now
        try:
            entry[0].send(data)
        except OSError:
            pass
        if now - self.swept > _UDP_IDLE:
            self.swept = now
            for c, (_peer, used) in list(self.peers.items()):
                if now - used[0] > _UDP_IDLE:
                    self._drop(c)

    def on_reply(self, peer: socket.socket, client) -> None:
        try:
            self.listener.sendto(peer.recv(_CHUNK), client)
        except OSError:
            pass

    def _drop(self, client) -> None:
        peer, _ = self.peers.pop(client)
        self.proxy.forget(peer.fileno())
        peer.close()

    def close(self) -> None:
        for client in list(self.peers):
            self._drop(client)


class PortProxy:
    def __init__(self, sel: selectors.BaseSelector):
        self.listeners: dict[str, list[socket.socket]] = {}  # container id -> sockets
        self._udp: dict[int, _UdpPort] = {}  # listener fd -> its relay
        self.epoll = select.epoll()
        self.handlers: dict[int, _Handler] = {}  # fd -> handler(fd, events)
        self._closed: set[int] = set()  # fds closed during the current batch of events
        self.buf = bytearray(_CHUNK)  # every relay reads into this, then sends it on at once
        self.view = memoryview(self.buf)
        sel.register(self.epoll.fileno(), selectors.EVENT_READ, self.run)

    # -- the event loop's side ---------------------------------------------------------

    def watch(self, fd: int, mask: int, handler: _Handler) -> None:
        self.epoll.register(fd, mask)
        self.handlers[fd] = handler

    def rewatch(self, fd: int, mask: int, handler: _Handler) -> None:
        self.epoll.modify(fd, mask)
        self.handlers[fd] = handler

    def forget(self, fd: int) -> None:
        """Call before closing ``fd``: a later event of this batch for the same number
        belongs to the closed socket, even if a new one got the number meanwhile."""
        if self.handlers.pop(fd, None) is not None:
            self.epoll.unregister(fd)
        self._closed.add(fd)

    def run(self, key=None, mask=None) -> None:
        """One batch of the relay's events (the monitor's selector saw the epoll fd ready)."""
        closed = self._closed
        closed.clear()
        handlers = self.handlers
        for fd, events in self.epoll.poll(0, _MAX_EVENTS):
            if fd in closed:
                continue
            handler = handlers.get(fd)
            if handler is None:
                continue
            try:
                handler(fd, events)
            except Exception as exc:  # noqa: BLE001 - one broken connection must not stop the others
                print(f"monitor: port proxy: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)

    # -- publishing --------------------------------------------------------------------

    def publish(self, container_id: str, ports: list[PublishedPort], target_ip: str) -> list[PublishedPort]:
        """Bind every port (all or nothing); returns them with the host ports they got."""
        bound, out = [], []
        try:
            for p in ports:
                kind = socket.SOCK_STREAM if p.proto == "tcp" else socket.SOCK_DGRAM
                sock = netstack.host_socket(socket.AF_INET, kind)  # the host's, also without root
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    sock.bind((p.bind_ip, p.host_port))
                except OSError as exc:
                    sock.close()
                    where = f"{p.bind_ip}:{p.host_port}/{p.proto}"
                    if exc.errno == errno.EADDRINUSE:
                        raise Conflict(f"port {where} is already in use") from None
                    raise Conflict(f"cannot bind {where}: {exc.strerror}") from None
                bound.append(sock)
                sock.setblocking(False)
                target = (target_ip, p.container_port)
                if p.proto == "tcp":
                    sock.listen(512)
                    self.watch(sock.fileno(), _IN, self._acceptor(sock, target))
                else:
                    udp = self._udp[sock.fileno()] = _UdpPort(self, sock, target)
                    self.watch(sock.fileno(), _IN, udp.on_datagram)
                out.append(p._replace(host_port=sock.getsockname()[1]))
        except BaseException:
            for sock in bound:
                self._close(sock)
            raise
        self.listeners[container_id] = bound
        return out

    def unpublish(self, container_id: str) -> None:
        """Stop serving a container's ports. Relayed connections already open stay
        until either side closes them (the container's going closes them)."""
        for sock in self.listeners.pop(container_id, []):
            self._close(sock)

    def _close(self, sock: socket.socket) -> None:
        udp = self._udp.pop(sock.fileno(), None)
        if udp is not None:
            udp.close()
        self.forget(sock.fileno())
        sock.close()

    def _acceptor(self, listener: socket.socket, target: tuple[str, int]) -> _Handler:
        """The handler of a TCP listener's events: its connections are relayed to ``target``."""
        return lambda _fd, _events: self._accept(listener, target)

    def _accept(self, listener: socket.socket, target: tuple[str, int]) -> None:
        for _ in range(_ACCEPTS_PER_EVENT):
            try:
                client, _ = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # ECONNABORTED, EMFILE, ENOBUFS: this one is lost, the rest wait
                return
            self._relay(client, target)

    def _relay(self, client: socket.socket, target: tuple[str, int]) -> None:
        upstream = socket.socket(socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
        client.setblocking(False)
        for sock in (client, upstream):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_SYNCNT, _SYN_RETRIES)
        pipe = _Pipe(self, client, upstream)
        err = upstream.connect_ex(target)  # an address, never a name: no resolver call
        if err == 0:
            pipe.relaying()
        elif err in (errno.EINPROGRESS, errno.EAGAIN):
            pipe.connecting()
        else:
            client.close()
            upstream.close()
