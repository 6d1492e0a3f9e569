"""SentryAsgiMiddleware around plain ASGI applications, called directly as a server would."""

from __future__ import annotations

import asyncio
import urllib.parse
from collections.abc import Callable, MutableMapping
from types import SimpleNamespace
from typing import Any

import pytest

import sentry_feedback
from sentry_feedback.asgi import SentryAsgiMiddleware, set_transaction_name
from sentry_feedback.server import LocalReceiver

from .direct import Message, call_asgi, http_scope, stored

TRACE_ID = "771a43a4192642f0b136d5159a501700"
PARENT_SPAN = "b0e6f15b45c36b12"
Init = Callable[..., sentry_feedback.Client]
Scope = MutableMapping[str, Any]


async def respond(send: Any, body: bytes = b"ok", status: int = 200) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": body})


async def read_body(receive: Any) -> bytes:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body


async def feedback_app(scope: Scope, receive: Any, send: Any) -> None:
    """Sets the user from the query string, reads the body, captures a feedback."""
    user = urllib.parse.parse_qs(scope["query_string"].decode()).get("user", ["anonymous"])[0]
    sentry_feedback.set_user({"id": user})
    await read_body(receive)
    await respond(send, (sentry_feedback.capture_feedback(f"feedback from {user}") or "dropped").encode())


async def failing_app(scope: Scope, receive: Any, send: Any) -> None:
    sentry_feedback.set_user({"id": "failing"})
    raise ZeroDivisionError("division by zero")


