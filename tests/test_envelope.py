from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sentry_feedback._attachment import BLOCK, SMALL_FILE, Attachment, FileRegion
from sentry_feedback._envelope import Envelope, EnvelopeItem, PayloadReadError, data_category
from sentry_feedback.exceptions import AttachmentReadError, EnvelopeParseError

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
    with pytest.raises(ValueError, match=r"^an envelope item header needs a string 'type'$"):
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
    with pytest.raises(EnvelopeParseError, match=r"^an envelope must be bytes$"):
        Envelope.parse(data)  # type: ignore[arg-type]


def test_parse_error_is_value_error() -> None:
    with pytest.raises(ValueError):
        Envelope.parse(b"")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not json\n", "envelope header is not valid JSON: "),
        (b"[1, 2]\n", "envelope header must be a JSON object, not list"),
        (b'"str"\n', "envelope header must be a JSON object, not str"),
        (b"{}\n[]\n", "item header at byte 3 must be a JSON object, not list"),
        (b"[" * 100_000 + b"]" * 100_000, "envelope header is nested too deeply"),
        (b"{}\n" + b'{"a":' * 100_000 + b"1" + b"}" * 100_000 + b"\n", "item header at byte 3 is nested too deeply"),
        (b'{}\n{"type":"attachment","length":10}\nabc\n', "attachment item is truncated: length 10, 4 bytes left"),
        (b'{}\n{"type":"attachment","length":10}\n', "attachment item is truncated: length 10, 0 bytes left"),
        (b'{}\n{"type":"attachment","length":10}', "attachment item is truncated: length 10, 0 bytes left"),
    ],
)
def test_parse_error_messages_say_what_and_where(data: bytes, message: str) -> None:
    with pytest.raises(EnvelopeParseError) as info:
        Envelope.parse(data)
    assert str(info.value).startswith(message)


def test_get_json_on_too_deeply_nested_payload_raises_parse_error() -> None:
    item = EnvelopeItem({"type": "event"}, b"[" * 100_000 + b"]" * 100_000)
    with pytest.raises(EnvelopeParseError, match=r"^event item payload is nested too deeply$"):
        item.get_json()


# --- max_items ------------------------------------------------------------------------


def _items(count: int) -> bytes:
    return b"{}\n" + b"".join(b'{"type":"attachment","length":1}\nx\n' for _ in range(count))


def test_parse_max_items_allows_exactly_that_many() -> None:
    assert len(Envelope.parse(_items(3), max_items=3)) == 3
    assert len(Envelope.parse(_items(0), max_items=0)) == 0


@pytest.mark.parametrize(("count", "max_items"), [(4, 3), (1, 0)])
def test_parse_max_items_refuses_one_more(count: int, max_items: int) -> None:
    with pytest.raises(EnvelopeParseError, match=f"^envelope has more than {max_items} items$"):
        Envelope.parse(_items(count), max_items=max_items)


def test_parse_file_max_items(tmp_path: Path) -> None:
    path = tmp_path / "e.envelope"
    path.write_bytes(_items(3))
    assert len(Envelope.parse_file(str(path), max_items=3)) == 3
    with pytest.raises(EnvelopeParseError, match=r"^envelope has more than 2 items$"):
        Envelope.parse_file(str(path), max_items=2)


# --- prepare (scrubbing before the payload is read) -----------------------------------


def test_prepare_runs_once_in_place_before_the_payload_is_serialized() -> None:
    seen: list[dict[str, Any]] = []

    def scrub(event: dict[str, Any]) -> None:
        seen.append(dict(event))
        event["user"] = "[Filtered]"

    event: dict[str, Any] = {"user": "jane"}
    item = EnvelopeItem.from_json("event", event, prepare=scrub)
    assert seen == []  # not at creation
    assert json.loads(item.payload) == {"user": "[Filtered]"}
    assert event == {"user": "[Filtered]"}
    assert item.get_json() is event
    assert seen == [{"user": "jane"}]


def test_prepare_runs_before_get_json_and_not_again_for_the_payload() -> None:
    calls: list[object] = []

    def scrub(event: dict[str, Any]) -> None:
        calls.append(event)
        event["message"] = "x"

    event: dict[str, Any] = {"message": "secret"}
    item = EnvelopeItem.from_json("event", event, prepare=scrub)
    assert item.get_json() == {"message": "x"}
    assert json.loads(item.payload) == {"message": "x"}
    assert calls == [event]


# --- chunks: the wire bytes in pieces -------------------------------------------------


def _one_attachment(payload: bytes) -> Envelope:
    return Envelope({"event_id": EVENT_ID}, [EnvelopeItem({"type": "attachment", "filename": "a.bin"}, payload)])


