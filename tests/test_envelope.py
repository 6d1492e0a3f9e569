from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sentry_feedback._attachment import Attachment
from sentry_feedback._envelope import Envelope, EnvelopeItem, data_category
from sentry_feedback.exceptions import EnvelopeParseError

EVENT_ID = "9ec79c33ec9942ab8353589fcb2e04dc"
BINARY = b"line one\nline two\n\x00\x01\xff\xfe\n\n{not json}\n\x00"


def _feedback_event() -> dict[str, Any]:
    return {
        "event_id": EVENT_ID,
        "type": "feedback",
        "timestamp": 1700000000.25,
        "platform": "python",
        "level": "info",
        "contexts": {"feedback": {"message": "It broke\nbadly \u2603", "contact_email": "a@b.example"}},
    }


def _client_report() -> dict[str, Any]:
    return {
        "timestamp": 1700000001.5,
        "discarded_events": [{"reason": "queue_overflow", "category": "feedback", "quantity": 2}],
    }


def _envelope() -> Envelope:
    headers = {
        "event_id": EVENT_ID,
        "sent_at": "2024-01-01T00:00:00.000000Z",
        "sdk": {"name": "sentry.python.feedback", "version": "0.1.0"},
        "trace": {"trace_id": "a" * 32, "public_key": "key", "environment": "production"},
    }
    env = Envelope(headers)
    env.add_item(EnvelopeItem.from_json("feedback", _feedback_event()))
    env.add_item(
        EnvelopeItem.from_attachment(Attachment(BINARY, filename="dump.bin", content_type="application/octet-stream"))
    )
    env.add_item(EnvelopeItem.from_json("client_report", _client_report()))
    return env


def _item_header_lines(data: bytes) -> list[dict[str, Any]]:
    """Walk the serialized bytes using the explicit lengths and return item headers."""
    pos = data.index(b"\n") + 1
    headers = []
    while pos < len(data):
        end = data.index(b"\n", pos)
        header = json.loads(data[pos:end])
        headers.append(header)
        pos = end + 1 + header["length"] + 1
    return headers


# --- serialize / parse round trip -------------------------------------------------


def test_round_trip_items_and_payloads() -> None:
    data = _envelope().serialize()
    parsed = Envelope.parse(data)

    assert [item.type for item in parsed] == ["feedback", "attachment", "client_report"]
    assert len(parsed) == 3
    feedback, attachment, report = parsed.items
    assert feedback.get_json() == _feedback_event()
    assert attachment.payload == BINARY
    assert attachment.headers["filename"] == "dump.bin"
    assert attachment.headers["content_type"] == "application/octet-stream"
    assert attachment.headers["attachment_type"] == "event.attachment"
    assert report.get_json() == _client_report()


def test_round_trip_keeps_envelope_header_and_event_id() -> None:
    original = _envelope()
    parsed = Envelope.parse(original.serialize())
    assert parsed.headers == original.headers
    assert parsed.event_id == EVENT_ID


def test_round_trip_is_stable() -> None:
    data = _envelope().serialize()
    assert Envelope.parse(data).serialize() == data


def test_every_serialized_item_has_explicit_length() -> None:
    data = _envelope().serialize()
    headers = _item_header_lines(data)
    assert [h["type"] for h in headers] == ["feedback", "attachment", "client_report"]
    for header in headers:
        assert isinstance(header["length"], int)
    assert headers[1]["length"] == len(BINARY)


def test_serialized_envelope_header_is_first_line() -> None:
    data = _envelope().serialize()
    first = json.loads(data[: data.index(b"\n")])
    assert first["event_id"] == EVENT_ID
    assert data.endswith(b"\n")


def test_serialize_overrides_stale_length_header() -> None:
    env = Envelope({}, [EnvelopeItem({"type": "attachment", "length": 999}, b"abc")])
    parsed = Envelope.parse(env.serialize())
    assert parsed.items[0].headers["length"] == 3
    assert parsed.items[0].payload == b"abc"


def test_serialize_header_only_envelope() -> None:
    env = Envelope({"event_id": EVENT_ID})
    data = env.serialize()
    assert json.loads(data) == {"event_id": EVENT_ID}
    parsed = Envelope.parse(data)
    assert len(parsed) == 0
    assert parsed.event_id == EVENT_ID


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"event_id": EVENT_ID}, EVENT_ID),
        ({}, None),
        ({"event_id": 42}, None),
        ({"event_id": None}, None),
    ],
)
def test_event_id_property(headers: dict[str, Any], expected: str | None) -> None:
    assert Envelope(headers).event_id == expected


