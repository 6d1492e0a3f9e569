"""Transactions and sessions over real HTTP on 127.0.0.1: ingest, refusals, and the REST API's trace routes."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from http.cookies import SimpleCookie
from typing import Any

import pytest
import urllib3

import sentry_feedback
from sentry_feedback.server import (
    ApiToken,
    Arrival,
    LocalReceiver,
    Project,
    ServerConfig,
    SessionTotals,
    _trace,
)

TRACE_ID = "771a43a4192642f0b136d5159a501700"
ROOT_SPAN = "b0e6f15b45c36b12"
DB_SPAN = "1000000000000001"
PAY_SPAN = "1000000000000002"
T0 = 1_714_564_800.0
FEEDBACK_ID = "f" * 32
READ_TOKEN = "read-only-token-1"
CONFIG = ServerConfig(
    "acme",
    (Project("web", "1", "webkey"), Project("api", "2", "apikey")),
    (ApiToken("write-token-1"), ApiToken(READ_TOKEN, frozenset({"read"}))),
)
AUTH = {"Authorization": "Bearer write-token-1"}


@pytest.fixture
def server() -> Iterator[LocalReceiver]:
    with LocalReceiver(config=CONFIG) as receiver:
        yield receiver


@pytest.fixture
def http() -> Iterator[urllib3.PoolManager]:
    pool = urllib3.PoolManager(retries=False, timeout=10.0)
    yield pool
    pool.clear()


def transaction(
    name: str, start: float, end: float, *, span_id: str = ROOT_SPAN, parent: str | None = None, **extra: Any
) -> dict[str, Any]:
    trace: dict[str, Any] = {"trace_id": TRACE_ID, "span_id": span_id, "op": "http.server", "status": "ok"}
    if parent:
        trace["parent_span_id"] = parent
    event = {
        "type": "transaction",
        "transaction": name,
        "start_timestamp": start,
        "timestamp": end,
        "release": "shop@2.0.0",
        "environment": "production",
        "contexts": {"trace": trace},
        "spans": [],
    }
    event.update(extra)
    return event


def checkout() -> dict[str, Any]:
    """The web project's request: a database query, then a payment call (whose service is the api project)."""
    spans = [
        {"trace_id": TRACE_ID, "span_id": PAY_SPAN, "parent_span_id": ROOT_SPAN, "op": "http.client",
         "description": "POST https://api.shop.test/pay", "start_timestamp": T0 + 0.1, "timestamp": T0 + 0.3,
         "status": "internal_error"},
        {"trace_id": TRACE_ID, "span_id": DB_SPAN, "parent_span_id": ROOT_SPAN, "op": "db.query",
         "description": "SELECT * FROM cart", "start_timestamp": "2024-05-01T12:00:00.010Z",
         "timestamp": "2024-05-01T12:00:00.0625Z"},
    ]  # fmt: skip
    return transaction("POST /checkout", T0, T0 + 0.5, spans=spans)


def item(item_type: str, payload: Any) -> bytes:
    """One envelope item: ``payload`` as JSON, or as it is when it is bytes (invalid items too)."""
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return json.dumps({"type": item_type, "length": len(data)}).encode() + b"\n" + data + b"\n"


def envelope(*items: bytes, event_id: str | None = None) -> bytes:
    """The envelope's bytes, written here rather than by the SDK, which refuses to send invalid items."""
    return json.dumps({"event_id": event_id} if event_id else {}).encode() + b"\n" + b"".join(items)


def post(http: urllib3.PoolManager, server: LocalReceiver, body: bytes, project: str = "1") -> urllib3.BaseHTTPResponse:
    key = "webkey" if project == "1" else "apikey"
    headers = {"X-Sentry-Auth": f"Sentry sentry_version=7, sentry_key={key}"}
    return http.request("POST", f"{server.url}/api/{project}/envelope/", body=body, headers=headers)


def feedback(span_id: str | None = PAY_SPAN, *, timestamp: float = T0 + 0.2) -> bytes:
    trace = {"trace_id": TRACE_ID, **({"span_id": span_id} if span_id else {})}
    event = {"timestamp": timestamp, "contexts": {"feedback": {"message": "Paying failed"}, "trace": trace}}
    return item("feedback", event)


def seed(http: urllib3.PoolManager, server: LocalReceiver) -> None:
    payment = transaction("POST /pay", T0 + 0.12, T0 + 0.28, span_id="c" * 16, parent=PAY_SPAN)
    for body, project in (
        (envelope(item("transaction", checkout()), event_id="1" * 32), "1"),
        (envelope(item("transaction", payment), event_id="2" * 32), "2"),
        (envelope(feedback(), event_id=FEEDBACK_ID), "1"),
    ):
        response = post(http, server, body, project)
        assert response.status == 200, response.data


