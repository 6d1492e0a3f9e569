"""A browser SDK's envelope shows in the REST listing; HEAD answers as GET would, without the body."""

from __future__ import annotations

import json
import socket
import time

import pytest
import urllib3

from sentry_feedback.server import LocalReceiver

from .conftest import (
    INDEX,
    ORG,
    TOKEN,
    WEB,
    Api,
    assert_seed_item,
    event_id,
    feedback_event,
    item_path,
    store_feedback,
    store_raw,
)

ORIGIN = "http://localhost:3000"


def test_a_browser_style_envelope_is_accepted_with_cors_and_listed(server: LocalReceiver, api: Api) -> None:
    feedback_id = "fedcba9876543210fedcba9876543210"
    event = {
        "type": "feedback",
        "event_id": feedback_id,
        "timestamp": time.time(),
        "platform": "javascript",
        "sdk": {"name": "sentry.javascript.browser", "version": "9.0.0"},
        "request": {"url": "http://localhost:3000/checkout", "headers": {"User-Agent": "Mozilla/5.0"}},
        "user": {"ip_address": "{{auto}}"},
        "contexts": {
            "feedback": {"message": "The widget works", "contact_email": "jane@example.com", "source": "widget"}
        },
    }
    body = b"\n".join(
        [
            json.dumps({"event_id": feedback_id, "sent_at": "2024-05-01T12:00:00.000Z"}).encode(),
            json.dumps({"type": "feedback"}).encode(),
            json.dumps(event).encode(),
        ]
    )
    query = f"sentry_key={WEB.public_key}&sentry_version=7&sentry_client=sentry.javascript.browser%2F9.0.0"
    response = urllib3.request(
        "POST",
        f"{server.url}/api/{WEB.id}/envelope/?{query}",
        body=body,
        headers={"Content-Type": "text/plain;charset=UTF-8", "Origin": ORIGIN},
        retries=False,
    )
    assert response.status == 200, response.data
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "Retry-After" in response.headers["Access-Control-Expose-Headers"]
    (item,) = api.browse().items
    assert_seed_item(item)
    assert (item["id"], item["message"], item["contact_email"]) == (feedback_id, "The widget works", "jane@example.com")
    assert item["url"] == "http://localhost:3000/checkout"  # the page, from request.url
    assert item["user"]["ip"] is None  # {{auto}} is no address
    assert item["sdk"] == {"name": "sentry.javascript.browser", "version": "9.0.0"}
    assert (item["project"], item["project_id"]) == (WEB.slug, WEB.id)


# -- HEAD ----------------------------------------------------------------------------------------


@pytest.fixture
def filled(server: LocalReceiver) -> LocalReceiver:
    for number in range(1, 4):
        store_feedback(server, WEB, event_id(number), feedback_event(f"head {number}", timestamp=time.time() - number))
    store_raw(server, WEB, {"event_id": event_id(1)}, [({"type": "attachment", "filename": "a.txt"}, b"attached")])
    error = {"exception": {"values": [{"type": "KeyError", "value": "'x'"}]}}
    store_raw(server, WEB, {"event_id": event_id(9)}, [({"type": "event"}, json.dumps(error).encode())])
    return server


def head_targets(server: LocalReceiver) -> list[str]:
    (attachment,) = server.store.list_attachments(event_id(1))
    item = item_path(WEB.slug, event_id(1))
    return [
        INDEX,
        INDEX + "?per_page=1&field=id&field=message&sort=timestamp",
        INDEX + "?per_page=0",  # a 400
        INDEX + "?query=foo:",  # a 400
        item,
        item + "attachments/",
        item + f"attachments/{attachment.id}/",
        f"/projects/{ORG}/{WEB.slug}/events/{event_id(9)}/",
        item_path(WEB.slug, event_id(404)),  # a 404
        "/organizations/other/user-feedback/",  # a 404
    ]


def test_head_has_the_headers_and_length_of_get_and_no_body(filled: LocalReceiver, api: Api) -> None:
    for target in head_targets(filled):
        got = api.request("GET", target)
        head = api.request("HEAD", target)
        assert head.status == got.status, target
        assert head.data == b"", target
        assert head.headers["Content-Length"] == str(len(got.data)) and got.data, target
        ignored = {"date"}
        same = {k.lower(): v for k, v in head.headers.items() if k.lower() not in ignored}
        assert same == {k.lower(): v for k, v in got.headers.items() if k.lower() not in ignored}, target


def test_head_sends_no_body_on_the_wire(filled: LocalReceiver) -> None:
    """HEAD then GET on one connection: the GET's answer follows the HEAD's headers at once."""
    path = "/api/0" + INDEX
    request = f"{{}} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n"
    with socket.create_connection(("127.0.0.1", filled.port), timeout=10) as sock:
        sock.sendall(request.format("HEAD").encode() + b"\r\n")
        sock.sendall(request.format("GET").encode() + b"Connection: close\r\n\r\n")
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    head, rest = received.split(b"\r\n\r\n", 1)
    assert head.startswith((b"HTTP/1.1 200", b"HTTP/1.0 200")), head
    assert rest.startswith(b"HTTP/1."), rest[:80]  # no body between the two answers
    get_head, get_body = rest.split(b"\r\n\r\n", 1)
    length = next(line for line in get_head.split(b"\r\n") if line.lower().startswith(b"content-length:"))
    assert int(length.split(b":")[1]) == len(get_body)
    assert json.loads(get_body)["data"]
    head_length = next(line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:"))
    assert head_length == length
