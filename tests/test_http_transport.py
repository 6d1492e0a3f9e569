"""The HTTP transport over real sockets against the local receiver on 127.0.0.1."""

from __future__ import annotations

import gzip
import logging
import os
import socket
import uuid
from collections.abc import Callable
from pathlib import Path

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
    sf.capture_feedback("x" * 2000)
    assert sf.flush(5)
    (request,) = sentry_receiver.received
    assert request.envelope is not None
    assert len(gzip.compress(request.body)) < len(request.body)


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
