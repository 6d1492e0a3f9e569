"""Each web request is a transaction (when tracing is on) and a session in the aggregates (request mode)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from typing import Any

import pytest

import sentry_feedback as sf
from sentry_feedback.asgi import SentryAsgiMiddleware
from sentry_feedback.testing import MockTransport
from sentry_feedback.wsgi import SentryWsgiMiddleware, set_transaction_name

from .direct import call_wsgi, environ, http_scope

DSN = "http://public@127.0.0.1:9/1"
TRACE_ID = "771a43a4192642f0b136d5159a501700"
PARENT_SPAN = "b0e6f15b45c36b12"


def start(**options: Any) -> MockTransport:
    transport = MockTransport()
    options.setdefault("release", "web@1.0")
    sf.init(dsn=DSN, transport=transport, default_integrations=False, auto_enabling_integrations=False, **options)
    return transport


def payloads(transport: MockTransport, kind: str) -> list[dict[str, Any]]:
    sf.flush(5)
    return [item.get_json() for envelope in transport.envelopes for item in envelope.items if item.type == kind]


def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    path = environ["PATH_INFO"]
    if path == "/named":
        set_transaction_name("checkout page")
    with sf.start_span("load cart", op="db.query"):
        sf.capture_feedback("slow cart")
    if path == "/boom":
        raise ZeroDivisionError("boom")
    if path == "/error":
        sf.capture_message("handled trouble", "error")
    status = "404 Not Found" if path == "/missing" else "200 OK"
    start_response(status, [("Content-Type", "text/plain")])
    return [b"ok"]


def test_a_wsgi_request_is_a_transaction_with_its_spans() -> None:
    transport = start(traces_sample_rate=1.0)
    wrapped = SentryWsgiMiddleware(app)
    status, _ = call_wsgi(wrapped, environ("/cart", HTTP_SENTRY_TRACE=f"{TRACE_ID}-{PARENT_SPAN}-1"))
    assert status == "200 OK"
    (transaction,) = payloads(transport, "transaction")
    assert transaction["transaction"] == "/cart"
    assert transaction["transaction_info"] == {"source": "url"}
    trace = transaction["contexts"]["trace"]
    assert trace["op"] == "http.server" and trace["status"] == "ok"
    assert trace["trace_id"] == TRACE_ID and trace["parent_span_id"] == PARENT_SPAN
    assert trace["data"]["http.request.method"] == "GET"
    assert trace["data"]["http.response.status_code"] == 200
    assert trace["origin"] == "auto.http.wsgi"
    (span,) = transaction["spans"]
    assert span["description"] == "load cart" and span["parent_span_id"] == trace["span_id"]
    # The feedback written in the request points at the span it was sent in.
    (feedback,) = payloads(transport, "feedback")
    assert feedback["contexts"]["trace"]["span_id"] == span["span_id"]
    assert transaction["request"]["url"].endswith("/cart")


@pytest.mark.parametrize(("path", "status"), [("/missing", "not_found"), ("/boom", "internal_error")])
def test_the_status_of_a_request_transaction(path: str, status: str) -> None:
    transport = start(traces_sample_rate=1.0)
    wrapped = SentryWsgiMiddleware(app)
    with contextlib.suppress(ZeroDivisionError):
        call_wsgi(wrapped, environ(path))
    (transaction,) = payloads(transport, "transaction")
    assert transaction["contexts"]["trace"]["status"] == status


def test_set_transaction_name_names_the_transaction() -> None:
    transport = start(traces_sample_rate=1.0)
    call_wsgi(SentryWsgiMiddleware(app), environ("/named"))
    (transaction,) = payloads(transport, "transaction")
    assert transaction["transaction"] == "checkout page"
    assert transaction["transaction_info"] == {"source": "custom"}


def test_no_transaction_without_tracing_but_sessions_still() -> None:
    transport = start()
    call_wsgi(SentryWsgiMiddleware(app), environ("/cart"))
    assert payloads(transport, "transaction") == []
    (sessions,) = payloads(transport, "sessions")
    assert sessions["attrs"] == {"release": "web@1.0", "environment": "production"}
    assert [{k: v for k, v in a.items() if k != "started"} for a in sessions["aggregates"]] == [{"exited": 1}]


def test_request_sessions_count_exited_errored_and_crashed() -> None:
    transport = start()
    wrapped = SentryWsgiMiddleware(app)
    for path in ("/cart", "/cart", "/error", "/boom"):
        with contextlib.suppress(ZeroDivisionError):
            call_wsgi(wrapped, environ(path))
    (sessions,) = payloads(transport, "sessions")
    totals: dict[str, int] = {}
    for aggregate in sessions["aggregates"]:
        assert aggregate["started"].endswith(":00.000Z")  # per minute
        for key, value in aggregate.items():
            if key != "started":
                totals[key] = totals.get(key, 0) + value
    assert totals == {"exited": 2, "errored": 1, "crashed": 1}


@pytest.mark.parametrize(
    "options",
    [{"release": None}, {"auto_session_tracking": False}, {"session_mode": "application"}],
)
def test_no_request_sessions_when_off(options: dict[str, Any]) -> None:
    transport = start(**options)
    call_wsgi(SentryWsgiMiddleware(app), environ("/cart"))
    assert payloads(transport, "sessions") == []


async def asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    with sf.start_span("render", op="template.render"):
        pass
    if scope["path"] == "/boom":
        raise KeyError("boom")
    await send({"type": "http.response.start", "status": 201, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def run_asgi(application: Any, path: str) -> None:
    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        pass

    asyncio.run(application(http_scope(path), receive, send))


def test_an_asgi_request_is_a_transaction_and_a_session() -> None:
    transport = start(traces_sample_rate=1.0)
    wrapped = SentryAsgiMiddleware(asgi_app)
    run_asgi(wrapped, "/created")
    with pytest.raises(KeyError):
        run_asgi(wrapped, "/boom")
    transactions = payloads(transport, "transaction")
    assert [t["transaction"] for t in transactions] == ["/created", "/boom"]
    assert [t["contexts"]["trace"]["status"] for t in transactions] == ["ok", "internal_error"]
    assert transactions[0]["contexts"]["trace"]["data"]["http.response.status_code"] == 201
    assert [s["description"] for s in transactions[0]["spans"]] == ["render"]
    (sessions,) = payloads(transport, "sessions")
    counts = {k: v for a in sessions["aggregates"] for k, v in a.items() if k != "started"}
    assert counts == {"exited": 1, "crashed": 1}


def test_flask_requests_are_transactions_named_by_route() -> None:
    flask = pytest.importorskip("flask")
    from sentry_feedback.integrations.flask import FlaskIntegration

    transport = start(traces_sample_rate=1.0, integrations=[FlaskIntegration()])
    application = flask.Flask(__name__)

    @application.get("/users/<name>")
    def user(name: str) -> str:
        with sf.start_span("lookup", op="db.query"):
            return name

    response = application.test_client().get("/users/jane")
    response.close()  # as a server does once it sent the body
    assert response.status_code == 200
    (transaction,) = payloads(transport, "transaction")
    assert transaction["transaction"] == "/users/<name>"
    assert transaction["transaction_info"] == {"source": "route"}
    assert [s["description"] for s in transaction["spans"]] == ["lookup"]
    (sessions,) = payloads(transport, "sessions")
    assert sum(a.get("exited", 0) for a in sessions["aggregates"]) == 1


def test_fastapi_requests_are_transactions_named_by_route() -> None:
    fastapi = pytest.importorskip("fastapi")
    testclient = pytest.importorskip("fastapi.testclient")
    from sentry_feedback.integrations.fastapi import FastApiIntegration

    transport = start(traces_sample_rate=1.0, integrations=[FastApiIntegration()])
    application = fastapi.FastAPI()

    @application.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        with sf.start_span("fetch", op="db.query"):
            return {"id": item_id}

    with testclient.TestClient(application) as client:
        assert client.get("/items/3").status_code == 200
        assert client.get("/items/not-a-number").status_code == 422
    transactions = payloads(transport, "transaction")
    assert [t["transaction"] for t in transactions] == ["/items/{item_id}", "/items/{item_id}"]
    assert [t["contexts"]["trace"]["status"] for t in transactions] == ["ok", "invalid_argument"]
    assert [s["description"] for s in transactions[0]["spans"]] == ["fetch"]


def test_a_websocket_connection_is_a_websocket_transaction() -> None:
    transport = start(traces_sample_rate=1.0)

    async def echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": 1000})

    messages = iter([{"type": "websocket.connect"}])

    async def receive() -> dict[str, Any]:
        return next(messages, {"type": "websocket.disconnect", "code": 1000})

    async def send(message: dict[str, Any]) -> None:
        pass

    scope = {**http_scope("/live"), "type": "websocket", "scheme": "ws"}
    asyncio.run(SentryAsgiMiddleware(echo)(scope, receive, send))
    (transaction,) = payloads(transport, "transaction")
    assert transaction["contexts"]["trace"]["op"] == "websocket.server"
    assert transaction["transaction"] == "/live"
