"""The HTTP transport over real sockets against the local receiver on 127.0.0.1."""

from __future__ import annotations

import contextlib
import gzip
import logging
import os
import random
import selectors
import socket
import socketserver
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import cast

import pytest

import sentry_feedback as sf
from forking import send_from_forked_child
from sentry_feedback.server import LocalReceiver
from sentry_feedback.testing import normalize_with_relay

Init = Callable[..., sf.Client]


def test_feedback_with_attachments_arrives_intact(
    sentry_init: Init, sentry_receiver: LocalReceiver, tmp_path: Path
) -> None:
    screenshot = tmp_path / "screenshot.png"
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
    screenshot.write_bytes(png)
    sentry_init(release="shop@1.4.2", environment="prod")
    sf.set_user({"id": "42", "email": "jane@example.com"})
    error_id = uuid.uuid4().hex
    event_id = sf.capture_feedback(
        "The pay button does nothing",
        email="jane@example.com",
        name="Jane",
        url="https://shop.example.com/checkout",
        associated_event_id=error_id,
        attachments=[sf.Attachment(path=str(screenshot)), sf.Attachment(b"log\nlines\n", filename="app.log")],
    )
    assert event_id is not None
    assert sf.flush(5)
    (stored,) = sentry_receiver.store.list_feedback()
    assert stored.event_id == event_id
    assert stored.message == "The pay button does nothing"
    assert stored.contact_email == "jane@example.com"
    assert stored.associated_event_id == error_id
    assert stored.release == "shop@1.4.2" and stored.environment == "prod"
    attachments = {a.filename: a for a in sentry_receiver.store.list_attachments(event_id)}
    assert attachments["screenshot.png"].data == png
    assert attachments["screenshot.png"].content_type == "image/png"
    assert attachments["app.log"].data == b"log\nlines\n"
    normalize_with_relay(stored.data)