def get(http: urllib3.PoolManager, url: str, headers: dict[str, str] | None = None) -> urllib3.BaseHTTPResponse:
    return http.request("GET", url, headers=AUTH if headers is None else headers)


def detail(response: urllib3.BaseHTTPResponse) -> str:
    value = json.loads(response.data)["detail"]
    assert isinstance(value, str)
    return value


# -- ingest ------------------------------------------------------------------------------------------------------


def test_transactions_sessions_and_aggregates_are_stored(server: LocalReceiver, http: urllib3.PoolManager) -> None:
    response = post(http, server, envelope(item("transaction", checkout()), event_id="1" * 32))
    assert (response.status, json.loads(response.data)) == (200, {"id": "1" * 32})

    update = {
        "sid": "a754cd5a-bcf7-4676-bac1-59f5a3398018",
        "init": True,
        "started": "2024-05-01T12:00:00Z",
        "status": "exited",
        "errors": 1,
        "attrs": {"release": "shop@2.0.0"},
    }
    counts = {"aggregates": [{"started": "2024-05-01T12:00:00Z", "exited": 4}], "attrs": {"release": "shop@2.0.0"}}
    items = [item("session", update), item("sessions", counts)]
    compressed = gzip.compress(envelope(*items))
    key = {"X-Sentry-Auth": "Sentry sentry_key=webkey", "Content-Encoding": "gzip"}
    response = http.request("POST", f"{server.url}/api/1/envelope/", body=compressed, headers=key)
    assert (response.status, json.loads(response.data)) == (200, {"id": None})

    [stored] = server.store.list_transactions()
    assert (stored.name, stored.trace_id, [s.op for s in stored.spans]) == (
        "POST /checkout",
        TRACE_ID,
        ["http.client", "db.query"],
    )
    assert stored.spans[1].duration == pytest.approx(0.0525)
    assert server.store.session_totals() == {"shop@2.0.0": SessionTotals("shop@2.0.0", exited=4, errored=1)}
    assert server.store.count_envelopes() == 2


def _bad_transaction() -> dict[str, Any]:
    event = checkout()
    event["spans"][1]["timestamp"] = "2024-05-01T11:00:00Z"
    return event


