"""The tunnel over real HTTP, as WSGI (Werkzeug) and as ASGI (uvicorn), forwarding to a real LocalReceiver."""

from __future__ import annotations

import gzip
import json
import logging
import zlib

import pytest

from sentry_feedback.server import LocalReceiver
from sentry_feedback.tunnel import Tunnel

from .conftest import Serve
from .envelopes import BINARY, error_envelope, feedback_envelope
from .servers import CountingServer, SilentServer, closed_port, post, raw_request, uvicorn_server

BROWSER = {"Content-Type": "text/plain;charset=UTF-8", "Origin": "http://127.0.0.1", "Cookie": "session=secret"}


def test_an_allowed_envelope_arrives_byte_for_byte(serve: Serve, receiver: LocalReceiver) -> None:
    url = serve(Tunnel(allowed=[receiver.dsn]))
    body = feedback_envelope(receiver.dsn, "The pay button does nothing")

    response = post(url, body, {**BROWSER, "Authorization": "Bearer browser-token"})

    assert response.status == 200, response.data
    assert json.loads(response.data)["id"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    [request] = receiver.received
    assert request.body == body
    assert request.status == 200
    assert request.headers["Content-Type"] == "application/x-sentry-envelope"
    assert request.headers["User-Agent"].startswith("sentry-feedback-tunnel/")
    assert request.headers["X-Sentry-Auth"] == (
        "Sentry sentry_version=7, sentry_key=public, sentry_client=sentry.javascript.browser/11.12.0"
    )
    assert request.headers["Origin"] == "http://127.0.0.1"
    for private in ("Cookie", "Authorization"):
        assert private not in request.headers
    [feedback] = receiver.store.list_feedback()
    assert feedback.message == "The pay button does nothing"
    [attachment] = receiver.store.list_attachments(feedback.event_id)
    assert attachment.data == BINARY
    assert attachment.filename == "screenshot.png"


def test_an_error_and_its_feedback_arrive_chunked(serve: Serve, receiver: LocalReceiver) -> None:
    url = serve(Tunnel(allowed=receiver.dsn))
    error = error_envelope(receiver.dsn, "TypeError: cart is undefined")
    feedback = feedback_envelope(receiver.dsn)

    for body in (error, feedback):
        response = post(url, body, BROWSER, chunked=True, piece=7)
        assert response.status == 200, response.data

    assert [r.body for r in receiver.received] == [error, feedback]
    assert all("Transfer-Encoding" in r.headers for r in receiver.received)
    assert len(receiver.store.list_feedback()) == 1


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_a_compressed_body_is_passed_on_unchanged(serve: Serve, receiver: LocalReceiver, encoding: str) -> None:
    url = serve(Tunnel(allowed=[receiver.dsn]))
    body = feedback_envelope(receiver.dsn)
    compressed = gzip.compress(body) if encoding == "gzip" else zlib.compress(body)

    response = post(url, compressed, {"Content-Encoding": encoding})

    assert response.status == 200, response.data
    [request] = receiver.received
    assert request.headers["Content-Encoding"] == encoding
    assert request.body == body  # as the receiver inflated it
    assert receiver.store.list_feedback()


def test_a_dsn_not_allowed_is_refused_and_nothing_is_contacted(
    serve: Serve, receiver: LocalReceiver, counting: CountingServer
) -> None:
    url = serve(Tunnel(allowed=[receiver.dsn]))

    response = post(url, feedback_envelope(counting.dsn()), BROWSER)

    assert response.status == 403
    assert response.headers["Content-Type"] == "application/json"
    assert json.loads(response.data) == {"detail": "the envelope's DSN is not one this tunnel forwards to"}
    assert counting.connections == 0
    assert receiver.received == []


def test_the_same_project_at_another_host_is_refused(serve: Serve, receiver: LocalReceiver) -> None:
    try:  # the same port and project id, at another loopback address
        elsewhere = CountingServer("127.0.0.2", receiver.port)
    except OSError as exc:
        pytest.skip(f"cannot listen on 127.0.0.2:{receiver.port}: {exc}")
    try:
        url = serve(Tunnel(allowed=[receiver.dsn]))
        for dsn in (elsewhere.dsn(), f"http://public@localhost:{receiver.port}/1"):
            response = post(url, feedback_envelope(dsn))
            assert response.status == 403, dsn
        assert elsewhere.connections == 0
        assert receiver.received == []
    finally:
        elsewhere.close()


def test_another_public_key_is_refused_unless_keys_need_not_match(serve: Serve, receiver: LocalReceiver) -> None:
    other_key = receiver.dsn.replace("public@", "otherkey@")
    strict = serve(Tunnel(allowed=[receiver.dsn]))
    assert post(strict, feedback_envelope(other_key)).status == 403
    assert receiver.received == []

    lenient = serve(Tunnel(allowed=[receiver.dsn], match_public_key=False))
    response = post(lenient, feedback_envelope(other_key))
    assert response.status == 401  # the tunnel forwarded it; the server does not know the key
    assert receiver.received[-1].headers["X-Sentry-Auth"].startswith("Sentry sentry_version=7, sentry_key=otherkey,")


def test_the_destination_comes_from_the_configuration(
    serve: Serve, receiver: LocalReceiver, counting: CountingServer
) -> None:
    # The request's path, query and Host name nothing the tunnel uses.
    url = serve(Tunnel(allowed=[receiver.dsn]))
    target = f"{url}?url={counting.dsn()}&sentry_key=x"
    response = post(target, error_envelope(receiver.dsn), {"Host": f"127.0.0.1:{counting.port}"})
    assert response.status == 200
    assert receiver.received[0].path == "/api/1/envelope/"
    assert counting.connections == 0


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b'{"event_id": "x"}\n{"type": "event"}\n{}\n', "the envelope header has no dsn"),
        (b"not json\n", "the envelope header is not JSON"),
        (b'["a list"]\n', "the envelope header must be a JSON object"),
        (b'{"dsn": 42}\n', "the envelope header's dsn must be a DSN string"),
        (b'{"dsn": ["http://public@127.0.0.1/1"]}\n', "the envelope header's dsn must be a DSN string"),
        (b'{"dsn": "not a dsn"}\n', "the envelope header's dsn is not a valid DSN"),
        (b'{"dsn": "ftp://public@127.0.0.1/1"}\n', "the envelope header's dsn is not a valid DSN"),
        (b'{"dsn": "\xff\xfe"}\n', "the envelope header is not UTF-8"),
        (b"\n\n", "the envelope header is not JSON"),
        (b"   ", "the envelope header is empty"),
    ],
)
def test_a_missing_or_invalid_header_is_a_400(serve: Serve, receiver: LocalReceiver, body: bytes, detail: str) -> None:
    url = serve(Tunnel(allowed=[receiver.dsn]))
    response = post(url, body)
    assert response.status == 400
    assert json.loads(response.data)["detail"].startswith(detail)
    assert receiver.received == []


