"""Misbehaving servers on 127.0.0.1 for the fault-injection tests (stdlib only).

:class:`RefusedPort` is a port where nothing listens: a socket is bound to it (so no
other program can take it) but never listens, so every connection is refused.

:class:`FaultServer` listens on a free port of 127.0.0.1 and handles each envelope
request by the next :data:`Fault` of its script (then by ``then`` for ever):

- :class:`Forward` behaves: the request goes to the upstream
  :class:`~sentry_feedback.server.LocalReceiver` (which stores it by event id) and its
  answer is relayed back;
- :class:`Respond` answers a status with the given headers and body, storing nothing;
- :class:`HugeBody` answers a status with a body of ``size`` bytes (after forwarding the
  request upstream when ``forward``);
- :class:`Garbage` reads the request, writes bytes that are not a valid HTTP answer and
  closes the connection;
- :class:`ResetOnAccept` resets the connection (RST, ``SO_LINGER`` 0) as soon as it is
  accepted, before reading anything;
- :class:`ResetMidBody` reads the request head and half of the body, then resets;
- :class:`Hang` reads the request head and never answers: the connection is held open
  until :meth:`FaultServer.stop`.

Every request the server handled is recorded as an :class:`Exchange` (with the parsed
envelope whenever the whole body was read), so a test can tell exactly which items got
which answer. Every loop is bounded: the accept loop and the connection threads look at
the stop flag every :data:`POLL` seconds, reads of a body and writes give up after
:data:`IO_TIMEOUT`, and :meth:`FaultServer.stop` joins all threads and raises if one is
still alive.
"""

from __future__ import annotations

import contextlib
import gzip
import http.client
import socket
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from http import HTTPStatus

from sentry_feedback import Envelope
from sentry_feedback.server import LocalReceiver

__all__ = [
    "Exchange",
    "Fault",
    "FaultServer",
    "Forward",
    "Garbage",
    "Hang",
    "HugeBody",
    "RefusedPort",
    "ResetMidBody",
    "ResetOnAccept",
    "Respond",
]

LOOPBACK = "127.0.0.1"
#: How often blocking loops look at the stop flag, in seconds.
POLL = 0.05
#: The longest any single read of a request body, or write of an answer, may wait for the peer.
IO_TIMEOUT = 10.0
#: The longest a request head may be.
MAX_HEAD = 64 * 1024
#: How long stop() waits for the server's threads.
JOIN_TIMEOUT = 10.0
MiB = 1024 * 1024

_HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length", "date", "server"})
_FORWARDED = ("Content-Type", "Content-Encoding", "X-Sentry-Auth", "User-Agent")


# -- faults -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Forward:
    """Behave: forward to the upstream receiver and relay its answer."""


@dataclass(frozen=True)
class Respond:
    """Answer ``status`` with ``headers`` and ``body``; nothing is stored."""

    status: int
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""


@dataclass(frozen=True)
class HugeBody:
    """Answer ``status`` with a body of ``size`` bytes; forward upstream first when ``forward``."""

    status: int
    size: int = 20 * MiB
    forward: bool = False


@dataclass(frozen=True)
class Garbage:
    """Read the request, answer ``data`` (not a valid HTTP answer) and close."""

    data: bytes


@dataclass(frozen=True)
class ResetOnAccept:
    """Reset the connection right after accepting it (the client sees ECONNRESET)."""


@dataclass(frozen=True)
class ResetMidBody:
    """Read the head and half of the body, then reset the connection."""


@dataclass(frozen=True)
class Hang:
    """Read the head, then never answer; the socket is held until the server stops."""


Fault = Forward | Respond | HugeBody | Garbage | ResetOnAccept | ResetMidBody | Hang


@dataclass(frozen=True)
class Exchange:
    """One request the server handled: the fault applied and what it saw and answered.

    ``envelope`` is the parsed envelope when the whole body was read (``None`` otherwise,
    or when it did not parse); ``status`` is the HTTP status answered, ``None`` when no
    HTTP answer was given (reset, hang, garbage).
    """

    index: int
    fault: Fault
    envelope: Envelope | None = None
    status: int | None = None


# -- the servers --------------------------------------------------------------------------------


