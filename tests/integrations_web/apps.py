"""The applications the server tests run under gunicorn and uvicorn (imported by the server, not by pytest).

The SDK is initialized on import with the DSN in ``WEB_TEST_DSN`` (the test's LocalReceiver).
Both applications answer the same paths:

* ``/feedback?user=<id>``: set the user and a tag, capture a feedback, answer its id;
* ``/together?user=<id>``: like ``/feedback``, but two requests wait for each other first;
* ``/boom``: raise ``ZeroDivisionError`` (the server answers 500);
* ``/page/boom``: raise too, and an error-page middleware around the SDK's answers
  ``500 last_event_id=<id> trace=<sentry-trace>``;
* ``/flush``: wait until everything captured was sent, answer ``flushed``.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import urllib.parse
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

import sentry_feedback
from sentry_feedback.asgi import SentryAsgiMiddleware
from sentry_feedback.wsgi import SentryWsgiMiddleware

sentry_feedback.init(dsn=os.environ["WEB_TEST_DSN"], send_default_pii=True, release="web-test@1")
sentry_feedback.get_global_scope().set_tag("server", os.environ.get("WEB_TEST_SERVER", "?"))

_together = threading.Barrier(2)
_together_async: list[asyncio.Event] = []


def _user(query: str) -> str:
    return urllib.parse.parse_qs(query).get("user", ["anonymous"])[0]


# -- WSGI -------------------------------------------------------------------------------------------


def _wsgi_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    path, user = environ.get("PATH_INFO", ""), _user(environ.get("QUERY_STRING", ""))
    if path.endswith("/boom"):
        raise ZeroDivisionError("division by zero in a WSGI app")
    if path == "/flush":
        sentry_feedback.flush(10)
        body = "flushed"
    elif path in ("/feedback", "/together"):
        sentry_feedback.set_user({"id": user})
        sentry_feedback.set_tag("user_tag", user)
        if path == "/together":
            _together.wait(10)  # both requests have set their user before either captures
        body = sentry_feedback.capture_feedback(f"feedback from {user}") or "dropped"
    else:
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found"]
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body.encode()]


def _wsgi_error_pages(app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    def error_pages(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not environ.get("PATH_INFO", "").startswith("/page/"):
            return app(environ, start_response)
        try:
            return app(environ, start_response)
        except Exception:
            start_response("500 Internal Server Error", [("Content-Type", "text/plain")], sys.exc_info())
            page = f"last_event_id={sentry_feedback.last_event_id()} trace={sentry_feedback.get_traceparent()}"
            return [page.encode()]

    return error_pages


wsgi_application = _wsgi_error_pages(SentryWsgiMiddleware(_wsgi_app))


# -- ASGI -------------------------------------------------------------------------------------------

Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


async def _respond(send: Send, status: int, body: str) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": body.encode()})


async def _asgi_app(scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                sentry_feedback.set_tag("phase", "lifespan")
                sentry_feedback.capture_message("application started")
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    path, user = scope["path"], _user(scope.get("query_string", b"").decode())
    if path.endswith("/boom"):
        raise ZeroDivisionError("division by zero in an ASGI app")
    if path == "/flush":
        await asyncio.to_thread(sentry_feedback.flush, 10)
        await _respond(send, 200, "flushed")
    elif path in ("/feedback", "/together"):
        sentry_feedback.set_user({"id": user})
        sentry_feedback.set_tag("user_tag", user)
        if path == "/together":
            arrived = asyncio.Event()
            _together_async.append(arrived)
            if len(_together_async) == 2:
                for event in _together_async:
                    event.set()
            await asyncio.wait_for(arrived.wait(), 10)
        await _respond(send, 200, sentry_feedback.capture_feedback(f"feedback from {user}") or "dropped")
    else:
        await _respond(send, 404, "not found")


def _asgi_error_pages(app: Any) -> Any:
    async def error_pages(scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/page/"):
            await app(scope, receive, send)
            return
        try:
            await app(scope, receive, send)
        except Exception:
            page = f"last_event_id={sentry_feedback.last_event_id()} trace={sentry_feedback.get_traceparent()}"
            await _respond(send, 500, page)

    return error_pages


asgi_application = _asgi_error_pages(SentryAsgiMiddleware(_asgi_app))
