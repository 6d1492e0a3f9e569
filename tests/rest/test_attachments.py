"""Attachments of a feedback (listed and downloaded safely) and the error event a feedback names."""

from __future__ import annotations

import hashlib
import re
import urllib.parse
from typing import Any

import pytest

import sentry_feedback
from sentry_feedback import Attachment
from sentry_feedback.server import LocalReceiver

from .conftest import (
    MOBILE,
    ORG,
    WEB,
    Api,
    Reply,
    assert_seed_item,
    event_id,
    feedback_event,
    item_path,
    parse_iso,
    store_feedback,
    store_raw,
)

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
LOG = b"2024-05-01 12:00:00 ERROR payment declined\n" * 50
_DISPOSITION = re.compile(
    r"(?:attachment|inline); filename=\"([^\"]*)\"; filename\*=UTF-8''([A-Za-z0-9!#$&+.^_`|~%-]*)"
)


def download(api: Api, project: str, feedback_id: str, attachment_id: str) -> Reply:
    return api.get(f"{item_path(project, feedback_id)}attachments/{attachment_id}/")


def listed(api: Api, project: str, feedback_id: str) -> list[dict[str, Any]]:
    reply = api.get(item_path(project, feedback_id) + "attachments/")
    assert reply.status == 200, reply.data
    data = reply.json()["data"]
    assert isinstance(data, list)
    return data


def disposition_names(reply: Reply) -> tuple[str, str]:
    """The plain ``filename`` and the decoded ``filename*`` of a download."""
    match = _DISPOSITION.fullmatch(reply.headers["Content-Disposition"])
    assert match, reply.headers["Content-Disposition"]
    return match.group(1), urllib.parse.unquote(match.group(2), errors="strict")


def assert_attachment(entry: dict[str, Any], name: str, mimetype: str, data: bytes) -> None:
    assert set(entry) == {"id", "name", "mimetype", "size", "sha1", "type", "dateCreated"}
    assert isinstance(entry["id"], str) and entry["id"].isdigit()
    assert (entry["name"], entry["mimetype"], entry["size"]) == (name, mimetype, len(data))
    assert entry["sha1"] == hashlib.sha1(data).hexdigest()
    assert entry["type"] == "event.attachment"
    assert entry["dateCreated"].endswith("Z") and parse_iso(entry["dateCreated"])


def assert_download(reply: Reply, mimetype: str, data: bytes) -> None:
    assert reply.status == 200
    assert reply.data == data
    assert reply.headers["Content-Type"] == mimetype
    assert reply.headers["Content-Length"] == str(len(data))
    assert reply.headers["X-Content-Type-Options"] == "nosniff"


def test_a_feedback_sent_by_the_sdk_with_attachments_and_its_error(server: LocalReceiver, api: Api) -> None:
    sentry_feedback.init(dsn=server.dsn)
    try:
        raise ValueError("boom in checkout")
    except ValueError:
        error_id = sentry_feedback.capture_exception()
    assert error_id is not None and sentry_feedback.flush(5)
    feedback_id = sentry_feedback.send_feedback(
        "The pay button does nothing",
        email="jane@example.com",
        name="Jane",
        associated_event_id=error_id,
        attachments=[
            Attachment(PNG, filename="screenshot.png", content_type="image/png"),
            Attachment(LOG, filename="app.log"),
        ],
    )

    item = api.get(item_path(WEB.slug, feedback_id)).item
    assert_seed_item(item)
    assert (item["message"], item["contact_email"], item["error_ids"]) == (
        "The pay button does nothing",
        "jane@example.com",
        [error_id],
    )
    assert item["attachment_count"] == 2
    assert api.browse().items == [item]

    screenshot, log = listed(api, WEB.slug, feedback_id)
    assert_attachment(screenshot, "screenshot.png", "image/png", PNG)
    assert_attachment(log, "app.log", "text/plain", LOG)
    assert screenshot["id"] != log["id"]
    for entry, data in ((screenshot, PNG), (log, LOG)):
        reply = download(api, WEB.slug, feedback_id, entry["id"])
        assert_download(reply, entry["mimetype"], data)
        assert disposition_names(reply) == (entry["name"], entry["name"])
    # An image on the allow-list is shown inline (the inbox's <img>); anything else is a download.
    assert download(api, WEB.slug, feedback_id, screenshot["id"]).headers["Content-Disposition"].startswith("inline;")
    assert download(api, WEB.slug, feedback_id, log["id"]).headers["Content-Disposition"].startswith("attachment;")

    event = api.get(f"/projects/{ORG}/{WEB.slug}/events/{error_id}/")
    assert event.status == 200
    body = event.json()
    assert (body["id"], body["eventID"], body["projectID"], body["type"]) == (error_id, error_id, WEB.id, "error")
    assert body["title"].startswith("ValueError")
    assert body["metadata"] == {"type": "ValueError", "value": "boom in checkout"}
    (exception,) = [entry for entry in body["entries"] if entry["type"] == "exception"]
    last = exception["data"]["values"][-1]
    assert (last["type"], last["value"]) == ("ValueError", "boom in checkout")
    assert last["stacktrace"]["frames"]
    assert body["platform"] == "python" and body["dateCreated"].endswith("Z")
    for path in (  # the error under the other project, the feedback as an event, an unknown event
        f"/projects/{ORG}/{MOBILE.slug}/events/{error_id}/",
        f"/projects/{ORG}/{WEB.slug}/events/{feedback_id}/",
        f"/projects/{ORG}/{WEB.slug}/events/{event_id(404)}/",
        f"/projects/{ORG}/{WEB.slug}/events/not-an-id/",
    ):
        assert api.get(path).status == 404, path