def test_concurrent_requests_keep_their_own_scope(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    sentry_init()
    arrived: list[asyncio.Event] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        user = scope["query_string"].decode()
        sentry_feedback.set_user({"id": user})
        sentry_feedback.set_tag("request_user", user)
        mine = asyncio.Event()
        arrived.append(mine)
        if len(arrived) == 2:
            for event in arrived:
                event.set()
        await asyncio.wait_for(mine.wait(), 10)  # both requests set their user before either captures
        sentry_feedback.capture_feedback(f"feedback from {user}")
        await respond(send)

    async def both() -> None:
        middleware = SentryAsgiMiddleware(app)
        await asyncio.gather(*(call_asgi(middleware, http_scope(query=user)) for user in (b"A", b"B")))

    asyncio.run(both())
    _, feedback = stored(sentry_receiver)
    assert sorted((f.message, f.user["id"], f.tags["request_user"]) for f in feedback if f.user) == [
        ("feedback from A", "A", "A"),
        ("feedback from B", "B", "B"),
    ]
    assert sentry_feedback.get_isolation_scope().user is None


def test_request_data_without_pii(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    sentry_init()
    scope = http_scope(
        "/cart/items",
        method="POST",
        query=b"user=42&token=abc",
        headers=[
            (b"authorization", b"Bearer secret"),
            (b"cookie", b"sessionid=abc"),
            (b"x-api-key", b"key"),
            (b"x-real-ip", b"203.0.113.9"),
            (b"accept", b"text/html"),
            (b"accept", b"application/json"),
            (b"content-type", b"application/json"),
        ],
    )
    asyncio.run(call_asgi(SentryAsgiMiddleware(feedback_app), scope, [{"type": "http.request", "body": b"{}"}]))
    _, (feedback,) = stored(sentry_receiver)
    request = feedback.data["request"]
    assert request["method"] == "POST"
    assert request["url"] == "http://testserver/cart/items"
    assert request["query_string"] == "user=42&token=[Filtered]"
    headers = request["headers"]
    assert headers["Authorization"] == headers["Cookie"] == headers["X-Api-Key"] == headers["X-Real-Ip"] == "[Filtered]"
    assert headers["Accept"] == "text/html, application/json"  # repeated headers joined, as HTTP defines
    assert not {"cookies", "data", "env"} & set(request)
    assert feedback.user == {"id": "42"}
    assert (feedback.data["transaction"], feedback.data["transaction_info"]) == ("/cart/items", {"source": "url"})


def test_request_data_with_pii(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    sentry_init(send_default_pii=True)
    headers = [
        (b"content-type", b"application/json"),
        (b"cookie", b"theme=dark"),
        (b"x-forwarded-for", b"203.0.113.9"),
    ]
    chunks: list[Message] = [
        {"type": "http.request", "body": b'{"items": ', "more_body": True},
        {"type": "http.request", "body": b"[1, 2]}", "more_body": False},
    ]
    asyncio.run(call_asgi(SentryAsgiMiddleware(feedback_app), http_scope(method="POST", headers=headers), chunks))
    proxied = SentryAsgiMiddleware(feedback_app, use_x_forwarded_for=True)
    asyncio.run(call_asgi(proxied, http_scope(query=b"user=proxied", headers=headers), list(chunks)))

    _, (first, second) = stored(sentry_receiver)
    request = first.data["request"]
    assert request["data"] == {"items": [1, 2]}
    assert request["cookies"] == {"theme": "[Filtered]"}
    assert request["env"] == {"REMOTE_ADDR": "192.0.2.20"}
    assert request["headers"]["X-Forwarded-For"] == "203.0.113.9"
    assert first.user == {"id": "anonymous", "ip_address": "192.0.2.20"}
    assert second.user == {"id": "proxied", "ip_address": "203.0.113.9"}


def test_unread_or_large_body_left_out(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    sentry_init(send_default_pii=True)

    async def unread(scope: Scope, receive: Any, send: Any) -> None:
        sentry_feedback.capture_feedback("body not read")
        await respond(send)

    json_type = [(b"content-type", b"application/json")]
    asyncio.run(call_asgi(SentryAsgiMiddleware(unread), http_scope(method="POST", headers=json_type)))
    large: list[Message] = [{"type": "http.request", "body": b'["' + b"x" * 20_000 + b'"]'}]
    asyncio.run(call_asgi(SentryAsgiMiddleware(feedback_app), http_scope(method="POST", headers=json_type), large))
    small: list[Message] = [{"type": "http.request", "body": b"[1]"}]
    limited = SentryAsgiMiddleware(feedback_app, max_request_body_size=0)
    asyncio.run(call_asgi(limited, http_scope(method="POST", headers=json_type), small))
    _, feedback = stored(sentry_receiver)
    assert [("data" in f.data["request"]) for f in feedback] == [False, False, False]


@pytest.mark.parametrize("when", ["before-response", "while-streaming"])
def test_unhandled_exception_captured_once_and_raised_unchanged(
    sentry_init: Init, sentry_receiver: LocalReceiver, when: str
) -> None:
    sentry_init()

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        sentry_feedback.set_user({"id": "streamer"})
        if when == "while-streaming":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        raise ZeroDivisionError("division by zero")

    with pytest.raises(ZeroDivisionError) as raised:
        asyncio.run(call_asgi(SentryAsgiMiddleware(SentryAsgiMiddleware(app)), http_scope("/export")))
    assert raised.traceback[-1].name == "app"
    sentry_feedback.get_client().capture_exception(raised.value, mechanism_type="logging")  # the server logs it
    (event,), _ = stored(sentry_receiver)
    (exception,) = event.data["exception"]["values"]
    assert exception["mechanism"] == {"type": "asgi", "handled": False, "exception_id": 0}
    assert event.data["user"] == {"id": "streamer"}
    assert event.data["request"]["url"] == "http://testserver/export"


def test_last_event_id_and_trace_in_an_outer_error_handler(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    sentry_init()

    def error_pages(app: Any) -> Any:
        async def handle(scope: Scope, receive: Any, send: Any) -> None:
            try:
                await app(scope, receive, send)
            except Exception:
                page = f"{sentry_feedback.last_event_id()} {sentry_feedback.get_traceparent()}"
                await respond(send, page.encode(), status=500)

        return handle

    scope = http_scope(headers=[(b"sentry-trace", f"{TRACE_ID}-{PARENT_SPAN}-1".encode())])
    sent = asyncio.run(call_asgi(error_pages(SentryAsgiMiddleware(failing_app)), scope))
    assert sent[0]["status"] == 500
    event_id, traceparent = sent[1]["body"].decode().split()
    (event,), _ = stored(sentry_receiver)
    assert event.event_id == event_id
    assert traceparent.startswith(f"{TRACE_ID}-")
    assert event.data["contexts"]["trace"]["trace_id"] == TRACE_ID


def test_trace_continued_from_headers(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    sentry_init()
    baggage = f"sentry-trace_id={TRACE_ID},sentry-public_key=upstream,sentry-sample_rand=0.5"
    headers = [(b"sentry-trace", f"{TRACE_ID}-{PARENT_SPAN}".encode()), (b"baggage", baggage.encode())]
    asyncio.run(call_asgi(SentryAsgiMiddleware(feedback_app), http_scope(headers=headers)))
    asyncio.run(call_asgi(SentryAsgiMiddleware(feedback_app), http_scope()))
    _, (continued, new) = stored(sentry_receiver)
    assert continued.data["contexts"]["trace"]["trace_id"] == continued.trace_id == TRACE_ID
    assert continued.data["contexts"]["trace"]["parent_span_id"] == PARENT_SPAN
    assert new.trace_id not in (None, TRACE_ID)


def test_transaction_from_the_route_or_set_by_the_application(
    sentry_init: Init, sentry_receiver: LocalReceiver
) -> None:
    sentry_init()

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        if scope["path"].startswith("/items/"):
            scope["route"] = SimpleNamespace(path="/items/{item_id}")  # what Starlette's router does
        elif scope["path"] == "/named":
            set_transaction_name("items.export", source="component")
        sentry_feedback.capture_feedback(scope["path"])
        await respond(send)

    for path in ("/items/42", "/named", "/plain/path"):
        asyncio.run(call_asgi(SentryAsgiMiddleware(app), http_scope(path)))
    _, feedback = stored(sentry_receiver)
    assert [(f.data["transaction"], f.data["transaction_info"]["source"]) for f in feedback] == [
        ("/items/{item_id}", "route"),
        ("items.export", "component"),
        ("/plain/path", "url"),
    ]


def test_starlette_route_names_the_transaction(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    pytest.importorskip("starlette")
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def item(request: Request) -> PlainTextResponse:
        return PlainTextResponse(sentry_feedback.capture_feedback("about an item") or "")

    sentry_init()
    app = Starlette(routes=[Route("/items/{item_id:int}", item)])
    asyncio.run(call_asgi(SentryAsgiMiddleware(app), http_scope("/items/7")))
    _, (feedback,) = stored(sentry_receiver)
    assert (feedback.data["transaction"], feedback.data["transaction_info"]) == (
        "/items/{item_id:int}",
        {"source": "route"},
    )


def test_background_task_keeps_the_request_scope(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    sentry_init()
    tasks: list[asyncio.Task[str | None]] = []

    async def later() -> str | None:
        await asyncio.sleep(0)
        return sentry_feedback.capture_feedback("from a background task")

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        sentry_feedback.set_user({"id": "background"})
        tasks.append(asyncio.create_task(later()))  # still running when the response is done
        await respond(send)

    async def main() -> None:
        await call_asgi(SentryAsgiMiddleware(app), http_scope("/report"))
        assert not tasks[0].done()
        assert await tasks[0] is not None
        assert sentry_feedback.get_isolation_scope().user is None

    asyncio.run(main())
    _, (feedback,) = stored(sentry_receiver)
    assert feedback.user == {"id": "background"}
    assert feedback.data["request"]["url"] == "http://testserver/report"
    assert feedback.data["transaction"] == "/report"


def test_websocket_connection_has_its_own_scope(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    sentry_init()

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        sentry_feedback.set_user({"id": "socket"})
        while (message := await receive())["type"] == "websocket.receive":
            sentry_feedback.capture_feedback(message["text"])
        await send({"type": "websocket.close"})

    scope = {
        **http_scope("/chat", query=b"room=7"),
        "type": "websocket",
        "scheme": "ws",
        "subprotocols": [],
    }
    del scope["method"]
    messages: list[Message] = [
        {"type": "websocket.connect"},
        {"type": "websocket.receive", "text": "first"},
        {"type": "websocket.receive", "text": "second"},
        {"type": "websocket.disconnect", "code": 1000},
    ]
    asyncio.run(call_asgi(SentryAsgiMiddleware(app), scope, messages))
    _, feedback = stored(sentry_receiver)
    assert [(f.message, f.user) for f in feedback] == [("first", {"id": "socket"}), ("second", {"id": "socket"})]
    request = feedback[0].data["request"]
    assert request["url"] == "ws://testserver/chat"
    assert request["query_string"] == "room=7"
    assert "method" not in request
    assert sentry_feedback.get_isolation_scope().user is None


def lifespan_app(fail_after_startup: bool = False, supports_lifespan: bool = True) -> Any:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            sentry_feedback.capture_feedback(f"request, tags {sentry_feedback.get_isolation_scope().tags}")
            await respond(send)
            return
        if not supports_lifespan:
            raise ValueError(f"unsupported scope type {scope['type']}")  # how an app says it has no lifespan
        assert (await receive())["type"] == "lifespan.startup"
        sentry_feedback.set_tag("phase", "startup")
        sentry_feedback.capture_message("started")
        if fail_after_startup:
            raise RuntimeError("startup failed")
        await send({"type": "lifespan.startup.complete"})
        assert (await receive())["type"] == "lifespan.shutdown"
        await send({"type": "lifespan.shutdown.complete"})

    return app


def test_lifespan_has_its_own_scope(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    sentry_init()
    app = SentryAsgiMiddleware(lifespan_app())

    async def serve() -> None:
        startup = asyncio.Queue[Message]()
        await startup.put({"type": "lifespan.startup"})
        sent: list[Message] = []

        async def send(message: Message) -> None:
            sent.append(message)

        lifespan = asyncio.create_task(app({"type": "lifespan", "asgi": {"version": "3.0"}}, startup.get, send))
        while not sent:
            await asyncio.sleep(0)
        await call_asgi(app, http_scope("/while-running"))  # a request while the lifespan runs
        await startup.put({"type": "lifespan.shutdown"})
        await lifespan
        assert [message["type"] for message in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]

    asyncio.run(serve())
    (started,), (request,) = stored(sentry_receiver)
    assert started.message == "started"
    assert started.data["tags"] == {"phase": "startup"}
    assert "request" not in started.data
    assert "transaction" not in started.data
    assert request.message == "request, tags {}"  # the lifespan's tag stays in the lifespan


@pytest.mark.parametrize("supports_lifespan", [True, False], ids=["failing-startup", "unsupported"])
def test_lifespan_exceptions(sentry_init: Init, sentry_receiver: LocalReceiver, supports_lifespan: bool) -> None:
    sentry_init()
    app = SentryAsgiMiddleware(lifespan_app(fail_after_startup=True, supports_lifespan=supports_lifespan))

    async def startup() -> Message:
        return {"type": "lifespan.startup"}

    async def send(message: Message) -> None:
        pass

    with pytest.raises((RuntimeError, ValueError)):
        asyncio.run(app({"type": "lifespan"}, startup, send))
    events, _ = stored(sentry_receiver)
    errors = [e.data["exception"]["values"][-1] for e in events if "exception" in e.data]
    if supports_lifespan:
        assert [(e["type"], e["mechanism"]["type"], e["mechanism"]["handled"]) for e in errors] == [
            ("RuntimeError", "asgi", False)
        ]
    else:
        assert errors == []  # the ASGI way to say "no lifespan here" is not an error


def test_starlette_error_handler_reads_last_event_id(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    pytest.importorskip("starlette")
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def pay(request: Request) -> PlainTextResponse:
        sentry_feedback.set_user({"id": "payer"})
        raise ZeroDivisionError("division by zero")

    async def server_error(request: Request, exc: Exception) -> PlainTextResponse:
        # Starlette runs this in its outermost middleware, around the SDK's.
        return PlainTextResponse(f"error {sentry_feedback.last_event_id()}", status_code=500)

    sentry_init(auto_enabling_integrations=False)  # the bare middleware, without the Starlette integration
    app = Starlette(
        routes=[Route("/pay", pay)],
        middleware=[Middleware(SentryAsgiMiddleware)],
        exception_handlers={Exception: server_error},
    )
    sent: list[Message] = []
    with pytest.raises(ZeroDivisionError):  # Starlette raises it again for the server, after answering
        asyncio.run(call_asgi(app, http_scope("/pay"), sent=sent))
    (event,), _ = stored(sentry_receiver)
    assert (sent[0]["status"], sent[1]["body"]) == (500, f"error {event.event_id}".encode())
    assert event.data["transaction"] == "/pay"
    assert event.data["user"] == {"id": "payer"}
    assert event.data["exception"]["values"][0]["mechanism"]["type"] == "asgi"
