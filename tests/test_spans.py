"""Spans and transactions: nesting, sampling, propagation, statuses, caps and client reports."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sentry_feedback as sf
from sentry_feedback import TransportResponse
from sentry_feedback.testing import MockTransport, normalize_with_relay

DSN = "http://public@127.0.0.1:9/1"


@pytest.fixture
def transport() -> MockTransport:
    return MockTransport()


def start(transport: MockTransport, **options: Any) -> sf.Client:
    options.setdefault("traces_sample_rate", 1.0)
    options.setdefault("release", "shop@1.0")
    return sf.init(dsn=DSN, transport=transport, default_integrations=False, **options)


def items(transport: MockTransport, kind: str) -> list[dict[str, Any]]:
    sf.flush(5)
    return [item.get_json() for envelope in transport.envelopes for item in envelope.items if item.type == kind]


def envelopes_with(transport: MockTransport, kind: str) -> list[sf.Envelope]:
    sf.flush(5)
    return [e for e in transport.envelopes if any(i.type == kind for i in e.items)]


def totals() -> dict[tuple[str, str], int]:
    return sf.get_client().client_reports.totals()


# -- the transaction and its spans ------------------------------------------------------------------


def test_a_root_span_is_sent_as_a_transaction_with_its_children(transport: MockTransport) -> None:
    start(transport)
    with sf.start_span("checkout", op="http.server", attributes={"cart.items": 3}) as root:
        with sf.start_span("load cart", op="db.query") as query:
            assert sf.get_active_span() is query
        with sf.start_span("charge", op="http.client") as charge, sf.start_span("sign", op="function") as sign:
            assert sf.get_root_span(sign) is root
        assert sf.get_active_span() is root
    assert sf.get_active_span() is None

    (transaction,) = items(transport, "transaction")
    assert transaction["type"] == "transaction"
    assert transaction["transaction"] == "checkout"
    assert transaction["transaction_info"] == {"source": "custom"}
    trace = transaction["contexts"]["trace"]
    assert trace["trace_id"] == root.trace_id and trace["span_id"] == root.span_id
    assert trace["op"] == "http.server" and trace["status"] == "ok"
    assert trace["data"] == {"cart.items": 3}
    assert transaction["start_timestamp"] <= transaction["timestamp"]
    spans = {span["description"]: span for span in transaction["spans"]}
    assert set(spans) == {"load cart", "charge", "sign"}
    assert spans["load cart"]["parent_span_id"] == root.span_id
    assert spans["charge"]["parent_span_id"] == root.span_id
    assert spans["sign"]["parent_span_id"] == charge.span_id
    assert {span["trace_id"] for span in spans.values()} == {root.trace_id}
    for span in spans.values():
        assert transaction["start_timestamp"] <= span["start_timestamp"] <= span["timestamp"]
        assert span["timestamp"] <= transaction["timestamp"]
    assert spans["load cart"]["span_id"] == query.span_id
    normalize_with_relay(transaction)


def test_transactions_get_scope_data_but_no_breadcrumbs(transport: MockTransport) -> None:
    start(transport)
    sf.set_tag("page", "checkout")
    sf.set_user({"id": "42"})
    sf.add_breadcrumb(message="clicked")
    with sf.start_span("checkout"):
        pass
    (transaction,) = items(transport, "transaction")
    assert transaction["tags"] == {"page": "checkout"}
    assert transaction["user"] == {"id": "42"}
    assert "breadcrumbs" not in transaction
    assert transaction["release"] == "shop@1.0"


def test_the_envelope_of_a_transaction_carries_the_dynamic_sampling_context(transport: MockTransport) -> None:
    start(transport, traces_sample_rate=1.0, environment="staging")
    with sf.start_span("checkout") as root:
        pass
    (envelope,) = envelopes_with(transport, "transaction")
    assert envelope.headers["trace"] == {
        "trace_id": root.trace_id,
        "public_key": "public",
        "release": "shop@1.0",
        "environment": "staging",
        "transaction": "checkout",
        "sample_rate": "1.0",
        "sampled": "true",
        "sample_rand": envelope.headers["trace"]["sample_rand"],
    }
    assert 0.0 <= float(envelope.headers["trace"]["sample_rand"]) < 1.0


def test_a_decorated_function_is_a_span_per_call(transport: MockTransport) -> None:
    start(transport)

    @sf.start_span("double", op="function")
    def double(x: int) -> int:
        """Doubles."""
        return 2 * x

    assert double.__name__ == "double" and double.__doc__ == "Doubles."
    with sf.start_span("job"):
        assert double(2) == 4
        assert double(3) == 6
    (transaction,) = items(transport, "transaction")
    assert [span["description"] for span in transaction["spans"]] == ["double", "double"]


def test_a_decorated_coroutine_is_a_span_per_call(transport: MockTransport) -> None:
    start(transport)

    @sf.start_span("fetch", op="http.client")
    async def fetch(n: int) -> int:
        await asyncio.sleep(0)
        return n

    async def main() -> list[int]:
        with sf.start_span("page"):
            return list(await asyncio.gather(fetch(1), fetch(2)))

    assert asyncio.run(main()) == [1, 2]
    (transaction,) = items(transport, "transaction")
    assert [span["description"] for span in transaction["spans"]] == ["fetch", "fetch"]
    root_id = transaction["contexts"]["trace"]["span_id"]
    assert {span["parent_span_id"] for span in transaction["spans"]} == {root_id}


def test_concurrent_tasks_nest_their_own_spans(transport: MockTransport) -> None:
    start(transport)
    both_started = asyncio.Event()
    started = 0

    async def request(name: str) -> None:
        nonlocal started
        with sf.start_span(name, op="http.server"), sf.start_span(f"{name} query", op="db.query"):
            started += 1
            if started == 2:
                both_started.set()
            await both_started.wait()  # both tasks are inside their spans at once

    async def main() -> None:
        await asyncio.gather(request("a"), request("b"))

    asyncio.run(main())
    transactions = {t["transaction"]: t for t in items(transport, "transaction")}
    assert set(transactions) == {"a", "b"}
    for name, transaction in transactions.items():
        (span,) = transaction["spans"]
        assert span["description"] == f"{name} query"
        assert span["parent_span_id"] == transaction["contexts"]["trace"]["span_id"]


def test_threads_do_not_share_active_spans(transport: MockTransport) -> None:
    start(transport)
    seen: list[sf.Span | None] = []
    with sf.start_span("main"):
        thread = threading.Thread(target=lambda: seen.append(sf.get_active_span()))
        thread.start()
        thread.join()
    assert seen == [None]


def test_spans_started_in_a_thread_with_the_context_nest_under_its_span(transport: MockTransport) -> None:
    import contextvars

    start(transport)
    with sf.start_span("main") as root:
        context = contextvars.copy_context()
        thread = threading.Thread(target=context.run, args=(lambda: sf.start_span("worker").__enter__().end(),))
        thread.start()
        thread.join()
    (transaction,) = items(transport, "transaction")
    (span,) = transaction["spans"]
    assert span["parent_span_id"] == root.span_id


# -- errors and feedback inside spans -----------------------------------------------------------------


def test_errors_and_feedback_carry_the_active_span(transport: MockTransport) -> None:
    start(transport)
    with sf.start_span("checkout", op="http.server") as root, sf.start_span("charge", op="http.client") as charge:
        sf.capture_feedback("Paying takes forever")
        try:
            raise ValueError("declined")
        except ValueError:
            sf.capture_exception()
    sf.flush(5)
    for kind in ("feedback", "event"):
        (envelope,) = envelopes_with(transport, kind)
        event = envelope.items[0].get_json()
        trace = event["contexts"]["trace"]
        assert trace["trace_id"] == root.trace_id
        assert trace["span_id"] == charge.span_id
        assert trace["parent_span_id"] == root.span_id
        assert envelope.headers["trace"]["sampled"] == "true"
        assert envelope.headers["trace"]["transaction"] == "checkout"


def test_outgoing_headers_continue_from_the_active_span(transport: MockTransport) -> None:
    start(transport)
    with sf.start_span("checkout") as root:
        assert sf.get_traceparent() == f"{root.trace_id}-{root.span_id}-1"
        headers = sf.get_trace_headers(w3c=True)
        assert headers["traceparent"] == f"00-{root.trace_id}-{root.span_id}-01"
        assert "sentry-sampled=true" in headers["baggage"]
        assert "sentry-transaction=checkout" in headers["baggage"]
        # Once passed on, the context stays as it was (a rename does not change it).
        root.update_name("renamed")
        assert "sentry-transaction=checkout" in sf.get_baggage()
    (envelope,) = envelopes_with(transport, "transaction")
    assert envelope.headers["trace"]["transaction"] == "checkout"
    assert envelope.items[0].get_json()["transaction"] == "renamed"


def test_the_context_sent_with_an_error_is_the_transactions_too(transport: MockTransport) -> None:
    start(transport)
    with sf.start_span("first name") as root:
        sf.capture_message("inside", "error")
        root.update_name("second name")
    traces = [e.headers["trace"] for e in transport.envelopes] if sf.flush(5) else []
    assert len(traces) == 2 and traces[0] == traces[1]
    assert traces[0]["transaction"] == "first name"


# -- continuing an incoming trace and sampling ----------------------------------------------------------

TRACE = "771a43a4192642f0b136d5159a501700"
PARENT = "b0e6f15b45c36b12"


def incoming(sampled: str | None, sample_rand: str | None = None, rate: str | None = None) -> dict[str, str]:
    headers = {"sentry-trace": f"{TRACE}-{PARENT}" + (f"-{sampled}" if sampled is not None else "")}
    baggage = [f"sentry-trace_id={TRACE}", "sentry-public_key=frontend"]
    if sample_rand is not None:
        baggage.append(f"sentry-sample_rand={sample_rand}")
    if rate is not None:
        baggage.append(f"sentry-sample_rate={rate}")
    headers["baggage"] = ",".join(baggage)
    return headers


def test_a_continued_trace_inherits_the_callers_decision(transport: MockTransport) -> None:
    start(transport, traces_sample_rate=0.0)
    with sf.continue_trace(incoming("1", "0.5", "0.75")), sf.start_span("api") as root:
        assert root.sampled is True
        assert root.trace_id == TRACE and root.parent_span_id == PARENT
    (envelope,) = envelopes_with(transport, "transaction")
    transaction = envelope.items[0].get_json()
    assert transaction["contexts"]["trace"]["parent_span_id"] == PARENT
    # The caller's context is passed on unchanged (it is the head of the trace).
    assert envelope.headers["trace"] == {
        "trace_id": TRACE,
        "public_key": "frontend",
        "sample_rand": "0.5",
        "sample_rate": "0.75",
    }


def test_a_continued_unsampled_trace_sends_nothing_and_counts_it(transport: MockTransport) -> None:
    start(transport, traces_sample_rate=1.0)
    with sf.continue_trace(incoming("0", "0.9")), sf.start_span("api") as root:
        assert root.sampled is False and not root.is_recording()
        with sf.start_span("child"):
            assert sf.get_traceparent() == f"{TRACE}-{sf.get_active_span().span_id}-0"  # type: ignore[union-attr]
    assert items(transport, "transaction") == []
    assert totals() == {("sample_rate", "transaction"): 1, ("sample_rate", "span"): 2}


@pytest.mark.parametrize(("rand", "sampled"), [("0.2999", True), ("0.3", False), ("0.7", False)])
def test_the_incoming_sample_rand_decides_against_the_rate(transport: MockTransport, rand: str, sampled: bool) -> None:
    start(transport, traces_sample_rate=0.3)
    with sf.continue_trace(incoming(None, rand)), sf.start_span("api") as root:
        assert root.sampled is sampled


def test_traces_sampler_sees_the_parent_decision_and_wins(transport: MockTransport) -> None:
    contexts: list[dict[str, Any]] = []

    def sampler(context: dict[str, Any]) -> float:
        contexts.append(context)
        return 0.0 if context["name"] == "health" else 1.0

    start(transport, traces_sample_rate=None, traces_sampler=sampler)
    with sf.continue_trace(incoming("0", "0.1", "0.2")), sf.start_span("api", op="http.server"):
        pass
    with sf.start_span("health"):
        pass
    assert contexts[0]["name"] == "api" and contexts[0]["op"] == "http.server"
    assert contexts[0]["parent_sampled"] is False and contexts[0]["parent_sample_rate"] == 0.2
    assert contexts[0]["sample_rand"] == 0.1  # the incoming trace's
    assert contexts[0]["inherit_or_sample_with"](0.9) == 0.2
    assert contexts[1]["parent_sampled"] is None
    assert contexts[1]["inherit_or_sample_with"](0.9) == 0.9
    assert 0.0 <= contexts[1]["sample_rand"] < 1.0
    assert [t["transaction"] for t in items(transport, "transaction")] == ["api"]
    assert totals() == {("sample_rate", "transaction"): 1, ("sample_rate", "span"): 1}


@pytest.mark.parametrize("bad", [2.0, -0.1, "1", None, float("nan"), object()])
def test_a_bad_sampler_answer_samples_out_and_is_logged(
    transport: MockTransport, bad: object, caplog: pytest.LogCaptureFixture
) -> None:
    start(transport, traces_sample_rate=None, traces_sampler=lambda context: bad)
    with sf.start_span("api") as root:
        assert root.sampled is False
    assert items(transport, "transaction") == []
    assert "traces_sampler returned" in caplog.text


def test_a_raising_sampler_samples_out(transport: MockTransport, caplog: pytest.LogCaptureFixture) -> None:
    def sampler(context: dict[str, Any]) -> float:
        raise RuntimeError("boom")

    start(transport, traces_sample_rate=None, traces_sampler=sampler)
    with sf.start_span("api") as root:
        pass
    assert root.sampled is False
    assert "traces_sampler raised" in caplog.text


@pytest.mark.parametrize(("answer", "sampled"), [(True, True), (False, False), (1, True), (0, False)])
def test_sampler_answers_may_be_booleans(transport: MockTransport, answer: object, sampled: bool) -> None:
    start(transport, traces_sample_rate=None, traces_sampler=lambda context: answer)
    with sf.start_span("api") as root:
        pass
    assert root.sampled is sampled


def test_without_tracing_no_transaction_and_no_report(transport: MockTransport) -> None:
    start(transport, traces_sample_rate=None)
    propagation_trace = sf.get_isolation_scope().propagation_context.trace_id  # type: ignore[union-attr]
    with sf.start_span("api") as root:
        assert not root.is_recording()
        sf.capture_message("hello")
        assert sf.get_traceparent() == sf.get_isolation_scope().propagation_context.sentry_trace()  # type: ignore[union-attr]
    assert items(transport, "transaction") == []
    (event,) = items(transport, "event")
    assert event["contexts"]["trace"]["trace_id"] == propagation_trace
    assert totals() == {}


# -- statuses ---------------------------------------------------------------------------------------


def test_an_exception_leaving_a_span_sets_internal_error(transport: MockTransport) -> None:
    start(transport)
    with pytest.raises(KeyError), sf.start_span("api"), sf.start_span("lookup"):
        raise KeyError("x")
    (transaction,) = items(transport, "transaction")
    assert transaction["contexts"]["trace"]["status"] == "internal_error"
    assert transaction["spans"][0]["status"] == "internal_error"


def test_a_status_set_before_the_exception_is_kept(transport: MockTransport) -> None:
    start(transport)

    def fail() -> None:
        with sf.start_span("api") as span:
            span.set_status("not_found")
            raise KeyError("x")

    with pytest.raises(KeyError):
        fail()
    (transaction,) = items(transport, "transaction")
    assert transaction["contexts"]["trace"]["status"] == "not_found"


@pytest.mark.parametrize(
    ("code", "status"),
    [
        (200, "ok"),
        (304, "ok"),
        (400, "invalid_argument"),
        (401, "unauthenticated"),
        (403, "permission_denied"),
        (404, "not_found"),
        (409, "already_exists"),
        (413, "failed_precondition"),
        (418, "invalid_argument"),
        (429, "resource_exhausted"),
        (499, "cancelled"),
        (500, "internal_error"),
        (501, "unimplemented"),
        (502, "internal_error"),
        (503, "unavailable"),
        (504, "deadline_exceeded"),
        (600, "unknown"),
        (42, "unknown"),
    ],
)
def test_set_http_status(transport: MockTransport, code: int, status: str) -> None:
    start(transport)
    with sf.start_span("api") as span:
        sf.set_http_status(span, code)
    assert span.status == status
    (transaction,) = items(transport, "transaction")
    assert transaction["contexts"]["trace"]["status"] == status
    assert transaction["contexts"]["trace"]["data"] == {"http.response.status_code": code}


# -- kinds of span ----------------------------------------------------------------------------------


def test_an_inactive_span_is_not_a_parent(transport: MockTransport) -> None:
    start(transport)
    with sf.start_span("api") as root:
        upload = sf.start_inactive_span("upload", op="file.write")
        assert sf.get_active_span() is root
        with sf.start_span("after"):
            pass
        upload.end()
    (transaction,) = items(transport, "transaction")
    assert {s["description"]: s["parent_span_id"] for s in transaction["spans"]} == {
        "upload": root.span_id,
        "after": root.span_id,
    }


def test_an_inactive_span_is_a_context_manager(transport: MockTransport) -> None:
    start(transport)
    with sf.start_inactive_span("job") as span:
        assert sf.get_active_span() is None
    assert span.timestamp is not None
    assert [t["transaction"] for t in items(transport, "transaction")] == ["job"]


def test_a_manual_span_is_active_inside_and_ends_when_told(transport: MockTransport) -> None:
    start(transport)
    with sf.start_span_manual("stream") as span:
        assert sf.get_active_span() is span
        with sf.start_span("chunk"):
            pass
    assert span.is_recording() and span.timestamp is None
    assert items(transport, "transaction") == []
    span.end()
    (transaction,) = items(transport, "transaction")
    assert [s["description"] for s in transaction["spans"]] == ["chunk"]


def test_with_active_span(transport: MockTransport) -> None:
    start(transport)
    root = sf.start_inactive_span("job")
    with sf.with_active_span(root) as scope:
        assert isinstance(scope, sf.Scope)
        assert sf.get_active_span() is root
        with sf.start_span("step"):
            pass
        with sf.with_active_span(None):
            assert sf.get_active_span() is None
    assert sf.get_active_span() is None
    root.end()
    (transaction,) = items(transport, "transaction")
    assert [s["description"] for s in transaction["spans"]] == ["step"]


def test_only_if_parent_and_parent_span(transport: MockTransport) -> None:
    start(transport)
    with sf.start_span("orphan", only_if_parent=True) as orphan:
        assert not orphan.is_recording()
    with sf.start_span("api") as root:
        with sf.start_span("child", only_if_parent=True) as child:
            assert child.is_recording()
        with sf.start_span("new root", parent_span=None) as other:
            assert sf.get_root_span(other) is other and other.trace_id == root.trace_id
        inactive = sf.start_inactive_span("explicit", parent_span=child)
        inactive.end()
    names = sorted(t["transaction"] for t in items(transport, "transaction"))
    assert names == ["api", "new root"]
    (api,) = [t for t in items(transport, "transaction") if t["transaction"] == "api"]
    assert {s["description"]: s["parent_span_id"] for s in api["spans"]} == {
        "child": root.span_id,
        "explicit": child.span_id,
    }


def test_force_transaction_sends_a_segment_of_its_own_in_the_same_trace(transport: MockTransport) -> None:
    start(transport)
    with (
        sf.start_span("api") as root,
        sf.start_span("background job", force_transaction=True) as job,
        sf.start_span("step"),
    ):
        pass
    transactions = {t["transaction"]: t for t in items(transport, "transaction")}
    assert set(transactions) == {"api", "background job"}
    assert transactions["api"]["spans"] == []
    job_trace = transactions["background job"]["contexts"]["trace"]
    assert job_trace["trace_id"] == root.trace_id and job_trace["parent_span_id"] == root.span_id
    assert job_trace["span_id"] == job.span_id
    assert [s["description"] for s in transactions["background job"]["spans"]] == ["step"]


def test_suppress_tracing_sends_no_span_but_errors(transport: MockTransport) -> None:
    start(transport)
    with sf.suppress_tracing(), sf.start_span("api") as span:
        assert not span.is_recording()
        sf.capture_message("still sent")
    with sf.start_span("outer"), sf.suppress_tracing(), sf.start_span("hidden"):
        pass
    (transaction,) = items(transport, "transaction")
    assert transaction["transaction"] == "outer" and transaction["spans"] == []
    assert len(items(transport, "event")) == 1


def test_span_to_json_and_update_span_name(transport: MockTransport) -> None:
    start(transport)
    with sf.start_span("api", op="http.server", start_time=1_700_000_000.0) as span:
        sf.update_span_name(span, "GET /cart")
        span.set_attributes({"a": 1, "b": "two"})
        span.set_attribute("a", None)
    data = sf.span_to_json(span)
    assert data["description"] == "GET /cart" and data["op"] == "http.server"
    assert data["start_timestamp"] == 1_700_000_000.0 and data["timestamp"] >= data["start_timestamp"]
    assert data["data"] == {"b": "two"} and data["trace_id"] == span.trace_id
    (transaction,) = items(transport, "transaction")
    assert transaction["transaction"] == "GET /cart"
    assert transaction["transaction_info"] == {"source": "custom"}
    assert span.span_context() == {"trace_id": span.trace_id, "span_id": span.span_id, "sampled": True}


def test_ending_twice_sends_once_and_late_children_are_left_out(transport: MockTransport) -> None:
    start(transport)
    root = sf.start_inactive_span("api")
    late = sf.start_inactive_span("late", parent_span=root)
    root.end()
    root.end()
    late.end()
    (transaction,) = items(transport, "transaction")
    assert transaction["spans"] == []


# -- caps, hooks, rate limits and client reports ---------------------------------------------------------


def test_spans_past_max_spans_are_counted(transport: MockTransport) -> None:
    start(transport, max_spans=2)
    with sf.start_span("api"):
        for i in range(5):
            with sf.start_span(f"q{i}"):
                pass
    (transaction,) = items(transport, "transaction")
    assert [s["description"] for s in transaction["spans"]] == ["q0", "q1"]
    assert totals() == {("buffer_overflow", "span"): 3}


def test_before_send_transaction_sees_transactions_only(transport: MockTransport) -> None:
    seen: list[str] = []

    def before_send(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
        seen.append("before_send:" + event.get("type", "event"))
        return event

    def before_send_transaction(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
        seen.append("before_send_transaction:" + event["type"])
        event["spans"] = [s for s in event["spans"] if s["op"] != "cache.get"]
        return event

    start(transport, before_send=before_send, before_send_transaction=before_send_transaction)
    with sf.start_span("api"):
        for op in ("cache.get", "db.query", "cache.get"):
            with sf.start_span(op, op=op):
                pass
        sf.capture_message("hi")
    assert seen == ["before_send:event", "before_send_transaction:transaction"]
    (transaction,) = items(transport, "transaction")
    assert [s["op"] for s in transaction["spans"]] == ["db.query"]
    assert totals() == {("before_send", "span"): 2}


def test_a_dropped_transaction_counts_its_spans_plus_one(transport: MockTransport) -> None:
    start(transport, before_send_transaction=lambda event, hint: None)
    with sf.start_span("api"):
        for _ in range(3):
            with sf.start_span("q"):
                pass
    assert items(transport, "transaction") == []
    assert totals() == {("before_send", "transaction"): 1, ("before_send", "span"): 4}


def test_an_event_processor_dropping_a_transaction_is_counted(transport: MockTransport) -> None:
    start(transport)
    sf.add_event_processor(lambda event, hint: None if event.get("type") == "transaction" else event)
    with sf.start_span("api"), sf.start_span("q"):
        pass
    assert totals() == {("event_processor", "transaction"): 1, ("event_processor", "span"): 2}


def test_a_raising_hook_counts_the_transaction(transport: MockTransport) -> None:
    def hook(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
        raise RuntimeError("bug")

    start(transport, before_send_transaction=hook)
    with sf.start_span("api"):
        pass
    assert totals() == {("callback_error", "transaction"): 1, ("callback_error", "span"): 1}


def test_rate_limited_transactions_are_dropped_and_counted_with_their_spans() -> None:
    def limited(envelope: sf.Envelope) -> TransportResponse:
        return TransportResponse(429, {"X-Sentry-Rate-Limits": "60:transaction:key"})

    transport = MockTransport(limited)
    start(transport)
    with sf.start_span("first"):
        pass
    sf.flush(5)
    with sf.start_span("second"):
        with sf.start_span("q"):
            pass
        sf.capture_message("errors still go")
    sf.flush(5)
    assert [i.type for e in transport.envelopes for i in e.items if i.type != "client_report"] == [
        "transaction",
        "event",
    ]
    reported = totals()
    assert reported[("ratelimit_backoff", "transaction")] == 1
    assert reported[("ratelimit_backoff", "span")] == 2


def test_a_full_queue_counts_the_spans_of_a_dropped_transaction() -> None:
    gate = threading.Event()

    def hold(envelope: sf.Envelope) -> None:
        gate.wait(10)

    transport = MockTransport(hold)
    start(transport, transport_queue_size=1)
    try:
        for _ in range(4):
            with sf.start_span("api"), sf.start_span("q"):
                pass
    finally:
        gate.set()
    sf.flush(5)
    reported = totals()
    dropped = reported.get(("queue_overflow", "transaction"), 0)
    assert dropped >= 2
    assert reported[("queue_overflow", "span")] == 2 * dropped


# -- bad input ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"name": 42},
        {"name": None},
        {"name": "x", "op": 3},
        {"name": "x", "attributes": "not a mapping"},
        {"name": "x", "attributes": {1: "key not a string"}},
        {"name": "x", "start_time": "yesterday"},
        {"name": "x", "start_time": float("nan")},
        {"name": "x", "parent_span": "nope"},
        {"name": "x" * 100_000},
    ],
)
def test_bad_arguments_never_raise(transport: MockTransport, kwargs: dict[str, Any]) -> None:
    start(transport)
    name = kwargs.pop("name")
    with sf.start_span(name, **kwargs) as span:
        span.set_status("not a status")
        span.set_http_status("500")  # type: ignore[arg-type]
        span.update_name(None)  # type: ignore[arg-type]
        span.set_attributes(None)  # type: ignore[arg-type]
    span.end(end_time="later")  # type: ignore[arg-type]
    sf.update_span_name("not a span", "x")  # type: ignore[arg-type]
    sf.set_http_status(None, 200)  # type: ignore[arg-type]
    with sf.with_active_span("not a span") as scope:  # type: ignore[arg-type]
        assert scope is not None and sf.get_active_span() is None
    (transaction,) = items(transport, "transaction")
    assert len(transaction["transaction"]) <= 2048
    normalize_with_relay(transaction)


@pytest.mark.parametrize("value", [-1, 1.5, "10", None])
def test_bad_tracing_options_are_refused_at_init(value: object) -> None:
    with pytest.raises(ValueError):
        sf.init(dsn=DSN, traces_sample_rate=value if value is not None else "x")
    with pytest.raises(ValueError):
        sf.init(dsn=DSN, max_spans=value if value is not None else -5)
    with pytest.raises(ValueError):
        sf.init(dsn=DSN, traces_sampler=0.5)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=3),
    max_leaves=10,
)


@settings(max_examples=60, deadline=None)
@given(
    name=st.text(max_size=50),
    op=st.none() | st.text(max_size=20),
    attributes=st.dictionaries(st.text(max_size=20), json_values | st.builds(object), max_size=5),
)
def test_any_span_makes_a_valid_transaction(name: str, op: str | None, attributes: dict[str, Any]) -> None:
    transport = MockTransport()
    start(transport)
    with sf.start_span(name or "x", op=op, attributes=attributes), sf.start_span(name, op=op, attributes=attributes):
        pass
    sf.flush(5)
    (transaction,) = [i for e in transport.envelopes for i in e.items if i.type == "transaction"]
    normalize_with_relay(json.loads(transaction.payload))
    sf.close()


@pytest.fixture(autouse=True)
def _no_leftover_active_span() -> Iterator[None]:
    yield
    assert sf.get_active_span() is None


# -- fork ---------------------------------------------------------------------------------------------


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
@pytest.mark.filterwarnings("ignore:.*use of fork\\(\\) may lead to deadlocks:DeprecationWarning")
def test_a_forked_child_sends_its_own_transactions(sentry_init: Any, sentry_receiver: Any) -> None:
    from forking import fork_running, wait_exit

    sentry_init(traces_sample_rate=1.0, release="shop@1.0")
    with sf.start_span("parent request") as root:

        def child() -> int:
            with sf.start_span("in the child"):  # a child of the parent's span, never sent from here
                pass
            with sf.start_span("child job", parent_span=None) as job, sf.start_span("step"):
                pass
            # A forked child starts a trace of its own.
            return 0 if job.trace_id != root.trace_id and sf.flush(5) else 2

        assert wait_exit(fork_running(child)) == 0
        with sf.start_span("after the fork"):
            pass
    assert sf.flush(5)
    sent = {
        item.get_json()["transaction"]: item.get_json()
        for request in sentry_receiver.received
        if request.envelope is not None
        for item in request.envelope.items
        if item.type == "transaction"
    }
    assert set(sent) == {"parent request", "child job"}
    assert [s["description"] for s in sent["parent request"]["spans"]] == ["after the fork"]
    assert [s["description"] for s in sent["child job"]["spans"]] == ["step"]