def test_small_envelope_is_one_chunk() -> None:
    env = _envelope()
    data = env.serialize()
    assert [bytes(c) for c in env.chunks()] == [data]


def test_payload_that_just_fits_the_block_is_gathered_with_the_headers() -> None:
    env = _one_attachment(b"p" * 100)
    data = env.serialize()
    head = data[:-101]  # headers and their newlines, without the payload and the final newline
    assert [bytes(c) for c in env.chunks(len(data) - 1)] == [data]
    # One byte less room: the payload is a piece of its own.
    assert [bytes(c) for c in env.chunks(len(data) - 2)] == [head, b"p" * 100, b"\n"]
    assert [bytes(c) for c in env.chunks(150)] == [head, b"p" * 100, b"\n"]


def test_large_payload_in_memory_is_sliced_into_blocks() -> None:
    payload = bytes(range(256)) * 1000  # 256000 bytes
    env = _one_attachment(payload)
    chunks = [bytes(c) for c in env.chunks(100_000)]
    head = chunks[0]
    assert head.endswith(b'"length":256000}\n')
    assert chunks[1:] == [payload[:100_000], payload[100_000:200_000], payload[200_000:], b"\n"]
    assert b"".join(chunks) == env.serialize()
    assert Envelope.parse(env.serialize()).items[0].payload == payload


