"""A small forwarding HTTP proxy on 127.0.0.1 for tests: CONNECT tunnels and absolute-URI forwarding.

``CONNECT host:port`` opens a TCP tunnel (what clients do for ``https://`` URLs);
``POST http://host:port/path`` (any method) is forwarded to the target and the answer
relayed back, on a keep-alive client connection. With ``credentials`` every request
must carry ``Proxy-Authorization: Basic ...`` for them, or it is answered 407. Only
loopback targets are allowed (403 otherwise). The proxy counts what it did in
:attr:`ProxyServer.forwarded`, :attr:`ProxyServer.tunnels` and
:attr:`ProxyServer.rejected`, and records every ``Proxy-Authorization`` it saw.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import selectors
import socket
import socketserver
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler
from typing import Any, cast

__all__ = ["ProxyServer"]

#: Headers that concern one hop only and are not forwarded.
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
_LOOPBACK = frozenset({"127.0.0.1", "localhost"})


class _Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True
    proxy: ProxyServer

    def process_request(self, request: Any, client_address: Any) -> None:
        self.proxy._opened(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        self.proxy._closed(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client or target going away mid-request is normal here


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Unbuffered reads: after CONNECT, no byte of the tunnelled stream may sit in a buffer.
    rbufsize = 0
    timeout = 30
    disable_nagle_algorithm = True

    @property
    def _proxy(self) -> ProxyServer:
        return cast(_Server, self.server).proxy

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet."""

    def _authorized(self) -> bool:
        seen = self.headers.get("Proxy-Authorization")
        proxy = self._proxy
        proxy._saw_auth(seen)
        if proxy.credentials is None:
            return True
        user, password = proxy.credentials
        expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        if seen == expected:
            return True
        proxy._count("rejected")
        self._reply(407, b"proxy authentication required", {"Proxy-Authenticate": 'Basic realm="test"'})
        return False

    def _reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response_only(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def do_CONNECT(self) -> None:
        """Open a tunnel to ``host:port`` and copy bytes both ways until one side closes."""
        self.close_connection = True  # after the tunnel, this connection is done
        if not self._authorized():
            return
        host, _, port = self.path.rpartition(":")
        if host not in _LOOPBACK or not port.isdigit():
            self._reply(403, b"only loopback targets")
            return
        try:
            upstream = socket.create_connection((host, int(port)), timeout=self.timeout)
        except OSError:
            self._reply(502, b"cannot reach the target")
            return
        with upstream:
            self._proxy._count("tunnels", self.path)
            self.send_response_only(200, "Connection established")
            self.end_headers()
            self.wfile.flush()
            self._pipe(self.connection, upstream)

    def _pipe(self, client: socket.socket, upstream: socket.socket) -> None:
        self._proxy._opened(upstream)
        try:
            with selectors.DefaultSelector() as selector:
                selector.register(client, selectors.EVENT_READ, upstream)
                selector.register(upstream, selectors.EVENT_READ, client)
                while True:
                    for key, _ in selector.select():
                        source = cast(socket.socket, key.fileobj)
                        target = cast(socket.socket, key.data)
                        try:
                            data = source.recv(65536)
                            if not data:
                                return
                            target.sendall(data)
                        except OSError:
                            return
        finally:
            self._proxy._closed(upstream)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return self._read_chunked()
        remaining = int(self.headers.get("Content-Length") or 0)
        chunks = []
        while remaining > 0:
            chunk = self.rfile.read(remaining)  # unbuffered: may return less
            if not chunk:
                raise ConnectionError("client closed mid-body")
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)

    def _read_chunked(self) -> bytes:
        chunks = []
        while True:
            size = int(self.rfile.readline(1024).split(b";")[0], 16)
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b""):  # trailers, up to the empty line
                    pass
                return b"".join(chunks)
            chunk = self._read_exactly(size)
            self._read_exactly(2)  # CRLF
            chunks.append(chunk)

    def _read_exactly(self, size: int) -> bytes:
        chunks = []
        while size > 0:
            chunk = self.rfile.read(size)
            if not chunk:
                raise ConnectionError("client closed mid-body")
            chunks.append(chunk)
            size -= len(chunk)
        return b"".join(chunks)

    def _forward(self) -> None:
        """Forward an absolute-URI request to its target and relay the answer."""
        body = self._read_body()  # read first: a 407 must leave the connection usable
        if not self._authorized():
            return
        url = urllib.parse.urlsplit(self.path)
        if url.scheme != "http" or url.hostname not in _LOOPBACK:
            self._reply(403, b"only absolute http:// URLs to loopback targets")
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
        path = urllib.parse.urlunsplit(("", "", url.path or "/", url.query, ""))
        self._proxy._count("forwarded", f"{self.command} {self.path}")
        upstream = http.client.HTTPConnection(url.hostname, url.port or 80, timeout=self.timeout)
        try:
            upstream.request(self.command, path, body=body or None, headers=headers)
            response = upstream.getresponse()
            data = response.read()
            answer = {k: v for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP | {"content-length"}}
            status = response.status
        except OSError:
            self._reply(502, b"the target did not answer")
            return
        finally:
            upstream.close()
        self._reply(status, data, answer)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _forward


