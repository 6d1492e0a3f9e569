"""The endpoint as an ASGI application, called as a server does: limits, disconnects, threads, scopes."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import sentry_feedback
from integrations_web import direct
from sentry_feedback.asgi import SentryAsgiMiddleware
from sentry_feedback.endpoint import EndpointOptions, FeedbackEndpoint
from sentry_feedback.server import LocalReceiver

from .conftest import BOUNDARY, attachments, delivered, multipart, tiny_png

Init = Callable[..., sentry_feedback.Client]
Message = MutableMapping[str, Any]
ASGIApp = Callable[[MutableMapping[str, Any], Any, Any], Awaitable[None]]


def http_scope(
    method: str = "POST", path: str = "/feedback", headers: list[tuple[bytes, bytes]] | None = None
) -> dict[str, Any]:
    return direct.http_scope(path, method=method, headers=headers or ())


class Exchange:
    """One request: the body in ``chunks``; what the application sent, and how much of the body it took."""

    def __init__(self, chunks: list[bytes], *, disconnect_after: int | None = None) -> None:
        self.chunks = chunks
        self.disconnect_after = disconnect_after
        self.received = 0
        self.sent: list[Message] = []

    async def receive(self) -> Message:
        if self.disconnect_after is not None and self.received >= self.disconnect_after:
            return {"type": "http.disconnect"}
        index = self.received
        self.received += 1
        if index >= len(self.chunks):
            return {"type": "http.disconnect"}
        return {"type": "http.request", "body": self.chunks[index], "more_body": index < len(self.chunks) - 1}

    async def send(self, message: Message) -> None:
        self.sent.append(message)

    @property
    def status(self) -> int | None:
        starts = [m for m in self.sent if m["type"] == "http.response.start"]
        return starts[0]["status"] if starts else None

    @property
    def headers(self) -> dict[str, str]:
        start = next(m for m in self.sent if m["type"] == "http.response.start")
        return {k.decode(): v.decode() for k, v in start["headers"]}

    @property
    def json(self) -> Any:
        return json.loads(b"".join(m.get("body", b"") for m in self.sent if m["type"] == "http.response.body"))


async def request(app: ASGIApp, scope: dict[str, Any], exchange: Exchange) -> Exchange:
    await app(scope, exchange.receive, exchange.send)
    return exchange


def json_request(payload: object, *headers: tuple[bytes, bytes]) -> tuple[dict[str, Any], Exchange]:
    body = json.dumps(payload).encode()
    scope = http_scope(
        headers=[(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *headers]
    )
    return scope, Exchange([body])


def test_a_feedback_in_pieces(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    sentry_init()
    png = tiny_png()
    body, content_type = multipart({"message": "from ASGI"}, [("attachments", "shot.png", "image/png", png)])
    scope = http_scope(headers=[(b"content-type", content_type.encode())])  # chunked: no Content-Length
    pieces = [body[i : i + 7] for i in range(0, len(body), 7)]
    exchange = asyncio.run(request(FeedbackEndpoint().asgi_app, scope, Exchange(pieces)))
    assert exchange.status == 202
    (feedback,) = delivered(sentry_receiver)
    assert exchange.json == {"id": feedback.event_id}
    assert feedback.data["request"]["url"] == "http://testserver/feedback"
    assert [(a.filename, a.content_type, a.data) for a in attachments(sentry_receiver, feedback)] == [
        ("shot.png", "image/png", png)
    ]


def test_too_large_stops_receiving(sentry_init: Init) -> None:
    sentry_init()
    endpoint = FeedbackEndpoint(EndpointOptions(max_body_size=1000))
    scope = http_scope(headers=[(b"content-type", f"multipart/form-data; boundary={BOUNDARY}".encode())])
    exchange = asyncio.run(request(endpoint.asgi_app, scope, Exchange([b"x" * 300] * 100)))
    assert exchange.status == 413 and exchange.json["error"] == "body_too_large"
    assert exchange.received == 4  # 1200 bytes: refused without waiting for the rest

    scope = http_scope(headers=[(b"content-type", b"application/json"), (b"content-length", b"100000")])
    exchange = asyncio.run(request(endpoint.asgi_app, scope, Exchange([b"{}"])))
    assert exchange.status == 413 and exchange.received == 0


def test_length_that_does_not_match(sentry_init: Init) -> None:
    sentry_init()
    scope = http_scope(headers=[(b"content-type", b"application/json"), (b"content-length", b"50")])
    exchange = asyncio.run(request(FeedbackEndpoint().asgi_app, scope, Exchange([b'{"message": "m"}'])))
    assert exchange.status == 400 and exchange.json["error"] == "incomplete_body"


def test_a_client_that_goes_away_gets_no_answer(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    sentry_init()
    scope, exchange = json_request({"message": "never finished"})
    exchange.disconnect_after = 0
    asyncio.run(request(FeedbackEndpoint().asgi_app, scope, exchange))
    assert exchange.sent == []
    sentry_feedback.flush(10)
    assert sentry_receiver.store.list_feedback() == []


def test_lifespan_websocket_and_static(sentry_init: Init) -> None:
    sentry_init()
    app = FeedbackEndpoint().asgi_app
    messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
    sent: list[Message] = []

    async def receive() -> Message:
        return next(messages)

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(app({"type": "lifespan"}, receive, send))
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    sent.clear()
    asyncio.run(app({"type": "websocket", "path": "/feedback"}, receive, send))
    assert sent == [{"type": "websocket.close", "code": 1008}]
    head = asyncio.run(request(app, http_scope("HEAD", "/feedback/form.js"), Exchange([])))
    assert head.status == 200 and head.headers["content-type"].startswith("text/javascript")
    assert head.sent[-1]["body"] == b"" and int(head.headers["content-length"]) > 100
    options = asyncio.run(request(app, http_scope("OPTIONS"), Exchange([])))
    assert options.status == 204


def test_the_work_runs_off_the_event_loop(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    threads: list[threading.Thread] = []

    def note_thread(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
        threads.append(threading.current_thread())
        return event

    sentry_init()
    sentry_feedback.add_event_processor(note_thread)
    endpoint = FeedbackEndpoint(EndpointOptions(wait_for_delivery=True))

    async def main() -> tuple[Exchange, threading.Thread, int]:
        ticks = 0
        done = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not done.is_set():
                ticks += 1
                await asyncio.sleep(0)

        task = asyncio.create_task(ticker())
        scope, exchange = json_request({"message": "delivered from a thread"})
        await request(endpoint.asgi_app, scope, exchange)
        done.set()
        await task
        return exchange, threading.current_thread(), ticks

    exchange, loop_thread, ticks = asyncio.run(main())
    assert exchange.status == 201
    assert threads and loop_thread not in threads
    assert ticks > 1  # the loop went on while Sentry's answer was awaited


def test_concurrent_requests_in_the_middleware(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    sentry_init()
    endpoint = FeedbackEndpoint()

    async def app(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        user = dict(scope["headers"]).get(b"x-user", b"").decode()
        sentry_feedback.set_user({"id": user})
        await asyncio.sleep(0)  # let the other request set its user
        await endpoint.asgi_app(scope, receive, send)

    application = SentryAsgiMiddleware(app)

    async def main() -> list[Exchange]:
        pairs = [json_request({"message": f"from {user}"}, (b"x-user", user.encode())) for user in ("ann", "bob")]
        return list(await asyncio.gather(*(request(application, scope, exchange) for scope, exchange in pairs)))

    assert [exchange.status for exchange in asyncio.run(main())] == [202, 202]
    by_message = {f.message: f.user for f in delivered(sentry_receiver, 2)}
    assert by_message == {"from ann": {"id": "ann"}, "from bob": {"id": "bob"}}


def test_mount_asgi(sentry_init: Init) -> None:
    sentry_init()
    calls: list[str] = []

    async def app(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        calls.append(scope["path"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"app"})

    application = FeedbackEndpoint().mount_asgi(app, "/api/feedback")
    assert asyncio.run(request(application, http_scope("GET", "/elsewhere"), Exchange([]))).status == 200
    assert asyncio.run(request(application, http_scope("GET", "/api/feedback"), Exchange([]))).status == 405
    assert asyncio.run(request(application, http_scope("GET", "/api/feedback/form.css"), Exchange([]))).status == 200
    assert calls == ["/elsewhere"]
