"""Whatever a client sends, the endpoint answers 2xx or 4xx and never raises (WSGI and ASGI)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sentry_feedback.endpoint import EndpointOptions, FeedbackEndpoint
from sentry_feedback.testing import MockTransport

from .conftest import BOUNDARY, call, environ
from .test_asgi import Exchange, http_scope, request

ENDPOINT = FeedbackEndpoint(EndpointOptions(rate_limit=None, max_body_size=64 * 1024))
CONTENT_TYPES = st.sampled_from(
    [
        "multipart/form-data; boundary=" + BOUNDARY,
        "multipart/form-data",
        "multipart/form-data; boundary=",
        'multipart/form-data; boundary="a b"',
        "application/json",
        "application/json; charset=utf-16",
        "application/x-www-form-urlencoded",
        "text/plain",
        "",
    ]
)
FIELD_NAMES = st.sampled_from(["message", "email", "name", "url", "associated_event_id", "event_id", "x", ""])
TEXT = st.text(max_size=40) | st.sampled_from(["", " ", "a" * 33, "0" * 32, "https://x.example/", "a@b.c"])


def multipart_bodies() -> st.SearchStrategy[bytes]:
    """Bodies close to real forms: parts with odd headers, names and contents, and random cuts."""
    part = st.tuples(
        FIELD_NAMES,
        st.none() | st.text(max_size=12),
        st.sampled_from(["", "image/png", "text/plain", "application/json", "text/html", "x"]),
        st.binary(max_size=60) | TEXT.map(lambda t: t.encode("utf-8", "surrogatepass")),
    )

    def build(parts: list[tuple[str, str | None, str, bytes]], cut: int | None, junk: bytes) -> bytes:
        out = b""
        for name, filename, content_type, data in parts:
            disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename is not None else "")
            out += f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n".encode("utf-8", "surrogatepass")
            if content_type:
                out += f"Content-Type: {content_type}\r\n".encode()
            out += b"\r\n" + data + b"\r\n"
        out += f"--{BOUNDARY}--\r\n".encode() + junk
        return out[:cut] if cut is not None else out

    return st.builds(build, st.lists(part, max_size=6), st.none() | st.integers(0, 400), st.binary(max_size=10))


def json_bodies() -> st.SearchStrategy[bytes]:
    values = st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(FIELD_NAMES, inner, max_size=3),
        max_leaves=10,
    )
    objects = st.dictionaries(FIELD_NAMES, values, max_size=6)
    feedback = st.fixed_dictionaries(
        {"message": st.text(min_size=1, max_size=50)},
        optional={"email": TEXT, "name": TEXT, "url": TEXT, "associated_event_id": TEXT, "event_id": TEXT},
    )
    return (feedback | objects | values).map(lambda value: json.dumps(value).encode())


BODIES = st.binary(max_size=300) | multipart_bodies() | json_bodies()


@pytest.fixture
def transport(mock_transport: MockTransport) -> MockTransport:
    return mock_transport


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=BODIES, content_type=CONTENT_TYPES, method=st.sampled_from(["POST", "POST", "GET", "PUT", "OPTIONS"]))
def test_wsgi_never_fails(transport: MockTransport, body: bytes, content_type: str, method: str) -> None:
    answer = call(ENDPOINT, environ(body, method=method, content_type=content_type or None))
    assert 200 <= answer.status < 500, (answer.status, answer.body)
    payload: Any = json.loads(answer.body) if answer.body else None
    if answer.status >= 400:
        assert isinstance(payload["error"], str) and isinstance(payload["detail"], str)
    elif answer.status in (201, 202):
        assert isinstance(payload["id"], str) and len(payload["id"]) == 32


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=BODIES,
    content_type=CONTENT_TYPES,
    pieces=st.integers(1, 5),
    length=st.sampled_from(["right", "none", "wrong", "garbage"]),
)
def test_asgi_never_fails(transport: MockTransport, body: bytes, content_type: str, pieces: int, length: str) -> None:
    headers = [(b"content-type", content_type.encode())] if content_type else []
    declared = {"right": str(len(body)), "none": None, "wrong": str(len(body) + 3), "garbage": "x1"}[length]
    if declared is not None:
        headers.append((b"content-length", declared.encode()))
    size = max(1, len(body) // pieces)
    chunks = [body[i : i + size] for i in range(0, len(body), size)] or [b""]
    exchange = asyncio.run(request(ENDPOINT.asgi_app, http_scope(headers=headers), Exchange(chunks)))
    assert exchange.status is not None and 200 <= exchange.status < 500, exchange.sent