def test_items_of_type() -> None:
    env = _envelope()
    assert [i.type for i in env.items_of_type("attachment")] == ["attachment"]
    assert env.items_of_type("transaction") == []


def test_item_needs_string_type() -> None:
    with pytest.raises(ValueError, match="type"):
        EnvelopeItem({"length": 3}, b"abc")


# --- parse of hand-written envelopes ------------------------------------------------


def test_parse_items_without_length() -> None:
    data = (
        b'{"event_id":"' + EVENT_ID.encode() + b'"}\n'
        b'{"type":"feedback"}\n'
        b'{"message":"hi"}\n'
        b'{"type":"attachment","filename":"a.txt"}\n'
        b"hello world\n"
    )
    env = Envelope.parse(data)
    assert [i.type for i in env] == ["feedback", "attachment"]
    assert env.items[0].get_json() == {"message": "hi"}
    assert env.items[1].payload == b"hello world"


def test_parse_mixed_length_and_newline_terminated() -> None:
    data = b'{}\n{"type":"attachment","length":3}\na\nb\n{"type":"event"}\n{"x":1}\n'
    env = Envelope.parse(data)
    assert [i.payload for i in env] == [b"a\nb", b'{"x":1}']


def test_parse_empty_payload_without_length() -> None:
    env = Envelope.parse(b'{}\n{"type":"attachment"}\n\n')
    assert len(env) == 1
    assert env.items[0].payload == b""


def test_parse_zero_length_payload() -> None:
    env = Envelope.parse(b'{}\n{"type":"attachment","length":0}\n\n{"type":"event","length":2}\n{}')
    assert [i.payload for i in env] == [b"", b"{}"]


@pytest.mark.parametrize("trailing", [b"", b"\n"])
@pytest.mark.parametrize("with_length", [True, False])
def test_parse_final_payload_with_or_without_trailing_newline(trailing: bytes, with_length: bool) -> None:
    header = b'{"type":"event","length":7}' if with_length else b'{"type":"event"}'
    data = b"{}\n" + header + b"\n" + b'{"a":1}' + trailing
    env = Envelope.parse(data)
    assert len(env) == 1
    assert env.items[0].payload == b'{"a":1}'
    assert env.items[0].get_json() == {"a": 1}


@pytest.mark.parametrize("data", [b"{}", b"{}\n", b'{"event_id":"abc"}', b'{"event_id":"abc"}\n', b"{}\n\n"])
def test_parse_header_only(data: bytes) -> None:
    env = Envelope.parse(data)
    assert len(env) == 0
    assert env.headers == json.loads(data.strip())


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_parse_accepts_bytes_like(kind: type) -> None:
    data = _envelope().serialize()
    env = Envelope.parse(kind(data))
    assert len(env) == 3


def test_parse_binary_payload_with_length_keeps_nul_and_newlines() -> None:
    payload = b"\n\x00\n\n\x00"
    data = b"{}\n" + json.dumps({"type": "attachment", "length": len(payload)}).encode() + b"\n" + payload
    env = Envelope.parse(data + b"\n")
    assert env.items[0].payload == payload
    assert env.items[0].quantity() == len(payload)


# --- lazy attachments -----------------------------------------------------------------


def test_attachment_from_path_is_read_at_serialize_time(tmp_path: Path) -> None:
    path = tmp_path / "later.log"
    item = EnvelopeItem.from_attachment(Attachment(path=path))
    assert item.headers["filename"] == "later.log"
    assert item.headers["content_type"] == "text/plain"
    # The file does not exist yet: nothing has been read. A drop now counts 1 byte (size unknown), never 0.
    assert item.quantity() == 1
    path.write_bytes(b"written\x00after\n")
    assert item.quantity() == len(b"written\x00after\n")
    env = Envelope({"event_id": EVENT_ID}, [item])
    parsed = Envelope.parse(env.serialize())
    assert parsed.items[0].payload == b"written\x00after\n"
    assert parsed.items[0].headers["length"] == len(b"written\x00after\n")


