"""Hostile and broken requests: each is refused with the right status and reason, none gets through or breaks."""

from __future__ import annotations

import io
import json
import socket
from collections.abc import Callable
from typing import Any

import pytest

import sentry_feedback
from sentry_feedback.endpoint import EndpointOptions, FeedbackEndpoint, RateLimit
from sentry_feedback.server import LocalReceiver
from sentry_feedback.testing import MockTransport

from .conftest import BOUNDARY, Served, call, delivered, environ, multipart, post_form, post_json, tiny_png

Init = Callable[..., sentry_feedback.Client]
PNG = tiny_png()


@pytest.fixture
def transport(mock_transport: MockTransport) -> MockTransport:
    return mock_transport


def refused(answer: Any, status: int, error: str) -> dict[str, Any]:
    assert answer.status == status, answer.body
    payload: dict[str, Any] = answer.json
    assert payload["error"] == error, payload
    assert isinstance(payload["detail"], str) and payload["detail"]
    return payload


class Unreadable(io.RawIOBase):
    """A ``wsgi.input`` that must not be read."""

    def read(self, size: int = -1) -> bytes:
        raise AssertionError("the body was read")


class Endless(io.RawIOBase):
    """A chunked body that never ends; counts what was read."""

    def __init__(self) -> None:
        self.taken = 0

    def read(self, size: int = -1) -> bytes:
        size = 65536 if size is None or size < 0 else size
        self.taken += size
        return b"x" * size


# -- sizes ---------------------------------------------------------------------------------------------------------


def test_too_large_by_content_length_is_refused_unread(transport: MockTransport) -> None:
    endpoint = FeedbackEndpoint(EndpointOptions(max_body_size=1000))
    env = environ(content_type=f"multipart/form-data; boundary={BOUNDARY}", length=1001)
    env["wsgi.input"] = Unreadable()
    refused(call(endpoint, env), 413, "body_too_large")
    # JSON and URL-encoded bodies carry no files: their own, smaller limit.
    env = environ(content_type="application/json", length=64 * 1024 + 1)
    env["wsgi.input"] = Unreadable()
    refused(call(FeedbackEndpoint(), env), 413, "body_too_large")


def test_too_large_while_streaming_without_a_length(transport: MockTransport) -> None:
    endpoint = FeedbackEndpoint(EndpointOptions(max_body_size=100_000))
    stream = Endless()
    env = environ(content_type=f"multipart/form-data; boundary={BOUNDARY}", length=None)
    env.update({"wsgi.input": stream, "wsgi.input_terminated": True})
    refused(call(endpoint, env), 413, "body_too_large")
    assert stream.taken <= 100_001


def test_no_length_and_no_framing_is_411(transport: MockTransport) -> None:
    env = environ(b'{"message": "x"}', content_type="application/json", length=None)
    refused(call(FeedbackEndpoint(), env), 411, "length_required")


@pytest.mark.parametrize("length", ["abc", "-5", "1e3", " ", "99999999999999999999"])
def test_invalid_content_length(transport: MockTransport, length: str) -> None:
    env = environ(b'{"message": "x"}', content_type="application/json", length=length)
    answer = call(FeedbackEndpoint(), env)
    assert answer.status in (400, 413)


def test_lying_content_length(transport: MockTransport) -> None:
    body = json.dumps({"message": "short"}).encode()
    # Longer than the body: the client stopped sending.
    refused(
        call(FeedbackEndpoint(), environ(body, content_type="application/json", length=500)), 400, "incomplete_body"
    )
    # Shorter than the body: what is read is cut off.
    form, content_type = multipart({"message": "hello"})
    refused(
        call(FeedbackEndpoint(), environ(form, content_type=content_type, length=len(form) - 10)), 400, "invalid_form"
    )


def test_lying_content_length_over_a_socket(sentry_init: Init, serve: Callable[..., Served]) -> None:
    sentry_init()
    site = serve(FeedbackEndpoint())
    with socket.create_connection(("127.0.0.1", site.port), timeout=10) as sock:
        sock.sendall(
            b"POST /feedback HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b'Content-Length: 1000\r\n\r\n{"message": "x"}'
        )
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith((b"HTTP/1.0 400", b"HTTP/1.1 400")), answer
    assert json.loads(body)["error"] == "incomplete_body"


def test_attachment_too_large(sentry_init: Init) -> None:
    sentry_init(max_attachment_size=100)  # the client's bound applies to the endpoint too
    payload = refused(
        post_form(FeedbackEndpoint(), {"message": "m"}, [("shot", "big.png", "image/png", PNG + b"0" * 100)]),
        413,
        "attachment_too_large",
    )
    assert "big.png" in payload["detail"]
    own = FeedbackEndpoint(EndpointOptions(max_attachment_size=10))
    refused(post_form(own, {"message": "m"}, [("log", "a.log", "text/plain", b"x" * 11)]), 413, "attachment_too_large")


