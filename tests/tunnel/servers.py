"""Real servers on 127.0.0.1 for the tunnel tests, in this process.

* :func:`werkzeug_server`: a WSGI app under Werkzeug's threaded server (it takes chunked bodies);
* :func:`uvicorn_server`: an ASGI app under uvicorn, on a thread of its own;
* :class:`CountingServer`: a TCP server that only counts the connections it gets (and answers 200), to prove
  that the tunnel contacted no one;
* :class:`SilentServer`: accepts connections and never answers;
* :func:`closed_port`: a port nobody listens on.
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

WAIT = 10.0


def wait_until(condition: Callable[[], object], timeout: float = WAIT, message: str = "condition") -> None:
    """Wait (a few ms at a time) until ``condition()`` is true; AssertionError after ``timeout``."""
    deadline = time.monotonic() + timeout
    event = threading.Event()
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {message}")
        event.wait(0.005)


@contextlib.contextmanager
def werkzeug_server(app: Any) -> Iterator[str]:
    """``app`` (WSGI) served by Werkzeug's threaded server; yields its URL."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(WAIT)


@contextlib.contextmanager
def uvicorn_server(app: Any) -> Iterator[str]:
    """``app`` (ASGI) served by uvicorn on a thread, with the lifespan protocol; yields its URL."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    # proxy_headers off: uvicorn would otherwise take the client from X-Forwarded-For itself (it trusts 127.0.0.1).
    config = uvicorn.Config(app, lifespan="on", log_level="warning", access_log=False, proxy_headers=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started or not thread.is_alive(), message="uvicorn to start")
        assert server.started, "uvicorn did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(WAIT)
        sock.close()


class _CountingHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        server: Any = self.server
        with server.lock:
            server.connections += 1
        with contextlib.suppress(OSError):
            self.request.settimeout(2)
            self.request.recv(65536)
            self.request.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")


class CountingServer:
    """Counts the TCP connections it accepts (:attr:`connections`); answers each with a 200."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._server = socketserver.ThreadingTCPServer((host, port), _CountingHandler, bind_and_activate=False)
        self._server.daemon_threads = True
        self._server.allow_reuse_address = True
        self._server.server_bind()
        self._server.server_activate()
        server: Any = self._server
        server.lock = threading.Lock()
        server.connections = 0
        self.host = host
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05})
        self._thread.daemon = True
        self._thread.start()

    @property
    def connections(self) -> int:
        """How many connections were accepted so far."""
        server: Any = self._server
        with server.lock:
            return int(server.connections)

    def dsn(self, project_id: str = "1", public_key: str = "public") -> str:
        """A DSN naming this server."""
        return f"http://{public_key}@{self.host}:{self.port}/{project_id}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(WAIT)


class SilentServer:
    """Listens (the kernel completes connections) and never accepts or answers: every read times out."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self.port: int = self._sock.getsockname()[1]

    def dsn(self, project_id: str = "1") -> str:
        return f"http://public@127.0.0.1:{self.port}/{project_id}"

    def close(self) -> None:
        self._sock.close()


def closed_port() -> int:
    """A port that was free a moment ago and has no listener."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def raw_request(url: str, data: bytes, timeout: float = WAIT) -> tuple[int, dict[str, str], bytes]:
    """Send ``data`` (a whole HTTP request, hand-written) to ``url``'s host; the status, headers and body.

    For requests urllib3 refuses to make (bad framing, CR/LF in values).
    """
    netloc = url.split("://", 1)[1].partition("/")[0]
    host, _, port = netloc.partition(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(data)
        received = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
            head, sep, body = received.partition(b"\r\n\r\n")
            if sep:
                lines = head.decode("latin-1").split("\r\n")
                headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
                length = headers.get("content-length")
                if length is not None and len(body) >= int(length):
                    return int(lines[0].split()[1]), headers, body[: int(length)]
    head, _, body = received.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    if not lines or not lines[0].startswith("HTTP/"):
        raise ConnectionError(f"no HTTP answer: {received[:200]!r}")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def post(
    url: str, body: bytes, headers: dict[str, str] | None = None, *, chunked: bool = False, piece: int = 1000
) -> Any:
    """POST ``body`` to ``url`` with urllib3, as one block or (``chunked``) as a chunked stream of ``piece`` bytes."""
    import urllib3

    manager = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=WAIT, read=WAIT))
    try:
        if chunked:
            pieces = (body[i : i + piece] for i in range(0, len(body), piece))
            return manager.urlopen("POST", url, body=pieces, headers=headers, chunked=True)
        return manager.request("POST", url, body=body, headers=headers)
    finally:
        manager.clear()