def test_attachment_from_missing_path_raises_oserror_at_serialize(tmp_path: Path) -> None:
    item = EnvelopeItem.from_attachment(Attachment(path=tmp_path / "missing.bin"))
    env = Envelope({}, [item])
    with pytest.raises(OSError):
        env.serialize()


def test_json_payload_is_serialized_lazily() -> None:
    event: dict[str, Any] = {"message": "before"}
    item = EnvelopeItem.from_json("event", event)
    event["message"] = "after"
    assert json.loads(item.payload) == {"message": "after"}


# --- quantity and data categories -----------------------------------------------------


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        (EnvelopeItem.from_attachment(Attachment(b"12345", filename="a.bin")), 5),
        (EnvelopeItem.from_attachment(Attachment(b"", filename="a.bin")), 0),
        (EnvelopeItem({"type": "attachment"}, b"x" * 1000), 1000),
        (EnvelopeItem.from_json("feedback", {"message": "x" * 5000}), 1),
        (EnvelopeItem.from_json("event", {}), 1),
        (EnvelopeItem.from_json("client_report", _client_report()), 1),
        (EnvelopeItem({"type": "session"}, b"{}" * 50), 1),
        (EnvelopeItem({"type": "something_new"}, b"abc"), 1),
    ],
)
def test_quantity(item: EnvelopeItem, expected: int) -> None:
    assert item.quantity() == expected


def test_quantity_after_payload_materialized() -> None:
    item = EnvelopeItem.from_attachment(Attachment(b"abcdef", filename="x.bin"))
    assert item.payload == b"abcdef"
    assert item.quantity() == 6


@pytest.mark.parametrize(
    ("item_type", "category"),
    [
        ("event", "error"),
        ("feedback", "feedback"),
        ("attachment", "attachment"),
        ("client_report", "internal"),
        ("session", "session"),
        ("transaction", "transaction"),
        ("unknown", "default"),
        ("", "default"),
        ("Feedback", "default"),
    ],
)
def test_data_category(item_type: str, category: str) -> None:
    assert data_category(item_type) == category
    if item_type:
        assert EnvelopeItem({"type": item_type}, b"").data_category == category


def test_get_json_on_non_json_payload_raises_parse_error() -> None:
    item = EnvelopeItem({"type": "event"}, b"\x00not json")
    with pytest.raises(EnvelopeParseError, match="not JSON"):
        item.get_json()


# --- malformed inputs -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"", "envelope header"),
        (b"not json\n", "envelope header"),
        (b"{bad\n", "envelope header"),
        (b"[1, 2]\n", "JSON object"),
        (b'"str"\n', "JSON object"),
        (b"{}\n[]\n", "item header"),
        (b"{}\nnot json\npayload\n", "item header"),
        (b'{}\n{"length":3}\nabc\n', "type"),
        (b'{}\n{"type":3,"length":3}\nabc\n', "type"),
        (b'{}\n{"type":"","length":3}\nabc\n', "type"),
        (b'{}\n{"type":"attachment","length":-1}\nabc\n', "length"),
        (b'{}\n{"type":"attachment","length":"3"}\nabc\n', "length"),
        (b'{}\n{"type":"attachment","length":3.0}\nabc\n', "length"),
        (b'{}\n{"type":"attachment","length":true}\nabc\n', "length"),
        (b'{}\n{"type":"attachment","length":[3]}\nabc\n', "length"),
        (b'{}\n{"type":"attachment","length":10}\nabc\n', "truncated"),
        (b'{}\n{"type":"attachment","length":10}\n', "truncated"),
        (b'{}\n{"type":"attachment","length":2}\nabc\n', "longer than its length"),
        (b'{}\n{"type":"attachment","length":2}\nabc', "longer than its length"),
        (b'{}\n\n{"type":"event"}\n{}\n', "empty item header"),
    ],
)
def test_parse_malformed_raises(data: bytes, match: str) -> None:
    with pytest.raises(EnvelopeParseError, match=match) as info:
        Envelope.parse(data)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("data", ["{}\n", None, 42, ["{}"], {"a": 1}])
def test_parse_non_bytes_raises(data: object) -> None:
    with pytest.raises(EnvelopeParseError, match="bytes"):
        Envelope.parse(data)  # type: ignore[arg-type]


def test_parse_error_is_value_error() -> None:
    with pytest.raises(ValueError):
        Envelope.parse(b"")
