"""The checks sentry_feedback.testing gives test suites: they refuse what Sentry would refuse, and say why."""

from __future__ import annotations

from typing import Any

import pytest

from sentry_feedback.testing import check_session_item, normalize_with_relay

GOOD_SESSION: dict[str, Any] = {
    "sid": "5e48b8d3-4801-4374-aa3a-44b8d69b580b",
    "did": "42",
    "init": True,
    "started": "2026-11-30T12:33:40.632Z",
    "timestamp": "2026-11-30T12:33:41.000Z",
    "status": "exited",
    "errors": 1,
    "duration": 0.4,
    "attrs": {"release": "shop@1.0", "environment": "production"},
}
GOOD_AGGREGATES: dict[str, Any] = {
    "aggregates": [{"started": "2026-11-30T12:33:00.000Z", "exited": 3, "errored": 1, "crashed": 0}],
    "attrs": {"release": "shop@1.0"},
}


def test_good_items_pass() -> None:
    check_session_item("session", GOOD_SESSION)
    check_session_item("sessions", GOOD_AGGREGATES)


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"sid": "not-a-uuid"}, "sid must be a UUID"),
        ({"started": 12}, "started must be an RFC 3339 string"),
        ({"started": "yesterday"}, "started is not RFC 3339"),
        ({"started": "2026-11-30T12:33:40"}, "started has no time zone"),
        ({"timestamp": "2026-11-30T12:00:00.000Z"}, "timestamp is before started"),
        ({"status": "fine"}, "status must be one of"),
        ({"errors": -1}, "errors must be an integer >= 0"),
        ({"errors": True}, "errors must be an integer >= 0"),
        ({"duration": -0.5}, "duration must be a number >= 0"),
        ({"duration": "1"}, "duration must be a number >= 0"),
        ({"init": "yes"}, "init must be a boolean"),
        ({"did": 42}, "did must be a string"),
        ({"attrs": {}}, "attrs.release is required"),
        ({"attrs": {"release": "latest"}}, "is refused"),
    ],
)
def test_bad_session_items_are_refused_with_the_reason(changes: dict[str, Any], problem: str) -> None:
    with pytest.raises(AssertionError, match=problem):
        check_session_item("session", {**GOOD_SESSION, **changes})


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        ({**GOOD_AGGREGATES, "aggregates": []}, "aggregates must be a non-empty list"),
        ({**GOOD_AGGREGATES, "aggregates": ["x"]}, r"aggregates\[0\] must be an object"),
        ({**GOOD_AGGREGATES, "aggregates": [{"started": "now", "exited": 1}]}, r"aggregates\[0\].started"),
        ({**GOOD_AGGREGATES, "aggregates": [{"started": "2026-11-30T12:33:00Z", "crashed": 1.5}]}, "crashed"),
        ({"aggregates": GOOD_AGGREGATES["aggregates"]}, "attrs.release is required"),
    ],
)
def test_bad_aggregates_are_refused_with_the_reason(payload: dict[str, Any], problem: str) -> None:
    with pytest.raises(AssertionError, match=problem):
        check_session_item("sessions", payload)


@pytest.mark.parametrize(("kind", "payload"), [("session", []), ("sessions", "x"), ("event", GOOD_SESSION)])
def test_what_is_no_session_item_is_refused(kind: str, payload: Any) -> None:
    with pytest.raises(AssertionError):
        check_session_item(kind, payload)


def test_normalize_with_relay_refuses_what_sentry_would_flag() -> None:
    good = {"event_id": "0c3793ef2507470c85520290078d87d1", "timestamp": 1796041269.4, "platform": "python"}
    assert normalize_with_relay(dict(good))["event_id"] == good["event_id"]
    with pytest.raises(AssertionError, match="Sentry would flag this event"):
        normalize_with_relay({**good, "timestamp": "not a time"})
    with pytest.raises(AssertionError, match="Sentry would flag this event"):
        normalize_with_relay({**good, "user": {"ip_address": "not an ip"}})
