"""The applications the server tests run under gunicorn and uvicorn (imported by the server, not by pytest).

The SDK is initialized on import with the DSN in ``WEB_TEST_DSN`` (the test's LocalReceiver). Both answer:

* ``/feedback``: the feedback endpoint (at most 20 KiB per body, 2 posts per client per minute);
* ``/checkout``: an error, and an error page with the embeddable form linked to it;
* ``/flush``: wait until everything captured was sent, answer ``flushed``.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

import sentry_feedback
from sentry_feedback.asgi import SentryAsgiMiddleware
from sentry_feedback.endpoint import EndpointOptions, FeedbackEndpoint, RateLimit
from sentry_feedback.wsgi import SentryWsgiMiddleware

sentry_feedback.init(dsn=os.environ["WEB_TEST_DSN"], release="endpoint-test@1")
endpoint = FeedbackEndpoint(EndpointOptions(max_body_size=20 * 1024, rate_limit=RateLimit(2, 60.0)))


def _error_page() -> str:
    try:
        raise ZeroDivisionError("the cart is empty")
    except ZeroDivisionError:
        error_id = sentry_feedback.capture_exception()
    return f"<h1>Sorry!</h1>{endpoint.form_html('/feedback', associated_event_id=error_id)}"


def _shop(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    if environ["PATH_INFO"] == "/flush":
        sentry_feedback.flush(10)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"flushed"]
    start_response("500 Internal Server Error", [("Content-Type", "text/html; charset=utf-8")])
    return [_error_page().encode()]


wsgi_application = SentryWsgiMiddleware(endpoint.mount_wsgi(_shop))

Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


async def _asgi_shop(scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["path"] == "/flush":
        await asyncio.to_thread(sentry_feedback.flush, 10)
        status, body = 200, b"flushed"
    else:
        status, body = 500, _error_page().encode()
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"text/html")]})
    await send({"type": "http.response.body", "body": body})


asgi_application = SentryAsgiMiddleware(endpoint.mount_asgi(_asgi_shop))
