"""The request data read from a WSGI environ or an ASGI scope: URLs, header filtering, bodies."""

from __future__ import annotations

from typing import Any

import pytest

from sentry_feedback import EventScrubber, Options
from sentry_feedback._request_data import BodyRecorder, from_asgi_scope, from_wsgi_environ
from sentry_feedback._scrubber import DEFAULT_DENYLIST

from .direct import environ, http_scope


@pytest.mark.parametrize(
    ("extra", "url"),
    [
        ({"HTTP_HOST": "shop.example.com:80"}, "http://shop.example.com/a%20b/%C3%A9"),
        ({"HTTP_HOST": "shop.example.com:8080"}, "http://shop.example.com:8080/a%20b/%C3%A9"),
        ({"HTTP_HOST": "shop.example.com:443", "wsgi.url_scheme": "https"}, "https://shop.example.com/a%20b/%C3%A9"),
        ({"HTTP_HOST": "[::1]:8000"}, "http://[::1]:8000/a%20b/%C3%A9"),
        ({"HTTP_HOST": "bad host", "SERVER_NAME": "internal", "SERVER_PORT": "81"}, "http://internal:81/a%20b/%C3%A9"),
        ({"SCRIPT_NAME": "/shop", "HTTP_HOST": "example.com"}, "http://example.com/shop/a%20b/%C3%A9"),
    ],
)
def test_wsgi_url(extra: dict[str, Any], url: str) -> None:
    env = {**environ("/a b/\xc3\xa9"), **extra}  # PATH_INFO holds the UTF-8 bytes as latin-1 code points
    data = from_wsgi_environ(env, options=Options())
    assert data.url == url
    assert data.path.endswith("/a b/é")


@pytest.mark.parametrize(
    ("changes", "url"),
    [
        ({}, "http://testserver/items"),
        ({"headers": [], "server": ("10.0.0.5", 8000)}, "http://10.0.0.5:8000/items"),
        ({"headers": [], "server": ("10.0.0.5", 443), "scheme": "https"}, "https://10.0.0.5/items"),
        ({"headers": [], "server": None}, "/items"),
        ({"root_path": "/api"}, "http://testserver/api/items"),
        ({"root_path": "/api", "path": "/api/items"}, "http://testserver/api/items"),  # path includes it already
        ({"type": "websocket", "scheme": "wss"}, "wss://testserver/items"),
    ],
)
def test_asgi_url(changes: dict[str, Any], url: str) -> None:
    scope = {**http_scope("/items"), **changes}
    assert from_asgi_scope(scope, options=Options()).url == url


def test_headers_filtered_by_the_configured_scrubber() -> None:
    scrubber = EventScrubber(denylist=[*DEFAULT_DENYLIST, "x-tenant"])
    env = environ(HTTP_X_TENANT="acme", HTTP_X_AUTH_TOKEN="t", HTTP_ACCEPT="*/*", HTTP_AUTHORIZATION="Basic x")
    headers = from_wsgi_environ(env, options=Options(event_scrubber=scrubber)).headers
    assert headers["X-Tenant"] == headers["X-Auth-Token"] == headers["Authorization"] == "[Filtered]"
    assert headers["Accept"] == "*/*"

    # Turning the scrubber off does not make the middleware send credentials.
    headers = from_wsgi_environ(env, options=Options(event_scrubber=False)).headers
    assert headers["Authorization"] == headers["X-Auth-Token"] == "[Filtered]"
    assert headers["X-Tenant"] == "acme"


def test_pii_only_with_send_default_pii() -> None:
    env = environ(HTTP_COOKIE="a=1; b=2", HTTP_X_FORWARDED_FOR="203.0.113.1", REMOTE_ADDR="::ffff:10.0.0.1")
    without = from_wsgi_environ(env, options=Options(), use_x_forwarded_for=True)
    assert (without.cookies, without.client_ip, without.headers["X-Forwarded-For"]) == (None, None, "[Filtered]")
    with_pii = from_wsgi_environ(env, options=Options(send_default_pii=True))
    assert (with_pii.cookies, with_pii.client_ip) == ({"a": "1", "b": "2"}, "::ffff:10.0.0.1")
    assert with_pii.to_event()["cookies"] == {"a": "1", "b": "2"}  # the event scrubber filters the values later


@pytest.mark.parametrize(
    ("content_type", "body", "parsed"),
    [
        ("application/json", b'{"a": [1, null]}', {"a": [1, None]}),
        ("application/vnd.api+json; charset=utf-8", b"[1]", [1]),
        ("application/x-www-form-urlencoded", b"a=1&b=&a=2", {"a": ["1", "2"], "b": ""}),
        ("application/json", b"{not json", None),
        ("application/json", b'"\xff"', None),
        ("multipart/form-data; boundary=x", b"--x--", None),
    ],
)
def test_body_parsing(content_type: str, body: bytes, parsed: object) -> None:
    recorder = BodyRecorder(100, content_type, len(body))
    half = len(body) // 2
    recorder.add(body[:half])
    assert recorder.body() is None  # not complete yet
    recorder.add(body[half:])
    assert recorder.body() == parsed


def test_body_past_the_limit_is_dropped() -> None:
    recorder = BodyRecorder(5, "application/json", None)
    recorder.add(b"[1, 2")
    recorder.add(b", 3]", end=True)
    assert recorder.too_large
    assert recorder.body() is None
