"""ASGI middleware: one isolation scope per request, websocket connection and lifespan.

>>> from sentry_feedback.asgi import SentryAsgiMiddleware
>>> app = SentryAsgiMiddleware(app)  # or, with Starlette / FastAPI: app.add_middleware(SentryAsgiMiddleware)

See the "WSGI and ASGI middleware" page of the documentation.
"""

from __future__ import annotations

from collections.abc import MutableMapping

from ._context import get_client
from ._log import logger
from ._request_data import BodyRecorder, from_asgi_scope
from ._web import RequestScope, WebMiddleware, active_request, set_transaction_name

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from typing import Any, TypeAlias

__all__ = ["SentryAsgiMiddleware", "set_transaction_name"]

Message: TypeAlias = "MutableMapping[str, Any]"
Receive: TypeAlias = "Callable[[], Awaitable[Message]]"
Send: TypeAlias = "Callable[[Message], Awaitable[None]]"
ASGIApplication: TypeAlias = "Callable[[MutableMapping[str, Any], Receive, Send], Awaitable[None]]"


class SentryAsgiMiddleware(WebMiddleware[ASGIApplication]):
    """Wraps an ASGI 3 application: each connection runs in its own isolation scope.

    Every ``http`` request, every ``websocket`` connection and the ``lifespan`` get a fork
    of the isolation scope, so ``set_user``, ``set_tag``... stay in it; tasks the
    application starts (``asyncio.create_task``, Starlette's background tasks) copy it. For
    requests and websockets the middleware also:

    * continues the caller's trace from ``sentry-trace`` (or ``traceparent``) and ``baggage``;
    * puts the request data (method, URL, query string, filtered headers; with
      ``send_default_pii`` also cookies, the body the application read and the client's
      IP) and a transaction name (Starlette's and FastAPI's route, else the path) on every
      error and feedback captured in it.

    An exception raised by the application (while streaming a response too) is captured once
    (mechanism ``{"type": "asgi", "handled": false}``) and raised again unchanged; afterwards
    ``last_event_id()`` gives its id to an error handler around the middleware. A lifespan
    exception is captured only once the application took part in the lifespan protocol
    (an application that does not support it says so by raising).

    ``use_x_forwarded_for=True`` takes the client's IP from the first ``X-Forwarded-For``
    entry (only behind a proxy that sets it). ``max_request_body_size`` bounds the body
    kept (bytes; ``0``: never). A failure in the middleware's own code is logged on the
    ``sentry_feedback`` logger, never raised.
    """

    async def __call__(self, scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        """Run the application for one connection in the connection's scope."""
        kind = scope.get("type") if isinstance(scope, MutableMapping) else None
        if kind not in ("http", "websocket", "lifespan") or active_request() is not None:
            await self.app(scope, receive, send)
            return
        opened = self._open(scope, receive, kind == "lifespan")
        if opened is None:
            await self.app(scope, receive, send)
            return
        request, app_receive, took_part = opened

        async def send_and_note_status(message: Message) -> None:
            if isinstance(message, MutableMapping) and message.get("type") == "http.response.start":
                request.set_response_status(message.get("status"))  # type: ignore[arg-type]
            await send(message)

        with request.handling(took_part):
            await self.app(scope, app_receive, send_and_note_status if kind == "http" else send)
        request.finish()

    def _open(
        self, scope: MutableMapping[str, Any], receive: Receive, lifespan: bool
    ) -> tuple[RequestScope, Receive, Callable[[], bool] | None] | None:
        """The connection's scope, the ``receive`` to give the application, and whether to capture errors."""
        try:
            if lifespan:
                return RequestScope(None, mechanism_type="asgi"), *_watch_lifespan(receive)
            options = get_client().options
            data = from_asgi_scope(scope, options=options, use_x_forwarded_for=self.use_x_forwarded_for)
            body = None
            if scope.get("type") == "http" and options.send_default_pii and data.wants_body(self.max_request_body_size):
                body = BodyRecorder(self.max_request_body_size, data.content_type, data.content_length)
                receive = _recording_receive(receive, body)
            request = RequestScope(
                data,
                mechanism_type="asgi",
                body=body,
                route=lambda: _starlette_route(scope),
                op="websocket.server" if scope.get("type") == "websocket" else "http.server",
            )
            return request, receive, None
        except Exception:
            logger.exception("could not set up the scope of an ASGI connection; it runs without it")
            return None


def _starlette_route(scope: MutableMapping[str, Any]) -> str | None:
    """The path of the route Starlette (or FastAPI) matched: its router puts it in the scope.

    A ``Mount`` (or ``Host``) whose application matched nothing names no route: the
    request keeps its path.
    """
    route = scope.get("route")
    if getattr(route, "routes", None) is not None:
        return None
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else None


def _watch_lifespan(receive: Receive) -> tuple[Receive, Callable[[], bool]]:
    """A ``receive`` noting that the application takes part in the lifespan protocol."""
    received = False

    async def lifespan_receive() -> Message:
        nonlocal received
        received = True
        return await receive()

    return lifespan_receive, lambda: received


def _recording_receive(receive: Receive, recorder: BodyRecorder) -> Receive:
    """A ``receive`` that keeps a copy of the request body the application reads."""

    async def recording_receive() -> Message:
        message = await receive()
        try:
            if message.get("type") == "http.request":
                body = message.get("body", b"")
                chunk = bytes(body) if isinstance(body, (bytes, bytearray)) else b""
                recorder.add(chunk, end=not message.get("more_body"))
        except Exception:
            logger.exception("could not record the request body")
        return message

    return recording_receive
