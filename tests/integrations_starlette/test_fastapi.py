"""FastApiIntegration with real FastAPI applications, through FastAPI's TestClient."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any

import pytest

fastapi = pytest.importorskip("fastapi")
pytest.importorskip("multipart")  # python-multipart: FastAPI's form parsing

from fastapi import APIRouter, BackgroundTasks, FastAPI, File, Form, HTTPException, Request, UploadFile  # noqa: E402
from fastapi.responses import PlainTextResponse  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from pydantic import BaseModel  # noqa: E402
from starlette.applications import Starlette  # noqa: E402
from starlette.routing import Route  # noqa: E402

import sentry_feedback  # noqa: E402
from integrations_web.direct import stored  # noqa: E402
from sentry_feedback.integrations.fastapi import FastApiIntegration  # noqa: E402
from sentry_feedback.integrations.starlette import StarletteIntegration  # noqa: E402
from sentry_feedback.server import LocalReceiver  # noqa: E402

Init = Callable[..., sentry_feedback.Client]


class Order(BaseModel):
    item: str
    quantity: int


def make_app() -> FastAPI:
    app = FastAPI()
    orders = APIRouter(prefix="/orders", tags=["orders"])
    payments = APIRouter()

    @payments.post("/{order_id}/pay")
    def pay(order_id: int, order: Order) -> str:  # a sync endpoint: FastAPI runs it in a thread
        sentry_feedback.set_user({"id": "payer"})
        raise ZeroDivisionError(f"cannot pay order {order_id} of {order.quantity} {order.item}")

    @payments.get("/{order_id}/status")
    async def status(order_id: int) -> str:
        if order_id >= 500:
            raise HTTPException(status_code=order_id, detail="the payment provider is down")
        raise HTTPException(status_code=404, detail=f"no order {order_id}")

    @orders.post("/{order_id}/note")
    async def note(order_id: int, note: Annotated[str, Form()]) -> str:
        return sentry_feedback.capture_feedback(f"note on {order_id}: {note}") or "dropped"

    orders.include_router(payments, prefix="/v1")
    app.include_router(orders, prefix="/api")

    @app.post("/feedback")
    async def feedback(
        message: Annotated[str, Form()],
        event_id: Annotated[str, Form()],
        screenshot: Annotated[UploadFile, File()],
    ) -> str:
        attachment = sentry_feedback.Attachment.from_upload(screenshot)
        return (
            sentry_feedback.capture_feedback(message, associated_event_id=event_id, attachments=[attachment])
            or "dropped"
        )

    @app.post("/later")
    async def later(tasks: BackgroundTasks, order: Order) -> str:
        sentry_feedback.set_user({"id": "background"})
        tasks.add_task(sentry_feedback.capture_feedback, f"later: {order.item}")
        return "accepted"

    sub = FastAPI()

    @sub.get("/items/{item_id}")
    async def item(item_id: int) -> str:
        return sentry_feedback.capture_feedback(f"item {item_id}") or "dropped"

    app.mount("/tenants/{tenant}", sub)

    @app.exception_handler(Exception)
    async def server_error(request: Request, exc: Exception) -> PlainTextResponse:
        return PlainTextResponse(f"error {sentry_feedback.last_event_id()}", status_code=500)

    return app


def test_error_captured_once_with_the_body(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    sentry_init(integrations=[FastApiIntegration()], send_default_pii=True)
    client = TestClient(make_app(), raise_server_exceptions=False)
    answer = client.post("/api/orders/v1/7/pay", json={"item": "parcel", "quantity": 2})
    (event,), _ = stored(sentry_receiver)
    assert (answer.status_code, answer.text) == (500, f"error {event.event_id}")
    assert event.data["exception"]["values"][-1]["mechanism"] == {
        "type": "starlette",
        "handled": False,
        "exception_id": 0,
    }
    assert event.data["transaction"] == "/api/orders/v1/{order_id}/pay"
    assert event.data["transaction_info"] == {"source": "route"}
    assert event.data["request"]["data"] == {"item": "parcel", "quantity": 2}  # the JSON body FastAPI read
    assert event.data["request"]["method"] == "POST"
    assert event.data["user"] == {"id": "payer"}  # no IP address: the TestClient's client is "testclient"
    assert "fastapi" in event.data["sdk"]["integrations"]


def test_http_exceptions_and_validation_errors(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    sentry_init(integrations=[FastApiIntegration()])
    client = TestClient(make_app())
    assert client.get("/api/orders/v1/7/status").json() == {"detail": "no order 7"}
    assert client.post("/api/orders/v1/7/pay", json={"item": "parcel"}).status_code == 422
    assert client.get("/api/orders/v1/nope/status").status_code == 422
    assert client.get("/nowhere").status_code == 404
    assert client.get("/api/orders/v1/503/status").status_code == 503
    (event,), _ = stored(sentry_receiver)
    assert event.data["exception"]["values"][-1]["mechanism"] == {
        "type": "starlette",
        "handled": True,
        "exception_id": 0,
    }
    assert event.data["transaction"] == "/api/orders/v1/{order_id}/status"


@pytest.mark.parametrize(
    ("path", "url_name", "endpoint_name"),
    [
        ("/api/orders/v1/5/status", "/api/orders/v1/{order_id}/status", "make_app.<locals>.status"),
        ("/tenants/acme/items/5", "/tenants/{tenant}/items/{item_id}", "make_app.<locals>.item"),
    ],
)
@pytest.mark.parametrize("style", ["url", "endpoint"])
def test_transaction_names(
    sentry_init: Init, sentry_receiver: LocalReceiver, style: str, path: str, url_name: str, endpoint_name: str
) -> None:
    sentry_init(integrations=[FastApiIntegration(transaction_style=style)])  # type: ignore[arg-type]
    app = make_app()

    @app.middleware("http")
    async def capture_after(request: Request, call_next: Any) -> Any:
        response = await call_next(request)
        sentry_feedback.capture_message("answered")  # in the request's scope, after the endpoint
        return response

    TestClient(app).get(path)
    events, _ = stored(sentry_receiver)
    assert events[-1].message == "answered"
    if style == "url":
        assert (events[-1].data["transaction"], events[-1].data["transaction_info"]) == (url_name, {"source": "route"})
    else:
        assert events[-1].data["transaction"] == f"{__name__}.{endpoint_name}"
        assert events[-1].data["transaction_info"] == {"source": "component"}


def test_form_body_and_upload(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    sentry_init(integrations=[FastApiIntegration()], send_default_pii=True)
    client = TestClient(make_app())
    note = client.post("/api/orders/5/note", data={"note": "ring twice"})
    screenshot = b"\x89PNG" + b"\x00" * 50_000
    answer = client.post(
        "/feedback",
        data={"message": "The button does nothing", "event_id": "0" * 32},
        files={"screenshot": ("C:\\Users\\jane\\shot.png", screenshot, "image/png")},
    )
    _, (noted, item) = stored(sentry_receiver)
    assert noted.event_id == note.json()
    assert noted.data["request"]["data"] == {"note": "ring twice"}  # the form FastAPI read
    assert noted.data["transaction"] == "/api/orders/{order_id}/note"
    assert item.event_id == answer.json()
    assert item.associated_event_id == "0" * 32
    assert item.data["transaction"] == "/feedback"
    assert item.data["request"]["url"] == "http://testserver/feedback"
    assert "data" not in item.data["request"]  # a multipart body (the upload) never goes on events
    assert len(json.dumps(item.data)) < 10_000
    (attachment,) = sentry_receiver.store.list_attachments(item.event_id)
    assert (attachment.filename, attachment.content_type, attachment.data) == ("shot.png", "image/png", screenshot)


def test_body_larger_than_the_limit_left_out(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    sentry_init(integrations=[FastApiIntegration(max_request_body_size=100)], send_default_pii=True)
    client = TestClient(make_app(), raise_server_exceptions=False)
    client.post("/api/orders/v1/1/pay", json={"item": "x" * 200, "quantity": 1})
    client.post("/api/orders/v1/2/pay", json={"item": "parcel", "quantity": 1})
    (large, small), _ = stored(sentry_receiver)
    assert "data" not in large.data["request"]
    assert small.data["request"]["data"] == {"item": "parcel", "quantity": 1}


def test_background_task_keeps_the_request_scope(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    sentry_init(integrations=[FastApiIntegration()])
    assert TestClient(make_app()).post("/later", json={"item": "parcel", "quantity": 1}).json() == "accepted"
    _, (item,) = stored(sentry_receiver)
    assert (item.message, item.user, item.data["transaction"]) == ("later: parcel", {"id": "background"}, "/later")


@pytest.mark.parametrize("sync", [True, False])
def test_sync_and_async_500_handlers_read_last_event_id(
    sentry_init: Init, sentry_receiver: LocalReceiver, sync: bool
) -> None:
    sentry_init(integrations=[FastApiIntegration()])
    app = FastAPI()

    @app.get("/boom")
    async def boom() -> None:
        raise KeyError("no such order")

    def sync_handler(request: Request, exc: Exception) -> PlainTextResponse:
        return PlainTextResponse(f"error {sentry_feedback.last_event_id()}", status_code=500)

    async def async_handler(request: Request, exc: Exception) -> PlainTextResponse:
        return sync_handler(request, exc)

    app.add_exception_handler(500, sync_handler if sync else async_handler)
    answer = TestClient(app, raise_server_exceptions=False).get("/boom")
    (event,), _ = stored(sentry_receiver)
    assert answer.text == f"error {event.event_id}"


def test_both_integrations_enabled(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    """Each application is handled once, with the options of its framework's integration."""
    sentry_init(
        integrations=[StarletteIntegration(), FastApiIntegration(transaction_style="endpoint")],
        send_default_pii=True,
    )

    async def plain(request: Any) -> PlainTextResponse:
        return PlainTextResponse(sentry_feedback.capture_feedback("from starlette") or "dropped")

    TestClient(Starlette(routes=[Route("/plain/{x}", plain)])).get("/plain/1")
    TestClient(make_app(), raise_server_exceptions=False).post(
        "/api/orders/v1/7/pay", json={"item": "a", "quantity": 1}
    )
    (event,), (item,) = stored(sentry_receiver)
    assert (item.data["transaction"], item.data["transaction_info"]) == ("/plain/{x}", {"source": "route"})
    assert event.data["transaction"] == f"{__name__}.make_app.<locals>.pay"
    assert event.data["exception"]["values"][-1]["mechanism"]["type"] == "starlette"
    assert {"fastapi", "starlette"} <= set(event.data["sdk"]["integrations"])
    assert event.data["user"] == {"id": "payer"}
