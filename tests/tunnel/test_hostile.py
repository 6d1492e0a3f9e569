"""Hostile requests: huge or broken header lines, odd DSNs, lying lengths, bombs, clients that go away.

Then a property, over bodies and headers hypothesis makes: the tunnel never answers 5xx on its own account and
never contacts anyone unless the envelope names an allowed DSN.
"""

from __future__ import annotations

import gzip
import io
import json
import socket
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from sentry_feedback import __version__
from sentry_feedback.server import LocalReceiver
from sentry_feedback.tunnel import Tunnel

from .conftest import Serve
from .envelopes import envelope, error_envelope, feedback_event, header, item
from .servers import CountingServer, post, raw_request, wait_until


def detail(response: Any) -> str:
    return str(json.loads(response.data)["detail"])


@pytest.mark.parametrize("chunked", [False, True], ids=["length", "chunked"])
def test_a_header_line_without_end_is_refused_after_the_limit(
    serve: Serve, receiver: LocalReceiver, chunked: bool
) -> None:
    url = serve(Tunnel(allowed=[receiver.dsn]))
    body = b'{"dsn": "' + receiver.dsn.encode() + b'", "padding": "' + b"a" * (1024 * 1024)

    response = post(url, body, chunked=chunked, piece=64 * 1024)

    assert response.status == 400
    assert detail(response) == "the envelope header is longer than 65536 bytes"
    assert receiver.received == []


@pytest.mark.parametrize(
    "dsn",
    [
        {"host": "127.0.0.1"},
        True,
        None,
        1e300,
        "",
        "http://pübliç@hôst.example/1",
        "http://public@127.0.0.1:1/1\u202e",
        "http://public@[::1/1",
        "http://public@127.0.0.1:99999/1",
        "\ud800",
    ],
    ids=repr,
)
def test_odd_dsns_are_refused(serve: Serve, receiver: LocalReceiver, dsn: object) -> None:
    url = serve(Tunnel(allowed=[receiver.dsn]))
    body = json.dumps({"dsn": dsn}).encode() + b'\n{"type": "event"}\n{}\n'
    response = post(url, body)
    assert response.status in (400, 403), response.data
    assert receiver.received == []


def test_crlf_in_values_never_reaches_a_header(serve: Serve, receiver: LocalReceiver) -> None:
    url = serve(Tunnel(allowed=[receiver.dsn], use_x_forwarded_for=True))
    injected = receiver.dsn.replace("public@", "pub\r\nX-Injected: 1\r\nlic@")
    assert post(url, error_envelope(injected)).status == 400

    sdk = {"name": "sentry.javascript.browser\r\nX-Injected: 1", "version": "1"}
    event_id, payload = feedback_event()
    body = envelope(receiver.dsn, item("feedback", payload), event_id=event_id, sdk=sdk)
    response = post(url, body, {"X-Forwarded-For": "1.2.3.4\tX-Injected: 1, 5.6.7.8"})
    assert response.status == 200
    [request] = receiver.received
    assert "X-Injected" not in request.headers
    assert request.headers["X-Sentry-Auth"].endswith(f"sentry_client=sentry-feedback-tunnel/{__version__}")
    assert request.headers["X-Forwarded-For"] == "5.6.7.8, 127.0.0.1"
    assert request.body == body


def test_unicode_is_passed_on_untouched(serve: Serve, receiver: LocalReceiver) -> None:
    url = serve(Tunnel(allowed=[receiver.dsn]))
    event_id, payload = feedback_event("Der Knopf tut nichts 🙃 \u202e\u0000 ✓")
    body = envelope(receiver.dsn, item("feedback", payload), event_id=event_id, note="ünïcödé \ud83d\ude00")
    assert post(url, body).status == 200
    assert receiver.received[0].body == body
    assert receiver.store.list_feedback()[0].message == "Der Knopf tut nichts 🙃 \u202e\u0000 ✓"


def test_a_gzip_bomb_is_inflated_no_further_than_the_header_limit(serve: Serve, receiver: LocalReceiver) -> None:
    url = serve(Tunnel(allowed=[receiver.dsn]))
    bomb = gzip.compress(b"{" + b" " * (64 * 1024 * 1024), compresslevel=9)  # 64 MiB of JSON whitespace
    assert len(bomb) < 100_000
    response = post(url, bomb, {"Content-Encoding": "gzip"})
    assert response.status == 400
    assert detail(response) == "the envelope header is longer than 65536 bytes"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (gzip.compress(b'{"dsn": "x"}\n')[:-12], "the compressed body is truncated"),
        (b"\x1f\x8b\x08\x00garbage-garbage", "the compressed body is invalid"),
        (b"x", "the compressed body is truncated"),
    ],
)
def test_broken_compression_is_a_400(serve: Serve, receiver: LocalReceiver, body: bytes, message: str) -> None:
    url = serve(Tunnel(allowed=[receiver.dsn]))
    response = post(url, body, {"Content-Encoding": "gzip"})
    assert response.status == 400
    assert detail(response).startswith(message)


def test_raw_deflate_and_several_gzip_members_are_read(serve: Serve, receiver: LocalReceiver) -> None:
    url = serve(Tunnel(allowed=[receiver.dsn]))
    body = error_envelope(receiver.dsn)
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    raw = compressor.compress(body) + compressor.flush()
    assert post(url, raw, {"Content-Encoding": "deflate"}).status == 200
    members = gzip.compress(body[:5]) + gzip.compress(body[5:])
    assert post(url, members, {"Content-Encoding": "gzip"}).status == 200
    assert [r.body for r in receiver.received] == [body, body]


