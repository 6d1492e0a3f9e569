"""The endpoint as an ASGI 3 application: the body is received within the limit, the rest runs in a thread."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any

from .._request_data import from_asgi_scope
from ._endpoint import RequestHead, is_mounted_path, mount_prefix
from ._responses import Answer, EndpointResponse, Refusal
from ._submission import BodyPlan

if TYPE_CHECKING:
    from ..asgi import ASGIApplication, Receive, Send
    from ._endpoint import FeedbackEndpoint

__all__ = ["FeedbackAsgiApp"]

logger = logging.getLogger("sentry_feedback")


class _Disconnected(Exception):
    """The client went away before its body arrived: there is no one to answer."""


class FeedbackAsgiApp:
    """A :class:`~sentry_feedback.endpoint.FeedbackEndpoint` as an ASGI 3 application (``endpoint.asgi_app``).

    Receives the body (refused with 413 as soon as it is larger than allowed), then parses it
    and captures the feedback in a thread of the event loop's default executor, in the
    request's context: the event loop never waits for the SDK (nor, with
    ``wait_for_delivery``, for Sentry). Answers ``lifespan`` messages, so that it can be
    served on its own; closes websockets.
    """

    def __init__(self, endpoint: FeedbackEndpoint) -> None:
        self.endpoint = endpoint

    def __repr__(self) -> str:
        return f"FeedbackAsgiApp({self.endpoint!r})"

    async def __call__(self, scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        """Answer one connection."""
        kind = scope.get("type")
        if kind == "lifespan":
            await _lifespan(receive, send)
            return
        if kind != "http":
            if kind == "websocket":
                await send({"type": "websocket.close", "code": 1008})
            return
        endpoint = self.endpoint
        with endpoint._request_scope(lambda options: from_asgi_scope(scope, options=options)):
            head = head_from_scope(scope)
            try:
                response = await self._respond(head, receive)
            except _Disconnected:
                return
            await _send(send, response, head.method == "HEAD")

    async def _respond(self, head: RequestHead, receive: Receive) -> EndpointResponse:
        endpoint = self.endpoint
        step = endpoint._preflight(head, terminated=True)
        if isinstance(step, EndpointResponse):
            return step
        answer, plan = step
        try:
            body = await _receive_body(receive, plan)
        except Refusal as refusal:
            return answer.refusal(refusal)
        except _Disconnected:
            raise
        except Exception:
            logger.exception("feedback endpoint: could not receive the body")
            return _failed(answer)
        context = contextvars.copy_context()  # the request's scopes, in the thread too
        work = functools.partial(context.run, endpoint._submit, head, answer, plan, body)
        try:
            return await asyncio.get_running_loop().run_in_executor(None, work)
        except Exception:
            logger.exception("feedback endpoint: unexpected error")
            return _failed(answer)

    def mount(self, app: ASGIApplication, path: str = "/feedback") -> ASGIApplication:
        """``app`` with the endpoint at ``path`` (and ``path/form.js``, ``path/form.css``) in front of it."""
        prefix = mount_prefix(path)

        async def application(scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
            if scope.get("type") == "http" and is_mounted_path(scope.get("path"), prefix):
                await self(scope, receive, send)
            else:
                await app(scope, receive, send)

        return application


def head_from_scope(scope: MutableMapping[str, Any]) -> RequestHead:
    """The head of an ASGI ``http`` connection."""
    headers: dict[str, str] = {}
    raw = scope.get("headers")
    if isinstance(raw, (list, tuple)):
        for pair in raw[:200]:
            if isinstance(pair, (list, tuple)) and len(pair) == 2:
                name, value = pair
                if isinstance(name, (bytes, bytearray)) and isinstance(value, (bytes, bytearray)):
                    key = bytes(name).decode("latin-1").lower()
                    text = bytes(value).decode("latin-1")
                    headers[key] = f"{headers[key]}, {text}" if key in headers else text
    client = scope.get("client")
    remote = client[0] if isinstance(client, (list, tuple)) and client else None
    server = scope.get("server")
    name, port = server if isinstance(server, (list, tuple)) and len(server) == 2 else (None, None)
    return RequestHead.of(scope.get("method"), scope.get("path"), headers, remote, (name, port, scope.get("scheme")))


async def _receive_body(receive: Receive, plan: BodyPlan) -> bytes:
    """The body, refused (413) as soon as it is larger than ``plan.limit`` (or than its Content-Length says)."""
    chunks: list[bytes] = []
    total = 0
    while True:
        message = await receive()
        kind = message.get("type")
        if kind == "http.disconnect":
            raise _Disconnected
        if kind != "http.request":
            continue
        chunk = message.get("body", b"")
        if isinstance(chunk, (bytes, bytearray)) and chunk:
            total += len(chunk)
            if total > plan.limit:
                raise Refusal(413, "body_too_large", f"the body is larger than {plan.limit} bytes")
            chunks.append(bytes(chunk))
        if not message.get("more_body", False):
            break
    if plan.length is not None and total != plan.length:
        raise Refusal(400, "incomplete_body", f"the body has {total} bytes, not the {plan.length} announced")
    return b"".join(chunks)


async def _send(send: Send, response: EndpointResponse, head_only: bool) -> None:
    headers = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in response.headers]
    headers.append((b"content-length", str(len(response.body)).encode("ascii")))
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head_only else response.body})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message.get("type") == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message.get("type") == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def _failed(answer: Answer) -> EndpointResponse:
    return answer.json(500, {"error": "internal_error", "detail": "the feedback could not be handled"})