def test_an_empty_body_is_a_400(serve: Serve, receiver: LocalReceiver) -> None:
    url = serve(Tunnel(allowed=[receiver.dsn]))
    response = post(url, b"")
    assert response.status == 400
    assert "empty" in json.loads(response.data)["detail"]


def test_a_body_larger_than_the_limit_is_refused_by_its_length(serve: Serve, receiver: LocalReceiver) -> None:
    url = serve(Tunnel(allowed=[receiver.dsn], max_body_size=2000))
    body = feedback_envelope(receiver.dsn, attachment=b"x" * 5000)

    response = post(url, body)

    assert response.status == 413
    assert json.loads(response.data) == {"detail": "the body is larger than 2000 bytes"}
    assert receiver.received == []


def test_a_huge_declared_length_is_refused_before_any_body(serve: Serve, receiver: LocalReceiver) -> None:
    url = serve(Tunnel(allowed=[receiver.dsn]))
    request = b"POST /tunnel HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\nConnection: close\r\n\r\n"
    status, _, _ = raw_request(url, request)
    assert status == 413
    assert receiver.received == []


def test_a_streamed_body_past_the_limit_is_cut_off_before_it_completes(serve: Serve, receiver: LocalReceiver) -> None:
    url = serve(Tunnel(allowed=[receiver.dsn], max_body_size=4000))
    body = feedback_envelope(receiver.dsn, attachment=b"x" * 12000)

    response = post(url, body, chunked=True, piece=500)

    assert response.status == 413
    assert json.loads(response.data) == {"detail": "the body is larger than 4000 bytes"}
    # The upstream request was opened and cut off: the receiver saw a broken body, never an envelope.
    assert all(r.envelope is None and r.status != 200 for r in receiver.received)
    assert receiver.store.list_feedback() == []
    # The limit counts bytes, not requests: a body within it still goes through.
    assert post(url, feedback_envelope(receiver.dsn, attachment=b"y" * 1000), chunked=True).status == 200


