"""A small TCP proxy for fault tests: put it in front of PostgreSQL or Redis, cut it, restore it.

`cut()` drops every open connection and refuses new ones (they are accepted and closed at
once, as a server that went away would); `stall()` keeps every connection open but passes
nothing on, as a server that hangs would; `restore()` lets connections through again. The
app only ever knows the proxy's address, so what it sees is a real outage of the service.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit


class TcpProxy:
    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._down = False
        self._stalled = False
        self._closed = False
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.start()

    def url_for(self, url: str) -> str:
        """Return `url` (postgresql://…, redis://…) pointed at this proxy instead."""
        parts = urlsplit(url)
        credentials = parts.netloc.rpartition("@")[0]
        netloc = (credentials + "@" if credentials else "") + f"127.0.0.1:{self.port}"
        return urlunsplit(parts._replace(netloc=netloc))

    def cut(self) -> None:
        """Drop every connection and refuse new ones until `restore()`."""
        with self._lock:
            self._down = True
            doomed, self._sockets = self._sockets, set()
        for sock in doomed:
            _close(sock)

    def stall(self) -> None:
        """Keep connections open but pass nothing on (either way) until `restore()`."""
        with self._lock:
            self._stalled = True

    def restore(self) -> None:
        with self._lock:
            self._down = False
            self._stalled = False

    def close(self) -> None:
        self._closed = True
        self.cut()
        _close(self._listener)
        self._thread.join(timeout=5)

    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                down = self._down
            if down:
                _close(client)
                continue
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                _close(client)
                continue
            server.settimeout(None)
            with self._lock:
                self._sockets.update((client, server))
            for source, target in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                if not self._stalled:  # a hung server: the bytes go nowhere
                    target.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                _close(sock)
            with self._lock:
                self._sockets.difference_update((source, target))


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()


@contextlib.contextmanager
def proxy_for(url: str) -> Iterator[TcpProxy]:
    """Start a proxy in front of the host and port `url` names; close it on leaving."""
    parts = urlsplit(url)
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or _DEFAULT_PORTS[parts.scheme])
    try:
        yield proxy
    finally:
        proxy.close()


_DEFAULT_PORTS = {"postgresql": 5432, "postgresql+psycopg": 5432, "redis": 6379}
