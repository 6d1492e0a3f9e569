"""The detail's trace panel: the transactions and spans stored for the feedback's trace, as a waterfall."""

from __future__ import annotations

from typing import Any

import pytest
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By

import sentry_feedback
from sentry_feedback.server import LocalReceiver

from .conftest import (
    console_problems,
    open_detail,
    post_envelope,
    save_screenshot,
    sdk,
    send,
    sign_in,
    trace_rows,
    wait_for,
    wait_for_messages,
    wait_for_trace,
)

TRACE_ID = "771a43a4192642f0b136d5159a501700"
ROOT_SPAN = "b0e6f15b45c36b12"
DB_SPAN = "1000000000000001"
PAY_SPAN = "1000000000000002"
CHARGE_SPAN = "2000000000000001"
CARD_SPAN = "2000000000000002"


def transaction(
    name: str, span_id: str, start: float, end: float, spans: list[dict[str, Any]], parent: str | None = None
) -> dict[str, Any]:
    trace = {"trace_id": TRACE_ID, "span_id": span_id, "op": "http.server", "status": "ok"}
    if parent:
        trace["parent_span_id"] = parent
    return {
        "type": "transaction",
        "transaction": name,
        "start_timestamp": start,
        "timestamp": end,
        "release": "shop@2.4.1",
        "contexts": {"trace": trace},
        "spans": spans,
    }


def span(span_id: str, parent: str, op: str, description: str, start: float, end: float, **extra: Any) -> Any:
    return {"trace_id": TRACE_ID, "span_id": span_id, "parent_span_id": parent, "op": op,
            "description": description, "start_timestamp": start, "timestamp": end, **extra}  # fmt: skip


def seed_trace(receiver: LocalReceiver, at: float) -> None:
    """A checkout request whose payment call (``PAY_SPAN``) went to a payment service, around the time ``at``.

    The web service's transaction arrives after the payment service's, and its spans out of order: the panel
    orders them by start time itself.
    """
    charge = transaction(
        "POST /charge",
        CHARGE_SPAN,
        at - 0.15,
        at + 0.05,
        [span(CARD_SPAN, CHARGE_SPAN, "http.client", "POST https://bank.example/authorize", at - 0.14, at + 0.04)],
        parent=PAY_SPAN,
    )
    checkout = transaction(
        "POST /checkout",
        ROOT_SPAN,
        at - 0.3,
        at + 0.2,
        [
            span(PAY_SPAN, ROOT_SPAN, "http.client", "POST https://pay.example/charge", at - 0.2, at + 0.1,
                 status="internal_error"),
            span(DB_SPAN, ROOT_SPAN, "db.query", "SELECT * FROM cart", at - 0.28, at - 0.2475),
        ],
    )  # fmt: skip
    post_envelope(receiver, ("transaction", charge))
    post_envelope(receiver, ("transaction", checkout))


