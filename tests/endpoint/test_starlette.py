"""The Starlette routes, with Starlette and FastAPI, through their test clients."""

from __future__ import annotations

import html
import re
import warnings
from collections.abc import Callable

import pytest

import sentry_feedback
from sentry_feedback.asgi import SentryAsgiMiddleware
from sentry_feedback.endpoint import EndpointOptions, FeedbackEndpoint, RateLimit
from sentry_feedback.server import LocalReceiver

from .conftest import attachments, delivered, tiny_png

pytest.importorskip("starlette")
pytest.importorskip("httpx")

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

with warnings.catch_warnings():
    # Recent Starlette asks for httpx2 instead of httpx; both work for these tests.
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from sentry_feedback.endpoint.starlette import feedback_routes

Init = Callable[..., sentry_feedback.Client]
HIDDEN = re.compile(r'<input type="hidden" name="(\w+)" value="([^"]*)"')


def make_app(endpoint: FeedbackEndpoint) -> Starlette:
    async def pay(request: Request) -> Response:
        sentry_feedback.set_user({"id": request.headers.get("x-user-id", "anonymous")})
        raise ZeroDivisionError("the cart is empty")

    async def error_page(request: Request, exc: Exception) -> Response:
        form = endpoint.form_html("/feedback", associated_event_id=sentry_feedback.last_event_id())
        return HTMLResponse(f"<h1>Sorry!</h1>{form}", status_code=500)

    app = Starlette(routes=[Route("/pay", pay), *feedback_routes(endpoint)], exception_handlers={500: error_page})
    app.add_middleware(SentryAsgiMiddleware)
    return app


def test_error_page_to_linked_feedback(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    sentry_init()
    endpoint = FeedbackEndpoint()
    with TestClient(make_app(endpoint), raise_server_exceptions=False) as browser:
        page = browser.get("/pay", headers={"x-user-id": "42"})
        assert page.status_code == 500
        fields = {name: html.unescape(value) for name, value in HIDDEN.findall(page.text)}
        png = tiny_png()
        answer = browser.post(
            "/feedback",
            data={**fields, "message": "Checkout fails"},
            files={"attachments": ("shot.png", png, "image/png")},
            headers={"Accept": "application/json", "x-user-id": "42"},
        )
    assert answer.status_code == 202, answer.text
    (feedback,) = delivered(sentry_receiver)
    (error,) = sentry_receiver.store.list_events()
    assert answer.json() == {"id": feedback.event_id}
    assert feedback.associated_event_id == error.event_id
    assert feedback.trace_id == error.data["contexts"]["trace"]["trace_id"]
    assert feedback.data["transaction"] == "/feedback"
    assert feedback.data["request"]["url"] == "http://testserver/feedback"
    assert [(a.filename, a.content_type, a.data) for a in attachments(sentry_receiver, feedback)] == [
        ("shot.png", "image/png", png)
    ]


def test_routes(sentry_init: Init) -> None:
    sentry_init()
    endpoint = FeedbackEndpoint(EndpointOptions(rate_limit=RateLimit(1, 60.0)))
    with TestClient(make_app(endpoint)) as client:
        assert client.get("/feedback/form.js").headers["content-type"] == "text/javascript; charset=utf-8"
        assert client.get("/feedback/form.css").status_code == 200
        assert client.get("/feedback").status_code == 405
        assert client.options("/feedback/").status_code == 204
        assert client.post("/feedback/", json={"message": "m"}).status_code == 202
        limited = client.post("/feedback", json={"message": "again"})
        assert limited.status_code == 429 and limited.headers["retry-after"] == "60"


def test_fastapi(sentry_init: Init, sentry_receiver: LocalReceiver) -> None:
    fastapi = pytest.importorskip("fastapi")
    sentry_init()
    app = fastapi.FastAPI()
    app.router.routes.extend(feedback_routes(path="/api/feedback"))

    @app.get("/")
    def index() -> dict[str, str]:
        return {"hello": "world"}

    with TestClient(app) as client:
        assert client.get("/").json() == {"hello": "world"}
        answer = client.post("/api/feedback", data={"message": "from FastAPI", "event_id": "0" * 32})
    assert answer.status_code == 202
    (feedback,) = delivered(sentry_receiver)
    assert answer.json() == {"id": feedback.event_id}
    assert feedback.data["request"]["url"] == "http://testserver/api/feedback"  # the endpoint's own scope
