"""The feedback server's application against hostile requests: odd Host headers, lying or garbled bodies, too many
query fields, unknown methods, a broken store or arrival listener, and misuse of the receiver's own controls.

The application runs under the built-in LocalReceiver and, where the WSGI server's framing matters (the
application then reads the body itself), under Werkzeug's threaded server; every request goes over 127.0.0.1.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import urllib3
from hypothesis import given, settings
from hypothesis import strategies as st

from rest.conftest import CONFIG, INDEX, ORG, TOKEN, WEB, Api, post_envelope
from sentry_feedback.server import Arrival, FeedbackApp, LocalReceiver, create_app, serve
from server.test_inbox_hostile import FIXED_EXAMPLES
from tunnel.servers import WAIT, raw_request, werkzeug_server

#: The body limit of the application served by Werkzeug.
LIMIT = 100
KEYS = f"/projects/{ORG}/{WEB.slug}/keys/"
FEEDBACK = b'{"event_id": "%s"}\n{"type": "feedback"}\n{"contexts": {"feedback": {"message": "%s"}}}\n'
SESSION_ITEM = (
    b'{"type": "session"}\n{"sid": "s1", "started": "2024-05-01T12:00:00Z", "timestamp": 5.0, "status": "ok",'
    b' "errors": 0, "duration": 1.0, "init": true, "attrs": {"release": "shop@1"}}\n'
)


def feedback_envelope(event_id: str, message: str) -> bytes:
    return FEEDBACK % (event_id.encode(), message.encode())


@pytest.fixture(scope="module")
def server() -> Iterator[LocalReceiver]:
    """The built-in server: organization ``acme``, projects ``web`` (2) and ``mobile`` (7)."""
    with LocalReceiver(config=CONFIG) as local:
        yield local


@pytest.fixture(scope="module")
def api(server: LocalReceiver) -> Iterator[Api]:
    client = Api(server)
    yield client
    client.close()


@pytest.fixture
def wsgi() -> Iterator[tuple[str, FeedbackApp]]:
    """The application (bodies of at most ``LIMIT`` bytes) under Werkzeug: its URL, and the application."""
    app = create_app(":memory:", CONFIG, max_body_size=LIMIT)
    try:
        with werkzeug_server(app) as url:
            yield url, app
    finally:
        app.store.close()


def public_dsn(api: Api, headers: dict[str, str]) -> str:
    reply = api.get(KEYS, headers=headers)
    assert reply.status == 200, reply.data
    [key] = reply.json()
    return str(key["dsn"]["public"])


# -- Host and the server's own address ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "host",
    ["evil.example/path", "evil.example@x", "a b", "evil.example:99999999", "[::1", "::1", "x?y#z", '"q"', ""],
)
def test_a_host_header_that_names_no_host_gives_the_servers_own_address(api: Api, host: str) -> None:
    own = f"http://{WEB.public_key}@127.0.0.1:{api.server.port}/{WEB.id}"
    assert public_dsn(api, {"Host": host}) == own


def test_a_well_formed_host_header_is_used(api: Api) -> None:
    assert public_dsn(api, {"Host": "feedback.example:8080"}) == f"http://{WEB.public_key}@feedback.example:8080/2"
    assert public_dsn(api, {"Host": "[::1]:9"}) == f"http://{WEB.public_key}@[::1]:9/2"


def test_a_request_without_a_host_header_gets_the_servers_own_address(server: LocalReceiver) -> None:
    request = f"GET /api/0{KEYS} HTTP/1.1\r\nAuthorization: Bearer {TOKEN}\r\nConnection: close\r\n\r\n"
    status, _, body = raw_request(server.url, request.encode())
    assert status == 200
    assert json.loads(body)[0]["dsn"]["public"] == f"http://{WEB.public_key}@127.0.0.1:{server.port}/2"


_HOST_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]")


@settings(max_examples=50, deadline=None, derandomize=True, database=None)
@given(host=st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=30))
def test_any_host_header_is_echoed_only_when_it_is_a_plain_host(api: Api, host: str) -> None:
    """Whatever the Host header holds, the DSN shows it verbatim or the server's own address, nothing in between."""
    own = f"http://{WEB.public_key}@127.0.0.1:{api.server.port}/2"
    dsn = public_dsn(api, {"Host": host})
    assert dsn in (own, f"http://{WEB.public_key}@{host}/2")
    if not host or not set(host) <= _HOST_SAFE:
        assert dsn == own


