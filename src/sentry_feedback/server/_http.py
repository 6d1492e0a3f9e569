"""HTTP/1.1 plumbing for the feedback server: a threaded server and a base request handler.

The handler frames request bodies strictly (RFC 9112): ``Content-Length`` is digits only and
single-valued, ``Transfer-Encoding`` may only be ``chunked`` and never comes with
``Content-Length``, chunk sizes are hex digits; anything else is answered 400 (501 for an
unknown transfer coding) and the connection closed. The bytes that request bodies hold
(as read and as decoded) come from a :class:`MemoryBudget` shared by all connections: past
it a request is answered 503 with ``Retry-After``. Stdlib only.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import re
import socket
import socketserver
import ssl
import sys
import threading
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast

__all__ = ["Answer", "AppHandler", "BaseHandler", "Headers", "MemoryBudget", "Reject", "Server", "Server6"]

logger = logging.getLogger("sentry_feedback.server")

#: Connections waiting to be accepted (the stdlib's 5 refuses bursts of clients).
LISTEN_BACKLOG = 128
#: Connections served at once (a thread each); more wait in the listen backlog until one closes.
MAX_CONNECTIONS = 256
#: A request holding at most this many body bytes may use the share of the budget kept for
#: small requests.
SMALL_REQUEST = 256 * 1024
_MAX_CHUNK_LINE = 4096
_MAX_TRAILERS = 32
#: Content-Length and chunk sizes as RFC 9112 writes them: digits only (no sign, no "_", no spaces).
_DIGITS = re.compile(r"[0-9]{1,18}")
_HEX_DIGITS = re.compile(rb"[0-9A-Fa-f]{1,15}")


class Headers(Mapping[str, str]):
    """Read-only request headers: original case kept, looked up case-insensitively."""

    __slots__ = ("_items", "_lower")

    def __init__(self, items: Iterable[tuple[str, str]]) -> None:
        self._items: dict[str, str] = {}
        self._lower: dict[str, str] = {}
        for name, value in items:
            key = self._lower.setdefault(name.lower(), name)
            self._items[key] = f"{self._items[key]}, {value}" if key in self._items else value

    def __getitem__(self, name: str) -> str:
        return self._items[self._lower[name.lower()]]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return repr(self._items)


@dataclass(frozen=True)
class Answer:
    """An HTTP answer: status, body, headers, and ``Set-Cookie`` values (one header each)."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    cookies: tuple[str, ...] = ()

    @classmethod
    def json(cls, status: int, value: Any, headers: dict[str, str] | None = None) -> Answer:
        return cls(status, json.dumps(value).encode(), {"Content-Type": "application/json", **(headers or {})})

    @classmethod
    def error(cls, status: int, detail: str, headers: dict[str, str] | None = None) -> Answer:
        return cls.json(status, {"detail": detail}, headers)


class Reject(Exception):
    """Raised inside the handler to answer at once with ``answer``."""

    def __init__(self, answer: Answer, *, close: bool = False) -> None:
        super().__init__(answer.status)
        self.answer = answer
        self.close = close


