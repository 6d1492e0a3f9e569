"""FeedbackStore: what each item type turns into, and the SQLite details."""

from __future__ import annotations

import sqlite3
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sentry_feedback._attachment import Attachment
from sentry_feedback._envelope import Envelope, EnvelopeItem
from sentry_feedback.exceptions import EnvelopeParseError
from sentry_feedback.server import FeedbackStore

EVENT_ID = "a" * 32


@pytest.fixture
def store() -> Iterator[FeedbackStore]:
    with FeedbackStore() as s:
        yield s


def feedback_event(message: str = "Love it", **extra: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": "b" * 32,
        "timestamp": 1_700_000_000.5,
        "platform": "python",
        "level": "info",
        "environment": "production",
        "release": "app@1.2.3",
        "dist": "42",
        "tags": {"flavor": "vanilla", "count": 3},
        "user": {"id": "u1", "email": "user@example.com"},
        "sdk": {"name": "sentry.python.feedback", "version": "0.1.0"},
        "contexts": {
            "feedback": {
                "message": message,
                "contact_email": "jane@example.com",
                "name": "Jane",
                "url": "https://example.com/page",
                "associated_event_id": "c" * 32,
                "replay_id": "d" * 32,
                "source": "api",
            },
            "trace": {"trace_id": "e" * 32, "span_id": "f" * 16},
        },
    }
    event.update(extra)
    return event


def envelope(*items: EnvelopeItem, event_id: str | None = EVENT_ID, **headers: Any) -> Envelope:
    if event_id is not None:
        headers["event_id"] = event_id
    return Envelope(headers, items)


def test_feedback_fields_are_extracted(store: FeedbackStore) -> None:
    store.store_envelope("1", envelope(EnvelopeItem.from_json("feedback", feedback_event())), 123)

    [feedback] = store.list_feedback()
    assert feedback == store.get_feedback(EVENT_ID)
    assert feedback.event_id == EVENT_ID  # the envelope header wins over the payload's "b"*32
    assert feedback.project_id == "1"
    assert feedback.message == "Love it"
    assert feedback.contact_email == "jane@example.com"
    assert feedback.name == "Jane"
    assert feedback.url == "https://example.com/page"
    assert feedback.associated_event_id == "c" * 32
    assert feedback.replay_id == "d" * 32
    assert feedback.source == "api"
    assert (feedback.environment, feedback.release, feedback.dist) == ("production", "app@1.2.3", "42")
    assert feedback.platform == "python"
    assert feedback.timestamp == 1_700_000_000.5
    assert feedback.tags == {"flavor": "vanilla", "count": "3"}
    assert feedback.user == {"id": "u1", "email": "user@example.com"}
    assert feedback.trace_id == "e" * 32
    assert feedback.sdk == {"name": "sentry.python.feedback", "version": "0.1.0"}
    assert feedback.status == "unresolved"
    assert feedback.received_at > 1_700_000_000
    assert feedback.data["contexts"]["feedback"]["message"] == "Love it"
    assert store.list_events() == []

    [stored] = store.list_envelopes()
    assert (stored.project_id, stored.event_id, stored.size, stored.item_types) == (
        "1",
        EVENT_ID,
        123,
        ("feedback",),
    )
    assert stored.headers == {"event_id": EVENT_ID}


def test_feedback_fallbacks_and_id_normalization(store: FeedbackStore) -> None:
    event = {
        "timestamp": "2024-05-01T12:00:00.5Z",
        "tags": [["a", "1"], ["b", True]],
        "request": {"url": "https://example.com/from-request"},
        "contexts": {"feedback": {"message": "Hi"}},
    }
    dashed = str(uuid.UUID("0123456789abcdef0123456789abcdef")).upper()
    headers = {"trace": {"trace_id": "9" * 32}, "sdk": {"name": "from-header"}}
    store.store_envelope("7", envelope(EnvelopeItem.from_json("feedback", event), event_id=dashed, **headers), 1)

    feedback = store.get_feedback(dashed)
    assert feedback is not None
    assert feedback.event_id == "0123456789abcdef0123456789abcdef"
    assert feedback.url == "https://example.com/from-request"
    assert feedback.trace_id == "9" * 32
    assert feedback.sdk == {"name": "from-header"}
    assert feedback.tags == {"a": "1", "b": "true"}
    assert feedback.timestamp == 1_714_564_800.5
    assert feedback.contact_email is None
    assert feedback.user is None
    assert store.list_feedback("7") == [feedback]
    assert store.list_feedback("8") == []


