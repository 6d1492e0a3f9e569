"""``POST /organizations/<org>/user-feedback/``: validation with per-field errors, conflicts, bodies, projects."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from sentry_feedback.server import LocalReceiver

from .conftest import (
    INDEX,
    MOBILE,
    WEB,
    Api,
    assert_bad_request,
    assert_seed_item,
    parse_iso,
)

MiB = 1024 * 1024
FEEDBACK = "0f0e18332d11431c9b97d924edecb76e"


def assert_nothing_stored(server: LocalReceiver) -> None:
    assert server.store.list_feedback() == []


@pytest.mark.parametrize(
    ("data", "fields"),
    [
        ({}, {"message"}),
        ({"message": None}, {"message"}),
        ({"message": ""}, {"message"}),
        ({"message": "   \n\t "}, {"message"}),
        ({"message": "x" * 4097}, {"message"}),
        ({"message": "é" * 4097}, {"message"}),
        ({"message": 123}, {"message"}),
        ({"message": ["a"]}, {"message"}),
        ({"message": {"text": "a"}}, {"message"}),
        ({"message": "ok", "id": "nope"}, {"id"}),
        ({"message": "ok", "id": 123}, {"id"}),
        ({"message": "ok", "id": "1ffe0775ac0f4417aed9de36d9f6f8d"}, {"id"}),
        ({"message": "ok", "id": "1ffe0775ac0f4417aed9de36d9f6f8dcc"}, {"id"}),
        ({"message": "ok", "id": "' OR 1=1 --"}, {"id"}),
        ({"message": "ok", "error_ids": ["nope"]}, {"error_ids.0"}),
        ({"message": "ok", "error_ids": [FEEDBACK, None]}, {"error_ids.1"}),
        ({"message": "ok", "error_ids": FEEDBACK}, {"error_ids"}),
        ({"message": "ok", "trace_ids": [1]}, {"trace_ids.0"}),
        ({"message": "ok", "replay_id": "zz"}, {"replay_id"}),
        ({"message": "ok", "timestamp": "yesterday"}, {"timestamp"}),
        ({"message": "ok", "timestamp": True}, {"timestamp"}),
        ({"message": "ok", "timestamp": 10**400}, {"timestamp"}),
        ({"message": "ok", "user": "bob"}, {"user"}),
        ({"message": "ok", "user": {"email": 5}}, {"user.email"}),
        ({"message": "ok", "tags": {"a": 1}}, {"tags.a"}),
        ({"message": "ok", "tags": "x"}, {"tags"}),
        ({"message": "ok", "browser": {"name": 1}}, {"browser.name"}),
        ({"message": "ok", "locale": "en"}, {"locale"}),
        ({"message": "ok", "contact_email": 5}, {"contact_email"}),
        ({"message": "ok", "request": "GET /"}, {"request"}),
        ({"message": "", "id": "nope", "error_ids": ["x"]}, {"message", "id", "error_ids.0"}),
    ],
)
def test_an_invalid_field_is_a_400_with_per_field_errors(
    server: LocalReceiver, api: Api, data: dict[str, Any], fields: set[str]
) -> None:
    reply = api.create({**data, "project": "web"})
    assert_bad_request(reply, *sorted(fields))
    errors = reply.json()["errors"]
    assert set(errors) == fields
    for messages in errors.values():
        assert messages and all(isinstance(m, str) and m for m in messages)
    assert_nothing_stored(server)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"data": []}', "data"),
        (b'{"data": "hi"}', "data"),
        (b"[]", "non_field_errors"),
        (b'"hi"', "non_field_errors"),
    ],
)
def test_a_body_that_is_no_object_is_a_400(server: LocalReceiver, api: Api, body: bytes, field: str) -> None:
    reply = api.request("POST", INDEX, {"project": "web"}, body=body, headers={"Content-Type": "application/json"})
    assert_bad_request(reply)
    assert field in reply.json()["errors"]
    assert_nothing_stored(server)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{",
        b"null",
        b"message=hi",
        b'{"data": {"message": "hi"}} trailing',
        b'{"data": {"message": "\xff\xfe"}}',
        '{"data": {"message": "hi"}}'.encode("utf-16"),
        b"\xef\xbb\xbf" + b'{"data": {"message": "hi"}}',  # a BOM
        b'{"data": {"message": "\\ud800"}}',  # a lone surrogate: no text
        b"[" * 100_000,
        b'{"a":' * 100_000,
        b'{"data": {"message": "hi", "request": ' + b"[" * 100_000 + b"]" * 100_000 + b"}}",
        b'{"data": {"message": NaN}}',
    ],
    ids=lambda body: repr(body[:24]),
)
def test_a_body_that_is_not_json_in_utf_8_is_a_400(server: LocalReceiver, api: Api, body: bytes) -> None:
    reply = api.request("POST", INDEX, {"project": "web"}, body=body, headers={"Content-Type": "application/json"})
    assert_bad_request(reply)
    assert_nothing_stored(server)


def test_a_body_over_one_mib_is_a_413(server: LocalReceiver, api: Api) -> None:
    body = json.dumps({"data": {"message": "x" * MiB}}).encode()
    reply = api.request("POST", INDEX, {"project": "web"}, body=body, headers={"Content-Type": "application/json"})
    assert reply.status == 413
    assert reply.detail
    assert_nothing_stored(server)
    # One MiB exactly is fine (the message is short; the rest is JSON whitespace).
    small = json.dumps({"data": {"message": "Padded", "project": "web"}}).encode()
    exact = small[:-1] + b" " * (MiB - len(small)) + b"}"
    assert len(exact) == MiB
    assert api.request("POST", INDEX, body=exact).status == 201


@pytest.mark.parametrize("message", ["x" * 4096, "é" * 4096, "😀" * 4096, "a", " padded "])
def test_a_message_of_up_to_4096_characters_is_kept_as_is(api: Api, message: str) -> None:
    reply = api.create({"message": message, "project": "web"})
    assert reply.status == 201, reply.data
    assert reply.item["message"] == message
    assert api.get(f"/projects/acme/web/user-feedback/{reply.item['id']}/").item["message"] == message


def test_a_duplicate_id_is_a_409_and_changes_nothing(server: LocalReceiver, api: Api) -> None:
    first = api.create({"message": "first", "id": FEEDBACK, "project": "web"})
    assert first.status == 201
    dashed = f"{FEEDBACK[:8]}-{FEEDBACK[8:12]}-{FEEDBACK[12:16]}-{FEEDBACK[16:20]}-{FEEDBACK[20:]}".upper()
    for spelling, project in ((FEEDBACK, "web"), (dashed, "web"), (FEEDBACK, "mobile")):
        reply = api.create({"message": "second", "id": spelling, "project": project})
        assert reply.status == 409, (spelling, reply.status)
        assert FEEDBACK in reply.detail
    (stored,) = server.store.list_feedback()
    assert (stored.event_id, stored.message, stored.project_id) == (FEEDBACK, "first", WEB.id)


def test_created_feedback_shows_in_the_listings(api: Api) -> None:
    before = time.time()
    ids = []
    for number in range(3):
        reply = api.create({"message": f"created {number}", "project": "web", "environment": "production"})
        assert reply.status == 201
        assert_seed_item(reply.item)
        ids.append(reply.item["id"])
    after = time.time()
    listed = api.browse()
    assert listed.ids == ids[::-1]  # newest first, the default listing
    assert listed.hits == 3
    for item in listed.items:  # no timestamp given: the time it was created
        assert before - 1 <= parse_iso(item["timestamp"]).timestamp() <= after + 1
    assert api.browse({"query": "environment:production created"}).ids == ids[::-1]
    assert api.browse({"project": "mobile"}).ids == []


def test_unknown_keys_and_a_status_are_ignored(api: Api) -> None:
    reply = api.create({"message": "hi", "project": "web", "status": "resolved", "whatever": [1, 2]})
    assert reply.status == 201
    assert reply.item["status"] == "unresolved"


def test_a_timestamp_in_unix_seconds_or_with_an_offset(api: Api) -> None:
    unix = api.create({"message": "unix", "project": "web", "timestamp": 1693491034.5})
    assert unix.item["timestamp"] == "2023-08-31T14:10:34.500000Z"
    offset = api.create({"message": "offset", "project": "web", "timestamp": "2023-08-31T16:10:34.954048+02:00"})
    assert offset.item["timestamp"] == "2023-08-31T14:10:34.954048Z"


@pytest.mark.parametrize(
    ("data", "params", "project"),
    [
        ({"project": "mobile"}, None, MOBILE),
        ({"project": MOBILE.id}, None, MOBILE),
        ({"project": int(MOBILE.id)}, None, MOBILE),
        ({}, {"project": "mobile"}, MOBILE),
        ({}, {"project": MOBILE.id}, MOBILE),
        ({"project": "web"}, None, WEB),
        ({}, {"project": "web"}, WEB),
    ],
)
def test_create_in_a_named_project(api: Api, data: dict[str, Any], params: dict[str, str] | None, project: Any) -> None:
    reply = api.create({"message": "Where am I", **data}, params)
    assert reply.status == 201, reply.data
    assert (reply.item["project"], reply.item["project_id"]) == (project.slug, project.id)
    feedback_id = reply.item["id"]
    assert api.get(f"/projects/acme/{project.slug}/user-feedback/{feedback_id}/").status == 200
    other = WEB if project is MOBILE else MOBILE
    assert api.get(f"/projects/acme/{other.slug}/user-feedback/{feedback_id}/").status == 404
    assert api.browse({"project": project.slug}).ids == [feedback_id]
    assert api.browse({"project": other.slug}).ids == []


@pytest.mark.parametrize(
    ("data", "params"),
    [
        ({}, None),  # two projects: which one?
        ({"project": "nope"}, None),
        ({"project": "99"}, None),
        ({"project": 99}, None),
        ({"project": True}, None),
        ({"project": ["web"]}, None),
        ({"project": {"slug": "web"}}, None),
        ({}, {"project": "nope"}),
        ({}, {"project": ""}),
    ],
)
def test_create_without_a_known_project_is_a_400(
    server: LocalReceiver, api: Api, data: dict[str, Any], params: dict[str, str] | None
) -> None:
    assert_bad_request(api.create({"message": "Lost", **data}, params), "project")
    assert_nothing_stored(server)