def test_an_ipv6_receiver_names_itself_in_brackets() -> None:
    try:
        local = LocalReceiver(host="::1", config=CONFIG).start()
    except OSError as exc:
        if os.environ.get("CI") == "true":
            raise  # CI machines have an IPv6 loopback
        pytest.skip(f"cannot listen on ::1: {exc}")
    client = Api(local)
    try:
        assert local.url == f"http://[::1]:{local.port}"
        assert public_dsn(client, {"Host": "not a host"}) == f"http://{WEB.public_key}@[::1]:{local.port}/2"
        response = post_envelope(local, feedback_envelope("b" * 32, "over IPv6"))
        assert response.status == 200, response.data
        assert [f.message for f in local.store.list_feedback()] == ["over IPv6"]
    finally:
        client.close()
        local.stop()


# -- query strings, unknown methods, a broken store --------------------------------------------------------------


def test_more_than_a_thousand_query_fields_are_a_400(api: Api) -> None:
    assert api.get(INDEX + "?" + "&".join(["x=1"] * 1000)).status == 200
    reply = api.get(INDEX + "?" + "&".join(["x=1"] * 1001))
    assert reply.status == 400
    assert reply.detail == "invalid query string: Max number of fields exceeded"


def test_an_unknown_method_on_an_unknown_path_is_a_405(wsgi: tuple[str, FeedbackApp]) -> None:
    url, _ = wsgi
    for method in ("PROPFIND", "TRACE", "BREW"):
        status, headers, body = raw_request(url, f"{method} /nowhere HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        assert (status, json.loads(body)) == (405, {"detail": f"method {method} not allowed"}), method
        assert headers["content-type"] == "application/json"
    status, _, body = raw_request(url, b"DELETE /nowhere HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (status, json.loads(body)) == (404, {"detail": "no such endpoint: DELETE /nowhere"})


def test_a_failing_store_is_a_500_that_tells_nothing_and_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    local = LocalReceiver(config=CONFIG).start()
    try:
        local.store.close()  # as when the database goes away under a running server
        with caplog.at_level(logging.ERROR, logger="sentry_feedback.server"):
            response = urllib3.request(
                "GET", local.api_url + INDEX, headers={"Authorization": f"Bearer {TOKEN}"}, retries=False, timeout=WAIT
            )
        assert (response.status, json.loads(response.data)) == (500, {"detail": "internal server error"})
        [record] = [r for r in caplog.records if r.name == "sentry_feedback.server"]
        assert record.getMessage() == f"the feedback server failed to answer GET /api/0{INDEX}"
        assert record.exc_info is not None
    finally:
        local.stop()


# -- a listener that fails ----------------------------------------------------------------------------------------


def test_a_failing_arrival_listener_is_logged_and_the_client_still_gets_its_answer(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[Arrival] = []

    def listener(arrival: Arrival) -> None:
        seen.append(arrival)
        raise RuntimeError(f"listener broke on {arrival.kind}")

    with LocalReceiver(config=CONFIG, on_arrival=listener) as local:
        client = Api(local)
        with caplog.at_level(logging.ERROR, logger="sentry_feedback.server"):
            # One envelope, two arrivals: the listener fails on both, and is called for both.
            response = post_envelope(local, feedback_envelope("c" * 32, "the listener fails") + SESSION_ITEM)
            created = client.create({"message": "made over REST", "project": WEB.slug})
        client.close()
        assert (response.status, json.loads(response.data)) == (200, {"id": "c" * 32})
        assert created.status == 201
        stored = sorted(f.message for f in local.store.list_feedback())
        assert stored == ["made over REST", "the listener fails"]
        assert len(local.store.list_sessions()) == 1
    assert [(a.kind, a.project, a.message) for a in seen] == [
        ("feedback", "web", "the listener fails"),
        ("session", "web", "ok, release shop@1, sid s1"),
        ("feedback", "web", "made over REST"),
    ]
    assert seen[0].event_id == "c" * 32 and seen[1].event_id is None
    failures = [r for r in caplog.records if r.name == "sentry_feedback.server"]
    assert [r.getMessage() for r in failures] == ["on_arrival failed"] * 3
    assert [str(r.exc_info[1]) for r in failures if r.exc_info] == [
        "listener broke on feedback",
        "listener broke on session",
        "listener broke on feedback",
    ]


# -- bodies the application reads itself (under a WSGI server) ---------------------------------------------------


def _envelope_head(length: str) -> bytes:
    return (
        f"POST /api/{WEB.id}/envelope/?sentry_key={WEB.public_key} HTTP/1.1\r\nHost: x\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


@pytest.mark.parametrize("length", ["-1", "1e3", "0x10", "10, 10", "+5", "1_0", "1234567890123456789"])
def test_a_garbled_content_length_is_a_400(wsgi: tuple[str, FeedbackApp], length: str) -> None:
    url, app = wsgi
    status, _, body = raw_request(url, _envelope_head(length))
    assert (status, json.loads(body)) == (400, {"detail": f"invalid Content-Length {length!r}"})
    assert app.store.count_envelopes() == 0


@FIXED_EXAMPLES
@given(length=st.text(alphabet="0123456789-+.,eExX_;", min_size=1, max_size=22))
def test_any_content_length_but_digits_is_a_400(wsgi: tuple[str, FeedbackApp], length: str) -> None:
    url, app = wsgi
    if re.fullmatch(r"[0-9]{1,18}", length):
        length = length + ";"  # digits are a length: make it one that is not
    status, _, body = raw_request(url, _envelope_head(length))
    assert (status, json.loads(body)) == (400, {"detail": f"invalid Content-Length {length!r}"})
    assert app.store.count_envelopes() == 0


def test_a_declared_length_past_the_limit_is_a_413_before_any_body_is_read(wsgi: tuple[str, FeedbackApp]) -> None:
    url, app = wsgi
    status, _, body = raw_request(url, _envelope_head(str(LIMIT + 1)))  # and no body follows
    assert (status, json.loads(body)) == (413, {"detail": f"body is larger than {LIMIT} bytes"})
    assert app.memory.in_use == 0


def test_a_body_shorter_than_its_length_is_a_400(wsgi: tuple[str, FeedbackApp]) -> None:
    url, app = wsgi
    port = int(url.rsplit(":", 1)[1])
    sent = feedback_envelope("a" * 32, "cut")[: LIMIT - 20]
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as sock:
        sock.sendall(_envelope_head(str(len(sent) + 20)) + sent)
        sock.shutdown(socket.SHUT_WR)  # the client is done: 20 bytes will never come
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ")
    assert json.loads(body) == {"detail": "body is shorter than its Content-Length"}
    assert app.store.count_envelopes() == 0
    assert app.memory.in_use == 0


def test_a_chunked_body_is_bounded_as_it_is_read(wsgi: tuple[str, FeedbackApp]) -> None:
    url, app = wsgi
    pool = urllib3.PoolManager(retries=False, timeout=WAIT)
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    small = json.dumps({"data": {"message": "sent chunked", "project": WEB.slug}}).encode()
    assert len(small) <= LIMIT
    pieces = iter([small[:7], small[7:]])
    created = pool.urlopen("POST", url + "/api/0" + INDEX, body=pieces, headers=headers, chunked=True)
    assert created.status == 201, created.data

    large = json.dumps({"data": {"message": "x" * LIMIT, "project": WEB.slug}}).encode()
    pieces = iter([large[:50], large[50:]])
    refused = pool.urlopen("POST", url + "/api/0" + INDEX, body=pieces, headers=headers, chunked=True)
    assert (refused.status, json.loads(refused.data)) == (413, {"detail": f"body is larger than {LIMIT} bytes"})
    assert [f.message for f in app.store.list_feedback()] == ["sent chunked"]
    assert app.memory.in_use == 0
    pool.clear()


# -- a reverse proxy's word, taken only from a loopback peer -------------------------------------------------------


@pytest.mark.parametrize(
    ("client", "trusted"),
    [
        ("127.0.0.1", True),
        ("::1", True),
        ("203.0.113.9", False),
        ("127.0.0.1, 203.0.113.9", False),
        ("not-an-address", False),
        ("127.0.0.1.evil.example", False),
    ],
)
def test_forwarded_host_and_scheme_count_only_from_a_loopback_peer(client: str, trusted: bool) -> None:
    """Behind Werkzeug's ProxyFix the peer address is the last X-Forwarded-For entry, which may be anything."""
    from werkzeug.middleware.proxy_fix import ProxyFix

    app = create_app(":memory:", CONFIG)
    try:
        with werkzeug_server(ProxyFix(app, x_for=1, x_proto=0, x_host=0)) as url:
            headers = {
                "Authorization": f"Bearer {TOKEN}",
                "X-Forwarded-For": client,
                "X-Forwarded-Proto": "https",
                "X-Forwarded-Host": "feedback.example.com",
            }
            response = urllib3.request("GET", url + "/api/0" + KEYS, headers=headers, retries=False, timeout=WAIT)
            assert response.status == 200, response.data
            dsn = json.loads(response.data)[0]["dsn"]["public"]
    finally:
        app.store.close()
    own = f"http://{WEB.public_key}@{url.split('://', 1)[1]}/2"
    assert dsn == (f"https://{WEB.public_key}@feedback.example.com/2" if trusted else own)


# -- the receiver's own controls ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"max_connections": 0}, "max_connections must be >= 1"),
        ({"config": CONFIG, "api_token": TOKEN}, "give tokens in config or as api_token/read_token, not both"),
        ({"config": CONFIG, "read_token": TOKEN}, "give tokens in config or as api_token/read_token, not both"),
        ({"max_body_size": -1}, "max_body_size must be >= 0"),
    ],
    ids=["no-connections", "config-and-api-token", "config-and-read-token", "negative-body-size"],
)
def test_impossible_receiver_settings_are_refused(arguments: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as raised:
        LocalReceiver(**arguments)
    assert str(raised.value) == message


def test_what_only_a_started_receiver_knows() -> None:
    local = LocalReceiver(config=CONFIG, max_body_size=1000)
    with pytest.raises(RuntimeError) as token:
        local.api_token  # noqa: B018
    assert str(token.value) == "the token is known once started; start the LocalReceiver first"
    with pytest.raises(RuntimeError) as app:
        local.app  # noqa: B018
    assert str(app.value) == "the application is made by start(); start the LocalReceiver first"
    with local:
        assert local.max_body_size == 1000
        assert local.app.max_body_size == 1000
        assert local.app.api_token == local.api_token == TOKEN
        status = post_envelope(local, feedback_envelope("d" * 32, "x" * 1000)).status
        assert status == 413


@pytest.mark.parametrize(
    ("status", "times", "message"),
    [(199, 1, "invalid HTTP status 199"), (600, 1, "invalid HTTP status 600"), (429, 0, "times must be >= 1 or None")],
)
def test_an_impossible_canned_answer_is_refused_and_not_queued(
    server: LocalReceiver, status: int, times: int, message: str
) -> None:
    with pytest.raises(ValueError) as raised:
        server.respond_with(status, times=times)
    assert str(raised.value) == message
    event_id = f"{status:032x}"
    response = post_envelope(server, feedback_envelope(event_id, "answered normally"))
    assert (response.status, json.loads(response.data)) == (200, {"id": event_id})


# -- serve() ------------------------------------------------------------------------------------------------------


def _refused(url: str) -> bool:
    host, _, port = url.split("://", 1)[1].rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=WAIT).close()
    except ConnectionRefusedError:
        return True
    return False


def send_feedback_to(envelope_url: str, event_id: str, message: str, key: str = "public") -> tuple[int, Any]:
    """POST a feedback envelope with the public ``key``; the answer's status and JSON."""
    response = urllib3.request(
        "POST",
        f"{envelope_url}?sentry_key={key}",
        body=feedback_envelope(event_id, message),
        retries=False,
        timeout=WAIT,
    )
    return response.status, json.loads(response.data)


def test_serve_runs_until_on_start_stops_it() -> None:
    results: dict[str, Any] = {}

    def on_start(receiver: LocalReceiver) -> None:
        results["answer"] = send_feedback_to(receiver.envelope_url, "e" * 32, "to serve()", receiver.public_key)
        results["received"] = receiver.received
        results["feedback"] = [f.message for f in receiver.store.list_feedback()]
        results["url"] = receiver.url
        receiver.stop()

    serve(project_id="5", public_key="servekey", on_start=on_start)

    assert results["answer"] == (200, {"id": "e" * 32})
    assert results["received"] == []  # serve() keeps no requests
    assert results["feedback"] == ["to serve()"]
    assert _refused(results["url"])


SERVE_WITH_CTRL_C = (
    "import signal; signal.signal(signal.SIGINT, signal.default_int_handler)\n"
    "from sentry_feedback.server import serve; serve()"
)


def test_serve_prints_where_it_listens_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    """``serve()`` in a process of its own, as a user runs it, stopped by a real Ctrl-C (SIGINT)."""
    process = subprocess.Popen(
        # Ctrl-C raises KeyboardInterrupt as in a terminal, even when this test runs in a background job (which
        # starts its processes with SIGINT ignored).
        [sys.executable, "-u", "-c", SERVE_WITH_CTRL_C],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        cwd=tmp_path,
    )
    try:
        assert process.stdout is not None
        first, second = process.stdout.readline(), process.stdout.readline()
        match = re.fullmatch(r"sentry-feedback receiver listening on (http://127\.0\.0\.1:\d+)\n", first)
        assert match is not None, (first, second)
        url = match.group(1)
        assert second == f"DSN: {url.replace('://', '://public@')}/1\n"
        assert send_feedback_to(f"{url}/api/1/envelope/", "f" * 32, "before Ctrl-C") == (200, {"id": "f" * 32})
        process.send_signal(signal.SIGINT)
        rest, errors = process.communicate(timeout=WAIT)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert (process.returncode, rest, errors) == (0, "", "")  # stopped cleanly: no traceback, nothing more
    assert _refused(url)