def test_payload_event_id_used_without_header_and_generated_without_either(store: FeedbackStore) -> None:
    store.store_envelope("1", envelope(EnvelopeItem.from_json("feedback", feedback_event()), event_id=None), 1)
    event = feedback_event("second")
    del event["event_id"]
    store.store_envelope("1", envelope(EnvelopeItem.from_json("feedback", event), event_id=None), 1)

    first, second = store.list_feedback()
    assert first.event_id == "b" * 32
    assert len(second.event_id) == 32
    assert second.event_id != first.event_id


def test_events_types_and_messages(store: FeedbackStore) -> None:
    error = {
        "level": "error",
        "timestamp": 1_700_000_000,
        "exception": {"values": [{"type": "KeyError", "value": "x"}, {"type": "ValueError", "value": "boom"}]},
    }
    message = {"level": "info", "logentry": {"message": "hello %s", "formatted": "hello world"}}
    store.store_envelope("1", envelope(EnvelopeItem.from_json("event", error), event_id="1" * 32), 1)
    store.store_envelope("1", envelope(EnvelopeItem.from_json("event", message), event_id="2" * 32), 1)

    err, msg = store.list_events()
    assert (err.event_id, err.type, err.level, err.message) == (
        "1" * 32,
        "error",
        "error",
        "ValueError: boom",
    )
    assert err.timestamp == 1_700_000_000.0
    assert (msg.type, msg.level, msg.message) == ("default", "info", "hello world")
    assert store.get_event("2" * 32) == msg
    assert store.list_events(event_type="error") == [err]
    assert store.list_events("other") == []
    assert store.get_event("3" * 32) is None
    assert store.list_feedback() == []


def test_attachments_belong_to_the_envelope_event(store: FeedbackStore) -> None:
    binary = bytes(range(256)) + b"\n\r\n\x00"
    env = envelope(
        EnvelopeItem.from_json("feedback", feedback_event()),
        EnvelopeItem.from_attachment(Attachment(binary, filename="screen.png")),
        EnvelopeItem.from_attachment(Attachment(b"log\n", filename="app.log", attachment_type="event.view_hierarchy")),
    )
    store.store_envelope("1", env, 1)

    png, log = store.list_attachments(EVENT_ID)
    assert (png.filename, png.content_type, png.attachment_type) == (
        "screen.png",
        "image/png",
        "event.attachment",
    )
    assert png.data == binary
    assert png.size == len(binary)
    assert (log.filename, log.content_type, log.attachment_type) == (
        "app.log",
        "text/plain",
        "event.view_hierarchy",
    )
    assert log.data == b"log\n"
    assert store.list_attachments("b" * 32) == []


def test_attachment_without_envelope_event_id_uses_the_single_event(store: FeedbackStore) -> None:
    env = envelope(
        EnvelopeItem.from_json("event", {"event_id": "5" * 32, "message": "m"}),
        EnvelopeItem({"type": "attachment", "filename": "a.bin"}, b"\x00\x01"),
        event_id=None,
    )
    store.store_envelope("1", env, 1)
    [attachment] = store.list_attachments("5" * 32)
    assert (attachment.content_type, attachment.attachment_type) == (
        "application/octet-stream",
        "event.attachment",
    )