def test_the_client_address_is_sent_and_its_own_chain_is_not_trusted(serve: Serve, receiver: LocalReceiver) -> None:
    url = serve(Tunnel(allowed=[receiver.dsn]))
    post(url, error_envelope(receiver.dsn), {"X-Forwarded-For": "6.6.6.6, 7.7.7.7"})
    headers = receiver.received[-1].headers
    assert headers["X-Forwarded-For"] == "127.0.0.1"
    assert headers["X-Sentry-Forwarded-For"] == "127.0.0.1"


def test_behind_a_proxy_the_chain_is_kept_and_the_peer_appended(serve: Serve, receiver: LocalReceiver) -> None:
    url = serve(Tunnel(allowed=[receiver.dsn], use_x_forwarded_for=True))
    post(url, error_envelope(receiver.dsn), {"X-Forwarded-For": "203.0.113.7, not-an-ip, 2001:DB8::1"})
    headers = receiver.received[-1].headers
    assert headers["X-Forwarded-For"] == "203.0.113.7, 2001:db8::1, 127.0.0.1"
    assert headers["X-Sentry-Forwarded-For"] == "203.0.113.7"


def test_rate_limit_answers_go_back_to_the_browser(serve: Serve, receiver: LocalReceiver) -> None:
    url = serve(Tunnel(allowed=[receiver.dsn]))
    limits = {"X-Sentry-Rate-Limits": "60:feedback;error:organization:quota_exceeded", "Retry-After": "60"}
    receiver.respond_with(429, headers=limits, body=b'{"detail": "rate limited"}')

    response = post(url, feedback_envelope(receiver.dsn), BROWSER)

    assert response.status == 429
    assert response.headers["X-Sentry-Rate-Limits"] == limits["X-Sentry-Rate-Limits"]
    assert response.headers["Retry-After"] == "60"
    assert json.loads(response.data) == {"detail": "rate limited"}


def test_rate_limits_on_a_200_go_back_too(serve: Serve, receiver: LocalReceiver) -> None:
    url = serve(Tunnel(allowed=[receiver.dsn]))
    receiver.respond_with(200, headers={"X-Sentry-Rate-Limits": "30:attachment"})
    response = post(url, feedback_envelope(receiver.dsn))
    assert response.status == 200
    assert response.headers["X-Sentry-Rate-Limits"] == "30:attachment"


def test_a_server_error_is_passed_on(serve: Serve, receiver: LocalReceiver) -> None:
    url = serve(Tunnel(allowed=[receiver.dsn]))
    receiver.respond_with(503, headers={"Retry-After": "5"}, body=b'{"detail": "down for maintenance"}')
    response = post(url, error_envelope(receiver.dsn))
    assert (response.status, response.headers["Retry-After"]) == (503, "5")


def test_a_server_that_is_down_is_a_502(serve: Serve) -> None:
    dsn = f"http://public@127.0.0.1:{closed_port()}/1"
    url = serve(Tunnel(allowed=[dsn]))
    response = post(url, error_envelope(dsn))
    assert response.status == 502
    assert json.loads(response.data)["detail"].startswith("could not forward to 127.0.0.1:")


