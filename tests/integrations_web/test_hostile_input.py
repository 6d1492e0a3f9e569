"""Odd and hostile requests, and failures of the middlewares' own code, never break the application."""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Callable, Iterable, MutableMapping
from typing import Any

import pytest

import sentry_feedback
from sentry_feedback import _request_data
from sentry_feedback.asgi import SentryAsgiMiddleware
from sentry_feedback.server import LocalReceiver
from sentry_feedback.wsgi import SentryWsgiMiddleware

from .direct import call_asgi, call_wsgi, environ, http_scope, stored

Init = Callable[..., sentry_feedback.Client]


def reporting_app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    sentry_feedback.capture_feedback("odd request")
    start_response("200 OK", [])
    return [b"ok"]


async def reporting_asgi_app(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
    sentry_feedback.capture_feedback("odd request")
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


HOSTILE_ENVIRONS: dict[str, dict[str, Any]] = {
    "empty": {"wsgi.input": io.BytesIO()},
    "not-strings": {
        "REQUEST_METHOD": 7,
        "PATH_INFO": None,
        "QUERY_STRING": b"a=1",
        "HTTP_HOST": ["x"],
        "HTTP_X_THING": 3.5,
        "SERVER_PORT": object(),
        "wsgi.url_scheme": None,
    },
    "huge-headers": {
        **{f"HTTP_X_HEADER_{n}": "v" * 100_000 for n in range(300)},
        "HTTP_HOST": "h" * 10_000,
        "QUERY_STRING": "q=" + "x" * 1_000_000,
        "PATH_INFO": "/" + "p" * 100_000,
    },
    "undecodable": {
        # Latin-1 code points standing for bytes that are not UTF-8 (PEP 3333 native strings).
        "PATH_INFO": "/caf\xe9/\xff\xfe",
        "QUERY_STRING": "name=\xff\xfe&x=%ff%fe&&==",
        "HTTP_USER_AGENT": "\xc3\x28 broken",
        "HTTP_COOKIE": "=; ;a;=b; \xff=\xfe",
        "HTTP_SENTRY_TRACE": "\xff" * 40,
        "HTTP_BAGGAGE": "sentry-trace_id=%ZZ,,,=,\xff",
        "CONTENT_LENGTH": "not a number",
        "CONTENT_TYPE": "application/json; charset=\xff",
    },
    "odd-values": {
        "REQUEST_METHOD": "get / http/1.1",
        "HTTP_HOST": "evil.example.com/path?x",
        "SERVER_NAME": "",
        "REMOTE_ADDR": "not an ip",
        "wsgi.url_scheme": "javascript",
        "CONTENT_LENGTH": "-5",
        "HTTP_X_FORWARDED_FOR": "<script>",
    },
}


@pytest.mark.parametrize("extra", HOSTILE_ENVIRONS.values(), ids=HOSTILE_ENVIRONS.keys())
@pytest.mark.parametrize("pii", [False, True], ids=["default", "pii"])
def test_hostile_environ(
    sentry_init: Init,
    sentry_receiver: LocalReceiver,
    caplog: pytest.LogCaptureFixture,
    extra: dict[str, Any],
    pii: bool,
) -> None:
    sentry_init(send_default_pii=pii)
    env = dict(extra) if set(extra) == {"wsgi.input"} else {**environ(), **extra}
    with caplog.at_level(logging.WARNING, logger="sentry_feedback"):
        assert call_wsgi(SentryWsgiMiddleware(reporting_app, use_x_forwarded_for=True), env) == ("200 OK", b"ok")
    assert not caplog.records  # the middleware coped: it did not fall back
    _, (feedback,) = stored(sentry_receiver)  # and Sentry's normalizer found nothing wrong with it
    request = feedback.data["request"]
    assert request["url"].endswith("/") or "/" in request["url"]
    assert len(request.get("headers", {})) <= _request_data.MAX_HEADERS
    assert all(len(value) <= _request_data.MAX_HEADER_VALUE for value in request.get("headers", {}).values())
    assert len(request.get("query_string", "")) <= _request_data.MAX_QUERY
    assert len(feedback.data.get("transaction", "")) <= _request_data.MAX_TRANSACTION


HOSTILE_SCOPES: dict[str, dict[str, Any]] = {
    "minimal": {"type": "http"},
    "wrong-types": {
        "type": "http",
        "method": None,
        "path": 42,
        "root_path": b"/x",
        "query_string": "not bytes",
        "headers": "not a list",
        "client": "nope",
        "server": ["host"],
        "scheme": 5,
    },
    "odd-headers": {
        **http_scope(),
        "headers": [
            (b"host", b"bad host\xff"),
            "not a pair",
            (b"x-a", "str value"),
            (b"x-b", b"\xff\xfe\xc3\x28"),
            (b"sentry-trace", b"\xff" * 60),
            (b"baggage", b"\xff,\x00=,="),
            *[(b"x-many-%d" % n, b"v" * 50_000) for n in range(300)],
        ],
        "query_string": b"a=\xff\xfe&%zz",
        "path": "/\udcff/caf\xe9",
        "client": ["not an ip", None],
    },
}


@pytest.mark.parametrize("scope", HOSTILE_SCOPES.values(), ids=HOSTILE_SCOPES.keys())
@pytest.mark.parametrize("pii", [False, True], ids=["default", "pii"])
def test_hostile_asgi_scope(
    sentry_init: Init, sentry_receiver: LocalReceiver, scope: dict[str, Any], pii: bool
) -> None:
    sentry_init(send_default_pii=pii)
    sent = asyncio.run(call_asgi(SentryAsgiMiddleware(reporting_asgi_app), dict(scope)))
    assert sent[-1]["body"] == b"ok"
    _, (feedback,) = stored(sentry_receiver)
    assert len(feedback.data.get("request", {}).get("headers", {})) <= _request_data.MAX_HEADERS


def test_unknown_asgi_scope_types_pass_through(sentry_init: Init) -> None:
    sentry_init()
    seen: list[object] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(sentry_feedback.get_isolation_scope())

    middleware = SentryAsgiMiddleware(app)
    asyncio.run(middleware({"type": "custom-protocol"}, None, None))
    asyncio.run(middleware("not a mapping", None, None))  # type: ignore[arg-type]
    assert seen == [sentry_feedback.get_isolation_scope()] * 2


def test_failures_of_the_middleware_are_logged_not_raised(
    sentry_init: Init, sentry_receiver: LocalReceiver, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    sentry_init()

    def broken(*args: object, **kwargs: object) -> object:
        raise RuntimeError("bug in the middleware")

    monkeypatch.setattr("sentry_feedback.wsgi.from_wsgi_environ", broken)
    monkeypatch.setattr("sentry_feedback.asgi.from_asgi_scope", broken)
    with caplog.at_level(logging.ERROR, logger="sentry_feedback"):
        assert call_wsgi(SentryWsgiMiddleware(reporting_app), environ()) == ("200 OK", b"ok")
        assert asyncio.run(call_asgi(SentryAsgiMiddleware(reporting_asgi_app), http_scope()))[-1]["body"] == b"ok"
    assert [record.getMessage() for record in caplog.records] == [
        "could not set up the scope of a WSGI request; the request runs without it",
        "could not set up the scope of an ASGI connection; it runs without it",
    ]
    _, feedback = stored(sentry_receiver)
    assert len(feedback) == 2


def test_failing_event_processor_keeps_the_event(
    sentry_init: Init, sentry_receiver: LocalReceiver, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    sentry_init()

    def broken(self: object, body: object = None) -> dict[str, Any]:
        raise RuntimeError("bug in the request data")

    monkeypatch.setattr(_request_data.RequestData, "to_event", broken)
    with caplog.at_level(logging.ERROR, logger="sentry_feedback"):
        assert call_wsgi(SentryWsgiMiddleware(reporting_app), environ()) == ("200 OK", b"ok")
    assert "could not add the request data" in caplog.text
    _, (feedback,) = stored(sentry_receiver)
    assert "request" not in feedback.data


@pytest.mark.parametrize("middleware", [SentryWsgiMiddleware, SentryAsgiMiddleware])
def test_wrong_options_raise_at_once(middleware: Any) -> None:
    with pytest.raises(ValueError, match="max_request_body_size must be >= 0"):
        middleware(reporting_app, max_request_body_size=-1)
    with pytest.raises(TypeError, match="max_request_body_size must be an integer"):
        middleware(reporting_app, max_request_body_size="10k")
    with pytest.raises(TypeError, match="use_x_forwarded_for"):
        middleware(reporting_app, use_x_forwarded_for="yes")
    with pytest.raises(TypeError, match="app must be a WSGI or ASGI application"):
        middleware(None)
    assert repr(middleware(reporting_app)).startswith(f"{middleware.__name__}(<function reporting_app")
