"""One HTTP exchange is bounded in wall time: a server that trickles its answer is cut off at ``http_timeout``.

urllib3's timeouts apply to each socket read, so a server that sends one byte every
50 ms keeps every read short and the exchange going for ever. The servers here trickle an
answer that never ends (a status line and headers that go on): without a deadline on the
whole exchange the feedback would never come back, so no wall-clock assertion is needed.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

import sentry_feedback as sf

ONCE = sf.RetryPolicy(max_attempts=1)
#: Generous: only reached if the exchange is not cut (the bug); the cut comes after http_timeout.
WAIT = 30.0


class TricklingServer:
    """Reads a request, then answers one byte every ``interval`` seconds, for ever (until stopped)."""

    def __init__(self, ssl_context: ssl.SSLContext | None = None, interval: float = 0.05) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self._ssl = ssl_context
        self._interval = interval
        self._stop = threading.Event()
        self.connections = 0
        self.cut = threading.Event()  # set when the client closed a connection on us
        self._threads: list[threading.Thread] = []
        accept = threading.Thread(target=self._accept_loop, daemon=True)
        self._threads.append(accept)
        accept.start()

    @property
    def port(self) -> int:
        return int(self._listener.getsockname()[1])

    def dsn(self, scheme: str = "http") -> str:
        return f"{scheme}://public@127.0.0.1:{self.port}/1"

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, raw: socket.socket) -> None:
        with contextlib.ExitStack() as stack:
            raw.settimeout(5)
            conn = raw
            if self._ssl is not None:
                try:
                    conn = self._ssl.wrap_socket(raw, server_side=True)
                except (OSError, ssl.SSLError):
                    raw.close()
                    return
            stack.callback(conn.close)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            length = next(
                (
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                ),
                0,
            )
            while len(body) < length:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                body += chunk
            answer = b"HTTP/1.1 200 OK\r\nX-Slow: " + b"z" * 10_000_000
            for byte in answer:
                if self._stop.wait(self._interval):
                    return
                try:
                    conn.sendall(bytes([byte]))
                except OSError:
                    self.cut.set()
                    return

    def stop(self) -> None:
        self._stop.set()
        self._listener.close()
        for thread in self._threads:
            thread.join(5)


@pytest.fixture
def trickling() -> Iterator[TricklingServer]:
    server = TricklingServer()
    yield server
    sf.get_client().close(0)
    server.stop()


def test_a_trickled_answer_is_cut_at_http_timeout(trickling: TricklingServer) -> None:
    client = sf.init(trickling.dsn(), http_timeout=0.5, retry=ONCE)
    with pytest.raises(sf.NetworkError, match=r"no complete answer within http_timeout \(0.5 s\)"):
        sf.send_feedback("the page is slow", timeout=WAIT)
    assert client.client_reports.totals() == {("network_error", "feedback"): 1}
    assert trickling.cut.wait(5)  # the server saw its connection go


def test_the_worker_goes_on_after_a_cut_exchange(trickling: TricklingServer) -> None:
    sf.init(trickling.dsn(), http_timeout=0.3, retry=ONCE)
    for _ in range(2):
        with pytest.raises(sf.NetworkError):
            sf.send_feedback("stuck", timeout=WAIT)
    assert trickling.connections == 2  # a cut connection is never reused
    assert sf.flush(5)


def test_a_trickled_answer_over_tls_is_cut(tmp_path: Path) -> None:
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    ca_pem = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_pem))
    server = TricklingServer(server_ctx)
    try:
        client = sf.init(server.dsn("https"), http_timeout=0.5, retry=ONCE, ca_certs=str(ca_pem))
        with pytest.raises(sf.NetworkError, match="http_timeout"):
            sf.send_feedback("slow over TLS", timeout=WAIT)
        assert client.client_reports.totals() == {("network_error", "feedback"): 1}
    finally:
        sf.get_client().close(0)
        server.stop()