def test_a_server_that_does_not_answer_is_a_504(serve: Serve) -> None:
    silent = SilentServer()
    try:
        url = serve(Tunnel(allowed=[silent.dsn()], timeout=0.5))
        response = post(url, error_envelope(silent.dsn()))
        assert response.status == 504
        assert "no answer in time" in json.loads(response.data)["detail"]
    finally:
        silent.close()


def test_only_post_is_served(serve: Serve, receiver: LocalReceiver) -> None:
    import urllib3

    url = serve(Tunnel(allowed=[receiver.dsn]))
    for method in ("GET", "PUT", "DELETE"):
        response = urllib3.request(method, url, retries=False)
        assert response.status == 405, method
        assert response.headers["Allow"] == "POST, OPTIONS"
    response = urllib3.request("OPTIONS", url, headers={"Origin": "https://evil.example"}, retries=False)
    assert response.status == 204
    assert "Access-Control-Allow-Origin" not in response.headers
    assert receiver.received == []


def test_cross_origin_posts_only_from_configured_origins(serve: Serve, receiver: LocalReceiver) -> None:
    import urllib3

    url = serve(Tunnel(allowed=[receiver.dsn], cors_origins=["https://app.example.com"]))
    preflight = {"Origin": "https://app.example.com", "Access-Control-Request-Method": "POST"}
    response = urllib3.request("OPTIONS", url, headers=preflight, retries=False)
    assert response.status == 204
    assert response.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert response.headers["Access-Control-Allow-Methods"] == "POST"

    allowed = post(url, error_envelope(receiver.dsn), {"Origin": "https://app.example.com"})
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert "X-Sentry-Rate-Limits" in allowed.headers["Access-Control-Expose-Headers"]
    other = post(url, error_envelope(receiver.dsn), {"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers


def test_an_unsupported_content_encoding_is_a_415(serve: Serve, receiver: LocalReceiver) -> None:
    url = serve(Tunnel(allowed=[receiver.dsn]))
    response = post(url, b"\x28\xb5\x2f\xfd", {"Content-Encoding": "zstd"})
    assert response.status == 415
    assert receiver.received == []


def test_refusals_and_failures_are_logged(
    serve: Serve, receiver: LocalReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    down = f"http://public@127.0.0.1:{closed_port()}/1"
    url = serve(Tunnel(allowed=[receiver.dsn, down]))
    with caplog.at_level(logging.DEBUG, logger="sentry_feedback"):
        post(url, feedback_envelope("http://public@evil.example/1"))
        post(url, error_envelope(down))
        post(url, error_envelope(receiver.dsn))
    messages = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "sentry_feedback"]
    assert (
        "DEBUG",
        "tunnel: answered 403 to 127.0.0.1: the envelope's DSN is not one this tunnel forwards to"
        " (project 1 at 'evil.example' is not allowed)",
    ) in messages
    [warning] = [m for level, m in messages if level == "WARNING"]
    assert warning.startswith(f"tunnel: could not forward to 127.0.0.1:{down.rsplit(':', 1)[1].split('/')[0]}: ")
    assert any(m.startswith("tunnel: forwarded an envelope of ") and ": 200 in " in m for _, m in messages)


def test_an_asgi_client_that_stalls_gets_a_408(receiver: LocalReceiver) -> None:
    tunnel = Tunnel(allowed=[receiver.dsn], timeout=0.5)
    body = error_envelope(receiver.dsn)
    with uvicorn_server(tunnel.asgi) as url:
        head = f"POST /tunnel HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body) + 100}\r\n\r\n".encode()
        status, _, answer = raw_request(url, head + body)  # 100 bytes short, and then nothing
    tunnel.close()
    assert status == 408
    assert json.loads(answer) == {"detail": "no part of the body came within 0.5 s"}
    assert receiver.store.count_envelopes() == 0