def test_too_many_attachments(transport: MockTransport) -> None:
    files = [("attachments", f"{n}.txt", "text/plain", b"x") for n in range(3)]
    endpoint = FeedbackEndpoint(EndpointOptions(max_attachments=2))
    refused(post_form(endpoint, {"message": "m"}, files), 400, "too_many_attachments")
    none = FeedbackEndpoint(EndpointOptions(max_attachments=0))
    refused(post_form(none, {"message": "m"}, files[:1]), 400, "too_many_attachments")


def test_huge_field_counts(transport: MockTransport) -> None:
    fields = [(f"f{n}", "x") for n in range(5000)] + [("message", "m")]
    refused(post_form(FeedbackEndpoint(), fields), 400, "too_many_fields")
    body = "&".join(f"f{n}=x" for n in range(5000)).encode() + b"&message=m"
    env = environ(body, content_type="application/x-www-form-urlencoded")
    refused(call(FeedbackEndpoint(), env), 400, "too_many_fields")
    huge = {"message": "m", "name": "n" * 70_000}
    refused(post_form(FeedbackEndpoint(), huge), 413, "field_too_large")


def test_long_values(transport: MockTransport) -> None:
    payload = refused(post_json(FeedbackEndpoint(), {"message": "x" * 4097}), 400, "message_too_long")
    assert payload["field"] == "message" and payload["limit"] == 4096
    short = FeedbackEndpoint(EndpointOptions(max_message_length=10))
    refused(post_json(short, {"message": "x" * 11}), 400, "message_too_long")
    assert post_form(short, {"message": "1234\r\n6789"}).status == 202  # a CRLF is one line break
    refused(post_json(FeedbackEndpoint(), {"message": "m", "name": "n" * 257}), 400, "invalid_field")
    refused(
        post_json(FeedbackEndpoint(), {"message": "m", "url": "https://x.example/" + "p" * 5000}), 400, "invalid_field"
    )


# -- the body's format -------------------------------------------------------------------------------------------

MALFORMED_FORMS = {
    "no boundary": (b"--x\r\n", "multipart/form-data"),
    "empty boundary": (b"--\r\n", 'multipart/form-data; boundary=""'),
    "bad boundary": (b"--a\x01b\r\n", "multipart/form-data; boundary=a\x01b"),
    "boundary too long": (b"", "multipart/form-data; boundary=" + "b" * 71),
    "no delimiter": (b"message=hello", f"multipart/form-data; boundary={BOUNDARY}"),
    "unterminated": (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="message"\r\n\r\nhello'.encode(),
        f"multipart/form-data; boundary={BOUNDARY}",
    ),
    "ends in headers": (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="message"'.encode(),
        f"multipart/form-data; boundary={BOUNDARY}",
    ),
    "no disposition": (
        f"--{BOUNDARY}\r\nContent-Type: text/plain\r\n\r\nhello\r\n--{BOUNDARY}--\r\n".encode(),
        f"multipart/form-data; boundary={BOUNDARY}",
    ),
    "not form-data": (
        f'--{BOUNDARY}\r\nContent-Disposition: attachment; name="message"\r\n\r\nhi\r\n--{BOUNDARY}--\r\n'.encode(),
        f"multipart/form-data; boundary={BOUNDARY}",
    ),
    "no name": (
        f"--{BOUNDARY}\r\nContent-Disposition: form-data\r\n\r\nhi\r\n--{BOUNDARY}--\r\n".encode(),
        f"multipart/form-data; boundary={BOUNDARY}",
    ),
    "unclosed quote": (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="message\r\n\r\nhi\r\n--{BOUNDARY}--\r\n'.encode(),
        f"multipart/form-data; boundary={BOUNDARY}",
    ),
    "huge headers": (
        f"--{BOUNDARY}\r\nX-Pad: {'p' * 10_000}\r\n\r\nhi\r\n--{BOUNDARY}--\r\n".encode(),
        f"multipart/form-data; boundary={BOUNDARY}",
    ),
    "many header lines": (
        f"--{BOUNDARY}\r\n{'X-A: 1' + chr(13) + chr(10)}".encode() * 1 + b"X-B: 1\r\n" * 40 + b"\r\nhi\r\n--x--",
        f"multipart/form-data; boundary={BOUNDARY}",
    ),
    "garbage after delimiter": (
        f"--{BOUNDARY}garbage\r\n".encode(),
        f"multipart/form-data; boundary={BOUNDARY}",
    ),
    "base64 part": (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="message"\r\nContent-Transfer-Encoding: base64\r\n'
        f"\r\naGk=\r\n--{BOUNDARY}--\r\n".encode(),
        f"multipart/form-data; boundary={BOUNDARY}",
    ),
}


