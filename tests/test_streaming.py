"""Large envelopes are streamed: written, compressed and sent in blocks, never whole in memory."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import sentry_feedback
from sentry_feedback import Attachment, Envelope, EnvelopeItem, HttpTransport
from sentry_feedback._attachment import BLOCK, SMALL_FILE, FileRegion
from sentry_feedback._transport import STREAM_THRESHOLD, gzip_small, gzip_stream, is_large
from sentry_feedback.server import LocalReceiver
from test_delivery import closed_port_dsn

MiB = 1024 * 1024
SRC = str(Path(sentry_feedback.__file__).resolve().parent.parent)


def _write(path: Path, size: int, seed: int = 1) -> str:
    """A file of ``size`` pseudo-random but compressible bytes; its SHA-256."""
    digest = hashlib.sha256()
    block = (hashlib.sha256(str(seed).encode()).hexdigest() * 2048).encode()[: 64 * 1024]
    with path.open("wb") as fh:
        left = size
        while left:
            piece = block[: min(left, len(block))]
            fh.write(piece)
            digest.update(piece)
            left -= len(piece)
    return digest.hexdigest()


def _stored_attachment(receiver: LocalReceiver, event_id: str) -> bytes:
    (stored,) = receiver.store.list_attachments(event_id)
    return stored.data


def test_chunks_are_the_serialized_envelope_and_large_payloads_are_sliced(tmp_path: Path) -> None:
    path = tmp_path / "big.log"
    _write(path, SMALL_FILE + 3 * BLOCK + 17)
    items = [
        EnvelopeItem.from_json("feedback", {"contexts": {"feedback": {"message": "hi"}}}),
        EnvelopeItem.from_attachment(Attachment(b"x" * (2 * BLOCK + 5), filename="mem.bin")),
        EnvelopeItem.from_attachment(Attachment(path=str(path))),
    ]
    for item in items:
        item.materialize(None)
    envelope = Envelope({"event_id": "a" * 32}, items)
    assert items[2].streamed and not items[1].streamed
    chunks = list(envelope.chunks())
    assert max(len(c) for c in chunks) <= BLOCK
    data = b"".join(chunks)
    assert data == envelope.serialize()
    parsed = Envelope.parse(data)
    assert [i.payload for i in parsed.items[1:]] == [b"x" * (2 * BLOCK + 5), path.read_bytes()]


def test_a_small_file_is_read_at_once_and_a_large_one_is_left_on_disk(tmp_path: Path) -> None:
    small, large = tmp_path / "small.txt", tmp_path / "large.txt"
    small.write_bytes(b"s" * SMALL_FILE)
    _write(large, SMALL_FILE + 1)
    assert Attachment(path=str(small))._contents() == b"s" * SMALL_FILE
    region = Attachment(path=str(large))._contents()
    assert isinstance(region, FileRegion) and (region.offset, region.length) == (0, SMALL_FILE + 1)
    with pytest.raises(sentry_feedback.AttachmentReadError, match="max_attachment_size"):
        Attachment(path=str(large))._contents(limit=SMALL_FILE)


def test_a_file_that_shrinks_before_it_is_read_fails_with_the_item(tmp_path: Path) -> None:
    from sentry_feedback._envelope import PayloadReadError

    path = tmp_path / "shrinks.log"
    _write(path, 2 * SMALL_FILE)
    item = EnvelopeItem.from_attachment(Attachment(path=str(path)))
    item.materialize(None)
    os.truncate(path, SMALL_FILE // 2)
    envelope = Envelope({}, [item])
    with pytest.raises(PayloadReadError) as caught:
        b"".join(envelope.chunks())
    assert caught.value.item is item and "shorter" in str(caught.value.error)
    assert not isinstance(caught.value, OSError)  # an HTTP library must not take it for a network error
    with pytest.raises(sentry_feedback.AttachmentReadError):  # serialize() keeps its documented error
        envelope.serialize()


def test_parse_file_leaves_large_payloads_in_the_file(tmp_path: Path) -> None:
    payload = os.urandom(SMALL_FILE + 100)
    envelope = Envelope(
        {"event_id": "b" * 32},
        [
            EnvelopeItem.from_json("feedback", {"contexts": {"feedback": {"message": "hi"}}}),
            EnvelopeItem({"type": "attachment", "filename": "a.bin"}, payload),
        ],
    )
    path = tmp_path / "cached.envelope"
    path.write_bytes(envelope.serialize())
    parsed = Envelope.parse_file(str(path))
    feedback, attachment = parsed.items
    assert not feedback.streamed and feedback.get_json()["contexts"]["feedback"]["message"] == "hi"
    assert attachment.streamed and attachment.length == len(payload) and attachment.quantity() == len(payload)
    assert attachment.payload == payload
    assert parsed.serialize() == path.read_bytes()


@pytest.mark.parametrize(
    "data",
    [b"", b"{}", b'{}\n{"type":"attachment","length":5}\nabc', b'{}\n{"type":"x"}\nline\n  \n', b"[]"],
)
def test_parse_file_and_parse_agree_on_odd_input(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "odd.envelope"
    path.write_bytes(data)
    outcomes = []
    for parse in (lambda: Envelope.parse(data), lambda: Envelope.parse_file(str(path), inline=1)):
        try:
            outcomes.append(("ok", parse().serialize()))
        except sentry_feedback.EnvelopeParseError as exc:
            outcomes.append(("error", str(exc)))
    assert outcomes[0] == outcomes[1]


def test_gzip_helpers_round_trip() -> None:
    data = json.dumps({"message": "the export button does nothing " * 40}).encode()
    for level in (1, 6, 9):
        assert gzip.decompress(gzip_small(data, level)) == data
        assert gzip.decompress(b"".join(gzip_stream(iter([data[:100], memoryview(data)[100:]]), level))) == data
    assert b"".join(gzip_stream(iter([b"a", b"b"]), 0)) == b"ab"


def test_only_large_envelopes_are_streamed(tmp_path: Path) -> None:
    small = Envelope({}, [EnvelopeItem({"type": "attachment"}, b"x" * 1000)])
    large = Envelope({}, [EnvelopeItem({"type": "attachment"}, b"x" * (STREAM_THRESHOLD + 1))])
    path = tmp_path / "f.bin"
    _write(path, SMALL_FILE + 1)
    item = EnvelopeItem.from_attachment(Attachment(path=str(path)))
    item.materialize(None)
    assert (is_large(small), is_large(large), is_large(Envelope({}, [item]))) == (False, True, True)


@pytest.mark.parametrize("compression_level", [0, 6])
def test_a_large_path_attachment_arrives_whole_over_chunked_http(tmp_path: Path, compression_level: int) -> None:
    path = tmp_path / "app.log"
    digest = _write(path, 6 * MiB + 3)
    with LocalReceiver() as receiver:
        sentry_feedback.init(dsn=receiver.dsn, compression_level=compression_level)
        event_id = sentry_feedback.send_feedback("large log", attachments=[Attachment(path=str(path))], timeout=30)
        assert hashlib.sha256(_stored_attachment(receiver, event_id)).hexdigest() == digest
        request = receiver.received[-1]
        assert request.headers.get("Transfer-Encoding") == "chunked"
        sentry_feedback.close()


def test_a_file_that_shrinks_while_sent_is_dropped_and_counted_and_the_feedback_goes(tmp_path: Path) -> None:
    path = tmp_path / "rotating.log"
    _write(path, 2 * MiB)

    class TruncatingTransport(HttpTransport):
        """Shrinks the file after it was checked, before it is read for sending."""

        def send(self, envelope: Envelope) -> object:  # type: ignore[override]
            if any(item.type == "attachment" for item in envelope.items):
                os.truncate(path, 1000)
            return super().send(envelope)

    with LocalReceiver() as receiver:
        client_reports: list[dict[str, object]] = []
        sentry_feedback.init(dsn=receiver.dsn, transport=TruncatingTransport)
        event_id = sentry_feedback.send_feedback("log rotated", attachments=[Attachment(path=str(path))], timeout=30)
        assert receiver.store.list_attachments(event_id) == []
        assert [f.event_id for f in receiver.store.list_feedback()] == [event_id]
        totals = sentry_feedback.get_client().client_reports.totals()
        client_reports.append(totals)
        assert totals.get(("internal_sdk_error", "attachment")) == 2 * MiB
        sentry_feedback.close()


def test_a_large_envelope_from_the_offline_cache_is_sent_whole(tmp_path: Path) -> None:
    path = tmp_path / "screen.bin"
    digest = _write(path, 3 * MiB + 1, seed=7)
    cache = tmp_path / "cache"
    sentry_feedback.init(
        closed_port_dsn(), cache_dir=str(cache), retry=sentry_feedback.RetryPolicy(max_attempts=1), http_timeout=1
    )
    event_id = sentry_feedback.capture_feedback("kept for later", attachments=[Attachment(path=str(path))])
    assert sentry_feedback.flush(30)
    sentry_feedback.close(1)
    os.unlink(path)  # what is sent is what the cache holds
    with LocalReceiver() as receiver:
        sentry_feedback.init(dsn=receiver.dsn, cache_dir=str(cache))
        assert sentry_feedback.flush(30)
        assert hashlib.sha256(_stored_attachment(receiver, event_id)).hexdigest() == digest
        sentry_feedback.close()


_MEMORY_SCRIPT = """
import os, sys, json, resource
sys.path.insert(0, {src!r})
import sentry_feedback
from sentry_feedback import Attachment