def test_serialize_of_a_many_piece_envelope_is_the_pieces_joined() -> None:
    payload = b"0123456789" * (BLOCK // 4)
    env = Envelope({}, [EnvelopeItem({"type": "attachment"}, payload), EnvelopeItem({"type": "x"}, b"tail")])
    data = env.serialize()
    assert (
        data
        == b'{}\n{"type":"attachment","length":%d}\n' % len(payload) + payload + b'\n{"type":"x","length":4}\ntail\n'
    )
    assert len(list(env.chunks())) > 2


@pytest.mark.parametrize("block", [1, 3, 64, 65, 1000])
def test_item_chunks_of_an_in_memory_payload(block: int) -> None:
    payload = bytes(range(200)) + b"!"
    item = EnvelopeItem({"type": "attachment"}, payload)
    chunks = [bytes(c) for c in item.chunks(block)]
    assert b"".join(chunks) == payload
    assert all(len(c) == block for c in chunks[:-1])
    assert 0 < len(chunks[-1]) <= block
    assert len(chunks) == -(-len(payload) // block)


def test_item_chunks_of_a_lazy_json_payload() -> None:
    item = EnvelopeItem.from_json("client_report", _client_report())
    assert b"".join(item.chunks(7)) == item.payload
    assert [bytes(c) for c in item.chunks()] == [item.payload]


def test_item_chunks_of_a_file_region(tmp_path: Path) -> None:
    path = tmp_path / "region.bin"
    path.write_bytes(b"head" + bytes(range(256)) * 4 + b"tail")
    item = EnvelopeItem({"type": "attachment"}, region=FileRegion(str(path), 4, 1024))
    assert item.streamed
    assert item.length == 1024
    region = bytes(range(256)) * 4
    assert [bytes(c) for c in item.chunks(300)] == [region[:300], region[300:600], region[600:900], region[900:]]


def test_a_streamed_payload_is_read_from_its_file_as_it_is_written(tmp_path: Path) -> None:
    path = tmp_path / "live.log"
    path.write_bytes(b"a" * 100 + b"b" * 100)
    item = EnvelopeItem({"type": "attachment"}, region=FileRegion(str(path), 0, 200))
    pieces = item.chunks(100)
    assert next(pieces) == b"a" * 100
    with path.open("r+b") as fh:  # the second block changes before it is reached: it was not read yet
        fh.seek(100)
        fh.write(b"c" * 100)
    assert next(pieces) == b"c" * 100
    assert list(pieces) == []


def test_envelope_chunks_stream_a_file_region(tmp_path: Path) -> None:
    path = tmp_path / "big.bin"
    content = bytes(range(256)) * 40
    path.write_bytes(content)
    item = EnvelopeItem({"type": "attachment", "filename": "big.bin"}, region=FileRegion(str(path), 0, len(content)))
    env = Envelope({}, [item])
    chunks = [bytes(c) for c in env.chunks(4096)]
    assert chunks == [
        b'{}\n{"type":"attachment","filename":"big.bin","length":10240}\n',
        content[:4096],
        content[4096:8192],
        content[8192:],
        b"\n",
    ]
    assert Envelope.parse(env.serialize()).items[0].payload == content


def test_unreadable_payload_names_its_item(tmp_path: Path) -> None:
    good = EnvelopeItem({"type": "attachment"}, b"fine")
    bad = EnvelopeItem.from_attachment(Attachment(path=tmp_path / "missing.bin"))
    env = Envelope({}, [good, bad])
    with pytest.raises(PayloadReadError) as info:
        b"".join(env.chunks())
    assert info.value.item is bad
    assert isinstance(info.value.error, AttachmentReadError)
    assert str(info.value) == str(info.value.error)
    assert "missing.bin" in str(info.value)
    assert not isinstance(info.value, OSError)
    with pytest.raises(AttachmentReadError) as direct:
        env.serialize()
    assert str(direct.value) == str(info.value.error)


# --- materialize ------------------------------------------------------------------------


def test_materialize_reads_a_small_file_now(tmp_path: Path) -> None:
    path = tmp_path / "small.log"
    path.write_bytes(b"small\x00file")
    item = EnvelopeItem.from_attachment(Attachment(path=path))
    item.materialize(None)
    path.unlink()  # read already: the file may go
    assert not item.streamed
    assert item.payload == b"small\x00file"
    assert item.length == item.quantity() == len(b"small\x00file")
    item.materialize(None)  # again: nothing to read
    assert Envelope.parse(Envelope({}, [item]).serialize()).items[0].payload == b"small\x00file"


def test_materialize_leaves_a_large_file_on_disk(tmp_path: Path) -> None:
    path = tmp_path / "large.log"
    content = b"L" * (SMALL_FILE + 1)
    path.write_bytes(content)
    item = EnvelopeItem.from_attachment(Attachment(path=path))
    item.materialize(SMALL_FILE + 1)
    assert item.streamed
    assert item.length == item.quantity() == SMALL_FILE + 1
    assert b"".join(item.chunks()) == content
    assert Envelope.parse(Envelope({}, [item]).serialize()).items[0].payload == content


def test_materialize_in_memory_attachment() -> None:
    item = EnvelopeItem.from_attachment(Attachment(b"12345", filename="a.bin"))
    item.materialize(5)  # exactly the limit is fine
    assert item.payload == b"12345"
    assert not item.streamed


@pytest.mark.parametrize("limit", [0, 4])
def test_materialize_refuses_an_attachment_over_the_limit(limit: int) -> None:
    item = EnvelopeItem.from_attachment(Attachment(b"12345", filename="a.bin"))
    with pytest.raises(AttachmentReadError) as info:
        item.materialize(limit)
    assert info.value.reason == "invalid"
    assert info.value.quantity == 5


@pytest.mark.parametrize("limit", [None, 5])
def test_materialize_checks_a_payload_already_in_memory(limit: int | None) -> None:
    item = EnvelopeItem({"type": "attachment"}, b"12345")
    item.materialize(limit)  # within the limit (or none)
    assert item.payload == b"12345"
    item.materialize(None)


def test_materialize_refuses_an_in_memory_attachment_payload_over_the_limit() -> None:
    item = EnvelopeItem({"type": "attachment"}, b"123456")
    with pytest.raises(AttachmentReadError) as info:
        item.materialize(5)
    assert str(info.value) == "larger than max_attachment_size (6 > 5 bytes)"
    assert info.value.reason == "invalid"
    assert info.value.quantity == 6


@pytest.mark.parametrize("limit", [None, 1])
def test_materialize_never_limits_other_items(limit: int | None) -> None:
    report = EnvelopeItem.from_json("client_report", _client_report())
    report.materialize(limit)
    assert report.get_json() == _client_report()
    raw = EnvelopeItem({"type": "session"}, b"{}" * 50)
    raw.materialize(limit)
    assert raw.payload == b"{}" * 50


def test_materialize_a_missing_file_raises(tmp_path: Path) -> None:
    item = EnvelopeItem.from_attachment(Attachment(path=tmp_path / "gone.bin"))
    with pytest.raises(AttachmentReadError):
        item.materialize(None)


# --- span_quantity ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        (EnvelopeItem.from_json("transaction", {"spans": [{}, {}, {}]}), 4),
        (EnvelopeItem.from_json("transaction", {"spans": []}), 1),
        (EnvelopeItem.from_json("transaction", {}), 1),
        (EnvelopeItem.from_json("transaction", {"spans": "not a list"}), 1),
        (EnvelopeItem.from_json("transaction", {"spans": {"a": 1, "b": 2}}), 1),
        (EnvelopeItem.from_json("transaction", [1, 2, 3]), 1),
        (EnvelopeItem({"type": "transaction"}, b'{"spans":[{"op":"db"}]}'), 2),
        (EnvelopeItem({"type": "transaction"}, b"not json"), 1),
    ],
)
def test_span_quantity_counts_spans_plus_the_transaction(item: EnvelopeItem, expected: int) -> None:
    assert item.span_quantity() == expected


# --- parse_file: the same envelopes, large payloads left in the file --------------------


