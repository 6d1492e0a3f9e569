"""The tunnel as an ASGI application.

The request is read on the event loop up to the end of the envelope header line, and
refused there when it must be (no thread is used for a refusal). An allowed envelope is
forwarded on a thread of the tunnel's own pool: urllib3 blocks, the event loop must not.
That thread pulls the rest of the body from the event loop one message at a time
(``asyncio.run_coroutine_threadsafe``), so the body streams through without being held.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, TypeAlias

from ._answers import AnswerNow, BodyFailed, TunnelResponse
from ._reading import Reading, lower_headers
from ._tunnel import Tunnel

__all__ = ["AsgiTunnel"]

Message: TypeAlias = "MutableMapping[str, Any]"
Receive: TypeAlias = "Callable[[], Awaitable[Message]]"
Send: TypeAlias = "Callable[[Message], Awaitable[None]]"

#: Threads forwarding envelopes at once, by default; more requests wait for one.
DEFAULT_THREADS = 16


class _Body:
    """The request body as ``http.request`` messages arrive: ``b""`` at its end."""

    def __init__(self, receive: Receive, timeout: float) -> None:
        self._receive = receive
        self._timeout = timeout
        self.ended = False

    async def next(self) -> bytes:
        """The next non-empty piece of the body, ``b""`` at the end; :class:`BodyFailed` when the client goes."""
        while not self.ended:
            try:
                message = await asyncio.wait_for(self._receive(), self._timeout)
            except asyncio.TimeoutError:
                self.ended = True
                raise BodyFailed(408, f"no part of the body came within {self._timeout:g} s") from None
            except Exception as exc:  # a server's own way of saying the client is gone
                self.ended = True
                raise BodyFailed(400, f"could not read the request body: {type(exc).__name__}") from None
            kind = message.get("type")
            if kind == "http.disconnect":
                self.ended = True
                raise BodyFailed(400, "the client went away before the end of the body")
            if kind != "http.request":
                continue
            if not message.get("more_body", False):
                self.ended = True
            body = message.get("body", b"")
            if body:
                return bytes(body)
        return b""


class AsgiTunnel:
    """An ASGI 3 application serving ``tunnel`` (usually reached as ``tunnel.asgi``).

    At most ``threads`` envelopes are forwarded at once (each holds a thread while its body
    streams upstream); more wait their turn. ``lifespan`` is supported, so the app can be
    served on its own (``uvicorn module:tunnel.asgi``): at shutdown the threads and
    connections are closed. A ``websocket`` connection is refused.
    """

    def __init__(self, tunnel: Tunnel, *, threads: int = DEFAULT_THREADS) -> None:
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise ValueError(f"threads must be a positive integer, not {threads!r}")
        self.tunnel = tunnel
        self._threads = threads
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    async def __call__(self, scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        """Serve one ASGI connection."""
        kind = scope.get("type")
        if kind == "lifespan":
            await self._lifespan(receive, send)
            return
        if kind != "http":
            await send({"type": "websocket.close", "code": 1008})
            return
        response = await self._serve(scope, receive)
        headers = [
            (name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in response.headers.items()
        ]
        if response.status != 204:
            headers.append((b"content-length", str(len(response.body)).encode()))
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await send({"type": "http.response.body", "body": response.body})

    def close(self) -> None:
        """Stop the threads (once the forwards under way end) and close the tunnel's connections."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False)
        self.tunnel.close()

    async def _serve(self, scope: MutableMapping[str, Any], receive: Receive) -> TunnelResponse:
        steps = self.tunnel._forwarder  # the same steps as the WSGI app
        started = time.monotonic()
        try:
            method = scope.get("method")
            client = scope.get("client")
            peer = str(client[0]) if isinstance(client, (list, tuple)) and client else None
            body = _Body(receive, steps.options.timeout)
            headers = lower_headers(_scope_headers(scope))
            reading: Reading | None = None
            try:
                incoming = steps.begin(method if isinstance(method, str) else "", headers, peer, length_required=False)
                reading = Reading(incoming, steps.options)
                reading.check_declared()
                line = await _read_header(reading, body)
                route = steps.route(line)
                loop = asyncio.get_running_loop()
                rest = reading.rest(_bridge(body, loop, steps.options.timeout))
                response = await loop.run_in_executor(self._pool(), steps.exchange, incoming, route, rest, started)
            except AnswerNow as answer:
                if reading is not None:
                    await _drain(reading, body)
                response = steps.refused(answer, peer)
            except BodyFailed as failed:
                response = steps.body_failed(failed, peer)
            return steps.finish(response, headers)
        except Exception:
            return steps.failed()

    def _pool(self) -> concurrent.futures.ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = concurrent.futures.ThreadPoolExecutor(
                    self._threads, thread_name_prefix="sentry_feedback.tunnel"
                )
            return self._executor

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            kind = message.get("type")
            if kind == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif kind == "lifespan.shutdown":
                self.close()
                await send({"type": "lifespan.shutdown.complete"})
                return


def _scope_headers(scope: MutableMapping[str, Any]) -> list[tuple[str, str]]:
    pairs = []
    for pair in scope.get("headers") or ():
        if isinstance(pair, (list, tuple)) and len(pair) == 2:
            name, value = pair
            if isinstance(name, (bytes, bytearray)) and isinstance(value, (bytes, bytearray)):
                pairs.append((bytes(name).decode("latin-1"), bytes(value).decode("latin-1")))
    return pairs


async def _read_header(reading: Reading, body: _Body) -> bytes:
    while not reading.complete:
        chunk = await body.next()
        if not chunk:
            break
        if reading.add(chunk):
            return reading.line
    return reading.end()


async def _drain(reading: Reading, body: _Body) -> None:
    budget = reading.drain_budget()
    while budget > 0 and not body.ended:
        try:
            chunk = await body.next()
        except BodyFailed:
            return
        budget -= len(chunk)
        reading.total += len(chunk)


def _bridge(body: _Body, loop: asyncio.AbstractEventLoop, timeout: float) -> Callable[[int], bytes]:
    """``next_chunk(size)`` for the forwarding thread: the next piece of the body, from the event loop."""

    def next_chunk(size: int) -> bytes:
        future = asyncio.run_coroutine_threadsafe(body.next(), loop)
        try:
            # body.next() gives up after ``timeout`` itself; the margin covers a busy loop.
            return future.result(timeout + 5.0)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise BodyFailed(408, "the body stalled") from None

    return next_chunk
