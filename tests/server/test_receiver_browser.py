"""Browser SDKs post straight to the receiver: CORS, the key in the query string, text/plain, user_report items."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import urllib3

from sentry_feedback.server import LocalReceiver
from sentry_feedback.server._items import feedback_item

ERROR_ID = "0123456789abcdef0123456789abcdef"
ORIGIN = "http://localhost:3000"


@pytest.fixture
def receiver() -> Iterator[LocalReceiver]:
    with LocalReceiver() as local:
        yield local


def browser_url(receiver: LocalReceiver) -> str:
    query = "sentry_key=public&sentry_version=7&sentry_client=sentry.javascript.browser%2F9.0.0"
    return f"{receiver.url}/api/{receiver.project_id}/envelope/?{query}"


def feedback_envelope() -> bytes:
    event = {
        "type": "feedback",
        "event_id": "fedcba9876543210fedcba9876543210",
        "timestamp": 1700000000.5,
        "platform": "javascript",
        "contexts": {"feedback": {"message": "The widget works", "contact_email": "jane@example.com"}},
    }
    payload = json.dumps(event).encode()
    header = {"event_id": event["event_id"], "sent_at": "2023-11-14T22:13:20.500Z"}
    return b"\n".join([json.dumps(header).encode(), json.dumps({"type": "feedback"}).encode(), payload]) + b"\n"


def test_preflight_allows_a_browser_to_post(receiver: LocalReceiver) -> None:
    response = urllib3.request(
        "OPTIONS",
        browser_url(receiver),
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type, sentry-trace, baggage",
        },
    )
    assert response.status == 204
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert response.headers["Access-Control-Allow-Methods"] == "POST, OPTIONS"
    assert response.headers["Access-Control-Allow-Headers"] == "content-type, sentry-trace, baggage"
    assert response.headers["Access-Control-Max-Age"] == "86400"


def test_preflight_never_echoes_a_header_name_that_is_not_one(receiver: LocalReceiver) -> None:
    response = urllib3.request(
        "OPTIONS",
        browser_url(receiver),
        headers={"Origin": ORIGIN, "Access-Control-Request-Headers": "x-ok, bad name, evil\\u0000"},
    )
    assert response.headers["Access-Control-Allow-Headers"] == "x-ok"


def test_options_elsewhere_is_404(receiver: LocalReceiver) -> None:
    assert urllib3.request("OPTIONS", receiver.url + "/api/0/other/").status == 404


def test_a_browser_style_envelope_is_accepted_with_cors_headers(receiver: LocalReceiver) -> None:
    response = urllib3.request(
        "POST",
        browser_url(receiver),
        body=feedback_envelope(),
        headers={"Content-Type": "text/plain;charset=UTF-8", "Origin": ORIGIN},
    )
    assert response.status == 200
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert response.headers["Access-Control-Expose-Headers"] == "X-Sentry-Rate-Limits, Retry-After"
    (stored,) = receiver.store.list_feedback()
    assert (stored.message, stored.contact_email) == ("The widget works", "jane@example.com")


def test_rate_limit_answers_expose_their_headers_to_the_browser(receiver: LocalReceiver) -> None:
    receiver.respond_with(429, headers={"X-Sentry-Rate-Limits": "60:feedback:key", "Retry-After": "60"})
    response = urllib3.request("POST", browser_url(receiver), body=feedback_envelope(), headers={"Origin": ORIGIN})
    assert response.status == 429
    assert response.headers["X-Sentry-Rate-Limits"] == "60:feedback:key"
    assert "X-Sentry-Rate-Limits" in response.headers["Access-Control-Expose-Headers"]


def test_an_older_sdks_user_report_becomes_a_feedback_linked_to_its_error(receiver: LocalReceiver) -> None:
    report = {"event_id": ERROR_ID, "name": "Jane", "email": "jane@example.com", "comments": "It crashed on save"}
    body = (
        json.dumps({"event_id": ERROR_ID}).encode()
        + b"\n"
        + json.dumps({"type": "user_report"}).encode()
        + b"\n"
        + json.dumps(report).encode()
        + b"\n"
    )
    assert urllib3.request("POST", browser_url(receiver), body=body).status == 200
    (stored,) = receiver.store.list_feedback()
    assert stored.event_id != ERROR_ID  # a feedback of its own
    assert (stored.message, stored.name, stored.contact_email) == ("It crashed on save", "Jane", "jane@example.com")
    assert stored.associated_event_id == ERROR_ID
    item = feedback_item(stored)
    assert (item["message"], item["error_ids"], item["status"]) == ("It crashed on save", [ERROR_ID], "unresolved")


def test_a_user_report_without_comments_is_a_400(receiver: LocalReceiver) -> None:
    body = b'{}\n{"type":"user_report"}\n{"event_id":"' + ERROR_ID.encode() + b'","comments":"  "}\n'
    response = urllib3.request("POST", browser_url(receiver), body=body)
    assert (response.status, json.loads(response.data)["detail"]) == (400, "user_report item has no comments")
