"""SentrySdkIntegration against the real sentry-sdk package."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import sentry_feedback as sf
from sentry_feedback.integrations.sentry_sdk import SentrySdkIntegration
from sentry_feedback.testing import MockTransport

sentry_sdk = pytest.importorskip("sentry_sdk")


@pytest.fixture
def sdk_events() -> Iterator[list[dict[str, Any]]]:
    """sentry_sdk initialized with an in-memory transport (no network), reset afterwards."""
    events: list[dict[str, Any]] = []

    class Capture(sentry_sdk.transport.Transport):  # type: ignore[misc]
        def capture_envelope(self, envelope: Any) -> None:
            event = envelope.get_event()
            if event is not None:
                events.append(event)

    sentry_sdk.init(dsn="http://public@127.0.0.1:9/1", transport=Capture(), default_integrations=False)
    with sentry_sdk.isolation_scope():
        yield events
    sentry_sdk.get_client().close()
    sentry_sdk.init(default_integrations=False)  # back to a disabled client, without patching frameworks


def test_feedback_takes_user_tags_contexts_trace_and_last_event(sdk_events: list[dict[str, Any]]) -> None:
    transport = MockTransport()
    sf.init(transport=transport, integrations=[SentrySdkIntegration()])
    sentry_sdk.set_user({"id": "7", "email": "jane@example.com"})
    sentry_sdk.set_tag("plan", "pro")
    sentry_sdk.set_tag("region", "eu")
    sentry_sdk.set_context("cart", {"items": 3})
    sf.set_tag("region", "us")  # set through sentry_feedback: wins
    try:
        raise RuntimeError("payment failed")
    except RuntimeError:
        error_id = sentry_sdk.capture_exception()
    sf.capture_feedback("the pay button does nothing")
    assert sf.flush(5)
    sentry_sdk.flush(5)
    (feedback,) = transport.feedback
    assert feedback["user"] == {"id": "7", "email": "jane@example.com"}
    assert feedback["tags"] == {"plan": "pro", "region": "us"}
    assert feedback["contexts"]["cart"] == {"items": 3}
    assert feedback["contexts"]["feedback"]["associated_event_id"] == error_id
    (error,) = sdk_events
    assert feedback["contexts"]["trace"]["trace_id"] == error["contexts"]["trace"]["trace_id"]
    (envelope,) = transport.envelopes
    assert envelope.headers["trace"]["trace_id"] == feedback["contexts"]["trace"]["trace_id"]


def test_explicit_association_and_opt_out(sdk_events: list[dict[str, Any]]) -> None:
    transport = MockTransport()
    sf.init(transport=transport, integrations=[SentrySdkIntegration(link_last_event=False)])
    sentry_sdk.capture_message("an error")
    sf.capture_feedback("no association")
    assert sf.flush(5)
    sf.init(transport=transport, integrations=[SentrySdkIntegration()])
    own = "c" * 32
    sf.capture_feedback("explicit", associated_event_id=own)
    assert sf.flush(5)
    first, second = transport.feedback
    assert "associated_event_id" not in first["contexts"]["feedback"]
    assert second["contexts"]["feedback"]["associated_event_id"] == own


def test_errors_and_messages_are_left_alone(sdk_events: list[dict[str, Any]]) -> None:
    transport = MockTransport()
    sf.init(transport=transport, integrations=[SentrySdkIntegration()])
    sentry_sdk.set_tag("plan", "pro")
    sf.capture_message("ours")
    assert sf.flush(5)
    assert "plan" not in (transport.events[0].get("tags") or {})


def test_without_sentry_sdk_initialized_nothing_changes() -> None:
    sentry_sdk.init(default_integrations=False)  # a disabled sentry-sdk client
    transport = MockTransport()
    sf.init(transport=transport, integrations=[SentrySdkIntegration()])
    sf.capture_feedback("x")
    assert sf.flush(5)
    assert "user" not in transport.feedback[0]