def _parse_file(tmp_path: Path, data: bytes, inline: int = SMALL_FILE) -> Envelope:
    path = tmp_path / "in.envelope"
    path.write_bytes(data)
    return Envelope.parse_file(str(path), inline=inline)


@pytest.mark.parametrize(
    "data",
    [
        b"{}",
        b"{}\n",
        b"{}\n\n",
        b"{}\n\n  \n",
        b'{"event_id":"abc"}\n{"type":"feedback"}\n{"message":"hi"}\n{"type":"attachment","filename":"a.txt"}\nhello\n',
        b'{}\n{"type":"attachment","length":3}\na\nb\n{"type":"x"}\n{"x":1}\n',
        b'{}\n{"type":"attachment"}\n\n',
        b'{}\n{"type":"attachment","length":0}\n\n{"type":"event","length":2}\n{}',
        b'{}\n{"type":"x","length":7}\n{"a":1}',
        b'{}\n{"type":"x"}\n{"a":1}',
        b'{}\n{"type":"attachment","length":5}\n\n\x00\n\n\x00\n',
    ],
)
@pytest.mark.parametrize("inline", [0, 2, SMALL_FILE])
def test_parse_file_agrees_with_parse(tmp_path: Path, data: bytes, inline: int) -> None:
    expected = Envelope.parse(data)
    parsed = _parse_file(tmp_path, data, inline)
    assert parsed.headers == expected.headers
    assert [i.headers for i in parsed] == [i.headers for i in expected]
    assert [i.payload for i in parsed] == [i.payload for i in expected]
    assert parsed.serialize() == expected.serialize()


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"{bad\n",
        b"[1, 2]\n",
        b"{}\n[]\n",
        b'{}\n{"length":3}\nabc\n',
        b'{}\n{"type":"attachment","length":-1}\nabc\n',
        b'{}\n{"type":"attachment","length":10}\nabc\n',
        b'{}\n{"type":"attachment","length":10}',
        b'{}\n{"type":"attachment","length":2}\nabc\n',
        b'{}\n{"type":"attachment","length":2}\nabc',
        b'{}\n\n{"type":"event"}\n{}\n',
        b'{}\n{"type":"event"}\n{}\n\n  x\n',
    ],
)
def test_parse_file_refuses_what_parse_refuses(tmp_path: Path, data: bytes) -> None:
    with pytest.raises(EnvelopeParseError) as expected:
        Envelope.parse(data)
    with pytest.raises(EnvelopeParseError) as info:
        _parse_file(tmp_path, data, inline=1)
    assert str(info.value) == str(expected.value)


@pytest.mark.parametrize(("size", "streamed"), [(9, False), (10, False), (11, True)])
def test_parse_file_leaves_payloads_over_inline_in_the_file(tmp_path: Path, size: int, streamed: bool) -> None:
    payload = bytes(range(size))
    data = (
        b'{}\n{"type":"event","length":2}\n{}\n{"type":"attachment","length":%d}\n' % size
        + payload
        + b'\n{"type":"x"}\nend\n'
    )
    parsed = _parse_file(tmp_path, data, inline=10)
    event, attachment, last = parsed.items
    assert not event.streamed and event.payload == b"{}"
    assert attachment.streamed is streamed
    assert attachment.headers == {"type": "attachment", "length": size}
    assert attachment.length == attachment.quantity() == size
    assert attachment.payload == payload
    assert b"".join(attachment.chunks(4)) == payload
    assert last.payload == b"end"
    assert parsed.serialize() == Envelope.parse(data).serialize()


def test_parse_file_of_a_serialized_envelope_round_trips(tmp_path: Path) -> None:
    original = _envelope()
    data = original.serialize()
    parsed = _parse_file(tmp_path, data, inline=10)
    assert [i.type for i in parsed] == ["feedback", "attachment", "client_report"]
    assert [i.streamed for i in parsed] == [True, True, True]
    assert parsed.items[0].get_json() == _feedback_event()
    assert parsed.items[1].payload == BINARY
    assert parsed.serialize() == data


def test_parse_file_missing_raises_oserror(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        Envelope.parse_file(str(tmp_path / "nope.envelope"))


def test_an_attachment_item_made_from_json_counts_its_bytes_before_it_is_serialized() -> None:
    item = EnvelopeItem.from_json("attachment", {"log": "x" * 30})
    assert item.quantity() == len(b'{"log":"' + b"x" * 30 + b'"}')
    assert item.quantity() == len(item.payload)


def test_an_attachment_item_made_from_json_counts_one_byte_for_a_digit_and_one_when_unknown() -> None:
    assert EnvelopeItem.from_json("attachment", 7).quantity() == 1

    def fails(payload: object) -> None:
        raise RuntimeError("prepare failed")

    assert EnvelopeItem.from_json("attachment", {"log": "x" * 30}, prepare=fails).quantity() == 1