def test_client_report_totals(store: FeedbackStore) -> None:
    def report(*entries: tuple[str, str, int]) -> Envelope:
        payload = {
            "timestamp": 1_700_000_000,
            "discarded_events": [{"reason": r, "category": c, "quantity": q} for r, c, q in entries],
        }
        return envelope(EnvelopeItem.from_json("client_report", payload), event_id=None)

    store.store_envelope("1", report(("ratelimit_backoff", "feedback", 2), ("queue_overflow", "error", 1)), 1)
    store.store_envelope("1", report(("ratelimit_backoff", "feedback", 3)), 1)
    store.store_envelope("2", report(("before_send", "feedback", 4)), 1)

    assert store.client_report_totals() == {
        ("ratelimit_backoff", "feedback"): 5,
        ("queue_overflow", "error"): 1,
        ("before_send", "feedback"): 4,
    }
    assert store.client_report_totals("2") == {("before_send", "feedback"): 4}


def test_unknown_items_are_kept_in_envelopes_only(store: FeedbackStore) -> None:
    env = envelope(EnvelopeItem({"type": "profile"}, b'{"version":"1"}'), EnvelopeItem({"type": "future"}, b"\xff"))
    store.store_envelope("1", env, 99)
    assert store.count_envelopes() == 1
    assert store.list_envelopes()[0].item_types == ("profile", "future")
    assert store.list_events() == []
    assert store.list_feedback() == []


@pytest.mark.parametrize(
    ("item", "reason"),
    [
        (EnvelopeItem({"type": "feedback"}, b"not json"), "feedback item payload is not JSON"),
        (EnvelopeItem({"type": "event"}, b"[1, 2]"), "event item payload must be a JSON object"),
        (EnvelopeItem.from_json("feedback", {"contexts": {}}), "no contexts.feedback object"),
        (
            EnvelopeItem.from_json("feedback", {"contexts": {"feedback": {"message": " "}}}),
            "no contexts.feedback.message",
        ),
        (EnvelopeItem({"type": "attachment"}, b"data"), "attachment item has no filename"),
        (
            EnvelopeItem.from_json("client_report", {"discarded_events": [{"reason": "x", "category": "y"}]}),
            "quantity must be an integer from 0 to 9007199254740991, not null",
        ),
    ],
)
def test_invalid_items_raise_and_store_nothing(store: FeedbackStore, item: EnvelopeItem, reason: str) -> None:
    good = EnvelopeItem.from_json("event", {"message": "stored first in the envelope"})
    with pytest.raises(EnvelopeParseError, match=reason):
        store.store_envelope("1", envelope(good, item), 1)
    assert store.count_envelopes() == 0
    assert store.list_events() == []


def test_duplicate_event_id_keeps_the_first(store: FeedbackStore) -> None:
    def env(message: str) -> Envelope:
        return envelope(
            EnvelopeItem.from_json("feedback", feedback_event(message)),
            EnvelopeItem.from_attachment(Attachment(b"x", filename="x.txt")),
        )

    store.store_envelope("1", env("first"), 1)
    assert store.set_feedback_status(EVENT_ID, "resolved")
    store.store_envelope("1", env("retry"), 1)

    [feedback] = store.list_feedback()
    assert (feedback.message, feedback.status) == ("first", "resolved")
    assert len(store.list_attachments(EVENT_ID)) == 1
    assert store.count_envelopes() == 2
    assert not store.set_feedback_status("0" * 32, "resolved")


def test_file_database_persists(tmp_path: Path) -> None:
    path = str(tmp_path / "feedback.sqlite3")
    with FeedbackStore(path) as first:
        env = envelope(
            EnvelopeItem.from_json("feedback", feedback_event()),
            EnvelopeItem.from_attachment(Attachment(b"\x00\n\x01", filename="blob.bin")),
        )
        first.store_envelope("1", env, 10)

    with FeedbackStore(path) as reopened:
        feedback = reopened.get_feedback(EVENT_ID)
        assert feedback is not None
        assert feedback.message == "Love it"
        assert reopened.list_attachments(EVENT_ID)[0].data == b"\x00\n\x01"
        assert reopened.count_envelopes() == 1

    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert conn.execute("SELECT status FROM feedback").fetchall() == [("unresolved",)]


