"""capture_feedback through the whole pipeline, captured in memory with MockTransport."""

from __future__ import annotations

import logging
import re
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest

import sentry_feedback as sf
from sentry_feedback.testing import MockTransport, normalize_with_relay

ERROR_ID = "3c8a0f2e-1b2c-4d5e-8f90-a1b2c3d4e5f6"


@pytest.fixture
def transport() -> MockTransport:
    return MockTransport()


def init(transport: MockTransport, **options: Any) -> sf.Client:
    return sf.init(transport=transport, **options)


def event_id_of(value: str | None) -> str:
    """``value``, checked to be an event id: 32 lower-case hex digits."""
    assert value is not None and re.fullmatch(r"[0-9a-f]{32}", value), value
    return value


def messages_by_id(transport: MockTransport) -> dict[str, str]:
    """``{event_id: message}`` of every feedback the transport received."""
    return {fb["event_id"]: fb["contexts"]["feedback"]["message"] for fb in transport.feedback}


def test_issue_example_end_to_end(transport: MockTransport, tmp_path: Path) -> None:
    screenshot = tmp_path / "screenshot.png"
    screenshot.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x01binary\nbytes")
    seen_hints: list[dict[str, Any]] = []

    def scrub(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
        seen_hints.append(hint)
        event["contexts"]["feedback"]["message"] = event["contexts"]["feedback"]["message"].upper()
        return event

    init(transport, release="shop@1.4.2", environment="prod", before_send_feedback=scrub)
    sf.set_user({"id": "42", "email": "jane@example.com"})
    with sf.with_scope() as scope:
        scope.set_tag("page", "checkout")
        event_id = sf.capture_feedback(
            "The pay button does nothing",
            email="jane@example.com",
            name="Jane",
            url="https://shop.example.com/checkout",
            associated_event_id=ERROR_ID,
            attachments=[
                sf.Attachment(path=str(screenshot)),
                sf.Attachment(b"log lines", filename="app.log"),
            ],
        )
    assert sf.flush(timeout=5)
    event_id_of(event_id)

    (envelope,) = transport.envelopes
    assert envelope.headers["event_id"] == event_id
    assert envelope.headers["sdk"]["name"] == "sentry.python.feedback"
    assert envelope.headers["sent_at"].endswith("Z")
    assert [item.type for item in envelope.items] == ["feedback", "attachment", "attachment"]
    assert all("length" in item.headers for item in envelope.items)
    feedback_item, png, log = envelope.items
    event = feedback_item.get_json()
    assert event["event_id"] == event_id
    assert event["type"] == "feedback"
    assert event["level"] == "info"
    assert event["platform"] == "python"
    assert isinstance(event["timestamp"], float)
    assert event["release"] == "shop@1.4.2"
    assert event["environment"] == "prod"
    assert event["contexts"]["feedback"] == {
        "message": "THE PAY BUTTON DOES NOTHING",
        "contact_email": "jane@example.com",
        "name": "Jane",
        "url": "https://shop.example.com/checkout",
        "associated_event_id": uuid.UUID(ERROR_ID).hex,
    }
    assert event["tags"] == {"page": "checkout"}
    assert event["user"] == {"id": "42", "email": "jane@example.com"}
    assert event["contexts"]["runtime"]["name"]
    assert event["contexts"]["os"]["name"]
    assert len(event["contexts"]["trace"]["trace_id"]) == 32
    assert png.payload == screenshot.read_bytes()
    assert png.headers["filename"] == "screenshot.png"
    assert png.headers["content_type"] == "image/png"
    assert png.headers["attachment_type"] == "event.attachment"
    assert log.payload == b"log lines"
    assert log.headers["content_type"] == "text/plain"
    assert [a.filename for a in seen_hints[0]["attachments"]] == ["screenshot.png", "app.log"]
    normalize_with_relay(event)


def test_only_given_fields_and_relay_valid(transport: MockTransport) -> None:
    init(transport)
    sf.capture_feedback("hello")
    sf.capture_feedback(
        "with all",
        email="a@example.com",
        name="A",
        url="https://x.example/",
        associated_event_id=uuid.uuid4().hex,
        replay_id=str(uuid.uuid4()),
        source="widget",
        tags={"n": 1},
    )
    assert sf.flush(5)
    first, second = transport.feedback
    assert first["contexts"]["feedback"] == {"message": "hello"}
    assert set(second["contexts"]["feedback"]) == {
        "message",
        "contact_email",
        "name",
        "url",
        "associated_event_id",
        "replay_id",
        "source",
    }
    assert second["tags"] == {"n": "1"}
    for event in (first, second):
        normalized = normalize_with_relay(event)
        assert normalized["type"] == "feedback"


def test_envelope_trace_header_with_dsn(sentry_receiver: Any) -> None:
    transport = MockTransport()
    sf.init(dsn=sentry_receiver.dsn, transport=transport, release="r1", environment="staging")
    event_id = sf.capture_feedback("x")
    assert sf.flush(5)
    (envelope,) = transport.envelopes
    trace = envelope.headers["trace"]
    event = transport.feedback[0]
    assert 0.0 <= float(trace.pop("sample_rand")) < 1.0
    assert trace == {
        "trace_id": event["contexts"]["trace"]["trace_id"],
        "public_key": "public",
        "release": "r1",
        "environment": "staging",
    }
    assert envelope.event_id == event_id


def test_scope_data_merges_and_event_values_win(transport: MockTransport) -> None:
    init(transport)
    sf.get_global_scope().set_tag("layer", "global")
    sf.get_global_scope().set_tag("only_global", "g")
    sf.get_global_scope().set_context("app", {"name": "shop"})
    sf.set_tag("layer", "isolation")
    sf.set_extra("cart", {"items": 3})
    sf.set_user({"id": "1", "username": "iso"})
    sf.add_breadcrumb(message="opened cart", category="ui")
    with sf.with_scope() as scope:
        scope.set_tag("layer", "current")
        scope.set_user({"id": "2"})
        scope.add_breadcrumb({"message": "clicked pay"})
        sf.capture_feedback("msg", tags={"layer": "event"})
        sf.capture_feedback("msg2")
    assert sf.flush(5)
    own, scoped = transport.feedback
    assert own["tags"] == {"layer": "event", "only_global": "g"}
    assert scoped["tags"]["layer"] == "current"
    assert scoped["user"] == {"id": "2", "username": "iso"}
    assert scoped["extra"] == {"cart": {"items": 3}}
    assert scoped["contexts"]["app"] == {"name": "shop"}
    assert [c["message"] for c in scoped["breadcrumbs"]["values"]] == ["opened cart", "clicked pay"]
    assert scoped["level"] == "info"


def test_processors_run_global_isolation_current_then_hook(transport: MockTransport) -> None:
    order: list[str] = []

    def tagger(name: str) -> Any:
        def processor(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
            order.append(name)
            return event

        return processor

    def before_send(event: dict[str, Any], hint: dict[str, Any]) -> None:
        raise AssertionError("before_send must never see feedback")

    init(transport, before_send=before_send, before_send_feedback=tagger("hook"))
    sf.get_global_scope().add_event_processor(tagger("global"))
    sf.get_isolation_scope().add_event_processor(tagger("isolation"))
    with sf.with_scope() as scope:
        scope.add_event_processor(tagger("current"))
        event_id = event_id_of(sf.capture_feedback("x"))
    assert order == ["global", "isolation", "current", "hook"]
    assert sf.flush(5)
    assert messages_by_id(transport) == {event_id: "x"}


def test_before_send_feedback_not_called_for_messages(transport: MockTransport) -> None:
    calls: list[str] = []
    init(
        transport,
        before_send_feedback=lambda e, h: calls.append("feedback") or e,
        before_send=lambda e, h: calls.append("send") or e,
    )
    sf.capture_message("hello")
    sf.capture_feedback("hi")
    assert calls == ["send", "feedback"]


@pytest.mark.parametrize(
    ("message", "kwargs"),
    [
        ("", {}),
        ("   \n\t", {}),
        ("x" * 4097, {}),
        (None, {}),
        ("ok", {"associated_event_id": "not-a-uuid"}),
        ("ok", {"replay_id": "1234"}),
        ("ok", {"email": 42}),
    ],
)
def test_invalid_feedback_is_dropped_logged_and_counted(
    transport: MockTransport, caplog: pytest.LogCaptureFixture, message: Any, kwargs: dict[str, Any]
) -> None:
    client = init(transport)
    with caplog.at_level(logging.WARNING, logger="sentry_feedback"):
        result = sf.capture_feedback(message, attachments=[sf.Attachment(b"12345", filename="a.txt")], **kwargs)
    assert result is None
    assert "invalid feedback" in caplog.text
    assert client.client_reports.totals() == {("invalid", "feedback"): 1, ("invalid", "attachment"): 5}
    with pytest.raises(sf.InvalidFeedbackError):
        sf.send_feedback(message, **kwargs)


def test_message_of_4096_characters_is_accepted(transport: MockTransport) -> None:
    init(transport)
    event_id = event_id_of(sf.capture_feedback("é" * 4096))
    assert sf.flush(5)
    assert messages_by_id(transport) == {event_id: "é" * 4096}


@pytest.mark.parametrize(
    ("where", "reason"),
    [("processor", "event_processor"), ("hook", "before_send")],
)
def test_returning_none_drops_with_reason(transport: MockTransport, where: str, reason: str) -> None:
    drop = lambda event, hint: None  # noqa: E731
    client = init(transport, before_send_feedback=drop if where == "hook" else None)
    if where == "processor":
        sf.add_event_processor(drop)
    assert sf.capture_feedback("x", attachments=[sf.Attachment(b"abc", filename="f.bin")]) is None
    assert client.client_reports.totals() == {(reason, "feedback"): 1, (reason, "attachment"): 3}
    with pytest.raises(sf.FeedbackDroppedError) as info:
        sf.send_feedback("x")
    assert info.value.reason == reason
    assert sf.flush(5)
    assert transport.feedback == []


@pytest.mark.parametrize("where", ["processor", "hook"])
def test_callback_that_raises_is_logged_never_raised(
    transport: MockTransport, caplog: pytest.LogCaptureFixture, where: str
) -> None:
    def boom(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
        raise RuntimeError("kaput")

    client = init(transport, before_send_feedback=boom if where == "hook" else None)
    if where == "processor":
        sf.add_event_processor(boom)
    with caplog.at_level(logging.ERROR, logger="sentry_feedback"):
        assert sf.capture_feedback("x") is None
    assert "kaput" in caplog.text
    assert client.client_reports.totals() == {("callback_error", "feedback"): 1}
    with pytest.raises(sf.FeedbackDroppedError) as info:
        sf.send_feedback("x")
    assert info.value.reason == "callback_error"
    assert isinstance(info.value.__cause__, RuntimeError)


def test_hint_and_scope_attachments_travel_with_feedback(transport: MockTransport) -> None:
    init(transport)
    sf.add_attachment(b"iso", filename="iso.txt")
    with sf.with_scope() as scope:
        scope.add_attachment(sf.Attachment(b"cur", filename="cur.txt"))
        sf.capture_feedback(
            "x",
            hint={"attachments": [sf.Attachment(b"hint", filename="hint.txt")]},
            attachments=[sf.Attachment(b"arg", filename="arg.txt")],
        )
    assert sf.flush(5)
    (envelope,) = transport.envelopes
    names = [item.headers["filename"] for item in envelope.items_of_type("attachment")]
    assert names == ["iso.txt", "cur.txt", "hint.txt", "arg.txt"]


def test_hook_can_remove_attachments_via_hint(transport: MockTransport) -> None:
    def strip_logs(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
        hint["attachments"] = [a for a in hint["attachments"] if not a.filename.endswith(".log")]
        return event

    init(transport, before_send_feedback=strip_logs)
    sf.capture_feedback("x", attachments=[sf.Attachment(b"1", filename="a.log"), sf.Attachment(b"2", filename="b.png")])
    assert sf.flush(5)
    assert [i.headers["filename"] for i in transport.envelopes[0].items_of_type("attachment")] == ["b.png"]


def test_path_attachment_is_read_on_the_worker_not_at_capture(tmp_path: Path) -> None:
    gate = threading.Event()
    transport = MockTransport(lambda envelope: gate.wait(5) and None)
    init(transport)
    sf.capture_feedback("first")  # occupies the worker until the gate opens
    path = tmp_path / "later.log"
    event_id = event_id_of(sf.capture_feedback("second", attachments=[sf.Attachment(path=str(path))]))
    path.write_bytes(b"written after capture")
    gate.set()
    assert sf.flush(5)
    assert transport.envelopes[1].event_id == event_id
    assert messages_by_id(transport)[event_id] == "second"
    attachment = transport.envelopes[1].items_of_type("attachment")[0]
    assert attachment.payload == b"written after capture"


def test_unreadable_attachment_is_counted_and_feedback_still_sent(transport: MockTransport, tmp_path: Path) -> None:
    client = init(transport)
    sf.capture_feedback("x", attachments=[sf.Attachment(path=str(tmp_path / "missing.png"))])
    assert sf.flush(5)
    assert len(transport.feedback) == 1
    assert transport.envelopes[0].items_of_type("attachment") == []
    assert client.client_reports.totals() == {("internal_sdk_error", "attachment"): 1}


def test_oversized_attachment_dropped_feedback_still_goes(transport: MockTransport) -> None:
    client = init(transport, max_attachment_size=10)
    sf.capture_feedback(
        "x",
        attachments=[
            sf.Attachment(b"0123456789AB", filename="big.bin"),
            sf.Attachment(b"small", filename="small.bin"),
        ],
    )
    assert sf.flush(5)
    (envelope,) = transport.envelopes
    assert [i.headers["filename"] for i in envelope.items_of_type("attachment")] == ["small.bin"]
    assert client.client_reports.totals() == {("invalid", "attachment"): 12}


def test_client_reports_ride_on_the_next_envelope(transport: MockTransport) -> None:
    init(transport)
    sf.capture_feedback("  ")
    sf.capture_feedback("valid")
    assert sf.flush(5)
    (envelope,) = transport.envelopes
    assert [i.type for i in envelope.items] == ["feedback", "client_report"]
    assert transport.discarded() == {("invalid", "feedback"): 1}


def test_client_reports_sent_alone_at_flush(transport: MockTransport) -> None:
    init(transport)
    sf.capture_feedback("")
    sf.capture_feedback("")
    assert sf.flush(5)
    (envelope,) = transport.envelopes
    assert [i.type for i in envelope.items] == ["client_report"]
    assert transport.discarded() == {("invalid", "feedback"): 2}


def test_send_client_reports_false(transport: MockTransport) -> None:
    client = init(transport, send_client_reports=False)
    sf.capture_feedback("")
    assert sf.flush(5)
    assert transport.envelopes == []
    assert client.client_reports.totals() == {("invalid", "feedback"): 1}


def test_queue_overflow_returns_none_and_counts(transport: MockTransport) -> None:
    gate = threading.Event()
    started = threading.Event()

    def handler(envelope: sf.Envelope) -> None:
        started.set()
        gate.wait(5)

    blocking = MockTransport(handler)
    client = sf.init(transport=blocking, transport_queue_size=2)
    first = event_id_of(sf.capture_feedback("one"))
    assert started.wait(5)  # the worker holds "one"; the queue is empty again
    results = [sf.capture_feedback(f"n{i}", attachments=[sf.Attachment(b"xy", filename="a")]) for i in range(4)]
    assert results[2:] == [None, None]
    queued = [event_id_of(r) for r in results[:2]]
    assert client.client_reports.totals() == {
        ("queue_overflow", "feedback"): 2,
        ("queue_overflow", "attachment"): 4,
    }
    gate.set()
    assert sf.flush(5)
    assert messages_by_id(blocking) == {first: "one", queued[0]: "n0", queued[1]: "n1"}
    assert [len(e.items_of_type("attachment")) for e in blocking.envelopes if e.event_id in queued] == [1, 1]
    assert blocking.discarded() == {("queue_overflow", "feedback"): 2, ("queue_overflow", "attachment"): 4}


def test_custom_transport_callable(transport: MockTransport) -> None:
    seen: list[sf.Envelope] = []
    sf.init(transport=seen.append)
    event_id = sf.capture_feedback("x")
    assert sf.flush(5)
    assert [e.event_id for e in seen] == [event_id]


def test_transport_subclass_class_is_instantiated_with_options() -> None:
    made: list[sf.Options] = []

    class Recording(sf.Transport):
        def __init__(self, options: sf.Options) -> None:
            made.append(options)
            self.sent: list[sf.Envelope] = []

        def send(self, envelope: sf.Envelope) -> sf.TransportResponse:
            return sf.TransportResponse(200)

    client = sf.init(transport=Recording, release="r")
    assert made and made[0].release == "r"
    assert isinstance(client.transport, Recording)
    assert sf.send_feedback("x", timeout=5)