class ProxyServer:
    """A forwarding proxy on a free port of 127.0.0.1; use it as a context manager.

    ``credentials=(user, password)`` makes it demand ``Proxy-Authorization: Basic``.
    """

    def __init__(self, credentials: tuple[str, str] | None = None) -> None:
        self.credentials = credentials
        self._lock = threading.Lock()
        self._forwarded: list[str] = []
        self._tunnels: list[str] = []
        self._rejected = 0
        self._auth_seen: list[str | None] = []
        self._sockets: set[socket.socket] = set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> ProxyServer:
        """Bind a free port on 127.0.0.1 and serve on a daemon thread."""
        server = _Server(("127.0.0.1", 0), _Handler)
        server.proxy = self
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and cut the open connections and tunnels."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.shutdown()
        server.server_close()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        thread.join()
        self._server = self._thread = None

    def __enter__(self) -> ProxyServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The port the proxy listens on."""
        assert self._server is not None, "start the proxy first"
        return int(self._server.server_address[1])

    def url(self, user: str | None = None, password: str | None = None) -> str:
        """``http://127.0.0.1:PORT``, with ``user:password@`` when given."""
        auth = f"{user}:{password}@" if user is not None else ""
        return f"http://{auth}127.0.0.1:{self.port}"

    @property
    def forwarded(self) -> list[str]:
        """``"METHOD absolute-URL"`` of every plain-HTTP request forwarded."""
        with self._lock:
            return list(self._forwarded)

    @property
    def tunnels(self) -> list[str]:
        """``host:port`` of every CONNECT tunnel opened."""
        with self._lock:
            return list(self._tunnels)

    @property
    def rejected(self) -> int:
        """How many requests were answered 407."""
        with self._lock:
            return self._rejected

    @property
    def auth_seen(self) -> list[str | None]:
        """The ``Proxy-Authorization`` header of every request (None when absent), in order."""
        with self._lock:
            return list(self._auth_seen)

    @property
    def requests(self) -> int:
        """How many requests (CONNECT or forwarded, accepted or not) the proxy handled."""
        with self._lock:
            return len(self._auth_seen)

    def _count(self, what: str, detail: str = "") -> None:
        with self._lock:
            if what == "rejected":
                self._rejected += 1
            elif what == "tunnels":
                self._tunnels.append(detail)
            else:
                self._forwarded.append(detail)

    def _saw_auth(self, value: str | None) -> None:
        with self._lock:
            self._auth_seen.append(value)

    def _opened(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.add(sock)

    def _closed(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(sock)
