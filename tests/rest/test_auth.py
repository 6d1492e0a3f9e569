"""Authentication, scopes, unknown organizations, projects and ids, and methods an endpoint does not take."""

from __future__ import annotations

import json
import urllib.parse

import pytest
import urllib3

from sentry_feedback.server import LocalReceiver

from .conftest import (
    INDEX,
    MOBILE,
    ORG,
    READ_TOKEN,
    SEED_PATCH_BODY,
    TOKEN,
    WEB,
    Api,
    envelope_bytes,
    event_id,
    feedback_event,
    item_path,
    store_feedback,
    store_raw,
)

FEEDBACK = event_id(1)
ERROR = event_id(2)


@pytest.fixture
def stored(server: LocalReceiver) -> LocalReceiver:
    """One feedback with an attachment, and one error event, in project web."""
    store_feedback(server, WEB, FEEDBACK, feedback_event("Hello", timestamp=1_700_000_000))
    error = {"event_id": ERROR, "exception": {"values": [{"type": "ValueError", "value": "boom"}]}}
    store_raw(server, WEB, {"event_id": ERROR}, [({"type": "event"}, json.dumps(error).encode())])
    store_raw(server, WEB, {"event_id": FEEDBACK}, [({"type": "attachment", "filename": "a.txt"}, b"abc")])
    return server


def attachment_id(server: LocalReceiver) -> str:
    (attachment,) = server.store.list_attachments(FEEDBACK)
    return str(attachment.id)


def endpoints(server: LocalReceiver, project: str = WEB.slug, org: str = ORG) -> list[tuple[str, str, bytes | None]]:
    """(method, path, body) of every REST endpoint, for the stored feedback."""
    item = f"/projects/{org}/{project}/user-feedback/{FEEDBACK}/"
    patch = json.dumps(SEED_PATCH_BODY).encode()
    return [
        ("GET", f"/organizations/{org}/user-feedback/", None),
        ("HEAD", f"/organizations/{org}/user-feedback/", None),
        ("POST", f"/organizations/{org}/user-feedback/?project=web", json.dumps({"data": {"message": "x"}}).encode()),
        ("GET", item, None),
        ("PATCH", item, patch),
        ("DELETE", item, None),
        ("GET", item + "attachments/", None),
        ("GET", item + f"attachments/{attachment_id(server)}/", None),
        ("GET", f"/projects/{org}/{project}/events/{ERROR}/", None),
    ]


def assert_unchanged(server: LocalReceiver) -> None:
    (feedback,) = server.store.list_feedback()
    assert (feedback.event_id, feedback.status) == (FEEDBACK, "unresolved")
    assert len(server.store.list_attachments(FEEDBACK)) == 1


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Basic dXNlcjpwYXNzd29yZA==",
        "Bearer",
        "Bearer ",
        "Bearer wrong-token-0123456789",
        f"Bearer {TOKEN}x",
        f"Bearer {TOKEN[:-1]}",
        f"Token {TOKEN}",
        f"Bearer{TOKEN}",
        f"{TOKEN}",
        f"Sentry sentry_key={WEB.public_key}, sentry_version=7",
    ],
)
def test_missing_or_bad_credentials_are_a_401_with_a_challenge(
    stored: LocalReceiver, authorization: str | None
) -> None:
    api = Api(stored, token=None)
    headers = {} if authorization is None else {"Authorization": authorization}
    for method, path, body in endpoints(stored):
        reply = api.request(method, path, body=body, headers=headers)
        assert reply.status == 401, (method, path, reply.status)
        assert reply.headers["WWW-Authenticate"].startswith("Bearer"), reply.headers
        if method != "HEAD":
            assert reply.detail
    assert_unchanged(stored)


def test_an_unknown_organization_or_project_also_needs_a_token(stored: LocalReceiver) -> None:
    api = Api(stored, token=None)
    for method, path, body in endpoints(stored, project="nope", org="other"):
        assert api.request(method, path, body=body).status == 401