@pytest.mark.parametrize(
    ("items", "reason"),
    [
        pytest.param([item("transaction", b"{oops")], "transaction item payload is not JSON", id="json"),
        pytest.param(
            [item("event", {"message": "fine"}), item("transaction", _bad_transaction())],
            "transaction spans[1] ends before it starts",
            id="span-times",
        ),
        pytest.param(
            [item("transaction", {**checkout(), "contexts": {"trace": {"trace_id": "x"}}})],
            "no valid contexts.trace.trace_id",
            id="trace-id",
        ),
        pytest.param(
            [item("session", {"sid": "s", "started": "2024-05-01T12:00:00Z", "attrs": {}})],
            "session item has no attrs.release",
            id="session",
        ),
        pytest.param(
            [item("session", {"sid": "s", "started": "2024-05-01", "status": "fine", "attrs": {}})],
            'session item has an invalid status "fine"',
            id="session-status",
        ),
        pytest.param(
            [item("sessions", {"aggregates": [{"started": 0, "exited": 10**30}], "attrs": {"release": "r"}})],
            f"sessions aggregates[0] exited must be an integer from 0 to {2**53 - 1}, not {10**30}",
            id="aggregate-count",
        ),
        pytest.param(
            [item("session", b'{"sid": "\\ud800", "started": 0, "attrs": {"release": "r"}}')],
            "invalid text in the envelope: surrogates not allowed",
            id="lone-surrogate",
        ),
        pytest.param(
            [item("transaction", b'{"spans": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")],
            "transaction item payload is nested too deeply",
            id="deep",
        ),
    ],
)  # fmt: skip
def test_invalid_items_answer_400_and_store_nothing(
    server: LocalReceiver, http: urllib3.PoolManager, items: list[bytes], reason: str
) -> None:
    response = post(http, server, envelope(*items))
    assert response.status == 400
    assert reason in detail(response)
    assert server.store.count_envelopes() == 0
    assert server.store.list_events() == [] and server.store.list_transactions() == []
    assert server.store.session_totals() == {}
    [request] = server.received
    assert request.status == 400 and request.envelope is not None


def test_a_transaction_with_too_many_spans_is_refused_whole(server: LocalReceiver, http: urllib3.PoolManager) -> None:
    spans = [{"span_id": f"{n:016x}", "start_timestamp": T0, "timestamp": T0} for n in range(10_001)]
    response = post(http, server, envelope(item("transaction", transaction("big", T0, T0, spans=spans))))
    assert (response.status, detail(response)) == (400, "transaction has 10001 spans; at most 10000 are allowed")
    assert server.store.count_envelopes() == 0


def test_a_feedback_and_a_transaction_still_may_not_share_an_envelope(
    server: LocalReceiver, http: urllib3.PoolManager
) -> None:
    body = envelope(feedback(), item("transaction", checkout()), event_id=FEEDBACK_ID)
    response = post(http, server, body)
    assert (response.status, detail(response)) == (400, "envelope has a feedback item together with a transaction item")
    assert server.store.list_transactions() == [] and server.store.list_feedback() == []


def test_arrivals_summarize_transactions_sessions_and_aggregates(http: urllib3.PoolManager) -> None:
    arrivals: list[Arrival] = []
    update = {
        "sid": "A754CD5A-BCF7-4676-BAC1-59F5A3398018",
        "started": "2024-05-01T12:00:00Z",
        "status": "errored",
        "errors": 2,
        "attrs": {"release": "shop@2.0.0"},
    }
    buckets = [
        {"started": "2024-05-01T12:00:00Z", "exited": 5, "errored": 1},
        {"started": "2024-05-01T12:01:00Z", "exited": 2, "crashed": 1},
    ]
    with LocalReceiver(config=CONFIG, on_arrival=arrivals.append) as server:
        assert post(http, server, envelope(item("transaction", checkout()), event_id="1" * 32)).status == 200
        unnamed = transaction("", T0, T0 + 2000)
        del unnamed["transaction"], unnamed["contexts"]["trace"]["op"], unnamed["spans"]
        assert post(http, server, envelope(item("transaction", unnamed), event_id="2" * 32), "2").status == 200
        counts = {"aggregates": buckets, "attrs": {"release": "shop@2.0.0"}}
        body = envelope(item("session", update), item("session", {**update, "sid": "s2", "status": "ok", "errors": 0}))
        assert post(http, server, body).status == 200
        assert post(http, server, envelope(item("sessions", counts))).status == 200
        # Refused items are not arrivals.
        assert post(http, server, envelope(item("transaction", _bad_transaction()))).status == 400
    assert [(a.project, a.kind, a.event_id, a.message) for a in arrivals] == [
        ("web", "transaction", "1" * 32, "POST /checkout (http.server): 500.0 ms, 2 spans, trace 771a43a4"),
        ("api", "transaction", "2" * 32, "(no name): 2000 s, 0 spans, trace 771a43a4"),
        ("web", "session", None, "errored, 2 errors, release shop@2.0.0, sid a754cd5a"),
        ("web", "session", None, "ok, release shop@2.0.0, sid s2"),
        ("web", "sessions", None, "release shop@2.0.0: 9 sessions (7 exited, 1 errored, 1 crashed)"),
    ]


def test_arrival_summaries_are_bounded(http: urllib3.PoolManager) -> None:
    arrivals: list[Arrival] = []
    trace = {"trace_id": TRACE_ID, "span_id": ROOT_SPAN, "op": "o" * 500}
    endless = transaction("n" * 10_000, -1e300, 1e300, contexts={"trace": trace})
    long_release = {"release": "r" * 200}
    with LocalReceiver(config=CONFIG, on_arrival=arrivals.append) as server:
        body = envelope(
            item("transaction", endless),
            item("session", {"sid": "s" * 128, "started": 0, "status": "crashed", "attrs": long_release}),
            item("sessions", {"aggregates": [{"started": 0}], "attrs": long_release}),
        )
        assert post(http, server, body).status == 200
    cut = "r" * 39 + "\u2026"
    assert [a.message for a in arrivals] == [
        f"{'n' * 39}\u2026 ({'o' * 23}\u2026): 2e+300 s, 0 spans, trace 771a43a4",
        f"crashed, release {cut}, sid ssssssss",
        f"release {cut}: 0 sessions",
    ]


# -- the REST API ------------------------------------------------------------------------------------------------


def test_the_trace_of_a_feedback(server: LocalReceiver, http: urllib3.PoolManager) -> None:
    seed(http, server)
    response = get(http, f"{server.api_url}/projects/acme/web/user-feedback/{FEEDBACK_ID}/trace/")
    assert response.status == 200, response.data
    assert response.headers["Cache-Control"] == "no-store"
    trace = json.loads(response.data)
    assert (trace["trace_id"], trace["span_id"], trace["parent_span_id"]) == (TRACE_ID, PAY_SPAN, None)
    assert trace["timestamp"] == T0 + 0.2
    assert trace["truncated"] is False
    web, api = trace["transactions"]  # by start time, of both projects
    assert {key: web[key] for key in ("event_id", "project_id", "project", "transaction", "op", "status")} == {
        "event_id": "1" * 32,
        "project_id": "1",
        "project": "web",
        "transaction": "POST /checkout",
        "op": "http.server",
        "status": "ok",
    }
    assert (web["span_id"], web["parent_span_id"], web["duration"]) == (ROOT_SPAN, None, 500.0)
    assert (web["start_timestamp"], web["timestamp"], web["release"], web["environment"]) == (
        T0,
        T0 + 0.5,
        "shop@2.0.0",
        "production",
    )
    db, pay = web["spans"]  # by start time
    assert db == {
        "span_id": DB_SPAN,
        "parent_span_id": ROOT_SPAN,
        "op": "db.query",
        "description": "SELECT * FROM cart",
        "status": None,
        "start_timestamp": T0 + 0.01,
        "timestamp": T0 + 0.0625,
        "duration": 52.5,
    }
    assert (pay["span_id"], pay["status"], pay["duration"]) == (PAY_SPAN, "internal_error", 200.0)
    assert (api["project"], api["transaction"], api["parent_span_id"], api["duration"]) == (
        "api",
        "POST /pay",
        PAY_SPAN,
        160.0,
    )

    # The same through the trace route; HEAD answers the headers only.
    by_id = get(http, f"{server.api_url}/organizations/acme/traces/{TRACE_ID.upper()}/")
    assert json.loads(by_id.data) == {"trace_id": TRACE_ID, "transactions": trace["transactions"], "truncated": False}
    head = http.request("HEAD", f"{server.api_url}/organizations/acme/traces/{TRACE_ID}", headers=AUTH)
    assert (head.status, head.data) == (200, b"")


def test_a_trace_without_transactions_is_empty(server: LocalReceiver, http: urllib3.PoolManager) -> None:
    body = envelope(feedback(span_id=None), event_id=FEEDBACK_ID)
    assert post(http, server, body).status == 200
    untraced = {"contexts": {"feedback": {"message": "No trace"}}}
    assert post(http, server, envelope(item("feedback", untraced), event_id="e" * 32)).status == 200

    trace = json.loads(get(http, f"{server.api_url}/projects/acme/web/user-feedback/{FEEDBACK_ID}/trace/").data)
    assert (trace["trace_id"], trace["span_id"], trace["transactions"]) == (TRACE_ID, None, [])
    assert isinstance(trace["timestamp"], float)
    # The server gives every feedback a trace id: an SDK's envelope header, else nothing.
    trace = json.loads(get(http, f"{server.api_url}/projects/acme/web/user-feedback/{'e' * 32}/trace/").data)
    assert (trace["trace_id"], trace["transactions"]) == (None, [])
    found = get(http, f"{server.api_url}/organizations/acme/traces/{'0' * 32}/")
    assert (found.status, json.loads(found.data)) == (
        200,
        {"trace_id": "0" * 32, "transactions": [], "truncated": False},
    )


def test_trace_routes_need_the_inbox_authentication(server: LocalReceiver, http: urllib3.PoolManager) -> None:
    seed(http, server)
    paths = [f"/projects/acme/web/user-feedback/{FEEDBACK_ID}/trace/", f"/organizations/acme/traces/{TRACE_ID}/"]
    for path in paths:
        url = server.api_url + path
        assert get(http, url, headers={}).status == 401
        assert get(http, url, headers={"Authorization": "Bearer not-a-token"}).status == 401
        assert get(http, url, headers={"Cookie": "sf_session=not-a-token"}).status == 401
        assert get(http, url, headers={"Authorization": f"Bearer {READ_TOKEN}"}).status == 200
        response = http.request("POST", url, headers=AUTH)
        assert (response.status, response.headers["Allow"]) == (405, "GET, HEAD")

    # The inbox's session: the token handed over in the URL, kept in the HttpOnly cookie.
    reply = http.request("GET", f"{server.url}/?token={READ_TOKEN}", redirect=False)
    jar: SimpleCookie = SimpleCookie()
    for header in reply.headers.getlist("Set-Cookie"):
        jar.load(header)
    cookie = {"Cookie": f"sf_session={jar['sf_session'].value}"}
    for path in paths:
        response = get(http, server.api_url + path, headers=cookie)
        assert response.status == 200 and json.loads(response.data)["transactions"], path


@pytest.mark.parametrize(
    "path",
    [
        f"/projects/acme/api/user-feedback/{FEEDBACK_ID}/trace/",  # the feedback is the web project's
        f"/projects/acme/nope/user-feedback/{FEEDBACK_ID}/trace/",
        f"/projects/acme/web/user-feedback/{'0' * 32}/trace/",
        "/projects/acme/web/user-feedback/' OR 1=1 --/trace/",
        f"/projects/other/web/user-feedback/{FEEDBACK_ID}/trace/",
        "/organizations/acme/traces/not-a-trace/",
        "/organizations/acme/traces/%27%20OR%201%3D1/",
        f"/organizations/other/traces/{TRACE_ID}/",
    ],
)
def test_trace_routes_answer_404_for_what_is_not_there(
    server: LocalReceiver, http: urllib3.PoolManager, path: str
) -> None:
    seed(http, server)
    response = get(http, server.api_url + path)
    assert (response.status, detail(response)) == (404, "The requested resource does not exist")


def test_a_trace_answer_is_bounded(
    server: LocalReceiver, http: urllib3.PoolManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    long = "x" * 5000
    spans = [
        {"span_id": f"{n:016x}", "description": long, "start_timestamp": T0 + n, "timestamp": T0 + n + 1}
        for n in range(3)
    ]
    for number in range(3):
        event = transaction(f"T{number}", T0 + number, T0 + 9, span_id=f"{number:016x}", spans=spans)
        assert post(http, server, envelope(item("transaction", event))).status == 200
    huge = transaction("forever", -1e308, 1e308, span_id="e" * 16)
    assert post(http, server, envelope(item("transaction", huge))).status == 200
    monkeypatch.setattr(_trace, "MAX_TRACE_TRANSACTIONS", 3)
    monkeypatch.setattr(_trace, "MAX_TRACE_SPANS", 4)

    answer = json.loads(get(http, f"{server.api_url}/organizations/acme/traces/{TRACE_ID}/").data)
    assert answer["truncated"] is True
    forever, first, second = answer["transactions"]
    assert (forever["transaction"], forever["duration"]) == ("forever", None)  # too long for a float: no number
    assert [len(first["spans"]), len(second["spans"])] == [3, 1]
    description = first["spans"][0]["description"]
    assert len(description) == _trace.MAX_TEXT and description.endswith("\u2026")


# -- with the sentry-sdk package -------------------------------------------------------------------------------------


def test_what_sentry_sdk_sends_is_stored_and_the_feedback_finds_its_span(
    server: LocalReceiver, http: urllib3.PoolManager
) -> None:
    sentry_sdk = pytest.importorskip("sentry_sdk")
    dsn = f"http://webkey@127.0.0.1:{server.port}/1"
    sentry_sdk.init(dsn=dsn, traces_sample_rate=1.0, release="shop@3.1.0", default_integrations=False)
    try:
        scope = sentry_sdk.get_isolation_scope()
        scope.start_session(session_mode="application")
        with sentry_sdk.start_transaction(op="http.server", name="POST /checkout"):
            with sentry_sdk.start_span(op="db.query", name="SELECT cart"):
                pass
            with sentry_sdk.start_span(op="http.client", name="POST acme-pay") as payment:
                headers = {"sentry-trace": sentry_sdk.get_traceparent() or ""}
                client = sentry_feedback.init(dsn=dsn)
                with sentry_feedback.continue_trace(headers):
                    feedback_id = sentry_feedback.send_feedback("Paying took ages", timeout=10)
                client.close(5)
        scope.end_session()
        scope.start_session(session_mode="request")  # counted in aggregates
        scope.end_session()
        sentry_sdk.flush(10)
    finally:
        sentry_sdk.get_client().close()
        sentry_sdk.init(default_integrations=False)  # a disabled client again

    assert all(request.status == 200 for request in server.received), [r.status for r in server.received]
    [stored] = server.store.list_transactions()
    assert (stored.name, stored.op) == ("POST /checkout", "http.server")
    assert [span.description for span in stored.spans] == ["SELECT cart", "POST acme-pay"]
    assert stored.start_timestamp <= stored.spans[0].start_timestamp <= stored.spans[1].timestamp <= stored.timestamp
    totals = server.store.session_totals()["shop@3.1.0"]
    assert (totals.exited, totals.total) == (2, 2)

    # The feedback was sent from within the payment span: its own span's parent.
    trace = json.loads(get(http, f"{server.api_url}/projects/acme/web/user-feedback/{feedback_id}/trace/").data)
    assert trace["trace_id"] == stored.trace_id and trace["parent_span_id"] == payment.span_id
    assert [span["description"] for span in trace["transactions"][0]["spans"]] == ["SELECT cart", "POST acme-pay"]