@pytest.mark.parametrize(("body", "content_type"), MALFORMED_FORMS.values(), ids=MALFORMED_FORMS.keys())
def test_malformed_multipart(transport: MockTransport, body: bytes, content_type: str) -> None:
    refused(call(FeedbackEndpoint(), environ(body, content_type=content_type)), 400, "invalid_form")


def test_a_form_with_only_the_close_delimiter_has_no_message(transport: MockTransport) -> None:
    body = f"preamble\r\n--{BOUNDARY}--\r\nepilogue".encode()
    env = environ(body, content_type=f"multipart/form-data; boundary={BOUNDARY}")
    refused(call(FeedbackEndpoint(), env), 400, "missing_message")


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "text/plain",
        "text/html",
        "application/xml",
        "multipart/mixed; boundary=x",
        "application/json; charset=latin-1",
    ],
)
def test_wrong_content_types(transport: MockTransport, content_type: str | None) -> None:
    env = environ(b'{"message": "m"}', content_type=content_type)
    refused(call(FeedbackEndpoint(), env), 415, "unsupported_media_type")


@pytest.mark.parametrize(
    ("filename", "content_type", "data"),
    [
        ("page.html", "text/html", b"<script>alert(1)</script>"),
        ("tool.exe", "application/octet-stream", b"MZ\x90\x00"),
        ("shot.png", "image/png", b"<html>not an image</html>"),
        ("shot.svg", "image/svg+xml", b"<svg onload='alert(1)'/>"),
        ("noext", "", b"data"),
    ],
)
def test_attachment_types_not_allowed(transport: MockTransport, filename: str, content_type: str, data: bytes) -> None:
    answer = post_form(FeedbackEndpoint(), {"message": "m"}, [("attachments", filename, content_type, data)])
    payload = refused(answer, 415, "attachment_type_not_allowed")
    assert payload["field"] == "attachments"


def test_non_utf8(transport: MockTransport) -> None:
    body = f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="message"\r\n\r\n'.encode()
    body += b"caf\xe9\r\n" + f"--{BOUNDARY}--\r\n".encode()
    env = environ(body, content_type=f"multipart/form-data; boundary={BOUNDARY}")
    refused(call(FeedbackEndpoint(), env), 400, "invalid_encoding")
    env = environ('{"message": "café"}'.encode("latin-1"), content_type="application/json")
    refused(call(FeedbackEndpoint(), env), 400, "invalid_encoding")
    env = environ(b"message=caf%E9", content_type="application/x-www-form-urlencoded")
    refused(call(FeedbackEndpoint(), env), 400, "invalid_encoding")
    env = environ("message=café".encode(), content_type="application/x-www-form-urlencoded")
    refused(call(FeedbackEndpoint(), env), 400, "invalid_encoding")


@pytest.mark.parametrize(
    "body", [b"[]", b'"message"', b"1", b"null", b"true", b"{", b"{'message': 1}", b"\xef\xbb\xbf{}", b"[" * 100_000]
)
def test_json_that_is_not_an_object(transport: MockTransport, body: bytes) -> None:
    endpoint = FeedbackEndpoint(EndpointOptions(max_form_size=200_000))
    answer = call(endpoint, environ(body, content_type="application/json"))
    assert answer.status == 400
    assert answer.json["error"] in ("invalid_json", "invalid_encoding")


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"message": 5}, "message"),
        ({"message": ["a"]}, "message"),
        ({"message": {"text": "a"}}, "message"),
        ({"message": "m", "email": ["a@b.c"]}, "email"),
        ({"message": "m", "name": {"first": "Jane"}}, "name"),
        ({"message": "m", "url": 1}, "url"),
        ({"message": "m", "associated_event_id": 12345}, "associated_event_id"),
    ],
)
def test_fields_of_wrong_types(transport: MockTransport, payload: dict[str, Any], field: str) -> None:
    answer = refused(post_json(FeedbackEndpoint(), payload), 400, "invalid_field")
    assert answer["field"] == field


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        ({}, "missing_message"),
        ({"message": None}, "missing_message"),
        ({"message": " \r\n\t"}, "missing_message"),
        ({"message": "m", "email": "not an address"}, "invalid_email"),
        ({"message": "m", "email": "a@b@c"}, "invalid_email"),
        ({"message": "m", "url": "javascript:alert(1)"}, "invalid_url"),
        ({"message": "m", "url": "/relative"}, "invalid_url"),
        ({"message": "m", "url": "http://[::1"}, "invalid_url"),
        ({"message": "m", "associated_event_id": "not-hex"}, "invalid_event_id"),
        ({"message": "m", "associated_event_id": "g" * 32}, "invalid_event_id"),
        ({"message": "m", "associated_event_id": "a" * 31}, "invalid_event_id"),
        ({"message": "m", "name": "Jane\nDoe"}, "invalid_field"),
        ({"message": "nul \x00"}, "invalid_field"),
    ],
)
def test_invalid_values(transport: MockTransport, payload: dict[str, Any], error: str) -> None:
    refused(post_json(FeedbackEndpoint(), payload), 400, error)