def test_the_trace_panel_shows_the_spans_with_durations_and_the_span_of_the_feedback(
    page: WebDriver, receiver: LocalReceiver
) -> None:
    with sdk(receiver.dsn, environment="production", release="shop@2.4.1"):
        send("Dark mode, please")  # in a trace of its own, without transactions
        # The payment span's call to the feedback endpoint: the feedback continues the trace from that span.
        with sentry_feedback.continue_trace({"sentry-trace": f"{TRACE_ID}-{PAY_SPAN}-1"}):
            feedback_id = send("Paying took ages, then failed")
    stored = receiver.store.get_feedback(feedback_id)
    assert stored is not None and stored.timestamp is not None
    seed_trace(receiver, stored.timestamp)

    sign_in(page, receiver)
    wait_for_messages(page, ["Paying took ages, then failed", "Dark mode, please"])
    open_detail(page, "Paying took ages")
    assert wait_for_trace(page)

    rows = trace_rows(page)
    shown = [(row["kind"], row["op"], row["name"], row["status"], row["duration"], row["depth"]) for row in rows]
    assert shown == [
        ("transaction", "http.server", "POST /checkout", "ok", "500 ms", 0),
        ("span", "db.query", "SELECT * FROM cart", None, "32.5 ms", 1),
        ("span", "http.client", "POST https://pay.example/charge", "internal_error", "300 ms", 1),
        ("transaction", "http.server", "POST /charge", "ok", "200 ms", 2),
        ("span", "http.client", "POST https://bank.example/authorize", None, "180 ms", 3),
        ("feedback", "feedback", "sent", None, "+300 ms", 2),
    ]
    # The span the feedback was sent from, and only that one, is highlighted.
    [current] = [row for row in rows if row["current"]]
    assert (current["span_id"], current["here"]) == (PAY_SPAN, "feedback sent here")
    highlighted = page.find_element(By.CSS_SELECTOR, "#detail-trace .trace-row.current")
    assert highlighted.value_of_css_property("background-color") != page.find_element(
        By.CSS_SELECTOR, "#detail-trace .trace-row"
    ).value_of_css_property("background-color")
    # A waterfall over the trace's 500 ms: bars where the spans ran, the feedback's time marked in every row.
    assert rows[0]["bar"] == pytest.approx([0, 100], abs=0.01)
    assert rows[2]["bar"] == pytest.approx([20, 60], abs=0.01)
    assert all(row["mark"] == pytest.approx(60, abs=0.01) for row in rows)
    note = page.find_element(By.CSS_SELECTOR, "#detail-trace .trace-note").text
    assert note == "The feedback was sent at +300 ms into the trace, in the highlighted span."
    summary = page.find_element(By.CSS_SELECTOR, "#detail-trace .trace-summary").text
    assert summary == f"Trace {TRACE_ID} \u00b7 2 transactions \u00b7 3 spans \u00b7 500 ms"
    page.execute_script("document.getElementById('detail-trace-section').scrollIntoView()")
    save_screenshot(page, "inbox-trace.png", 1280, 1000)

    # On a phone, each timeline goes below its span: nothing scrolls sideways.
    page.set_window_size(390, 844)
    try:
        wait_for(page, lambda d: d.execute_script("return window.innerWidth") < 420)
        assert page.execute_script("return document.documentElement.scrollWidth <= window.innerWidth + 1")
        page.execute_script("document.getElementById('detail-trace-section').scrollIntoView()")
        save_screenshot(page, "inbox-trace-phone.png", 390, 844)
    finally:
        page.set_window_size(1280, 800)

    # A feedback whose trace has no transaction stored shows no trace panel.
    open_detail(page, "Dark mode, please")
    assert not wait_for_trace(page)
    assert page.find_elements(By.CSS_SELECTOR, "#detail-trace .trace-row") == []
    assert console_problems(page) == []


def test_a_feedback_sent_in_a_span_itself_highlights_it(page: WebDriver, receiver: LocalReceiver) -> None:
    """A browser SDK puts the active span's own id in the feedback's trace context; a feedback sent long after
    the trace ended is not on its scale, and the panel says when it came."""
    with sdk(receiver.dsn):
        feedback_id = send("Tell me when you see this")
    stored = receiver.store.get_feedback(feedback_id)
    assert stored is not None and stored.timestamp is not None
    at = stored.timestamp
    seed_trace(receiver, at - 60)
    event = {
        "timestamp": at,
        "contexts": {
            "feedback": {"message": "The card form froze"},
            "trace": {"trace_id": TRACE_ID, "span_id": DB_SPAN},
        },
    }
    post_envelope(receiver, ("feedback", event), event_id="e" * 32)

    sign_in(page, receiver)
    open_detail(page, "The card form froze")
    assert wait_for_trace(page)
    rows = trace_rows(page)
    assert [row["span_id"] for row in rows if row["current"]] == [DB_SPAN]
    assert all(row["mark"] is None for row in rows)  # a minute later: off the scale
    assert [(row["kind"], row["span_id"], row["depth"]) for row in rows[1:3]] == [
        ("span", DB_SPAN, 1),
        ("feedback", None, 2),
    ]
    note = page.find_element(By.CSS_SELECTOR, "#detail-trace .trace-note").text
    assert note.startswith("The feedback was sent 59") and note.endswith(
        " ms after the trace ended, in the highlighted span."
    )