class RefusedPort:
    """A port of 127.0.0.1 where connections are refused: bound, never listening."""

    def __init__(self) -> None:
        self._sock: socket.socket | None = None
        self.port = 0

    def start(self) -> RefusedPort:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind((LOOPBACK, 0))
        self._sock = sock
        self.port = sock.getsockname()[1]
        return self

    def stop(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    @property
    def dsn(self) -> str:
        return f"http://public@{LOOPBACK}:{self.port}/1"

    def __enter__(self) -> RefusedPort:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class _Head:
    __slots__ = ("headers", "method", "path")

    def __init__(self, method: str, path: str, headers: dict[str, str]) -> None:
        self.method = method
        self.path = path
        self.headers = headers  # lower-case names

    @property
    def chunked(self) -> bool:
        return self.headers.get("transfer-encoding", "").lower() == "chunked"

    @property
    def content_length(self) -> int:
        try:
            return max(int(self.headers.get("content-length", "0")), 0)
        except ValueError:
            return 0


class _Connection:
    """Buffered reads from one accepted socket that give up when the server stops."""

    def __init__(self, sock: socket.socket, stop: threading.Event) -> None:
        self.sock = sock
        self._stop = stop
        self._buffer = b""

    def _recv(self, deadline: float | None) -> bool:
        """Read more into the buffer; ``False`` on EOF, error, stop or deadline."""
        while not self._stop.is_set():
            if deadline is not None and time.monotonic() > deadline:
                return False
            try:
                data = self.sock.recv(256 * 1024)
            except TimeoutError:
                continue
            except OSError:
                return False
            if not data:
                return False
            self._buffer += data
            return True
        return False

    def read_head(self) -> _Head | None:
        """The next request head; ``None`` when the client closed or sent garbage. Waits while idle."""
        while b"\r\n\r\n" not in self._buffer:
            if len(self._buffer) > MAX_HEAD or not self._recv(None):
                return None
        raw, _, self._buffer = self._buffer.partition(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3:
            return None
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        return _Head(parts[0], parts[1], headers)

    def read_exact(self, size: int) -> bytes | None:
        """Exactly ``size`` bytes, or ``None`` when the client went away or took too long."""
        deadline = time.monotonic() + IO_TIMEOUT
        while len(self._buffer) < size:
            if not self._recv(deadline):
                return None
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def read_body(self, head: _Head) -> bytes | None:
        """The request body, framed by ``Content-Length`` or chunked; ``None`` when it does not come whole."""
        if not head.chunked:
            return self.read_exact(head.content_length)
        body = bytearray()
        while True:
            size_line = self.read_line()
            if size_line is None:
                return None
            try:
                size = int(size_line.split(b";")[0], 16)
            except ValueError:
                return None
            if size == 0:
                while self.read_line() not in (b"", None):  # trailers, up to the empty line
                    pass
                return bytes(body)
            data = self.read_exact(size + 2)
            if data is None:
                return None
            body += data[:-2]

    def read_line(self) -> bytes | None:
        """The next CRLF-terminated line without its CRLF, or ``None`` when it does not come."""
        deadline = time.monotonic() + IO_TIMEOUT
        while b"\r\n" not in self._buffer:
            if len(self._buffer) > MAX_HEAD or not self._recv(deadline):
                return None
        line, _, self._buffer = self._buffer.partition(b"\r\n")
        return line

    def send(self, data: bytes) -> bool:
        """Write all of ``data`` (bounded by IO_TIMEOUT); ``False`` when the client went away."""
        view = memoryview(data)
        deadline = time.monotonic() + IO_TIMEOUT
        while view:
            if self._stop.is_set() or time.monotonic() > deadline:
                return False
            try:
                sent = self.sock.send(view[: 1024 * 1024])
            except TimeoutError:
                continue
            except OSError:
                return False
            view = view[sent:]
        return True

    def reset(self) -> None:
        """Close with an RST instead of a FIN."""
        with contextlib.suppress(OSError):
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()


def _response_head(status: int, headers: Iterable[tuple[str, str]], length: int) -> bytes:
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Whatever"
    lines = [f"HTTP/1.1 {status} {reason}", *(f"{k}: {v}" for k, v in headers), f"Content-Length: {length}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _parse(head: _Head, body: bytes) -> Envelope | None:
    try:
        encoding = head.headers.get("content-encoding", "").lower()
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "deflate":
            body = zlib.decompress(body)
        return Envelope.parse(body)
    except Exception:
        return None


class FaultServer:
    """An HTTP server on 127.0.0.1 that handles request ``n`` with ``faults[n]``, then with ``then``.

    ``then`` defaults to :class:`Forward`.

    A connection-level fault (:class:`ResetOnAccept`) is applied when a connection is
    accepted; the others once a request head has arrived. ``upstream`` is needed for
    :class:`Forward` and forwarding :class:`HugeBody` faults.
    """

    def __init__(
        self,
        faults: Sequence[Fault] = (),
        *,
        then: Fault | None = None,
        upstream: LocalReceiver | None = None,
    ) -> None:
        self._script = list(faults)
        self._then: Fault = then if then is not None else Forward()
        self._upstream = upstream
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._exchanges: list[Exchange] = []
        self._taken = 0
        self._stop = threading.Event()
        self._listener: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self._sockets: set[socket.socket] = set()
        self.port = 0

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> FaultServer:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((LOOPBACK, 0))
        listener.listen(16)
        listener.settimeout(POLL)
        self._listener = listener
        self.port = listener.getsockname()[1]
        self._spawn(self._accept_loop, f"fault-server-accept:{self.port}")
        return self

    def stop(self) -> None:
        """Stop accepting, cut every connection (hung ones included) and join all threads."""
        self._stop.set()
        with self._lock:
            sockets = list(self._sockets)
            threads = list(self._threads)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + JOIN_TIMEOUT
        for thread in threads:
            thread.join(max(deadline - time.monotonic(), 0.0))
        if self._listener is not None:
            self._listener.close()
        alive = [t.name for t in threads if t.is_alive()]
        if alive:
            raise RuntimeError(f"fault server threads still running after stop: {alive}")

    def __enter__(self) -> FaultServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def dsn(self) -> str:
        return f"http://public@{LOOPBACK}:{self.port}/1"

    # -- what happened --------------------------------------------------------------------------

    @property
    def exchanges(self) -> list[Exchange]:
        with self._lock:
            return list(self._exchanges)

    def wait_for_exchanges(self, count: int, timeout: float = 5.0) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: len(self._exchanges) >= count, timeout)

    # -- internals ------------------------------------------------------------------------------

    def _spawn(self, target: Callable[..., None], name: str, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def _accept_loop(self) -> None:
        listener = self._listener
        assert listener is not None
        while not self._stop.is_set():
            try:
                sock, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            sock.settimeout(POLL)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                if self._stop.is_set():
                    sock.close()
                    return
                self._sockets.add(sock)
            self._spawn(self._serve, f"fault-server-conn:{self.port}", sock)

    def _peek(self) -> Fault:
        return self._script[self._taken] if self._taken < len(self._script) else self._then

    def _take(self, *, only: type | None = None) -> Fault | None:
        with self._lock:
            fault = self._peek()
            if only is not None and not isinstance(fault, only):
                return None
            self._taken += 1
            return fault

    def _record(self, fault: Fault, envelope: Envelope | None = None, status: int | None = None) -> None:
        with self._changed:
            self._exchanges.append(Exchange(len(self._exchanges), fault, envelope, status))
            self._changed.notify_all()

    def _serve(self, sock: socket.socket) -> None:
        conn = _Connection(sock, self._stop)
        try:
            if self._take(only=ResetOnAccept) is not None:
                self._record(ResetOnAccept())
                conn.reset()
                return
            while not self._stop.is_set():
                if not self._handle_one(conn):
                    return
        finally:
            with self._lock:
                self._sockets.discard(sock)
            with contextlib.suppress(OSError):
                sock.close()

    def _handle_one(self, conn: _Connection) -> bool:
        """Handle one request; ``True`` to keep the connection for the next one."""
        head = conn.read_head()
        if head is None:
            return False
        fault = self._take()
        assert fault is not None
        if isinstance(fault, ResetOnAccept):  # scripted after a keep-alive request: reset now
            self._record(fault)
            conn.reset()
            return False
        if isinstance(fault, ResetMidBody):
            conn.read_exact(64 * 1024 if head.chunked else head.content_length // 2)
            self._record(fault)
            conn.reset()
            return False
        if isinstance(fault, Hang):
            self._record(fault)
            self._stop.wait()  # hold the socket, unanswered, until the server stops
            return False
        body = conn.read_body(head)
        if body is None:
            return False
        envelope = _parse(head, body)
        if isinstance(fault, Garbage):
            self._record(fault, envelope)
            conn.send(fault.data)
            return False
        if isinstance(fault, Respond):
            self._record(fault, envelope, fault.status)
            return conn.send(_response_head(fault.status, fault.headers, len(fault.body)) + fault.body)
        if isinstance(fault, HugeBody):
            if fault.forward:
                self._forward(head, body)
            self._record(fault, envelope, fault.status)
            return self._send_huge(conn, fault)
        status, headers, answer = self._forward(head, body)
        self._record(fault, envelope, status)
        return conn.send(_response_head(status, headers, len(answer)) + answer)

    def _send_huge(self, conn: _Connection, fault: HugeBody) -> bool:
        head = _response_head(fault.status, [("Content-Type", "text/plain")], fault.size)
        if not conn.send(head):
            return False
        chunk = b"x" * MiB
        left = fault.size
        while left > 0:
            piece = chunk[: min(left, len(chunk))]
            if not conn.send(piece):
                return False
            left -= len(piece)
        return True

    def _forward(self, head: _Head, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        upstream = self._upstream
        if upstream is None:
            raise RuntimeError("this FaultServer has no upstream receiver to forward to")
        headers = {name: head.headers[name.lower()] for name in _FORWARDED if name.lower() in head.headers}
        client = http.client.HTTPConnection(LOOPBACK, upstream.port, timeout=IO_TIMEOUT)
        try:
            client.request(head.method, head.path, body=body, headers=headers)
            response = client.getresponse()
            answer = response.read()
            relayed = [(k, v) for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP]
            return response.status, relayed, answer
        finally:
            client.close()
