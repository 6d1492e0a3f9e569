"""A local HTTP server that speaks Sentry's envelope endpoint, for tests and development.

:class:`LocalReceiver` accepts ``POST /api/<project_id>/envelope/`` like Sentry (auth,
gzip/deflate bodies, envelope validation), stores what it accepts in a
:class:`~sentry_feedback.server.FeedbackStore` and records every envelope request so a
test can look at exactly what an SDK sent, wait for it without sleeping, and script
the answers (rate limits, server errors) with :meth:`LocalReceiver.respond_with`.
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import re
import socket
import socketserver
import ssl
import threading
import urllib.parse
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast

from .._envelope import Envelope
from ..exceptions import EnvelopeParseError
from ._store import FeedbackStore

__all__ = ["DEFAULT_MAX_BODY_SIZE", "LocalReceiver", "ReceivedRequest", "serve"]

logger = logging.getLogger("sentry_feedback.server")

#: Bodies larger than this (compressed or not) are answered with 413: 200 MiB, like Relay.
DEFAULT_MAX_BODY_SIZE = 200 * 1024 * 1024
#: The most items one envelope may hold: the work a single request causes is bounded (Relay
#: bounds it too). More is a 400.
MAX_ENVELOPE_ITEMS = 1000
#: Connections waiting to be accepted (the stdlib's 5 refuses bursts of clients).
LISTEN_BACKLOG = 128
#: Bytes that request bodies (as read, and decoded) may hold at once over all requests of a
#: receiver. A request that would go past it is answered 503 with ``Retry-After``, so a flood
#: of large or compressed bodies cannot exhaust memory. Never less than three times
#: ``max_body_size`` (the raw body, the decoded one and its copy), so that one request of the
#: largest size always fits.
DEFAULT_MEMORY_BUDGET = 3 * DEFAULT_MAX_BODY_SIZE
#: A request holding at most this many body bytes may use the share of the budget kept for
#: small requests.
SMALL_REQUEST = 256 * 1024
#: Compressed bodies are inflated in steps of this many bytes, each taken from the budget.
_INFLATE_STEP = 1024 * 1024
#: How many handled requests a LocalReceiver keeps for :attr:`LocalReceiver.received` by default.
DEFAULT_RECORDED_REQUESTS = 100
#: The most body bytes the kept requests may hold together; the oldest go first past it.
RECORDED_BODY_BUDGET = 64 * 1024 * 1024

_ENVELOPE_PATH = re.compile(r"^/api/(?P<project_id>[^/]+)/envelope/?$")
_GZIP_WBITS = 16 + zlib.MAX_WBITS
_ZLIB_WBITS = zlib.MAX_WBITS
_RAW_DEFLATE_WBITS = -zlib.MAX_WBITS
_MAX_CHUNK_LINE = 4096
_MAX_TRAILERS = 32
#: Content-Length and chunk sizes as RFC 9112 writes them: digits only (no sign, no "_", no spaces).
_DIGITS = re.compile(r"[0-9]{1,18}")
_HEX_DIGITS = re.compile(rb"[0-9A-Fa-f]{1,15}")


class _Headers(Mapping[str, str]):
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
class ReceivedRequest:
    """One envelope request as the receiver saw it.

    ``headers`` is a read-only mapping looked up case-insensitively (``headers["x-sentry-auth"]``).
    ``body`` is the body after gzip/deflate decoding (the raw bytes when decoding failed).
    ``status`` is the status answered; ``envelope`` is the parsed envelope, or None when
    the body did not parse (or was never looked at: 401, 404, 413).
    """

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes = field(repr=False)
    status: int
    envelope: Envelope | None

    @property
    def project_id(self) -> str | None:
        """The project id in the request path, or None when the path is not an envelope URL."""
        match = _ENVELOPE_PATH.match(urllib.parse.urlsplit(self.path).path)
        return match.group("project_id") if match else None


@dataclass(frozen=True)
class _Answer:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, value: Any, headers: dict[str, str] | None = None) -> _Answer:
        return cls(status, json.dumps(value).encode(), {"Content-Type": "application/json", **(headers or {})})

    @classmethod
    def error(cls, status: int, detail: str, headers: dict[str, str] | None = None) -> _Answer:
        return cls.json(status, {"detail": detail}, headers)


class _Reject(Exception):
    """Raised inside the handler to answer at once with ``answer``."""

    def __init__(self, answer: _Answer, *, close: bool = False) -> None:
        super().__init__(answer.status)
        self.answer = answer
        self.close = close


class _Canned:
    """A queued test answer, used ``remaining`` more times (None: until reset)."""

    __slots__ = ("answer", "remaining")

    def __init__(self, answer: _Answer, remaining: int | None) -> None:
        self.answer = answer
        self.remaining = remaining


class _MemoryBudget:
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

    def give(self, amount: int) -> None:
        """Return bytes reserved with :meth:`take`."""
        with self._lock:
            self._left += amount

    @property
    def in_use(self) -> int:
        """Bytes reserved right now."""
        with self._lock:
            return self.capacity - self._left


class _Server(ThreadingHTTPServer):
    """ThreadingHTTPServer that counts connections and can cut the open ones on stop."""

    daemon_threads = True
    request_queue_size = LISTEN_BACKLOG
    receiver: LocalReceiver

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host name (socket.getfqdn), which can stall
        # for seconds without DNS; the name is only used for CGI variables.
        socketserver.TCPServer.server_bind(self)
        self.server_name = str(self.server_address[0])
        self.server_port = int(self.server_address[1])

    def process_request(self, request: Any, client_address: Any) -> None:
        self.receiver._connection_opened(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        self.receiver._connection_closed(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.debug("error while handling a request from %s", client_address, exc_info=True)

    def serve_tls(self, context: ssl.SSLContext) -> None:
        """Wrap the listening socket: accepted connections speak TLS.

        The handshake is not done by ``accept`` (on the serving thread, where one slow
        client would hold up everyone) but by the handler's thread, in :meth:`_Handler.setup`.
        """
        self.socket = context.wrap_socket(self.socket, server_side=True, do_handshake_on_connect=False)


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
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
            self._receiver._memory.give(self._held)
            self._held = 0

    def _reserve(self, amount: int) -> None:
        """Take ``amount`` body bytes from the receiver's budget; a 503 when the server holds too much."""
        if not self._receiver._memory.take(amount, small=self._held + amount <= SMALL_REQUEST):
            answer = _Answer.error(503, "the server is busy receiving other data; retry later", {"Retry-After": "1"})
            raise _Reject(answer, close=True)
        self._held += amount

    @property
    def _receiver(self) -> LocalReceiver:
        return cast(_Server, self.server).receiver

    def log_message(self, format: str, *args: Any) -> None:
        """Log to ``sentry_feedback.server`` at DEBUG instead of writing to stderr."""
        logger.debug("%s - " + format, self.address_string(), *args)

    # -- dispatch ----------------------------------------------------------------------

    def do_POST(self) -> None:
        """Envelope requests; any other path is 404."""
        split = urllib.parse.urlsplit(self.path)
        match = _ENVELOPE_PATH.match(split.path)
        try:
            raw = self._read_body()
        except _Reject as reject:
            if match is not None:
                self._receiver._record(self._received(b"", reject.answer.status, None))
            self._answer(reject.answer, close=reject.close)
            return
        if match is None:
            self._answer(_Answer.error(404, f"no such endpoint: POST {split.path}"))
            return
        body, envelope, answer = self._envelope_request(split, match.group("project_id"), raw)
        self._receiver._record(self._received(body, answer.status, envelope))
        self._answer(answer)

    def _other_method(self) -> None:
        try:
            self._read_body()
        except _Reject as reject:
            self._answer(reject.answer, close=reject.close)
            return
        path = urllib.parse.urlsplit(self.path).path
        if _ENVELOPE_PATH.match(path):
            self._answer(_Answer.error(405, f"method {self.command} not allowed", {"Allow": "POST"}))
        else:
            self._answer(_Answer.error(404, f"no such endpoint: {self.command} {path}"))

    do_GET = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = _other_method

    # -- the envelope endpoint ---------------------------------------------------------

    def _envelope_request(
        self, split: urllib.parse.SplitResult, project_id: str, raw: bytes
    ) -> tuple[bytes, Envelope | None, _Answer]:
        receiver = self._receiver
        body = raw
        try:
            self._check_auth(split.query)
            if project_id != receiver.project_id:
                raise _Reject(_Answer.error(404, f"unknown project {project_id!r}"))
            body = self._decode(raw)
            canned = receiver._take_canned()
            if canned is not None and not 200 <= canned.status < 300:
                return body, _try_parse(body), canned
            try:
                envelope = Envelope.parse(body, max_items=MAX_ENVELOPE_ITEMS)
            except EnvelopeParseError as exc:
                raise _Reject(_Answer.error(400, str(exc))) from None
            try:
                _check_envelope(envelope)
                receiver.store.store_envelope(project_id, envelope, len(body))
            except EnvelopeParseError as exc:
                return body, envelope, _Answer.error(400, str(exc))
            except UnicodeEncodeError as exc:  # a lone surrogate escape decoded from JSON cannot be stored
                return body, envelope, _Answer.error(400, f"invalid text in the envelope: {exc.reason}")
            except Exception as exc:  # a storage failure must answer, not kill the connection
                logger.debug("storing an envelope failed", exc_info=True)
                return body, envelope, _Answer.error(500, f"could not store the envelope: {exc}")
            if canned is not None:
                if canned.body or canned.status == 204:
                    return body, envelope, canned
                default = _Answer.json(canned.status, {"id": envelope.event_id})
                return (
                    body,
                    envelope,
                    _Answer(canned.status, default.body, {**default.headers, **canned.headers}),
                )
            return body, envelope, _Answer.json(200, {"id": envelope.event_id})
        except _Reject as reject:
            return body, None, reject.answer

    def _check_auth(self, query: str) -> None:
        key: str | None = None
        for header in ("X-Sentry-Auth", "Authorization"):
            value = self.headers.get(header)
            if value and value.strip()[:7].lower() == "sentry ":
                fields = _parse_auth(value)
                key = fields.get("sentry_key")
                if key is None:
                    raise _Reject(_Answer.error(401, f"{header} header has no sentry_key"))
                break
        if key is None:
            keys = urllib.parse.parse_qs(query).get("sentry_key")
            key = keys[0] if keys else None
        if key is None:
            raise _Reject(_Answer.error(401, "missing authorization: no X-Sentry-Auth header or sentry_key"))
        if key != self._receiver.public_key:
            raise _Reject(_Answer.error(401, f"invalid sentry_key {key!r}"))

    def _decode(self, raw: bytes) -> bytes:
        encoding = (self.headers.get("Content-Encoding") or "identity").strip().lower()
        limit = self._receiver.max_body_size
        try:
            if encoding in ("identity", ""):
                return raw
            if encoding in ("gzip", "x-gzip"):
                return _inflate(raw, _GZIP_WBITS, limit, self._reserve)
            if encoding == "deflate":
                try:
                    return _inflate(raw, _ZLIB_WBITS, limit, self._reserve)
                except zlib.error:
                    return _inflate(raw, _RAW_DEFLATE_WBITS, limit, self._reserve)
        except zlib.error as exc:
            raise _Reject(_Answer.error(400, f"invalid {encoding} body: {exc}")) from None
        except _TooLarge:
            raise _Reject(_Answer.error(413, f"decoded body is larger than {limit} bytes")) from None
        raise _Reject(_Answer.error(400, f"unsupported Content-Encoding {encoding!r}"))

    # -- HTTP plumbing -----------------------------------------------------------------

    def _read_body(self) -> bytes:
        """The request body, framed strictly (RFC 9112): anything ambiguous is a 400 and closes the connection."""
        limit = self._receiver.max_body_size
        transfer_encoding = self.headers.get_all("Transfer-Encoding") or []
        lengths = self.headers.get_all("Content-Length") or []
        if transfer_encoding:
            codings = [c.strip().lower() for value in transfer_encoding for c in value.split(",") if c.strip()]
            if codings != ["chunked"]:
                raise _Reject(_Answer.error(501, f"unsupported Transfer-Encoding {', '.join(codings)!r}"), close=True)
            if lengths:
                raise _Reject(_Answer.error(400, "both Transfer-Encoding and Content-Length"), close=True)
            return self._read_chunked(limit)
        if not lengths:
            if self.command in ("POST", "PUT", "PATCH"):
                raise _Reject(_Answer.error(411, "Content-Length required"), close=True)
            return b""
        values = {value.strip() for value in lengths}
        length_header = values.pop()
        if values or not _DIGITS.fullmatch(length_header):
            shown = ", ".join(lengths)
            raise _Reject(_Answer.error(400, f"invalid Content-Length {shown!r}"), close=True)
        length = int(length_header)
        if length > limit:
            raise _Reject(_Answer.error(413, f"body is larger than {limit} bytes"), close=True)
        self._reserve(length)
        data = self.rfile.read(length)
        if len(data) < length:
            raise _Reject(_Answer.error(400, "body is shorter than its Content-Length"), close=True)
        return data

    def _read_chunked(self, limit: int) -> bytes:
        out = bytearray()
        while True:
            size = _chunk_size(self.rfile.readline(_MAX_CHUNK_LINE))
            if size == 0:
                break
            if len(out) + size > limit:
                raise _Reject(_Answer.error(413, f"body is larger than {limit} bytes"), close=True)
            self._reserve(2 * size)  # the chunk, and its copy in the body
            chunk = self.rfile.read(size)
            if len(chunk) < size or self.rfile.readline(_MAX_CHUNK_LINE) not in (b"\r\n", b"\n"):
                raise _Reject(_Answer.error(400, "invalid chunked body: a chunk is not followed by CRLF"), close=True)
            out += chunk
        for _ in range(_MAX_TRAILERS):  # trailers up to the blank line
            line = self.rfile.readline(_MAX_CHUNK_LINE)
            if line in (b"\r\n", b"\n"):
                return bytes(out)
            if not line.endswith(b"\n"):
                break
        raise _Reject(_Answer.error(400, "invalid chunked body: trailers do not end"), close=True)

    def _answer(self, answer: _Answer, *, close: bool = False) -> None:
        self._release()  # the body is done with: the client may send the next request at once
        self.send_response(answer.status)
        body = b"" if answer.status in (204, 304) else answer.body
        for name, value in answer.headers.items():
            if name.lower() != "content-length":
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))  # for HEAD too: the length GET would have
        if close:
            self.send_header("Connection", "close")
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)
        self.wfile.flush()

    def _received(self, body: bytes, status: int, envelope: Envelope | None) -> ReceivedRequest:
        return ReceivedRequest(
            method=self.command,
            path=self.path,
            headers=_Headers(self.headers.items()),
            body=body,
            status=status,
            envelope=envelope,
        )