def test_request_headers_auth_and_gzip(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    sentry_init()
    sf.capture_feedback("x")
    assert sf.flush(5)
    (request,) = sentry_receiver.received
    assert request.status == 200
    auth = request.headers["X-Sentry-Auth"]
    assert "sentry_version=7" in auth and "sentry_key=public" in auth and "sentry_client=sentry-feedback/" in auth
    assert request.headers["User-Agent"].startswith("sentry-feedback/")
    assert request.headers["Content-Type"] == "application/x-sentry-envelope"
    assert request.headers["Content-Encoding"] == "gzip"
    assert request.path == "/api/1/envelope/"
    assert request.envelope is not None and request.envelope.items[0].type == "feedback"


def test_compression_level_zero_sends_plain_bodies(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    sentry_init(compression_level=0)
    sf.capture_feedback("x")
    assert sf.flush(5)
    (request,) = sentry_receiver.received
    assert "Content-Encoding" not in request.headers
    assert sentry_receiver.store.count_envelopes() == 1


def test_one_keep_alive_connection_for_many_envelopes(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    sentry_init()
    for i in range(20):
        sf.capture_feedback(f"feedback {i}")
    assert sf.flush(10)
    assert len(sentry_receiver.store.list_feedback()) == 20
    assert sentry_receiver.connections_opened == 1


def test_send_feedback_against_receiver(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    sentry_init()
    event_id = sf.send_feedback("blocking", attachments=[sf.Attachment(b"abc", filename="a.txt")], timeout=5)
    stored = sentry_receiver.store.get_feedback(event_id)
    assert stored is not None and stored.message == "blocking"


def test_rate_limit_on_429_drops_feedback_and_attachments_before_sending(
    sentry_init: Init, sentry_receiver: LocalReceiver
) -> None:
    client = sentry_init()
    sentry_receiver.respond_with(429, headers={"X-Sentry-Rate-Limits": "60:feedback:key", "Retry-After": "60"})
    with pytest.raises(sf.RateLimitedError):
        sf.send_feedback("first", timeout=5)
    assert sf.capture_feedback("second", attachments=[sf.Attachment(b"12345678", filename="x.bin")]) is not None
    error_id = sf.capture_message("errors still go", level="error")
    assert sf.flush(5)
    assert sentry_receiver.store.list_feedback() == []
    assert sentry_receiver.store.get_event(error_id) is not None  # type: ignore[arg-type]
    assert client.client_reports.totals() == {
        ("ratelimit_backoff", "feedback"): 1,
        ("ratelimit_backoff", "attachment"): 8,
    }
    assert sentry_receiver.store.client_report_totals() == client.client_reports.totals()
    assert len(sentry_receiver.received) == 2


def test_limits_announced_on_a_200(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    client = sentry_init()
    sentry_receiver.respond_with(200, headers={"X-Sentry-Rate-Limits": "30:error:organization"})
    sf.capture_feedback("stored despite the header")
    assert sf.flush(5)
    sf.capture_message("now limited")
    sf.capture_feedback("feedback is not limited")
    assert sf.flush(5)
    assert len(sentry_receiver.store.list_feedback()) == 2
    assert sentry_receiver.store.list_events() == []
    assert client.client_reports.totals() == {("ratelimit_backoff", "error"): 1}


@pytest.mark.parametrize(
    ("headers", "low", "high"),
    [({"Retry-After": "120"}, 100, 120), ({}, 50, 60), ({"Retry-After": "garbage"}, 50, 60)],
)
def test_429_without_rate_limit_header_limits_everything(
    sentry_init: Init, sentry_receiver: LocalReceiver, headers: dict[str, str], low: float, high: float
) -> None:
    client = sentry_init()
    sentry_receiver.respond_with(429, headers=headers)
    sf.capture_feedback("first")
    assert sf.flush(5)
    snapshot = client.rate_limiter.snapshot()
    assert set(snapshot) == {""} and low < snapshot[""] <= high
    sf.capture_message("also limited")
    assert sf.flush(5)
    assert client.client_reports.totals() == {("ratelimit_backoff", "error"): 1}


def test_server_errors_are_send_errors_never_retried(
    sentry_init: Init, sentry_receiver: LocalReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    client = sentry_init()
    sentry_receiver.respond_with(500, body=b"internal error")
    sentry_receiver.respond_with(413, body=b"too large")
    with caplog.at_level(logging.WARNING, logger="sentry_feedback"):
        sf.capture_feedback("gets a 500", attachments=[sf.Attachment(b"abc", filename="a")])
        sf.capture_feedback("gets a 413")
        assert sf.flush(5)
    assert len(sentry_receiver.received) == 2
    assert client.client_reports.totals() == {("send_error", "feedback"): 2, ("send_error", "attachment"): 3}
    assert any(
        r.levelno == logging.ERROR and "413" in r.getMessage() and "bytes" in r.getMessage() for r in caplog.records
    )
    sf.capture_feedback("works again")
    assert sf.flush(5)
    assert sentry_receiver.store.client_report_totals() == {
        ("send_error", "feedback"): 2,
        ("send_error", "attachment"): 3,
    }


def test_connection_refused_is_a_network_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again below: nothing listens there
    client = sf.init(
        f"http://public@127.0.0.1:{port}/1", http_timeout=2, retry=sf.RetryPolicy(max_attempts=2, initial=0.01)
    )
    assert sf.capture_feedback("nobody home", attachments=[sf.Attachment(b"ab", filename="a")]) is not None
    assert sf.flush(5)
    assert client.client_reports.totals() == {
        ("network_error", "feedback"): 1,
        ("network_error", "attachment"): 2,
    }
    with pytest.raises(sf.NetworkError):
        sf.send_feedback("again", timeout=5)


def test_client_reports_reach_the_server_at_flush(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    sentry_init(before_send_feedback=lambda e, h: None)
    sf.capture_feedback("dropped by hook", attachments=[sf.Attachment(b"xyz", filename="a")])
    sf.capture_feedback("")
    assert sf.flush(5)
    assert sentry_receiver.store.client_report_totals() == {
        ("before_send", "feedback"): 1,
        ("before_send", "attachment"): 3,
        ("invalid", "feedback"): 1,
    }


def test_gzip_body_is_valid_envelope(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    sentry_init(compression_level=9)
    event_id = sf.capture_feedback("x" * 2000)
    assert sf.flush(5)
    (request,) = sentry_receiver.received
    assert request.status == 200 and request.headers["Content-Encoding"] == "gzip"
    assert request.envelope is not None and request.envelope.event_id == event_id
    assert request.envelope.items[0].get_json()["contexts"]["feedback"]["message"] == "x" * 2000


class RecordingRelay(socketserver.ThreadingTCPServer):
    """A TCP relay on 127.0.0.1 in front of the receiver that keeps every byte the SDK sent through it.

    The receiver decodes the bodies it records; the relay shows them as they went on the
    wire (compressed). Each connection's bytes are kept before they are passed on, so once
    the SDK has the receiver's answer, the request is recorded whole.
    """

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, receiver: LocalReceiver) -> None:
        super().__init__(("127.0.0.1", 0), RelayHandler)
        self.target = ("127.0.0.1", receiver.port)
        self.dsn = f"http://{receiver.public_key}@127.0.0.1:{self.server_address[1]}/{receiver.project_id}"
        self.streams: list[bytearray] = []
        self.sockets: list[socket.socket] = []

    def requests(self) -> list[tuple[dict[str, str], bytes]]:
        """``(headers with lower-case names, body as sent)`` of every request relayed, in order."""
        return [request for stream in list(self.streams) for request in http_requests(bytes(stream))]


class RelayHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        relay = cast(RecordingRelay, self.server)
        client: socket.socket = self.request
        sent = bytearray()
        relay.streams.append(sent)
        with socket.create_connection(relay.target, timeout=10) as upstream, selectors.DefaultSelector() as selector:
            relay.sockets += [client, upstream]
            selector.register(client, selectors.EVENT_READ, upstream)
            selector.register(upstream, selectors.EVENT_READ, client)
            while True:
                for key, _ in selector.select():
                    source, target = cast(socket.socket, key.fileobj), cast(socket.socket, key.data)
                    try:
                        data = source.recv(65536)
                        if not data:
                            return
                        if source is client:
                            sent += data
                        target.sendall(data)
                    except OSError:
                        return


def http_requests(stream: bytes) -> Iterator[tuple[dict[str, str], bytes]]:
    """The requests in the bytes a client sent on one connection: headers and body, de-chunked, not decoded."""
    while stream:
        head, _, rest = stream.partition(b"\r\n\r\n")
        request_line, *lines = head.decode("latin-1").split("\r\n")
        assert request_line.startswith("POST "), request_line
        headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
        body = bytearray()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            while True:
                size_line, _, rest = rest.partition(b"\r\n")
                size = int(size_line.split(b";")[0], 16)
                if size == 0:
                    rest = rest.partition(b"\r\n")[2]  # no trailers: the empty line ends the body
                    break
                body += rest[:size]
                assert rest[size : size + 2] == b"\r\n"
                rest = rest[size + 2 :]
        else:
            length = int(headers["content-length"])
            body += rest[:length]
            rest = rest[length:]
        yield headers, bytes(body)
        stream = rest


@pytest.fixture
def relay(sentry_receiver: LocalReceiver) -> Iterator[RecordingRelay]:
    server = RecordingRelay(sentry_receiver)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    for sock in server.sockets:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
    thread.join()


def varied_text(size: int) -> bytes:
    """``size`` bytes that compress well but not trivially: words of a small vocabulary in a seeded random order."""
    rng = random.Random(size)
    letters = "abcdefghijklmnopqrstuvwxyz"
    words = ["".join(rng.choice(letters) for _ in range(rng.randint(3, 9))) for _ in range(400)]
    text = " ".join(rng.choice(words) for _ in range(size // 4))
    assert len(text) >= size
    return text.encode()[:size]


#: The gzip header's XFL byte (offset 8) that zlib writes for a level: 4 for the fastest, 2 for the slowest.
GZIP_XFL = {1: 4, 9: 2}


@pytest.mark.parametrize(
    ("attachment_size", "framing"),
    [(64 * 1024, "content-length"), (400 * 1024, "transfer-encoding")],
    ids=["small", "streamed"],
)
def test_compression_level_option_is_honoured(
    sentry_init: Init, sentry_receiver: LocalReceiver, relay: RecordingRelay, attachment_size: int, framing: str
) -> None:
    """The bodies on the wire at levels 0, 1 and 9, for an envelope sent whole and for one streamed (> 256 KiB)."""
    payload = varied_text(attachment_size)
    ids: dict[int, str] = {}
    for level in (0, 1, 9):
        sentry_init(dsn=relay.dsn, compression_level=level)
        event_id = sf.capture_feedback("same text", attachments=[sf.Attachment(payload, filename="app.log")])
        assert event_id is not None
        ids[level] = event_id
        assert sf.flush(10)
    received = {r.envelope.event_id: r for r in sentry_receiver.received if r.envelope is not None}
    on_wire: dict[int, tuple[dict[str, str], bytes, bytes]] = {}
    for headers, raw in relay.requests():
        plain = gzip.decompress(raw) if headers.get("content-encoding") == "gzip" else raw
        level = next((lv for lv, event_id in ids.items() if sf.Envelope.parse(plain).event_id == event_id), None)
        if level is not None:
            on_wire[level] = headers, raw, plain
    assert sorted(on_wire) == [0, 1, 9]
    for level, (headers, raw, plain) in on_wire.items():
        request = received[ids[level]]
        assert request.status == 200
        assert request.body == plain  # what the receiver decoded is the envelope the relay saw
        assert request.envelope is not None and request.envelope.items[1].payload == payload
        assert framing in headers  # sent whole (Content-Length) or streamed (chunked)
        if level == 0:
            assert "content-encoding" not in headers
            assert raw == plain
        else:
            assert headers["content-encoding"] == "gzip"
            assert raw[:3] == b"\x1f\x8b\x08"  # gzip, deflate
            assert raw[8] == GZIP_XFL[level], f"level {level}: XFL {raw[8]}"
    sizes = {level: len(raw) for level, (_, raw, _) in on_wire.items()}
    assert sizes[9] < sizes[1] < sizes[0] // 2, sizes


def test_close_flushes_and_closes_connections(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    client = sentry_init()
    sf.capture_feedback("before close")
    assert client.close(5)
    assert len(sentry_receiver.store.list_feedback()) == 1


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_uses_its_own_connection_and_queue(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    sentry_init()
    sf.capture_feedback("parent before fork")
    assert sf.flush(5)  # the parent now holds an open keep-alive connection
    assert send_from_forked_child("from the child") == 0
    sf.capture_feedback("parent after fork")
    assert sf.flush(5)
    messages = sorted(fb.message for fb in sentry_receiver.store.list_feedback())
    assert messages == ["from the child", "parent after fork", "parent before fork"]
    assert sentry_receiver.connections_opened == 2  # the parent's one, and the child's own