def test_the_bearer_scheme_is_case_insensitive(stored: LocalReceiver) -> None:
    for scheme in ("bearer", "BEARER", "Bearer"):
        reply = Api(stored, token=None).get(INDEX, headers={"Authorization": f"{scheme} {TOKEN}"})
        assert reply.status == 200


def test_a_read_token_reads_but_never_writes(stored: LocalReceiver) -> None:
    reader = Api(stored, token=READ_TOKEN)
    for method, path, body in endpoints(stored):
        reply = reader.request(method, path, body=body)
        if method in ("GET", "HEAD"):
            assert reply.status == 200, (method, path, reply.data)
        else:
            assert reply.status == 403, (method, path, reply.status)
            assert reply.detail
            assert "WWW-Authenticate" not in reply.headers
    assert_unchanged(stored)
    assert len(stored.store.list_feedback()) == 1  # the POST created nothing


def test_the_write_token_does_everything(stored: LocalReceiver) -> None:
    writer = Api(stored)
    statuses = [writer.request(method, path, body=body).status for method, path, body in endpoints(stored)]
    assert statuses == [200, 200, 201, 200, 202, 204, 404, 404, 200]  # after the DELETE, the feedback is gone


def test_the_ingest_endpoint_takes_dsn_auth_not_bearer_tokens(server: LocalReceiver) -> None:
    body = envelope_bytes({}, [({"type": "feedback"}, json.dumps(feedback_event("ingested", timestamp=1.0)).encode())])
    url = f"{server.url}/api/{WEB.id}/envelope/"
    for headers in (
        {"Authorization": f"Bearer {TOKEN}"},
        {"X-Sentry-Auth": f"Bearer {TOKEN}"},
        {"Authorization": f"Bearer {READ_TOKEN}"},
    ):
        response = urllib3.request("POST", url, body=body, headers=headers, retries=False)
        assert response.status == 401, (headers, response.status)
    assert urllib3.request("POST", f"{url}?sentry_key={TOKEN}", body=body, retries=False).status == 401
    assert server.store.list_feedback() == []
    auth = {"X-Sentry-Auth": f"Sentry sentry_version=7, sentry_key={WEB.public_key}"}
    assert urllib3.request("POST", url, body=body, headers=auth, retries=False).status == 200
    assert [f.message for f in server.store.list_feedback()] == ["ingested"]


def test_an_unknown_organization_is_a_404(stored: LocalReceiver) -> None:
    api = Api(stored)
    for org in ("other", "ACME", "acme2", "' OR 1=1 --"):
        for method, path, body in endpoints(stored, org=urllib.parse.quote(org)):
            reply = api.request(method, path, body=body)
            assert reply.status == 404, (org, method, path, reply.status)
    assert_unchanged(stored)


def test_an_unknown_project_is_a_404(stored: LocalReceiver) -> None:
    api = Api(stored)
    for project in ("nope", "99", "Web", "-1"):
        for method, path, body in endpoints(stored, project=project)[3:]:
            reply = api.request(method, path, body=body)
            assert reply.status == 404, (project, method, path, reply.status)
    assert_unchanged(stored)


def test_a_project_may_be_named_by_its_id(stored: LocalReceiver) -> None:
    api = Api(stored)
    assert api.get(item_path(WEB.id, FEEDBACK)).item["id"] == FEEDBACK
    assert api.get(f"/projects/{ORG}/{WEB.id}/events/{ERROR}/").json()["id"] == ERROR