def test_a_message_event_has_a_message_entry(server: LocalReceiver, api: Api) -> None:
    error = event_id(7)
    store_raw(server, WEB, {"event_id": error}, [({"type": "event"}, b'{"message": "Disk full", "level": "error"}')])
    body = api.get(f"/projects/{ORG}/{WEB.slug}/events/{error}/").json()
    assert (body["title"], body["message"], body["type"]) == ("Disk full", "Disk full", "default")
    assert {"type": "message", "data": {"formatted": "Disk full"}} in body["entries"]


HOSTILE_NAMES = [
    'say "cheese".png',
    "line1\nline2\r\nX-Injected: yes.txt",
    "../../etc/passwd",
    "..\\..\\windows\\system32\\evil.dll",
    "résumé 日本語.pdf",
    "..",
    "tab\there;name=x, y.txt",
    "nul\x00byte.txt",
    "emoji 😀.txt",
    "%2e%2e%2fencoded.txt",
    "/absolute/path.txt",
    "x" * 500 + ".txt",
]


@pytest.mark.parametrize("name", HOSTILE_NAMES, ids=lambda name: repr(name[:20]))
def test_a_download_has_a_safe_file_name(server: LocalReceiver, api: Api, name: str) -> None:
    feedback_id = event_id(1)
    store_feedback(server, WEB, feedback_id, feedback_event("files", timestamp=1_700_000_000))
    header = {"type": "attachment", "filename": name, "content_type": "text/plain"}
    store_raw(server, WEB, {"event_id": feedback_id}, [(header, b"content")])
    (entry,) = listed(api, WEB.slug, feedback_id)
    assert entry["name"] == name  # the listing (JSON) shows the name as sent
    reply = download(api, WEB.slug, feedback_id, entry["id"])
    assert_download(reply, "text/plain", b"content")
    assert "X-Injected" not in reply.headers
    plain, exact = disposition_names(reply)
    for shown in (plain, exact):
        assert shown and shown not in (".", ".."), (name, shown)
        assert "/" not in shown and "\\" not in shown, (name, shown)
        assert not any(ord(c) < 0x20 or ord(c) == 0x7F for c in shown), (name, shown)
    assert all(0x20 <= ord(c) < 0x7F for c in plain) and '"' not in plain
    if not any(c in name for c in "/\\\x00\n\r\t") and name != "..":
        assert exact == name  # nothing unsafe: filename* gives the name exactly


@pytest.mark.parametrize(
    ("content_type", "served"),
    [
        ("image/png", "image/png"),
        ("application/json", "application/json"),
        ("image/svg+xml", "image/svg+xml"),
        ("text/html\r\nX-Evil: 1", "application/octet-stream"),
        ("not a type", "application/octet-stream"),
    ],
)
def test_a_download_has_the_attachments_type_when_it_is_one(
    server: LocalReceiver, api: Api, content_type: str, served: str
) -> None:
    feedback_id = event_id(1)
    store_feedback(server, WEB, feedback_id, feedback_event("typed", timestamp=1_700_000_000))
    header = {"type": "attachment", "filename": "f", "content_type": content_type}
    store_raw(server, WEB, {"event_id": feedback_id}, [(header, b"<svg onload=alert(1)>")])
    (entry,) = listed(api, WEB.slug, feedback_id)
    reply = download(api, WEB.slug, feedback_id, entry["id"])
    assert_download(reply, served, b"<svg onload=alert(1)>")
    assert "X-Evil" not in reply.headers
    assert "sandbox" in reply.headers["Content-Security-Policy"]


def test_an_attachment_is_only_found_under_its_own_feedback(server: LocalReceiver, api: Api) -> None:
    first, second, bare = event_id(1), event_id(2), event_id(3)
    for number, feedback_id in enumerate((first, second, bare)):
        store_feedback(server, WEB, feedback_id, feedback_event(f"f{number}", timestamp=1_700_000_000 + number))
    store_raw(server, WEB, {"event_id": first}, [({"type": "attachment", "filename": "one.txt"}, b"one")])
    store_raw(server, WEB, {"event_id": second}, [({"type": "attachment", "filename": "two.txt"}, b"two")])
    (one,) = listed(api, WEB.slug, first)
    (two,) = listed(api, WEB.slug, second)
    assert listed(api, WEB.slug, bare) == []
    assert download(api, WEB.slug, first, one["id"]).data == b"one"
    assert download(api, WEB.slug, first, two["id"]).status == 404  # the other feedback's
    assert download(api, WEB.slug, bare, one["id"]).status == 404
    assert download(api, MOBILE.slug, first, one["id"]).status == 404  # the wrong project
    assert api.get(item_path(MOBILE.slug, first) + "attachments/").status == 404
    for bad in ("abc", "-1", "1.0", "0", "99999", "99999999999999999999", "%20" + one["id"], "' OR 1=1 --"):
        reply = download(api, WEB.slug, first, urllib.parse.quote(bad, safe="%"))
        assert reply.status == 404, bad
        assert reply.detail


def test_a_large_binary_attachment_round_trips(server: LocalReceiver, api: Api) -> None:
    feedback_id = event_id(1)
    data = bytes(range(256)) * 8192  # 2 MiB, every byte value
    store_feedback(server, WEB, feedback_id, feedback_event("big", timestamp=1_700_000_000))
    header = {"type": "attachment", "filename": "dump.bin", "content_type": "application/octet-stream"}
    store_raw(server, WEB, {"event_id": feedback_id}, [(header, data)])
    (entry,) = listed(api, WEB.slug, feedback_id)
    assert_attachment(entry, "dump.bin", "application/octet-stream", data)
    assert_download(download(api, WEB.slug, feedback_id, entry["id"]), "application/octet-stream", data)
