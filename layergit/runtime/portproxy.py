"""Published ports: a userland proxy inside the monitor's event loop.

``-p [IP:]HOST:CTR[/tcp|/udp]`` binds HOST on the host (all addresses, or IP) and
relays to the container's address. One event loop serves every port of every
container, so publishing costs no process. Being on the host side, it answers on
127.0.0.1 as well as the host's addresses, and to other containers through the
host's address; a port bound to 127.0.0.1 is never reachable from another network
namespace.
"""

from __future__ import annotations

import errno
import selectors
import socket
from dataclasses import dataclass

from ..errors import Conflict

_CHUNK = 65536
_CONNECT_TIMEOUT = 1.0


@dataclass(frozen=True)
class Port:
    host_ip: str  # "" for every address
    host_port: int  # 0: any free port
    container_port: int
    proto: str = "tcp"


class _Pipe:
    """One TCP connection: client <-> container, relayed both ways."""

    def __init__(self, sel: selectors.BaseSelector, client: socket.socket, upstream: socket.socket):
        self.sel = sel
        self.ends = {client.fileno(): (client, upstream), upstream.fileno(): (upstream, client)}
        self.pending: dict[int, bytes] = {}
        self.closed = False
        for sock in (client, upstream):
            sock.setblocking(False)
            sel.register(sock, selectors.EVENT_READ, self.on_event)

    def on_event(self, key, mask) -> None:
        if self.closed or key.fd not in self.ends:
            return  # the other end closed the pipe earlier in this round of events
        src, dst = self.ends[key.fd]
        if mask & selectors.EVENT_WRITE:
            self._flush(src)
            if not mask & selectors.EVENT_READ:
                return
        try:
            data = src.recv(_CHUNK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self.close()
            return
        self._send(dst, data)

    def _send(self, dst: socket.socket, data: bytes) -> None:
        try:
            sent = dst.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            self.close()
            return
        if sent < len(data):
            self.pending[dst.fileno()] = data[sent:]
            self.sel.modify(dst, selectors.EVENT_READ | selectors.EVENT_WRITE, self.on_event)

    def _flush(self, sock: socket.socket) -> None:
        data = self.pending.pop(sock.fileno(), b"")
        if data:
            self.sel.modify(sock, selectors.EVENT_READ, self.on_event)
            self._send(sock, data)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for sock, _ in self.ends.values():
            try:
                self.sel.unregister(sock)
            except (KeyError, ValueError):
                pass
            sock.close()


class PortProxy:
    def __init__(self, sel: selectors.BaseSelector):
        self.sel = sel
        self.listeners: dict[str, list[socket.socket]] = {}  # container id -> sockets
        self.udp_peers: dict[int, dict] = {}

    def publish(self, container_id: str, ports: list[Port], target_ip: str) -> list[dict]:
        """Bind every port (all or nothing); returns Docker-style port descriptions."""
        bound, out = [], []
        try:
            for p in ports:
                family = socket.AF_INET
                sock = socket.socket(family, socket.SOCK_STREAM if p.proto == "tcp" else socket.SOCK_DGRAM)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    sock.bind((p.host_ip or "0.0.0.0", p.host_port))
                except OSError as exc:
                    sock.close()
                    if exc.errno == errno.EADDRINUSE:
                        raise Conflict(f"port {p.host_ip or '0.0.0.0'}:{p.host_port}/{p.proto} is already in use") from None
                    raise Conflict(f"cannot bind {p.host_ip or '0.0.0.0'}:{p.host_port}/{p.proto}: {exc.strerror}") from None
                bound.append(sock)
                sock.setblocking(False)
                target = (target_ip, p.container_port)
                if p.proto == "tcp":
                    sock.listen(128)
                    self.sel.register(sock, selectors.EVENT_READ, lambda key, mask, t=target: self._accept(key.fileobj, t))
                else:
                    self.udp_peers[sock.fileno()] = {}
                    self.sel.register(sock, selectors.EVENT_READ, lambda key, mask, t=target: self._datagram(key.fileobj, t))
                out.append({"HostIp": p.host_ip or "0.0.0.0", "HostPort": str(sock.getsockname()[1]), "ContainerPort": f"{p.container_port}/{p.proto}"})
        except BaseException:
            for sock in bound:
                self._close(sock)
            raise
        self.listeners[container_id] = bound
        return out

    def unpublish(self, container_id: str) -> None:
        for sock in self.listeners.pop(container_id, []):
            self._close(sock)

    def _close(self, sock: socket.socket) -> None:
        for peer in self.udp_peers.pop(sock.fileno(), {}).values():
            self.sel.unregister(peer)
            peer.close()
        try:
            self.sel.unregister(sock)
        except (KeyError, ValueError):
            pass
        sock.close()

    def _accept(self, listener: socket.socket, target) -> None:
        try:
            client, _ = listener.accept()
        except OSError:  # EAGAIN, ECONNABORTED, EMFILE: nothing to relay this time
            return
        # The container is on a local bridge: connecting takes microseconds (or fails at
        # once), and doing it here saves a round of the event loop per connection.
        upstream = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        upstream.settimeout(_CONNECT_TIMEOUT)
        try:
            upstream.connect(target)  # an address, never a name: no resolver call per connection
        except OSError:
            upstream.close()
            client.close()
            return
        _Pipe(self.sel, client, upstream)

    def _datagram(self, listener: socket.socket, target) -> None:
        try:
            data, client = listener.recvfrom(_CHUNK)
        except (BlockingIOError, InterruptedError):
            return
        peers = self.udp_peers.setdefault(listener.fileno(), {})
        peer = peers.get(client)
        if peer is None:
            peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            peer.setblocking(False)
            peer.connect(target)
            peers[client] = peer
            self.sel.register(peer, selectors.EVENT_READ, lambda key, mask, c=client: self._reply(key.fileobj, listener, c))
        try:
            peer.send(data)
        except OSError:
            pass

    def _reply(self, peer: socket.socket, listener: socket.socket, client) -> None:
        try:
            data = peer.recv(_CHUNK)
            listener.sendto(data, client)
        except OSError:
            pass
