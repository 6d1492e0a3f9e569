"""The tunnel in front of misbehaving servers: huge answers, answers cut short or stalled, answers that are not HTTP,
a proxy that echoes its credentials, and a forked worker that must not share its parent's connections.

The browser side goes through the tunnel served as WSGI and as ASGI; the server side is a small scripted HTTP server
on 127.0.0.1 that records what it was sent and answers with the bytes a test gives it.
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import logging
import socket
import socketserver
import threading
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from forking import fork_running, wait_exit
from sentry_feedback.server import LocalReceiver
from sentry_feedback.tunnel import Tunnel
from sentry_feedback.tunnel._upstream import MAX_ANSWER

from .conftest import Serve
from .envelopes import error_envelope
from .servers import WAIT, post


@dataclass(frozen=True)
class Forwarded:
    """One request the scripted server read: its request line, headers (lower-case names) and body."""

    line: str
    headers: dict[str, str]
    body: bytes


#: Answers one request on the socket; True keeps the connection open for the next request.
Script = Callable[[socket.socket, Forwarded, threading.Event], bool]


def _read_request(conn: socket.socket, buffered: bytes) -> tuple[Forwarded | None, bytes]:
    """The next request on ``conn`` (``None`` when the client closed the connection) and the bytes read past it."""
    while b"\r\n\r\n" not in buffered:
        chunk = conn.recv(65536)
        if not chunk:
            return None, b""
        buffered += chunk
    head, _, rest = buffered.partition(b"\r\n\r\n")
    line, *fields = head.decode("latin-1").split("\r\n")
    headers = {name.strip().lower(): value.strip() for name, _, value in (f.partition(":") for f in fields)}
    length = int(headers["content-length"])  # the tunnel forwards what the client declared
    while len(rest) < length:
        chunk = conn.recv(65536)
        if not chunk:
            return None, b""
        rest += chunk
    return Forwarded(line, headers, rest[:length]), rest[length:]


class _Handler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        upstream: ScriptedUpstream = self.server.upstream  # type: ignore[attr-defined]
        conn: socket.socket = self.request
        conn.settimeout(WAIT)
        upstream._opened()
        buffered = b""
        try:
            while True:
                request, buffered = _read_request(conn, buffered)
                if request is None:
                    return
                upstream._received(request)
                if not upstream.script(conn, request, upstream.release):
                    return
        except OSError:
            return  # the tunnel went away mid-answer


class ScriptedUpstream:
    """An HTTP server on 127.0.0.1 that answers every request as ``script`` says.

    :attr:`requests` holds what it read; :attr:`connections` counts the connections it accepted;
    :attr:`release` is set when the server closes, for scripts that stall until then.
    """

    def __init__(self, script: Script) -> None:
        self.script = script
        self.release = threading.Event()
        self.requests: list[Forwarded] = []
        self.connections = 0
        self._lock = threading.Lock()
        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.upstream = self  # type: ignore[attr-defined]
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    @property
    def netloc(self) -> str:
        return f"127.0.0.1:{self.port}"

    def dsn(self) -> str:
        return f"http://public@{self.netloc}/1"

    def _opened(self) -> None:
        with self._lock:
            self.connections += 1

    def _received(self, request: Forwarded) -> None:
        with self._lock:
            self.requests.append(request)

    def close(self) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(WAIT)


Start = Callable[[Script], ScriptedUpstream]


@pytest.fixture
def scripted() -> Iterator[Start]:
    """``scripted(script)``: a running :class:`ScriptedUpstream`, closed when the test ends."""
    started: list[ScriptedUpstream] = []

    def start(script: Script) -> ScriptedUpstream:
        started.append(ScriptedUpstream(script))
        return started[-1]

    yield start
    for upstream in started:
        upstream.close()


def answer(status: str, headers: dict[str, str], body: bytes) -> Script:
    """A well-formed answer; the connection stays open."""

    def script(conn: socket.socket, request: Forwarded, release: threading.Event) -> bool:
        fields = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        conn.sendall(f"HTTP/1.1 {status}\r\n{fields}Content-Length: {len(body)}\r\n\r\n".encode() + body)
        return True

    return script


def then_close(data: bytes) -> Script:
    """Send ``data`` (anything), then close the connection."""

    def script(conn: socket.socket, request: Forwarded, release: threading.Event) -> bool:
        conn.sendall(data)
        return False

    return script


def then_stall(data: bytes) -> Script:
    """Send ``data``, then nothing more until the server closes."""

    def script(conn: socket.socket, request: Forwarded, release: threading.Event) -> bool:
        conn.sendall(data)
        release.wait(WAIT)
        return False

    return script


def detail(response: Any) -> str:
    return str(json.loads(response.data)["detail"])


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "sentry_feedback" and r.levelno == logging.WARNING]


# -- answers too large ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "passed", "connections"),
    [(MAX_ANSWER, True, 1), (MAX_ANSWER + 1, False, 1), (4 * MAX_ANSWER, False, 2)],
    ids=["at-the-limit", "one-past", "four-times"],
)
def test_an_answer_past_the_limit_reaches_the_browser_without_its_body(
    serve: Serve, scripted: Start, size: int, passed: bool, connections: int
) -> None:
    payload = b'{"id": "' + b"a" * (size - 10) + b'"}'
    assert len(payload) == size
    headers = {"Content-Type": "application/json", "X-Sentry-Rate-Limits": "60:error:organization"}
    upstream = scripted(answer("200 OK", headers, payload))
    url = serve(Tunnel(allowed=[upstream.dsn()]))
    bodies = [error_envelope(upstream.dsn(), f"error {number}") for number in range(2)]

    responses = [post(url, body) for body in bodies]

    for response in responses:
        assert response.status == 200
        assert response.data == (payload if passed else b"")  # a cut JSON body is worse than none
        assert response.headers["Content-Type"] == "application/json"
        assert response.headers["X-Sentry-Rate-Limits"] == "60:error:organization"
    assert [request.body for request in upstream.requests] == bodies
    # An answer read to its end (the limit and one byte more are read) leaves the connection for the next
    # request; one cut off before its end closes it.
    assert upstream.connections == connections


def test_a_compressed_answer_is_decoded_no_further_than_the_limit(serve: Serve, scripted: Start) -> None:
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # gzip
    block = b"\0" * (1024 * 1024)
    bomb = b"".join(packer.compress(block) for _ in range(64)) + packer.flush()  # 64 MiB in about 64 KiB
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    small = scripted(answer("200 OK", headers, gzip.compress(b'{"id": "abc"}')))
    large = scripted(answer("200 OK", headers, bomb))
    url = serve(Tunnel(allowed=[small.dsn(), large.dsn()]))

    decoded = post(url, error_envelope(small.dsn()))
    tracemalloc.start()
    try:
        dropped = post(url, error_envelope(large.dsn()))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    # The browser gets the answer as the server meant it, decoded, and so without Content-Encoding.
    assert (decoded.status, decoded.data) == (200, b'{"id": "abc"}')
    assert "Content-Encoding" not in decoded.headers
    assert (dropped.status, dropped.data) == (200, b"")
    assert "Content-Encoding" not in dropped.headers
    assert peak < 16 * 1024 * 1024, peak  # far from the 64 MiB the whole answer decodes to


# -- answers that break off ---------------------------------------------------------------------------------------


def test_an_answer_cut_short_is_a_502(serve: Serve, scripted: Start, caplog: pytest.LogCaptureFixture) -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
    upstream = scripted(then_close(head + b'{"id": "0123'))
    url = serve(Tunnel(allowed=[upstream.dsn()]))
    body = error_envelope(upstream.dsn())

    with caplog.at_level(logging.WARNING, logger="sentry_feedback"):
        response = post(url, body)

    assert (response.status, detail(response)) == (502, f"could not forward to {upstream.netloc}")
    assert [request.body for request in upstream.requests] == [body]
    [warning] = warnings(caplog)
    assert warning.startswith(f"tunnel: could not forward to {upstream.netloc}: ")
    assert "IncompleteRead(12 bytes read, 988 more expected)" in warning


def test_an_answer_that_stops_midway_is_a_504(serve: Serve, scripted: Start, caplog: pytest.LogCaptureFixture) -> None:
    upstream = scripted(then_stall(b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"id": '))
    url = serve(Tunnel(allowed=[upstream.dsn()], timeout=0.3))
    body = error_envelope(upstream.dsn())

    with caplog.at_level(logging.WARNING, logger="sentry_feedback"):
        response = post(url, body)

    assert (response.status, detail(response)) == (504, f"could not forward to {upstream.netloc}: no answer in time")
    assert [request.body for request in upstream.requests] == [body]
    assert warnings(caplog) == [f"tunnel: could not forward to {upstream.netloc}: no answer within 0.3 s"]


@pytest.mark.parametrize(
    "data",
    [
        b"SSH-2.0-OpenSSH_9.6\r\n",
        b"",
        b"HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
    ],
    ids=["not-http", "hang-up", "five-digit-status", "two-lengths"],
)
def test_an_answer_that_is_not_http_is_a_502(
    serve: Serve, scripted: Start, caplog: pytest.LogCaptureFixture, data: bytes
) -> None:
    upstream = scripted(then_close(data))
    url = serve(Tunnel(allowed=[upstream.dsn()]))
    body = error_envelope(upstream.dsn())

    with caplog.at_level(logging.WARNING, logger="sentry_feedback"):
        response = post(url, body)

    assert (response.status, detail(response)) == (502, f"could not forward to {upstream.netloc}")
    assert response.headers["Content-Type"] == "application/json"
    assert [request.body for request in upstream.requests] == [body]
    [warning] = warnings(caplog)
    assert warning.startswith(f"tunnel: could not forward to {upstream.netloc}: ")


# -- a proxy that echoes its credentials ---------------------------------------------------------------------------

USER, PASSWORD = "tunnel-user", "pr0xy-s3cret"


def test_proxy_credentials_never_reach_the_log_or_the_browser(
    serve: Serve, scripted: Start, receiver: LocalReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    def echo_credentials(conn: socket.socket, request: Forwarded, release: threading.Event) -> bool:
        credentials = request.headers.get("proxy-authorization", "none")
        decoded = base64.b64decode(credentials.split()[-1]).decode()
        conn.sendall(f"HTTP/1.1 9999 refused {credentials} for {decoded}\r\n\r\n".encode())
        return False

    proxy = scripted(echo_credentials)
    url = serve(Tunnel(allowed=[receiver.dsn], http_proxy=f"http://{USER}:{PASSWORD}@{proxy.netloc}"))
    body = error_envelope(receiver.dsn)

    with caplog.at_level(logging.DEBUG, logger="sentry_feedback"):
        response = post(url, body)

    token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    [sent] = proxy.requests
    assert sent.line == f"POST http://127.0.0.1:{receiver.port}/api/1/envelope/ HTTP/1.1"
    assert sent.headers["proxy-authorization"] == f"Basic {token}"
    assert sent.body == body
    assert receiver.received == []  # only the proxy was contacted
    assert (response.status, detail(response)) == (502, f"could not forward to 127.0.0.1:{receiver.port}")
    [warning] = warnings(caplog)
    assert warning.startswith(
        f"tunnel: could not forward to 127.0.0.1:{receiver.port} through the proxy http://{proxy.netloc}: "
    )
    assert "refused Basic *** for ***" in warning
    for secret in (PASSWORD, token):
        assert secret not in caplog.text
        assert secret.encode() not in response.data


# -- a forked worker ----------------------------------------------------------------------------------------------


def test_a_forked_worker_forwards_on_connections_of_its_own(receiver: LocalReceiver) -> None:
    tunnel = Tunnel(allowed=[receiver.dsn])

    def forward(body: bytes) -> int:
        headers = {"Content-Length": str(len(body))}
        return tunnel.forward("POST", headers, io.BytesIO(body), client_address="127.0.0.1").status

    bodies = [error_envelope(receiver.dsn, f"TypeError: from the {who}") for who in ("parent", "child", "parent")]
    try:
        assert forward(bodies[0]) == 200
        assert receiver.connections_opened == 1  # the parent keeps this connection in its pool

        pid = fork_running(lambda: 0 if forward(bodies[1]) == 200 else 3)
        assert wait_exit(pid) == 0
        assert receiver.connections_opened == 2  # the child opened its own

        assert forward(bodies[2]) == 200
        assert receiver.connections_opened == 2  # the parent's connection was left alone and is used again
        assert [request.body for request in receiver.received] == bodies
    finally:
        tunnel.close()
