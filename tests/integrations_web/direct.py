"""Calling WSGI and ASGI applications directly, as a server would, without a socket."""

from __future__ import annotations

import asyncio
import io
import wsgiref.util
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

import sentry_feedback
from sentry_feedback.server import LocalReceiver, StoredEvent, StoredFeedback

WSGIApp = Callable[[dict[str, Any], Any], Iterable[bytes]]
Message = MutableMapping[str, Any]
ASGIApp = Callable[[MutableMapping[str, Any], Any, Any], Awaitable[None]]


def environ(
    path: str = "/", *, method: str = "GET", query: str = "", body: bytes = b"", **headers: str
) -> dict[str, Any]:
    """A WSGI environ; ``headers`` are keyword arguments like ``HTTP_X_API_KEY="..."`` or ``CONTENT_TYPE``."""
    env: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "REMOTE_ADDR": "192.0.2.10",
        "wsgi.input": io.BytesIO(body),
    }
    if body:
        env["CONTENT_LENGTH"] = str(len(body))
    env.update(headers)
    wsgiref.util.setup_testing_defaults(env)  # SERVER_NAME 127.0.0.1, HTTP_HOST, wsgi.* keys
    return env


class StartResponse:
    """A ``start_response`` that remembers the status."""

    def __init__(self) -> None:
        self.status: str | None = None

    def __call__(self, status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
        self.status = status
        return lambda data: None


def call_wsgi(app: WSGIApp, env: dict[str, Any]) -> tuple[str | None, bytes]:
    """Run one request as a server does (iterate, then close); return the status and the body."""
    start_response = StartResponse()
    response = app(env, start_response)
    try:
        body = b"".join(response)
    finally:
        close = getattr(response, "close", None)
        if close is not None:
            close()
    return start_response.status, body


def http_scope(
    path: str = "/", *, method: str = "GET", query: bytes = b"", headers: Iterable[tuple[bytes, bytes]] = ()
) -> dict[str, Any]:
    """An ASGI ``http`` connection scope."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query,
        "headers": [(b"host", b"testserver"), *headers],
        "client": ("192.0.2.20", 50000),
        "server": ("127.0.0.1", 8000),
    }


async def call_asgi(
    app: ASGIApp, scope: MutableMapping[str, Any], messages: Iterable[Message] = (), sent: list[Message] | None = None
) -> list[Message]:
    """Run one connection: ``receive`` gives ``messages`` then waits forever; return what the app sent.

    ``sent``, if given, collects the messages the application sends (also when it raises).
    """
    incoming = list(messages) or [{"type": "http.request", "body": b"", "more_body": False}]
    sent = [] if sent is None else sent

    async def receive() -> Message:
        if incoming:
            return incoming.pop(0)
        await asyncio.Event().wait()  # like a client that keeps the connection open
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


def stored(receiver: LocalReceiver) -> tuple[list[StoredEvent], list[StoredFeedback]]:
    """Flush the SDK, then what the receiver stored: error events and feedback, oldest first."""
    assert sentry_feedback.flush(10)
    events = sorted(receiver.store.list_events(), key=lambda e: e.id)
    feedback = sorted(receiver.store.list_feedback(), key=lambda f: f.id)
    return events, feedback