class MemoryBudget:
    """Bytes that the bodies of all requests in progress may hold together.

    An eighth of it is kept for small requests (at most :data:`SMALL_REQUEST` bytes held):
    a flood of large or compressed bodies leaves room for ordinary envelopes.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._left = capacity
        self._small_share = capacity // 8
        self._lock = threading.Lock()
        #: The most bytes held at once so far.
        self.peak = 0

    def take(self, amount: int, *, small: bool = False) -> bool:
        """Reserve ``amount`` bytes; ``False`` (nothing reserved) when they are not there."""
        with self._lock:
            if amount > self._left - (0 if small else self._small_share):
                return False
            self._left -= amount
            self.peak = max(self.peak, self.capacity - self._left)
            return True

    def reserve(self, amount: int, *, held: int) -> None:
        """Take ``amount`` bytes for a request holding ``held`` already; :class:`Reject` (503) when not there."""
        if not self.take(amount, small=held + amount <= SMALL_REQUEST):
            answer = Answer.error(503, "the server is busy receiving other data; retry later", {"Retry-After": "1"})
            raise Reject(answer, close=True)

    def give(self, amount: int) -> None:
        """Return bytes reserved with :meth:`take`."""
        with self._lock:
            self._left += amount

    @property
    def in_use(self) -> int:
        """Bytes reserved right now."""
        with self._lock:
            return self.capacity - self._left


class Server(ThreadingHTTPServer):
    """ThreadingHTTPServer that reports connections (so they can be cut on stop) and holds the memory budget."""

    daemon_threads = True
    request_queue_size = LISTEN_BACKLOG
    #: Told of each connection opened and closed (``_connection_opened(sock)``, ``_connection_closed(sock)``).
    receiver: Any
    #: The bytes request bodies may hold together, and the largest body accepted.
    memory: MemoryBudget
    max_body_size: int
    #: The WSGI application :class:`AppHandler` runs (a :class:`~._app.FeedbackApp`).
    app: Any
    #: Connections served at once: each has a thread; the next connection is accepted when one ends.
    max_connections = MAX_CONNECTIONS

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host name (socket.getfqdn), which can stall
        # for seconds without DNS; the name is only used for CGI variables.
        socketserver.TCPServer.server_bind(self)
        self.server_name = str(self.server_address[0])
        self.server_port = int(self.server_address[1])
        self._slots = threading.BoundedSemaphore(self.max_connections)
        self._stopping = threading.Event()

    def process_request(self, request: Any, client_address: Any) -> None:
        """Serve a connection on a thread of its own, once fewer than :attr:`max_connections` are served."""
        while not self._slots.acquire(timeout=0.05):
            if self._stopping.is_set():
                with contextlib.suppress(OSError):
                    request.close()
                return
        self.receiver._connection_opened(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        self.receiver._connection_closed(request)
        try:
            super().shutdown_request(request)
        finally:
            self._slots.release()

    def shutdown(self) -> None:
        """Stop serving (also when every connection slot is taken)."""
        self._stopping.set()
        super().shutdown()

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.debug("error while handling a request from %s", client_address, exc_info=True)

    def serve_tls(self, context: ssl.SSLContext) -> None:
        """Wrap the listening socket: accepted connections speak TLS.

        The handshake is not done by ``accept`` (on the serving thread, where one slow
        client would hold up everyone) but by the handler's thread, in :meth:`BaseHandler.setup`.
        """
        self.socket = context.wrap_socket(self.socket, server_side=True, do_handshake_on_connect=False)


class Server6(Server):
    """:class:`Server` on an IPv6 address."""

    address_family = socket.AF_INET6


class BaseHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 plumbing shared by the server's endpoints: TLS, strict body framing, the memory budget."""

    protocol_version = "HTTP/1.1"
    server_version = "sentry-feedback-receiver"
    timeout = 60
    # Headers and body go out in separate writes; without TCP_NODELAY, Nagle's algorithm
    # and the peer's delayed ACK add ~40 ms to every keep-alive answer.
    disable_nagle_algorithm = True

    def setup(self) -> None:
        """Set the socket timeout and streams; on an HTTPS receiver, do the TLS handshake first."""
        if isinstance(self.request, ssl.SSLSocket):
            # Under the handler's timeout, before any stream is opened; a failure (say, no
            # client certificate) ends up in handle_error and the socket is closed.
            self.request.settimeout(self.timeout)
            self.request.do_handshake()
        super().setup()

    def version_string(self) -> str:
        """The ``Server`` header value."""
        return self.server_version

    def handle_one_request(self) -> None:
        """Handle one request, then give back the memory its body held."""
        self._held = 0
        try:
            super().handle_one_request()
        finally:
            self._release()

    def _release(self) -> None:
        """Give back the body bytes this request holds (before its answer goes out, and at its end)."""
        if self._held:
            cast(Server, self.server).memory.give(self._held)
            self._held = 0

    def _reserve(self, amount: int) -> None:
        """Take ``amount`` body bytes from the receiver's budget; a 503 when the server holds too much."""
        cast(Server, self.server).memory.reserve(amount, held=self._held)
        self._held += amount

    def log_message(self, format: str, *args: Any) -> None:
        """Log to ``sentry_feedback.server`` at DEBUG instead of writing to stderr."""
        logger.debug("%s - " + format, self.address_string(), *args)

    # -- HTTP plumbing -----------------------------------------------------------------

    def _read_body(self) -> bytes:
        """The request body, framed strictly (RFC 9112): anything ambiguous is a 400 and closes the connection."""
        limit = cast(Server, self.server).max_body_size
        transfer_encoding = self.headers.get_all("Transfer-Encoding") or []
        lengths = self.headers.get_all("Content-Length") or []
        if transfer_encoding:
            codings = [c.strip().lower() for value in transfer_encoding for c in value.split(",") if c.strip()]
            if codings != ["chunked"]:
                raise Reject(Answer.error(501, f"unsupported Transfer-Encoding {', '.join(codings)!r}"), close=True)
            if lengths:
                raise Reject(Answer.error(400, "both Transfer-Encoding and Content-Length"), close=True)
            return self._read_chunked(limit)
        if not lengths:
            if self.command in ("POST", "PUT", "PATCH"):
                raise Reject(Answer.error(411, "Content-Length required"), close=True)
            return b""
        values = {value.strip() for value in lengths}
        length_header = values.pop()
        if values or not _DIGITS.fullmatch(length_header):
            shown = ", ".join(lengths)
            raise Reject(Answer.error(400, f"invalid Content-Length {shown!r}"), close=True)
        length = int(length_header)
        if length > limit:
            raise Reject(Answer.error(413, f"body is larger than {limit} bytes"), close=True)
        self._reserve(length)
        data = self.rfile.read(length)
        if len(data) < length:
            raise Reject(Answer.error(400, "body is shorter than its Content-Length"), close=True)
        return data

    def _read_chunked(self, limit: int) -> bytes:
        out = bytearray()
        while True:
            size = _chunk_size(self.rfile.readline(_MAX_CHUNK_LINE))
            if size == 0:
                break
            if len(out) + size > limit:
                raise Reject(Answer.error(413, f"body is larger than {limit} bytes"), close=True)
            self._reserve(2 * size)  # the chunk, and its copy in the body
            chunk = self.rfile.read(size)
            if len(chunk) < size or self.rfile.readline(_MAX_CHUNK_LINE) not in (b"\r\n", b"\n"):
                raise Reject(Answer.error(400, "invalid chunked body: a chunk is not followed by CRLF"), close=True)
            out += chunk
        for _ in range(_MAX_TRAILERS):  # trailers up to the blank line
            line = self.rfile.readline(_MAX_CHUNK_LINE)
            if line in (b"\r\n", b"\n"):
                return bytes(out)
            if not line.endswith(b"\n"):
                break
        raise Reject(Answer.error(400, "invalid chunked body: trailers do not end"), close=True)

    def _answer(self, answer: Answer, *, close: bool = False) -> None:
        self._release()  # the body is done with: the client may send the next request at once
        self.send_response(answer.status)
        body = b"" if answer.status in (204, 304) else answer.body
        for name, value in answer.headers.items():
            if name.lower() != "content-length":
                self.send_header(name, value)
        for cookie in answer.cookies:
            self.send_header("Set-Cookie", cookie)
        length = str(len(body))
        if self.command == "HEAD":  # the length GET would have: the application's, when it gave one
            length = next((v for n, v in answer.headers.items() if n.lower() == "content-length"), length)
        self.send_header("Content-Length", length)
        if close:
            self.send_header("Connection", "close")
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)
        self.wfile.flush()