def rss(field):
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field):
                return int(line.split()[1]) * 1024
    raise RuntimeError(field)

sentry_feedback.init(dsn={dsn!r}, max_attachment_size=200 * 1024 * 1024)
sentry_feedback.send_feedback("warm-up", attachments=[Attachment(path={small!r})], timeout=30)
try:
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")
    method = "VmHWM"
except OSError:
    method = "ru_maxrss"
before = rss("VmRSS:") if method == "VmHWM" else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
event_id = sentry_feedback.send_feedback("100 MiB", attachments=[Attachment(path={path!r})], timeout=120)
peak = rss("VmHWM:") if method == "VmHWM" else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({{"event_id": event_id, "increase": peak - before, "method": method}}))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads its memory figures from /proc")
def test_a_100_mib_path_attachment_is_sent_with_flat_memory(tmp_path: Path) -> None:
    path, small = tmp_path / "huge.log", tmp_path / "small.log"
    digest = _write(path, 100 * MiB, seed=3)
    _write(small, SMALL_FILE + 1, seed=4)
    with LocalReceiver() as receiver:
        script = _MEMORY_SCRIPT.format(src=SRC, dsn=receiver.dsn, small=str(small), path=str(path))
        done = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True, timeout=300, check=False
        )
        assert done.returncode == 0, done.stderr
        result = json.loads(done.stdout.strip().splitlines()[-1])
        assert hashlib.sha256(_stored_attachment(receiver, result["event_id"])).hexdigest() == digest
    # Flat: the compressor's state and a few blocks, whatever the file's size.
    assert result["increase"] < 12 * MiB, result