def test_a_deeply_nested_header_is_a_400(serve: Serve, receiver: LocalReceiver) -> None:
    url = serve(Tunnel(allowed=[receiver.dsn]))
    response = post(url, b"[" * 60_000 + b"\n")
    assert response.status == 400


def test_a_client_that_goes_away_delivers_nothing(serve: Serve, receiver: LocalReceiver) -> None:
    url = serve(Tunnel(allowed=[receiver.dsn]))
    start = header(receiver.dsn) + b"\n" + b'{"type": "attachment", "length": 200000}\n' + b"x" * 70_000
    netloc = url.split("://", 1)[1].partition("/")[0]
    host, _, port = netloc.partition(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"POST /tunnel HTTP/1.1\r\nHost: x\r\nContent-Length: 300000\r\n\r\n" + start)
        # The tunnel has contacted the server once the envelope header was read; then the client leaves.
        wait_until(lambda: receiver.connections_opened > 0, message="the tunnel to contact the server")
    wait_until(lambda: receiver.received, message="the receiver to see the cut-off request")
    [request] = receiver.received
    assert request.status == 400 and request.envelope is None
    assert receiver.store.count_envelopes() == 0


@pytest.mark.parametrize("length", ["-1", "1e3", "10, 20", "0x10", "99999999999999999999"])
def test_a_bad_content_length_never_reaches_the_server(serve: Serve, receiver: LocalReceiver, length: str) -> None:
    url = serve(Tunnel(allowed=[receiver.dsn]))
    body = error_envelope(receiver.dsn)
    request = f"POST /tunnel HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n".encode()
    try:
        status, _, _ = raw_request(url, request + body)
    except (ConnectionError, OSError):
        status = 400  # the server itself dropped the request
    assert 400 <= status < 500
    assert receiver.received == []


# -- the property -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def property_receiver() -> Iterator[LocalReceiver]:
    with LocalReceiver(record_requests=100_000) as server:
        yield server


@pytest.fixture(scope="module")
def forbidden() -> Iterator[CountingServer]:
    server = CountingServer()
    yield server
    server.close()


def _bodies(allowed: str, others: list[str]) -> st.SearchStrategy[tuple[bytes, bool]]:
    """``(body, may be forwarded)``: envelopes for allowed and other DSNs, broken ones, and noise.

    Only an envelope whose header names the allowed DSN may be forwarded (it need not be: its header line may
    run into the tail, or the request be refused for other reasons).
    """
    json_values = st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
        max_leaves=8,
    )
    dsns = st.sampled_from([allowed, *others]) | json_values
    headers = st.fixed_dictionaries({"dsn": dsns}, optional={"event_id": st.text(max_size=10), "sdk": json_values})
    tails = st.binary(max_size=600) | st.just(b'{"type": "event"}\n{}\n')

    @st.composite
    def envelopes(draw: st.DrawFn) -> tuple[bytes, bool]:
        envelope_header = draw(headers)
        separator = draw(st.sampled_from([b"\n", b"\r\n", b"", b" "]))
        body = json.dumps(envelope_header).encode() + separator + draw(tails)
        return body, envelope_header["dsn"] == allowed

    noise = st.binary(max_size=1200).map(lambda body: (body, False))
    return envelopes() | noise


def _request_headers() -> st.SearchStrategy[dict[str, str]]:
    return st.fixed_dictionaries(
        {},
        optional={
            "Content-Type": st.sampled_from(["text/plain;charset=UTF-8", "application/x-sentry-envelope", "a/b"]),
            "X-Forwarded-For": st.text(max_size=40),
            "Origin": st.text(max_size=30),
        },
    )


@settings(
    max_examples=200,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_no_5xx_of_its_own_and_no_contact_unless_allowed(
    property_receiver: LocalReceiver, forbidden: CountingServer, data: st.DataObject
) -> None:
    receiver = property_receiver
    other_key = receiver.dsn.replace("public@", "other@")
    tunnel = Tunnel(allowed=[receiver.dsn], max_body_size=1500, max_header_size=300, use_x_forwarded_for=True)
    body, names_allowed = data.draw(_bodies(receiver.dsn, [forbidden.dsn(), other_key, "https://k@sentry.io/1"]))
    headers = data.draw(_request_headers())
    encoding = data.draw(st.sampled_from(["", "gzip", "deflate", "identity", "br", "gzip, gzip"]))
    if encoding:
        headers["Content-Encoding"] = encoding
        if encoding == "gzip" and data.draw(st.booleans()):
            body = gzip.compress(body)
    length = data.draw(st.sampled_from(["exact", "none", "short", "long", "garbage"]))
    if length == "exact":
        headers["Content-Length"] = str(len(body))
    elif length == "short":
        headers["Content-Length"] = str(max(len(body) - 3, 0))
    elif length == "long":
        headers["Content-Length"] = str(len(body) + 3)
    elif length == "garbage":
        headers["Content-Length"] = data.draw(st.text(max_size=8))
    before = len(receiver.received)

    response = tunnel.forward(data.draw(st.sampled_from(["POST", "POST", "GET"])), headers, io.BytesIO(body))
    tunnel.close()

    event(f"answered {response.status}")
    assert response.status < 500, response.body
    assert forbidden.connections == 0
    if not names_allowed:
        assert len(receiver.received) == before, "contacted the server for an envelope that is not allowed"
    if response.status != 200 and response.status != 401:
        assert json.loads(response.body)["detail"]