class _TooLarge(Exception):
    pass


def _inflate(data: bytes, wbits: int, limit: int, reserve: Callable[[int], None]) -> bytes:
    """Decompress ``data`` (several gzip members allowed); raise _TooLarge past ``limit`` bytes.

    Inflates at most :data:`_INFLATE_STEP` bytes at a time, taking each step (and the final
    join) from the memory budget before keeping it. The steps are kept as separate chunks:
    a growing buffer would be reallocated, briefly holding twice what was reserved.
    """
    chunks: list[bytes] = []
    total = 0
    while True:
        decompressor = zlib.decompressobj(wbits)
        pending = data
        while not decompressor.eof:
            chunk = decompressor.decompress(pending, min(_INFLATE_STEP, limit + 1 - total))
            if total + len(chunk) > limit:
                raise _TooLarge
            reserve(len(chunk))
            chunks.append(chunk)
            total += len(chunk)
            pending = decompressor.unconsumed_tail
            if not chunk and not pending:
                break
        if not decompressor.eof:
            raise zlib.error("compressed body is truncated")
        data = decompressor.unused_data
        if not data:
            reserve(total)
            return b"".join(chunks)
        if wbits != _GZIP_WBITS:
            raise zlib.error("unexpected data after the compressed body")


def _parse_auth(value: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for part in value.strip()[7:].split(","):
        name, sep, val = part.strip().partition("=")
        if sep:
            fields[name.strip()] = val.strip()
    return fields


def _check_envelope(envelope: Envelope) -> None:
    """Sentry's rules on item combinations; raise EnvelopeParseError when broken."""
    feedback = len(envelope.items_of_type("feedback"))
    if feedback > 1:
        raise EnvelopeParseError(f"envelope has {feedback} feedback items; at most one is allowed")
    if feedback and envelope.items_of_type("transaction"):
        raise EnvelopeParseError("envelope has a feedback item together with a transaction item")


def _try_parse(body: bytes) -> Envelope | None:
    try:
        return Envelope.parse(body)
    except EnvelopeParseError:
        return None


class LocalReceiver:
    """A Sentry envelope endpoint on a local port, backed by a :class:`FeedbackStore`.

    ``port=0`` picks a free port at :meth:`start`. ``database`` is a SQLite path or
    ``":memory:"``; the store is opened by :meth:`start` and closed by :meth:`stop`.
    With ``ssl_context`` (a server-side context with the certificate loaded, say
    ``ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)``) it serves HTTPS, and
    :attr:`url` and :attr:`dsn` start with ``https://``; set the context's
    ``verify_mode`` to ``CERT_REQUIRED`` to require client certificates.

    >>> with LocalReceiver() as receiver:  # doctest: +SKIP
    ...     sentry_feedback.init(dsn=receiver.dsn)
    ...     sentry_feedback.capture_feedback("It works")
    ...     assert receiver.wait_for_envelopes(1)
    ...     print(receiver.store.list_feedback()[0].message)
    It works

    Requests to ``/api/<project_id>/envelope/`` are checked in this order: body size
    (413), auth (401), project id (404), canned answer (see :meth:`respond_with`),
    content encoding (400/413), envelope syntax and item rules (400). Every one of
    them, whatever the answer, is counted by :meth:`wait_for_envelopes`, and the last
    ``record_requests`` of them (100 by default, 0 for none) are kept in :attr:`received`,
    their bodies holding at most 64 MiB together; requests to other paths are answered
    404 and not recorded.

    The bodies of the requests in progress hold at most ``memory_budget`` bytes together
    (600 MiB by default, at least three times ``max_body_size``), as read and as decoded: a
    request that would need more is answered 503 with ``Retry-After: 1``. Envelopes hold at most
    1000 items; every malformed input is a 400 with a ``detail`` saying why.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        database: str = ":memory:",
        public_key: str = "public",
        project_id: str = "1",
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
        ssl_context: ssl.SSLContext | None = None,
        record_requests: int = DEFAULT_RECORDED_REQUESTS,
        memory_budget: int = DEFAULT_MEMORY_BUDGET,
    ) -> None:
        if max_body_size < 0:
            raise ValueError("max_body_size must be >= 0")
        if record_requests < 0:
            raise ValueError("record_requests must be >= 0")
        self._host = host
        self._port = port
        self._database = database
        self._public_key = public_key
        self._project_id = str(project_id)
        self._max_body_size = max_body_size
        self._ssl_context = ssl_context
        self._lock = threading.Lock()
        self._handled = threading.Condition(self._lock)
        self._received: collections.deque[ReceivedRequest] = collections.deque(maxlen=record_requests or None)
        self._record_requests = record_requests
        self._memory = _MemoryBudget(max(memory_budget, 3 * max_body_size))
        self._recorded_bytes = 0
        self._handled_count = 0
        self._canned: list[_Canned] = []
        self._connections_opened = 0
        self._open_sockets: set[socket.socket] = set()
        self._store: FeedbackStore | None = None
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopped = False

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> LocalReceiver:
        """Open the store, bind the port and serve on a daemon thread; return ``self``."""
        with self._lock:
            if self._stopped:
                raise RuntimeError("a stopped LocalReceiver cannot be started again")
            if self._server is not None:
                raise RuntimeError("LocalReceiver is already started")
        store = FeedbackStore(self._database)
        try:
            server_class = _Server6 if ":" in self._host else _Server
            server = server_class((self._host, self._port), _Handler, bind_and_activate=False)
            server.receiver = self
            try:
                server.server_bind()
                server.server_activate()
                if self._ssl_context is not None:
                    server.serve_tls(self._ssl_context)
            except BaseException:
                server.server_close()
                raise
        except BaseException:
            store.close()
            raise
        self._store = store
        self._server = server
        self._port = server.server_address[1]
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"sentry-feedback-receiver:{self._port}",
            daemon=True,
        )
        self._thread.start()
        logger.debug("receiver listening on %s (DSN %s)", self.url, self.dsn)
        return self

    def stop(self) -> None:
        """Stop serving, close open connections and the store. Calling it again does nothing."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            server, thread = self._server, self._thread
        if server is not None:
            server.shutdown()
            server.server_close()
            with self._lock:
                sockets = list(self._open_sockets)
            for sock in sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        if thread is not None:
            thread.join()
        if self._store is not None:
            # Handlers still finishing see a closed store and answer 500.
            self._store.close()

    def __enter__(self) -> LocalReceiver:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- addresses ---------------------------------------------------------------------

    @property
    def host(self) -> str:
        """The host the server binds to."""
        return self._host

    @property
    def port(self) -> int:
        """The bound port (chosen by :meth:`start` when created with ``port=0``)."""
        if self._port == 0:
            raise RuntimeError("the port is chosen by start(); start the LocalReceiver first")
        return self._port

    @property
    def url(self) -> str:
        """``http://HOST:PORT`` (``https://`` with an ``ssl_context``).

        A wildcard host (``0.0.0.0``, ``::``) shows as the loopback address.
        """
        host = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(self._host, self._host)
        if ":" in host:
            host = f"[{host}]"
        scheme = "https" if self._ssl_context is not None else "http"
        return f"{scheme}://{host}:{self.port}"

    @property
    def dsn(self) -> str:
        """The DSN an SDK should use: ``http(s)://{public_key}@HOST:PORT/{project_id}``."""
        scheme, _, netloc = self.url.partition("://")
        return f"{scheme}://{self._public_key}@{netloc}/{self._project_id}"

    @property
    def envelope_url(self) -> str:
        """``{url}/api/{project_id}/envelope/``."""
        return f"{self.url}/api/{self._project_id}/envelope/"

    @property
    def public_key(self) -> str:
        """The accepted ``sentry_key``."""
        return self._public_key

    @property
    def project_id(self) -> str:
        """The accepted project id."""
        return self._project_id

    @property
    def max_body_size(self) -> int:
        """The largest accepted body, compressed or decoded, in bytes."""
        return self._max_body_size

    @property
    def store(self) -> FeedbackStore:
        """The :class:`FeedbackStore` accepted envelopes go to (open between start and stop)."""
        if self._store is None:
            raise RuntimeError("the store is opened by start(); start the LocalReceiver first")
        return self._store

    # -- test controls -----------------------------------------------------------------

    def respond_with(
        self,
        status: int,
        *,
        headers: dict[str, str] | None = None,
        body: bytes = b"",
        times: int | None = 1,
    ) -> None:
        """Answer the next ``times`` envelope requests with ``status`` (None: until :meth:`reset_responses`).

        Calls queue up: ``respond_with(429); respond_with(500)`` answers 429, then 500,
        then normally again. A canned answer is used (and counted) by each envelope request
        that passes the auth and project checks. ``status`` must be 200-599. A non-2xx
        answer does not store the envelope (it is still parsed for :attr:`received`). A
        2xx answer stores it as usual (an invalid envelope still gets 400) and sends
        ``headers`` (``X-Sentry-Rate-Limits``, ...) with ``body``, or with the usual
        ``{"id": ...}`` JSON when ``body`` is empty.
        """
        if not 200 <= status <= 599:
            raise ValueError(f"invalid HTTP status {status}")
        if times is not None and times < 1:
            raise ValueError("times must be >= 1 or None")
        answer = _Answer(status, bytes(body), dict(headers or {}))
        with self._lock:
            self._canned.append(_Canned(answer, times))

    def reset_responses(self) -> None:
        """Forget all canned answers: answer normally from now on."""
        with self._lock:
            self._canned.clear()

    def wait_for_envelopes(self, count: int, timeout: float = 5.0) -> bool:
        """Block until at least ``count`` envelope requests were handled (any answer); False on timeout."""
        with self._handled:
            return self._handled.wait_for(lambda: self._handled_count >= count, timeout)

    @property
    def received(self) -> list[ReceivedRequest]:
        """A copy of the envelope requests kept so far (the last ``record_requests``), in arrival order."""
        with self._lock:
            return list(self._received)

    @property
    def connections_opened(self) -> int:
        """How many TCP connections the server has accepted."""
        with self._lock:
            return self._connections_opened

    # -- called by the server threads --------------------------------------------------

    def _take_canned(self) -> _Answer | None:
        with self._lock:
            if not self._canned:
                return None
            canned = self._canned[0]
            if canned.remaining is not None:
                canned.remaining -= 1
                if canned.remaining <= 0:
                    self._canned.pop(0)
            return canned.answer

    def _record(self, request: ReceivedRequest) -> None:
        with self._handled:
            self._handled_count += 1
            if self._record_requests:
                received = self._received
                if len(received) == received.maxlen:
                    self._recorded_bytes -= len(received[0].body)
                received.append(request)
                self._recorded_bytes += len(request.body)
                while self._recorded_bytes > RECORDED_BODY_BUDGET and len(received) > 1:
                    self._recorded_bytes -= len(received.popleft().body)
            self._handled.notify_all()

    def _connection_opened(self, sock: socket.socket) -> None:
        with self._lock:
            self._connections_opened += 1
            self._open_sockets.add(sock)

    def _connection_closed(self, sock: socket.socket) -> None:
        with self._lock:
            self._open_sockets.discard(sock)

    def __repr__(self) -> str:
        state = "stopped" if self._stopped else "running" if self._server is not None else "not started"
        where = self.url if self._port else f"{self._host}:0"
        return f"LocalReceiver({where}, project_id={self._project_id!r}, {state})"


def _chunk_size(line: bytes) -> int:
    """The size on a chunk-size line (extensions after ``;`` ignored); ``_Reject`` when it is not one."""
    if not line.endswith(b"\n"):
        raise _Reject(_Answer.error(400, "invalid chunked body: chunk-size line too long or cut"), close=True)
    token = line.split(b";", 1)[0].strip(b" \t\r\n")
    if not _HEX_DIGITS.fullmatch(token):
        shown = token[:20].decode("ascii", "replace")
        raise _Reject(_Answer.error(400, f"invalid chunked body: bad chunk size {shown!r}"), close=True)
    return int(token, 16)


def serve(
    host: str = "127.0.0.1",
    port: int = 0,
    database: str = ":memory:",
    public_key: str = "public",
    project_id: str = "1",
    *,
    on_start: Callable[[LocalReceiver], object] | None = None,
) -> None:
    """Run a :class:`LocalReceiver` until KeyboardInterrupt (Ctrl-C), then stop it cleanly.

    ``on_start`` is called with the running receiver (to print its DSN, say); without
    it the URL and DSN are printed to stdout.
    """
    receiver = LocalReceiver(
        host=host, port=port, database=database, public_key=public_key, project_id=project_id, record_requests=0
    )
    receiver.start()
    try:
        if on_start is not None:
            on_start(receiver)
        else:
            print(f"sentry-feedback receiver listening on {receiver.url}", flush=True)
            print(f"DSN: {receiver.dsn}", flush=True)
        thread = receiver._thread
        while thread is not None and thread.is_alive():
            thread.join(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        receiver.stop()