def test_concurrent_writers(store: FeedbackStore) -> None:
    barrier = threading.Barrier(8)

    def write(n: int) -> None:
        barrier.wait()
        for i in range(20):
            event = feedback_event(f"{n}-{i}")
            store.store_envelope("1", envelope(EnvelopeItem.from_json("feedback", event), event_id=uuid.uuid4().hex), 1)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert store.count_envelopes() == 160
    assert len(store.list_feedback()) == 160


def test_closed_store_raises() -> None:
    store = FeedbackStore()
    store.close()
    store.close()
    with pytest.raises(sqlite3.ProgrammingError):
        store.count_envelopes()


def _stored_database(path: Path) -> None:
    with FeedbackStore(str(path)) as store:
        store.store_envelope("1", envelope(EnvelopeItem.from_json("feedback", feedback_event())), 10)


@pytest.mark.parametrize("options", [{"create": False}, {"read_only": True}, {"read_only": True, "create": True}])
def test_missing_file_raises_and_creates_nothing(tmp_path: Path, options: dict[str, bool]) -> None:
    path = tmp_path / "missing.sqlite3"
    with pytest.raises(FileNotFoundError, match="FeedbackStore database file does not exist") as info:
        FeedbackStore(str(path), **options)
    assert info.value.filename == str(path)
    assert str(path) in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_create_false_opens_an_existing_file_for_writing(tmp_path: Path) -> None:
    path = tmp_path / "feedback.sqlite3"
    _stored_database(path)
    with FeedbackStore(str(path), create=False) as store:
        assert not store.read_only
        assert store.set_feedback_status(EVENT_ID, "resolved")
    with FeedbackStore(str(path)) as store:
        [feedback] = store.list_feedback()
        assert feedback.status == "resolved"


def test_read_only_store_reads_an_existing_database(tmp_path: Path) -> None:
    path = tmp_path / "a dir?#%" / "feedback.sqlite3"  # characters that mean something in a URI
    path.parent.mkdir()
    _stored_database(path)
    with FeedbackStore(str(path), read_only=True) as store:
        assert store.read_only
        assert repr(store) == f"FeedbackStore({str(path)!r}, read_only=True)"
        [feedback] = store.list_feedback()
        assert feedback.message == "Love it"
        assert store.get_feedback(EVENT_ID) == feedback
        assert store.count_envelopes() == 1


def test_read_only_store_sees_what_a_writer_stores_meanwhile(tmp_path: Path) -> None:
    path = tmp_path / "feedback.sqlite3"
    with FeedbackStore(str(path)) as writer, FeedbackStore(str(path), read_only=True) as reader:
        assert reader.list_feedback() == []
        writer.store_envelope("1", envelope(EnvelopeItem.from_json("feedback", feedback_event())), 10)
        assert [feedback.message for feedback in reader.list_feedback()] == ["Love it"]


def test_read_only_store_refuses_writes(tmp_path: Path) -> None:
    path = tmp_path / "feedback.sqlite3"
    _stored_database(path)
    env = envelope(EnvelopeItem.from_json("feedback", feedback_event("second")), event_id="1" * 32)
    with FeedbackStore(str(path), read_only=True) as store:
        with pytest.raises(PermissionError, match="read_only=True"):
            store.store_envelope("1", env, 10)
        with pytest.raises(PermissionError, match="read_only=True"):
            store.set_feedback_status(EVENT_ID, "resolved")
    with FeedbackStore(str(path)) as store:
        [feedback] = store.list_feedback()
        assert (feedback.message, feedback.status) == ("Love it", "unresolved")
        assert store.count_envelopes() == 1


def test_memory_store_options() -> None:
    with FeedbackStore(":memory:", create=False) as store:  # always a new database: nothing to look for
        assert store.list_feedback() == []
    with pytest.raises(ValueError, match="in-memory"):
        FeedbackStore(":memory:", read_only=True)