@pytest.mark.parametrize(
    "feedback_id",
    [
        event_id(999),
        "nope",
        "0" * 31,
        "g" * 32,
        FEEDBACK + "0",
        "' OR 1=1 --",
        "%00",
        "1ffe0775-ac0f-4417-aed9-de36d9f6f8dc-",
        "x" * 200,
    ],
)
def test_an_unknown_or_malformed_feedback_id_is_a_404(stored: LocalReceiver, feedback_id: str) -> None:
    api = Api(stored)
    path = item_path(WEB.slug, urllib.parse.quote(feedback_id, safe=""))
    for method, suffix in (("GET", ""), ("HEAD", ""), ("PATCH", ""), ("DELETE", ""), ("GET", "attachments/")):
        body = json.dumps(SEED_PATCH_BODY).encode() if method == "PATCH" else None
        reply = api.request(method, path + suffix, body=body)
        assert reply.status == 404, (method, feedback_id, reply.status)
        if method != "HEAD":
            assert reply.detail
    assert api.get(f"/projects/{ORG}/{WEB.slug}/events/{urllib.parse.quote(feedback_id, safe='')}/").status == 404
    assert_unchanged(stored)


def test_a_feedback_id_in_another_spelling_is_the_same_feedback(stored: LocalReceiver) -> None:
    api = Api(stored)
    dashed = f"{FEEDBACK[:8]}-{FEEDBACK[8:12]}-{FEEDBACK[12:16]}-{FEEDBACK[16:20]}-{FEEDBACK[20:]}"
    for spelling in (dashed, FEEDBACK.upper(), dashed.upper()):
        assert api.get(item_path(WEB.slug, spelling)).item["id"] == FEEDBACK


def test_a_feedback_of_one_project_is_not_found_under_another(stored: LocalReceiver) -> None:
    api = Api(stored)
    for method, path, body in endpoints(stored, project=MOBILE.slug)[3:]:
        reply = api.request(method, path, body=body)
        assert reply.status == 404, (method, path, reply.status)
        assert reply.detail
    assert_unchanged(stored)
    for method, path, body in endpoints(stored, project=WEB.slug)[3:5]:
        assert api.request(method, path, body=body).status in (200, 202)


@pytest.mark.parametrize(
    ("method", "suffix", "allow"),
    [
        ("PUT", "index", "GET, HEAD, POST"),
        ("PATCH", "index", "GET, HEAD, POST"),
        ("DELETE", "index", "GET, HEAD, POST"),
        ("OPTIONS", "index", "GET, HEAD, POST"),
        ("POST", "item", "GET, HEAD, PATCH, DELETE"),
        ("PUT", "item", "GET, HEAD, PATCH, DELETE"),
        ("POST", "attachments", "GET, HEAD"),
        ("DELETE", "attachments", "GET, HEAD"),
        ("DELETE", "download", "GET, HEAD"),
        ("PUT", "download", "GET, HEAD"),
        ("POST", "event", "GET, HEAD"),
        ("DELETE", "event", "GET, HEAD"),
    ],
)
def test_a_method_an_endpoint_does_not_take_is_a_405_with_allow(
    stored: LocalReceiver, method: str, suffix: str, allow: str
) -> None:
    item = item_path(WEB.slug, FEEDBACK)
    path = {
        "index": INDEX,
        "item": item,
        "attachments": item + "attachments/",
        "download": item + f"attachments/{attachment_id(stored)}/",
        "event": f"/projects/{ORG}/{WEB.slug}/events/{ERROR}/",
    }[suffix]
    reply = Api(stored).request(method, path, body=b'{"data": {"status": "resolved"}}')
    assert reply.status == 405
    assert reply.headers["Allow"] == allow
    assert method in reply.detail
    assert_unchanged(stored)


@pytest.mark.parametrize(
    "path",
    [
        f"/organizations/{ORG}/",
        f"/organizations/{ORG}/user-feedback/x/",
        f"/projects/{ORG}/web/user-feedback/",
        f"/projects/{ORG}/web/user-feedback/{FEEDBACK}/attachments/1/x/",
        "/",
        "/../api/0/organizations/acme/user-feedback/",
    ],
)
def test_an_unknown_path_is_a_404(stored: LocalReceiver, path: str) -> None:
    assert Api(stored).get(path).status == 404
