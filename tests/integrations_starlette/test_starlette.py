"""StarletteIntegration with real Starlette applications, through Starlette's TestClient."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.authentication import AuthCredentials, AuthenticationBackend, SimpleUser
from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket

import sentry_feedback
from integrations_web.direct import stored
from sentry_feedback.asgi import SentryAsgiMiddleware, set_transaction_name
from sentry_feedback.integrations.logging import LoggingIntegration
from sentry_feedback.integrations.starlette import StarletteIntegration
from sentry_feedback.server import LocalReceiver

Init = Callable[..., sentry_feedback.Client]
TRACE_ID = "771a43a4192642f0b136d5159a501700"


class OutOfStock(Exception):
    """An error the application answers itself (409)."""


async def pay(request: Request) -> Response:
    sentry_feedback.set_user({"id": "payer"})
    raise ZeroDivisionError(f"cannot pay order {request.path_params['order_id']}")


async def feedback(request: Request) -> Response:
    if "user" in request.query_params:
        sentry_feedback.set_user({"id": request.query_params["user"]})
    return PlainTextResponse(sentry_feedback.capture_feedback(f"feedback on {request.url.path}") or "dropped")


async def named(request: Request) -> Response:
    set_transaction_name("checkout.named", source="custom")
    return await feedback(request)


async def out_of_stock(request: Request) -> Response:
    raise OutOfStock("no more parcels")


async def http_error(request: Request) -> Response:
    raise HTTPException(int(request.path_params["status"]), detail="the payment provider is down")


async def server_error(request: Request, exc: Exception) -> Response:
    return PlainTextResponse(f"error {sentry_feedback.last_event_id()}", status_code=500)


async def conflict(request: Request, exc: Exception) -> Response:
    return PlainTextResponse("out of stock", status_code=409)


async def not_found(request: Request, exc: Exception) -> Response:
    sentry_feedback.capture_message("not found")
    return PlainTextResponse("not found", status_code=404)


def make_app(**options: Any) -> Starlette:
    shop = Starlette(
        routes=[Route("/items/{item_id:int}", feedback), Route("/items/{item_id:int}/pay", pay)],
        exception_handlers={404: not_found},
    )
    routes = [
        Route("/orders/{order_id:int}/pay", pay),
        Route("/orders/{order_id:int}/feedback", feedback),
        Route("/named", named),
        Route("/stock", out_of_stock),
        Route("/http/{status:int}", http_error),
        Mount("/tenants/{tenant}", routes=[Mount("/v1", routes=[Route("/orders/{order_id}", feedback)])]),
        Mount("/shop", app=shop),
    ]
    handlers: dict[Any, Any] = {500: server_error, OutOfStock: conflict, 404: not_found}
    return Starlette(routes=routes, exception_handlers=handlers, **options)


def event_mechanism(event: Any) -> dict[str, Any]:
    mechanism: dict[str, Any] = event.data["exception"]["values"][-1]["mechanism"]
    return mechanism


def test_error_captured_once_with_mechanism_starlette(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    sentry_init(integrations=[StarletteIntegration()])
    client = TestClient(make_app(), raise_server_exceptions=False)
    answer = client.get("/orders/7/pay?coupon=SUMMER", headers={"sentry-trace": f"{TRACE_ID}-b0e6f15b45c36b12"})
    (event,), _ = stored(sentry_receiver)
    # The 500 handler runs after the capture, in the request's scope: it shows the error's id.
    assert (answer.status_code, answer.text) == (500, f"error {event.event_id}")
    assert event_mechanism(event) == {"type": "starlette", "handled": False, "exception_id": 0}
    assert event.data["exception"]["values"][-1]["type"] == "ZeroDivisionError"
    assert event.data["transaction"] == "/orders/{order_id:int}/pay"
    assert event.data["transaction_info"] == {"source": "route"}
    assert event.data["user"] == {"id": "payer"}
    assert event.data["request"]["url"] == "http://testserver/orders/7/pay"
    assert event.data["request"]["query_string"] == "coupon=SUMMER"
    assert event.data["contexts"]["trace"]["trace_id"] == TRACE_ID
    assert "starlette" in event.data["sdk"]["integrations"]
    assert sentry_feedback.last_event_id() is None  # the test's own scope saw nothing


@pytest.mark.parametrize("wrapped", ["no", "add_middleware", "around"])
def test_error_raised_to_the_server_and_reported_once(
    sentry_init: Init, sentry_receiver: LocalReceiver, wrapped: str
) -> None:
    """The server logs the exception it gets: neither the ASGI layer nor that record report it again."""
    sentry_init(default_integrations=False, integrations=[LoggingIntegration(), StarletteIntegration()])
    app: Any = make_app()
    if wrapped == "add_middleware":
        app.add_middleware(SentryAsgiMiddleware)
    elif wrapped == "around":
        app = SentryAsgiMiddleware(app)
    with pytest.raises(ZeroDivisionError) as raised:
        TestClient(app).get("/orders/3/pay")
    logging.getLogger("uvicorn.error").error("Exception in ASGI application\n", exc_info=raised.value)
    (event,), _ = stored(sentry_receiver)
    assert event_mechanism(event) == {"type": "starlette", "handled": False, "exception_id": 0}
    assert event.data["sdk"]["integrations"] == ["logging", "starlette"]
    assert event.data["transaction"] == "/orders/{order_id:int}/pay"
    assert raised.traceback[-1].name == "pay"  # the exception the server gets is the application's


def test_debug_page_untouched(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    sentry_init(integrations=[StarletteIntegration()])
    app = Starlette(debug=True, routes=[Route("/orders/{order_id:int}/pay", pay)])
    answer = TestClient(app, raise_server_exceptions=False).get("/orders/9/pay", headers={"Accept": "text/html"})
    (event,), _ = stored(sentry_receiver)
    assert answer.status_code == 500
    assert "ZeroDivisionError" in answer.text and "cannot pay order 9" in answer.text
    assert event_mechanism(event)["type"] == "starlette"


@pytest.mark.parametrize(
    ("path", "url_name", "endpoint_name", "source"),
    [
        ("/orders/5/feedback", "/orders/{order_id:int}/feedback", "feedback", "route"),
        ("/tenants/acme/v1/orders/5", "/tenants/{tenant}/v1/orders/{order_id}", "feedback", "route"),
        ("/shop/items/5", "/shop/items/{item_id:int}", "feedback", "route"),
    ],
)
@pytest.mark.parametrize("style", ["url", "endpoint"])
def test_transaction_names(
    sentry_init: Init,
    sentry_receiver: LocalReceiver,
    style: str,
    path: str,
    url_name: str,
    endpoint_name: str,
    source: str,
) -> None:
    sentry_init(integrations=[StarletteIntegration(transaction_style=style)])  # type: ignore[arg-type]
    answer = TestClient(make_app()).get(path)
    _, (item,) = stored(sentry_receiver)
    assert answer.text == item.event_id
    if style == "url":
        assert (item.data["transaction"], item.data["transaction_info"]) == (url_name, {"source": source})
    else:
        assert item.data["transaction"] == f"{__name__}.{endpoint_name}"
        assert item.data["transaction_info"] == {"source": "component"}
    assert item.data["request"]["url"] == f"http://testserver{path}"


@pytest.mark.parametrize("path", ["/nowhere", "/tenants/acme/v1/nowhere", "/shop/nowhere"])
def test_unmatched_path_names_the_transaction(sentry_init: Init, sentry_receiver: LocalReceiver, path: str) -> None:
    sentry_init(integrations=[StarletteIntegration()])
    answer = TestClient(make_app()).get(path)
    (event,), _ = stored(sentry_receiver)  # the 404 handler's message, no error
    assert answer.status_code == 404
    assert event.message == "not found"
    assert (event.data["transaction"], event.data["transaction_info"]) == (path, {"source": "url"})


def test_transaction_name_set_by_the_application_wins(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    sentry_init(integrations=[StarletteIntegration()])
    TestClient(make_app()).get("/named")
    _, (item,) = stored(sentry_receiver)
    assert (item.data["transaction"], item.data["transaction_info"]) == ("checkout.named", {"source": "custom"})


def test_exceptions_the_application_answers(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    sentry_init(integrations=[StarletteIntegration()])
    client = TestClient(make_app())
    assert (client.get("/stock").status_code, client.get("/stock").text) == (409, "out of stock")
    assert client.get("/http/403").status_code == 403
    assert client.post("/named").status_code == 405
    answer = client.get("/http/503")
    assert (answer.status_code, answer.text) == (503, "the payment provider is down")
    (event,), _ = stored(sentry_receiver)  # only the 503
    assert event_mechanism(event) == {"type": "starlette", "handled": True, "exception_id": 0}
    assert event.data["exception"]["values"][-1]["value"] == "503: the payment provider is down"
    assert event.data["transaction"] == "/http/{status:int}"


@pytest.mark.parametrize("handler_kind", ["async", "sync"])
def test_status_handler_of_a_failed_request_reads_its_event_id(
    sentry_init: Init, sentry_receiver: LocalReceiver, handler_kind: str
) -> None:
    sentry_init(integrations=[StarletteIntegration(failed_request_status_codes={502, 503})])

    async def async_handler(request: Request, exc: Exception) -> Response:
        return PlainTextResponse(f"later {sentry_feedback.last_event_id()}", status_code=503)

    def sync_handler(request: Request, exc: Exception) -> Response:
        return PlainTextResponse(f"later {sentry_feedback.last_event_id()}", status_code=503)

    handler = async_handler if handler_kind == "async" else sync_handler
    app = Starlette(routes=[Route("/http/{status:int}", http_error)], exception_handlers={503: handler})
    client = TestClient(app)
    answer = client.get("/http/503")
    assert client.get("/http/500").status_code == 500  # not in failed_request_status_codes
    (event,), _ = stored(sentry_receiver)
    assert answer.text == f"later {event.event_id}"
    assert event_mechanism(event)["handled"] is True


def test_no_http_exception_reported_without_failed_statuses(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    sentry_init(integrations=[StarletteIntegration(failed_request_status_codes=())])
    assert TestClient(make_app()).get("/http/503").status_code == 503
    assert stored(sentry_receiver) == ([], [])


def test_websocket_connection(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    async def chat(websocket: WebSocket) -> None:
        await websocket.accept()
        sentry_feedback.set_user({"id": "socket"})
        async for text in websocket.iter_text():
            if text == "fail":
                raise KeyError("no such room")
            sentry_feedback.capture_feedback(text)
            await websocket.send_text("ok")

    sentry_init(integrations=[StarletteIntegration()])
    client = TestClient(Starlette(routes=[WebSocketRoute("/chat/{room:int}", chat)]))
    with client.websocket_connect("/chat/7?lang=en") as websocket:
        websocket.send_text("first")
        assert websocket.receive_text() == "ok"

    def fail_in_a_room() -> None:
        with client.websocket_connect("/chat/8") as websocket:
            websocket.send_text("fail")
            websocket.receive_text()

    with pytest.raises(KeyError):
        fail_in_a_room()
    (error,), (item,) = stored(sentry_receiver)
    assert (item.message, item.user) == ("first", {"id": "socket"})
    assert item.data["request"]["url"] == "ws://testserver/chat/7"
    assert item.data["request"]["query_string"] == "lang=en"
    assert item.data["transaction"] == "/chat/{room:int}"
    assert event_mechanism(error) == {"type": "starlette", "handled": False, "exception_id": 0}
    assert error.data["user"] == {"id": "socket"}
    assert error.data["request"]["url"] == "ws://testserver/chat/8"
    assert sentry_feedback.get_isolation_scope().user is None


def test_lifespan_has_its_own_scope(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        sentry_feedback.set_tag("phase", "startup")
        sentry_feedback.capture_message("started")
        yield

    async def tags(request: Request) -> Response:
        return PlainTextResponse(str(sentry_feedback.get_isolation_scope().tags))

    sentry_init(integrations=[StarletteIntegration()])
    with TestClient(Starlette(routes=[Route("/tags", tags)], lifespan=lifespan)) as client:
        assert client.get("/tags").text == "{}"  # the lifespan's tag stays in the lifespan
    (started,), _ = stored(sentry_receiver)
    assert started.message == "started"
    assert started.data["tags"] == {"phase": "startup"}
    assert "request" not in started.data and "transaction" not in started.data


def test_failing_lifespan_captured(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        raise ConnectionRefusedError("no database")
        yield  # pragma: no cover

    sentry_init(integrations=[StarletteIntegration()])
    with pytest.raises(ConnectionRefusedError), TestClient(Starlette(lifespan=lifespan)):
        pass  # pragma: no cover
    (event,), _ = stored(sentry_receiver)
    assert event_mechanism(event) == {"type": "starlette", "handled": False, "exception_id": 0}


def test_background_task_and_streaming_response_keep_the_request_scope(
    sentry_init: Init, sentry_receiver: LocalReceiver
) -> None:
    def later(note: str) -> None:  # a sync task: Starlette runs it in a thread
        sentry_feedback.capture_feedback(note)

    async def report(request: Request) -> Response:
        sentry_feedback.set_user({"id": "background"})
        return PlainTextResponse("accepted", background=BackgroundTask(later, "from a background task"))

    async def export(request: Request) -> Response:
        sentry_feedback.set_user({"id": "streamer"})

        async def rows() -> AsyncIterator[bytes]:
            yield b"first row\n"
            await asyncio.sleep(0)
            sentry_feedback.capture_feedback("while streaming")
            yield b"second row\n"
            if request.query_params.get("fail"):
                raise ValueError("export broke")

        return StreamingResponse(rows())

    def sync_rows() -> Iterator[bytes]:
        yield b"row\n"
        sentry_feedback.capture_feedback("while streaming from a thread")

    async def export_sync(request: Request) -> Response:
        sentry_feedback.set_user({"id": "thread streamer"})
        return StreamingResponse(sync_rows())

    sentry_init(integrations=[StarletteIntegration()])
    app = Starlette(
        routes=[Route("/report", report), Route("/export/{kind}", export), Route("/export-sync", export_sync)]
    )
    client = TestClient(app)
    assert client.get("/report").text == "accepted"
    assert client.get("/export/csv").text == "first row\nsecond row\n"
    assert client.get("/export-sync").text == "row\n"
    with pytest.raises(ValueError, match="export broke"):
        client.get("/export/csv?fail=1")
    (error,), feedback = stored(sentry_receiver)
    assert [(f.message, f.user, f.data["transaction"]) for f in feedback] == [
        ("from a background task", {"id": "background"}, "/report"),
        ("while streaming", {"id": "streamer"}, "/export/{kind}"),
        ("while streaming from a thread", {"id": "thread streamer"}, "/export-sync"),
        ("while streaming", {"id": "streamer"}, "/export/{kind}"),
    ]
    assert feedback[0].data["request"]["url"] == "http://testserver/report"
    assert event_mechanism(error) == {"type": "starlette", "handled": False, "exception_id": 0}
    assert error.data["request"]["query_string"] == "fail=1"


class HeaderAuthentication(AuthenticationBackend):
    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, SimpleUser] | None:
        name = conn.headers.get("X-User")
        return (AuthCredentials(["authenticated"]), SimpleUser(name)) if name else None


@pytest.mark.parametrize("pii", [True, False])
def test_authenticated_user_and_ip_address(sentry_init: Init, sentry_receiver: LocalReceiver, pii: bool) -> None:
    sentry_init(integrations=[StarletteIntegration()], send_default_pii=pii)
    app = make_app(middleware=[Middleware(AuthenticationMiddleware, backend=HeaderAuthentication())])
    client = TestClient(app, client=("203.0.113.7", 50000), raise_server_exceptions=False, cookies={"theme": "dark"})
    client.get("/orders/1/feedback", headers={"X-User": "jane"})
    client.get("/orders/1/feedback?user=42", headers={"X-User": "jane"})  # the application's user wins
    client.get("/orders/1/feedback")  # nobody signed in
    client.get("/orders/1/pay", headers={"X-User": "jane"})
    (error,), feedback = stored(sentry_receiver)
    if pii:
        assert [f.user for f in feedback] == [
            {"id": "jane", "username": "jane", "ip_address": "203.0.113.7"},
            {"id": "42", "ip_address": "203.0.113.7"},
            {"ip_address": "203.0.113.7"},
        ]
        assert error.data["user"] == {"id": "payer", "ip_address": "203.0.113.7"}
        assert error.data["request"]["cookies"] == {"theme": "[Filtered]"}
        assert error.data["request"]["env"] == {"REMOTE_ADDR": "203.0.113.7"}
    else:
        assert [f.user for f in feedback] == [None, {"id": "42"}, None]
        assert error.data["user"] == {"id": "payer"}
        assert not {"cookies", "env"} & set(error.data["request"])


def test_concurrent_requests_keep_their_own_scope(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    arrived: list[str] = []
    both_arrived = asyncio.Event()

    async def together(request: Request) -> Response:
        user = request.path_params["user"]
        sentry_feedback.set_user({"id": user})
        sentry_feedback.set_tag("user_tag", user)
        arrived.append(user)
        if len(arrived) == 2:
            both_arrived.set()
        await asyncio.wait_for(both_arrived.wait(), 10)  # both requests set their user before either captures
        return PlainTextResponse(sentry_feedback.capture_feedback(f"feedback from {user}") or "dropped")

    sentry_init(integrations=[StarletteIntegration()])
    app = Starlette(routes=[Route("/together/{user}", together)])

    async def both() -> list[str]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://shop.test") as client:
            answers = await asyncio.gather(*(client.get(f"/together/{user}") for user in ("ann", "bob")))
        return [answer.text for answer in answers]

    answers = asyncio.run(both())
    _, feedback = stored(sentry_receiver)
    assert sorted(f.event_id for f in feedback) == sorted(answers)
    for item in feedback:
        user = item.message.removeprefix("feedback from ")
        assert item.user == {"id": user}
        assert item.tags["user_tag"] == user
        assert item.data["transaction"] == "/together/{user}"
    assert feedback[0].trace_id != feedback[1].trace_id
    assert sentry_feedback.get_isolation_scope().user is None


def test_uvicorn_access_log_ignored(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    async def logged(request: Request) -> Response:
        logging.getLogger("uvicorn.access").info('127.0.0.1:5000 - "GET /logged HTTP/1.1" 200')
        logging.getLogger("shop").warning("\x1b[33mkept\x1b[0m")
        return PlainTextResponse(sentry_feedback.capture_feedback("after the log lines") or "dropped")

    sentry_init(integrations=[StarletteIntegration()])
    access = logging.getLogger("uvicorn.access")
    level = access.level
    access.setLevel(logging.INFO)
    try:
        TestClient(Starlette(routes=[Route("/logged", logged)])).get("/logged")
    finally:
        access.setLevel(level)
    _, (item,) = stored(sentry_receiver)
    crumbs = item.data["breadcrumbs"]["values"]
    assert [(crumb["category"], crumb["message"]) for crumb in crumbs] == [("shop", "kept")]


def test_integration_is_off_for_a_client_without_it(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    sentry_init(integrations=[StarletteIntegration()])
    sentry_init(default_integrations=False)  # a new client without the integration (the hooks stay)
    client = TestClient(make_app(), raise_server_exceptions=False)
    answer = client.get("/orders/4/feedback")
    assert client.get("/orders/4/pay").text == "error None"  # nothing captured it
    _, (item,) = stored(sentry_receiver)
    assert answer.text == item.event_id
    assert "request" not in item.data and "transaction" not in item.data


def test_bad_options() -> None:
    for style in ("path", None, ["url"]):
        with pytest.raises(ValueError, match="transaction_style"):
            StarletteIntegration(transaction_style=style)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        StarletteIntegration(use_x_forwarded_for="yes")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        StarletteIntegration(max_request_body_size=10.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        StarletteIntegration(max_request_body_size=-1)
    for codes, error in [
        ("500", TypeError),
        (500, TypeError),
        ({500: True}, TypeError),
        ([500, "502"], TypeError),
        ([True], TypeError),
        ([99], ValueError),
        (range(10**12), ValueError),
        (iter([500] * 10_000), ValueError),
    ]:
        with pytest.raises(error):
            StarletteIntegration(failed_request_status_codes=codes)  # type: ignore[arg-type]
    integration = StarletteIntegration(failed_request_status_codes=[502, 503, 503])
    assert integration.failed_request_status_codes == frozenset({502, 503})
    assert StarletteIntegration().failed_request_status_codes == frozenset(range(500, 600))


def test_importing_the_integrations_does_not_import_the_frameworks() -> None:
    code = (
        "import sys, sentry_feedback\n"
        "import sentry_feedback.integrations.starlette, sentry_feedback.integrations.fastapi\n"
        "assert not {'starlette', 'fastapi'} & set(sys.modules), sorted(sys.modules)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
