"""Data privacy: nothing personal collected by default, and the event scrubber."""

from __future__ import annotations

from typing import Any

import sentry_feedback as sf
from sentry_feedback.testing import MockTransport


def _secret_function(api_key: str) -> None:
    password = "hunter2"  # noqa: F841 - a local the scrubber must filter
    raise PermissionError("denied")


def test_nothing_personal_is_collected_by_default() -> None:
    transport = MockTransport()
    sf.init(transport=transport)
    sf.capture_feedback("x")
    sf.capture_message("m", level="error")
    assert sf.flush(5)
    for event in (*transport.feedback, *transport.events):
        assert "server_name" not in event  # the host name can name a person
        assert "user" not in event
        assert "request" not in event


def test_send_default_pii_adds_the_host_name() -> None:
    transport = MockTransport()
    sf.init(transport=transport, send_default_pii=True)
    sf.capture_message("m")
    assert sf.flush(5)
    assert transport.events[0]["server_name"]


def test_scrubber_filters_and_notes_it_in_the_event() -> None:
    transport = MockTransport()
    sf.init(transport=transport)
    sf.set_extra("db_password", "s3cret")
    sf.set_extra("cart", {"items": 2, "auth_token": "abc"})
    sf.set_context("payment", {"card": "4111 1111 1111 1111", "provider": "acme"})
    sf.add_breadcrumb(message="login", data={"session_id": "xyz", "user_agent": "firefox"})
    try:
        _secret_function("k-123")
    except PermissionError:
        sf.capture_exception()
    assert sf.flush(5)
    (event,) = transport.events
    assert event["extra"] == {"db_password": "[Filtered]", "cart": {"items": 2, "auth_token": "[Filtered]"}}
    assert event["contexts"]["payment"] == {"card": "[Filtered]", "provider": "acme"}
    assert event["breadcrumbs"]["values"][0]["data"] == {"session_id": "[Filtered]", "user_agent": "firefox"}
    frame = event["exception"]["values"][0]["stacktrace"]["frames"][-1]
    assert frame["vars"] == {"api_key": "[Filtered]", "password": "[Filtered]"}
    meta = event["_meta"]
    assert meta["extra"]["db_password"] == {"": {"rem": [["!sentry_feedback.event_scrubber", "s"]]}}
    assert meta["contexts"]["payment"]["card"][""]["rem"][0][0] == "!sentry_feedback.event_scrubber"
    assert (
        "api_key"
        in meta["exception"]["values"]["0"]["stacktrace"]["frames"][
            str(len(event["exception"]["values"][0]["stacktrace"]["frames"]) - 1)
        ]["vars"]
    )
    # The scope keeps its own values: only the event was filtered.
    assert sf.get_isolation_scope().extras["db_password"] == "s3cret"


def test_feedback_fields_are_sent_as_typed() -> None:
    transport = MockTransport()
    sf.init(transport=transport)
    message = "my password is hunter2 and my card 4111 1111 1111 1111"
    sf.capture_feedback(message, email="jane@example.com", name="Jane")
    assert sf.flush(5)
    assert transport.feedback[0]["contexts"]["feedback"] == {
        "message": message,
        "contact_email": "jane@example.com",
        "name": "Jane",
    }


def test_user_ip_removed_unless_send_default_pii() -> None:
    transport = MockTransport()
    sf.init(transport=transport)
    sf.set_user({"id": "1", "ip_address": "203.0.113.9"})
    sf.capture_feedback("x")
    assert sf.flush(5)
    sf.init(transport=transport, send_default_pii=True)
    sf.capture_feedback("y")
    assert sf.flush(5)
    first, second = transport.feedback
    assert first["user"] == {"id": "1"}
    assert second["user"] == {"id": "1", "ip_address": "203.0.113.9"}


def test_scrubber_can_be_turned_off_or_replaced() -> None:
    transport = MockTransport()
    sf.set_extra("password", "visible")
    sf.set_extra("ssn", "123-45-6789")
    sf.init(transport=transport, event_scrubber=False)
    sf.capture_message("a")
    assert sf.flush(5)
    sf.init(transport=transport, event_scrubber=sf.EventScrubber(denylist=["ssn"]))
    sf.capture_message("b")
    assert sf.flush(5)
    off, custom = transport.events
    assert off["extra"] == {"password": "visible", "ssn": "123-45-6789"}
    assert custom["extra"] == {"password": "visible", "ssn": "[Filtered]"}


def test_scrubbing_happens_after_the_hooks_and_leaves_scopes_alone() -> None:
    """The scrubber runs on the background thread just before serialization.

    So it also filters what a hook added, and never edits data the scopes still hold.
    """
    transport = MockTransport()
    seen: list[Any] = []

    def before_send(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
        seen.append(dict(event["extra"]))
        event["extra"]["added_by_hook_password"] = "x"
        return event

    sf.init(transport=transport, before_send=before_send)
    nested = {"auth_token": "abc", "n": 1}
    sf.set_extra("cart", nested)
    sf.add_breadcrumb(message="m", data={"session": "s1"})
    sf.capture_message("x")
    assert sf.flush(5)
    assert seen == [{"cart": {"auth_token": "abc", "n": 1}}]
    event = transport.events[0]
    assert event["extra"] == {"cart": {"auth_token": "[Filtered]", "n": 1}, "added_by_hook_password": "[Filtered]"}
    assert event["breadcrumbs"]["values"][0]["data"] == {"session": "[Filtered]"}
    assert nested == {"auth_token": "abc", "n": 1}
    assert sf.get_isolation_scope().breadcrumbs[0]["data"] == {"session": "s1"}
