"""Strict request framing: Content-Length, Transfer-Encoding and chunk sizes as RFC 9112 writes them.

Raw requests over a socket, because an HTTP client library would refuse to send most of
these. A lenient parser lets a client skip the body limit (a chunk size of ``-1`` reads
until the client closes) or smuggle a second request, so each odd framing must get a
prompt 400/501 and a closed connection.
"""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterator

import pytest

from sentry_feedback import Envelope, EnvelopeItem
from sentry_feedback.server import LocalReceiver

AUTH = "Sentry sentry_version=7, sentry_key=public, sentry_client=sentry-feedback/0.1.0"
#: How long a test waits for an answer: the bug made the server wait for more body for ever.
ANSWER_TIMEOUT = 5.0


@pytest.fixture
def receiver() -> Iterator[LocalReceiver]:
    with LocalReceiver() as local:
        yield local


def envelope() -> bytes:
    item = EnvelopeItem.from_json("feedback", {"type": "feedback", "contexts": {"feedback": {"message": "hi"}}})
    return Envelope({"event_id": "0123456789abcdef0123456789abcdef"}, [item]).serialize()


def send_raw(receiver: LocalReceiver, framing: str, body: bytes) -> tuple[int, str, bool]:
    """POST with the given framing headers; the socket stays open. Returns (status, detail, closed by server)."""
    head = (
        f"POST /api/{receiver.project_id}/envelope/ HTTP/1.1\r\n"
        f"Host: {receiver.host}:{receiver.port}\r\n"
        f"X-Sentry-Auth: {AUTH}\r\n"
        "Content-Type: application/x-sentry-envelope\r\n"
        f"{framing}\r\n"
    ).encode()
    with socket.create_connection((receiver.host, receiver.port), timeout=ANSWER_TIMEOUT) as sock:
        sock.sendall(head + body)
        response = http.client.HTTPResponse(sock)
        response.begin()
        data = response.read()
        closed = response.will_close
    detail = json.loads(data).get("detail", "") if data else ""
    return response.status, detail, closed


def test_well_formed_chunked_body_with_extensions_and_trailers(receiver: LocalReceiver) -> None:
    data = envelope()
    body = f"{len(data):X};name=value\r\n".encode() + data + b"\r\n0\r\nX-Trailer: 1\r\n\r\n"
    status, _, _ = send_raw(receiver, "Transfer-Encoding: chunked\r\n", body)
    assert status == 200
    assert len(receiver.store.list_feedback()) == 1


@pytest.mark.parametrize(
    ("size", "shown"),
    [("-1", "-1"), ("+10", "+10"), ("1_0", "1_0"), ("0x10", "0x10"), ("", ""), ("ZZ", "ZZ"), ("1" * 16, "1" * 16)],
)
def test_chunk_sizes_are_hex_digits_only(receiver: LocalReceiver, size: str, shown: str) -> None:
    status, detail, closed = send_raw(receiver, "Transfer-Encoding: chunked\r\n", f"{size}\r\n".encode())
    assert (status, closed) == (400, True)
    assert detail == f"invalid chunked body: bad chunk size {shown!r}"
    assert receiver.store.list_feedback() == []


def test_a_chunk_not_followed_by_crlf_is_refused(receiver: LocalReceiver) -> None:
    status, detail, _ = send_raw(receiver, "Transfer-Encoding: chunked\r\n", b"2\r\nabXY0\r\n\r\n")
    assert (status, detail) == (400, "invalid chunked body: a chunk is not followed by CRLF")


@pytest.mark.parametrize("value", ["1_0", "+10", "-0", " ", "10, 10", "0x10", "1e1"])
def test_content_length_is_digits_only(receiver: LocalReceiver, value: str) -> None:
    status, detail, closed = send_raw(receiver, f"Content-Length: {value}\r\n", b"x" * 10)
    assert (status, closed) == (400, True)
    assert detail.startswith("invalid Content-Length")


def test_two_different_content_lengths_are_refused(receiver: LocalReceiver) -> None:
    status, detail, _ = send_raw(receiver, "Content-Length: 2\r\nContent-Length: 3\r\n", b"abc")
    assert (status, detail) == (400, "invalid Content-Length '2, 3'")


@pytest.mark.parametrize("value", ["notchunked", "gzip, chunked", "chunked, gzip", "identity", "chunked;q=1"])
def test_transfer_encodings_other_than_chunked_are_not_implemented(receiver: LocalReceiver, value: str) -> None:
    status, detail, closed = send_raw(receiver, f"Transfer-Encoding: {value}\r\n", b"0\r\n\r\n")
    assert (status, closed) == (501, True)
    assert detail.startswith("unsupported Transfer-Encoding")


def test_transfer_encoding_with_content_length_is_refused(receiver: LocalReceiver) -> None:
    status, detail, _ = send_raw(receiver, "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", b"0\r\n\r\n")
    assert (status, detail) == (400, "both Transfer-Encoding and Content-Length")