def test_duplicate_fields(transport: MockTransport) -> None:
    answer = post_form(FeedbackEndpoint(), [("message", "one"), ("message", "two")])
    assert refused(answer, 400, "duplicate_field")["field"] == "message"
    # Fields the endpoint ignores may repeat (a form's submit buttons, a CSRF token).
    assert post_form(FeedbackEndpoint(), [("message", "one"), ("x", "1"), ("x", "2")]).status == 202


def test_forbidden_fields_are_ignored(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    sentry_init()
    payload = {
        "message": "m",
        "event_id": "0" * 32,
        "source": "forged",
        "replay_id": "1" * 32,
        "tags": {"admin": "true"},
        "user": {"id": "root"},
        "contexts": {"feedback": {"message": "forged"}},
        "level": "fatal",
        "timestamp": 0,
        "platform": "other",
    }
    answer = post_json(FeedbackEndpoint(), payload)
    assert answer.status == 202
    (feedback,) = delivered(sentry_receiver)
    assert answer.json == {"id": feedback.event_id} and feedback.event_id != "0" * 32
    assert feedback.data["contexts"]["feedback"] == {"message": "m", "source": "feedback-endpoint"}
    assert feedback.data["level"] == "info" and feedback.data["platform"] == "python"
    assert "admin" not in (feedback.data.get("tags") or {})
    assert feedback.user in (None, {})


# -- origins and addresses ---------------------------------------------------------------------------------------


def test_cross_origin_posts(transport: MockTransport) -> None:
    endpoint = FeedbackEndpoint()
    same = post_json(endpoint, {"message": "m"}, HTTP_ORIGIN="http://127.0.0.1", HTTP_HOST="127.0.0.1")
    assert same.status == 202 and "Access-Control-Allow-Origin" not in same.headers
    same_port = post_json(endpoint, {"message": "m"}, HTTP_ORIGIN="http://shop:80", HTTP_HOST="shop:80")
    assert same_port.status == 202
    refused(post_json(endpoint, {"message": "m"}, HTTP_ORIGIN="https://evil.example"), 403, "forbidden_origin")
    refused(post_json(endpoint, {"message": "m"}, HTTP_ORIGIN="null"), 403, "forbidden_origin")

    allowed = FeedbackEndpoint(EndpointOptions(allowed_origins=("https://www.example.com",)))
    answer = post_json(allowed, {"message": "m"}, HTTP_ORIGIN="https://www.example.com")
    assert answer.status == 202
    assert answer.headers["Access-Control-Allow-Origin"] == "https://www.example.com"
    preflight = call(allowed, environ(method="OPTIONS", HTTP_ORIGIN="https://www.example.com"))
    assert preflight.status == 204
    assert preflight.headers["Access-Control-Allow-Methods"] == "POST"
    refused(post_json(allowed, {"message": "m"}, HTTP_ORIGIN="https://evil.example"), 403, "forbidden_origin")


def test_forwarded_for_is_not_trusted_by_default(transport: MockTransport) -> None:
    endpoint = FeedbackEndpoint(EndpointOptions(rate_limit=RateLimit(2, 60.0)))
    answers = [post_json(endpoint, {"message": "m"}, HTTP_X_FORWARDED_FOR=f"198.51.100.{n}").status for n in range(4)]
    assert answers == [202, 202, 429, 429]  # one client, whatever it claims
    assert post_json(endpoint, {"message": "m"}, remote="192.0.2.99").status == 202  # another one


def test_forwarded_for_behind_a_proxy(transport: MockTransport) -> None:
    endpoint = FeedbackEndpoint(EndpointOptions(rate_limit=RateLimit(1, 60.0), use_x_forwarded_for=True))
    proxy = "10.0.0.1"
    # The proxy appends the address it saw; what the client put in front is not believed.
    first = post_json(endpoint, {"message": "m"}, remote=proxy, HTTP_X_FORWARDED_FOR="1.1.1.1, 203.0.113.7")
    spoofed = post_json(endpoint, {"message": "m"}, remote=proxy, HTTP_X_FORWARDED_FOR="2.2.2.2, 203.0.113.7")
    other = post_json(endpoint, {"message": "m"}, remote=proxy, HTTP_X_FORWARDED_FOR="203.0.113.8")
    assert (first.status, spoofed.status, other.status) == (202, 429, 202)