def _chunk_size(line: bytes) -> int:
    """The size on a chunk-size line (extensions after ``;`` ignored); ``Reject`` when it is not one."""
    if not line.endswith(b"\n"):
        raise Reject(Answer.error(400, "invalid chunked body: chunk-size line too long or cut"), close=True)
    token = line.split(b";", 1)[0].strip(b" \t\r\n")
    if not _HEX_DIGITS.fullmatch(token):
        shown = token[:20].decode("ascii", "replace")
        raise Reject(Answer.error(400, f"invalid chunked body: bad chunk size {shown!r}"), close=True)
    return int(token, 16)


class AppHandler(BaseHandler):
    """Runs the server's WSGI application: the body is framed strictly and bounded here, then handed over."""

    def _run(self) -> None:
        server = cast(Server, self.server)
        headers = Headers(self.headers.items())
        try:
            body = self._read_body()
        except Reject as reject:
            self._answer(server.app.rejected(self.command, self.path, headers, reject.answer), close=reject.close)
            return
        path, _, query = self.path.partition("?")
        if "://" in path:  # an absolute-form target (RFC 9112 3.2.2)
            path = "/" + path.split("://", 1)[1].partition("/")[2]
        environ: dict[str, Any] = {
            "REQUEST_METHOD": self.command,
            "SCRIPT_NAME": "",
            "PATH_INFO": urllib.parse.unquote(path, "latin-1"),
            "QUERY_STRING": query,
            "CONTENT_TYPE": headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "SERVER_NAME": server.server_name,
            "SERVER_PORT": str(server.server_port),
            "SERVER_PROTOCOL": self.request_version,
            "REMOTE_ADDR": str(self.client_address[0]),
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "https" if isinstance(self.request, ssl.SSLSocket) else "http",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
            # Read and budgeted here already: the application does not read or count it again.
            "sentry_feedback.body": body,
            "sentry_feedback.headers": headers,
        }
        for name, value in self.headers.items():
            key = "HTTP_" + name.upper().replace("-", "_")
            if key not in ("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"):
                environ[key] = f"{environ[key]},{value}" if key in environ else value
        started: list[Any] = []

        def start_response(status: str, response_headers: list[tuple[str, str]], exc_info: Any = None) -> None:
            started[:] = [status, response_headers]

        chunks = server.app(environ, start_response)
        try:
            payload = b"".join(chunks)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
        status, response_headers = started
        cookies = tuple(value for name, value in response_headers if name.lower() == "set-cookie")
        plain = {name: value for name, value in response_headers if name.lower() != "set-cookie"}
        answer = Answer(int(status.split(" ", 1)[0]), payload, plain, cookies)
        self._answer(answer, close=answer.headers.get("Connection", "").lower() == "close")

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _run
