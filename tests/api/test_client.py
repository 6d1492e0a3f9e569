"""The API client against the project's own server (LocalReceiver), over real HTTP on 127.0.0.1."""

from __future__ import annotations

import hashlib
import ssl
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

import sentry_feedback
from sentry_feedback import Attachment
from sentry_feedback.api import (
    ApiConnectionError,
    BadRequest,
    FeedbackApi,
    FeedbackAttachment,
    Forbidden,
    NotFound,
    Unauthorized,
    UserFeedback,
)
from sentry_feedback.server import ApiToken, LocalReceiver, Project, ServerConfig

from .conftest import ORG, PROJECT, READ_TOKEN, TOKEN
from .test_items import SEED_ITEM

# The seed item's attributes as a create body (status is the server's to set).
SEED_CREATE = {key: value for key, value in SEED_ITEM.items() if key not in ("id", "status")}
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256))


def create_many(api: FeedbackApi, count: int, **fields: Any) -> list[UserFeedback]:
    return [api.create(f"feedback number {n}", **fields) for n in range(count)]


def test_create_and_get_the_seed_item(api: FeedbackApi) -> None:
    created = api.create(**SEED_CREATE)
    assert created.message == SEED_ITEM["message"]
    assert created.status == "unresolved"
    assert created.project == PROJECT and created.project_id == "1"
    fetched = api.get(created.id)
    assert fetched == created
    expected = UserFeedback.from_json({**SEED_ITEM, "id": created.id})
    for name in ("message", "contact_email", "dist", "environment", "platform", "release", "replay_id", "url"):
        assert getattr(fetched, name) == getattr(expected, name), name
    for name in ("error_ids", "trace_ids", "tags", "browser", "os", "sdk", "device", "locale", "user", "timestamp"):
        assert getattr(fetched, name) == getattr(expected, name), name
    assert fetched.timestamp == datetime(2023, 8, 31, 14, 10, 34, 954048, tzinfo=timezone.utc)
    assert set(SEED_ITEM) <= set(fetched.raw)  # every seed attribute is present


def test_list_follows_pages(api: FeedbackApi) -> None:
    created = {feedback.id for feedback in create_many(api, 25)}
    listed = [feedback.id for feedback in api.list(per_page=10)]
    assert len(listed) == 25
    assert set(listed) == created
    assert len(list(api.list(per_page=10, limit=12))) == 12


def test_page_hits_and_cursors(api: FeedbackApi) -> None:
    create_many(api, 25)
    first = api.page(per_page=10)
    assert len(first.items) == 10
    assert first.hits == 25
    assert first.has_next and first.next_cursor
    assert not first.has_previous and first.previous_cursor is None
    second = api.page(per_page=10, cursor=first.next_cursor)
    third = api.page(per_page=10, cursor=second.next_cursor)
    assert second.has_previous and second.previous_cursor
    assert len(second.items) == 10 and len(third.items) == 5
    assert not third.has_next and third.next_cursor is None
    ids = [f.id for page in (first, second, third) for f in page.items]
    assert len(set(ids)) == 25
    back = api.page(per_page=10, cursor=second.previous_cursor)
    assert [f.id for f in back.items] == [f.id for f in first.items]
    assert [f.id for f in api.page(per_page=10, offset=20).items] == [f.id for f in third.items]


def test_filters(api: FeedbackApi) -> None:
    now = datetime.now(timezone.utc)
    old = api.create("old one", environment="staging", timestamp=now - timedelta(days=3))
    new = api.create("new one about pay", environment="production", timestamp=now - timedelta(minutes=5))
    api.create("no environment", timestamp=now - timedelta(minutes=10))
    api.resolve(old.id)
    assert [f.id for f in api.list(environment="production")] == [new.id]
    assert {f.id for f in api.list(environment=["production", "staging"])} == {old.id, new.id}
    assert [f.id for f in api.list(query="status:resolved")] == [old.id]
    assert [f.id for f in api.list(query="message:*pay*")] == [new.id]
    assert [f.id for f in api.list(stats_period="1d", environment=["production", "staging"])] == [new.id]
    assert [f.id for f in api.list(start=now - timedelta(days=4), end=now - timedelta(days=1))] == [old.id]
    assert [f.message for f in api.list(sort="timestamp")] == ["old one", "no environment", "new one about pay"]
    assert next(f.message for f in api.list(sort="-timestamp", project=PROJECT)) == "new one about pay"
    assert len(list(api.list(project="1", query_referrer="cli"))) == 3
    (partial,) = api.list(field=["id", "message"], environment="production")
    assert partial.id == new.id and partial.message == new.message
    with pytest.raises(BadRequest):
        api.page(stats_period="not a period")
    with pytest.raises(BadRequest):
        api.page(query="status:")  # a syntax error
    with pytest.raises(BadRequest):
        api.page(per_page=1000)


def test_resolve_unresolve_update_delete(api: FeedbackApi) -> None:
    feedback = api.create("Resolve me")
    assert api.resolve(feedback.id).status == "resolved"
    assert api.get(feedback.id).status == "resolved"
    assert api.unresolve(feedback.id, project=PROJECT).status == "unresolved"
    assert api.update(feedback.id, status="resolved").status == "resolved"
    with pytest.raises(BadRequest):
        api.update(feedback.id, status="sleeping")
    api.delete(feedback.id)
    with pytest.raises(NotFound):
        api.get(feedback.id, project=PROJECT)
    with pytest.raises(NotFound):
        api.get(feedback.id)  # the lookup finds nothing
    with pytest.raises(NotFound):
        api.delete(feedback.id, project=PROJECT)


def test_create_errors_have_per_field_details(api: FeedbackApi) -> None:
    with pytest.raises(BadRequest) as caught:
        api.create("   ")
    assert caught.value.status == 400
    assert caught.value.errors["message"]
    assert "message" in str(caught.value)
    with pytest.raises(BadRequest) as caught:
        api.create("fine", error_ids=["not-a-uuid"], user={"email": 3})
    assert set(caught.value.errors) >= {"error_ids.0", "user.email"}
    with pytest.raises(BadRequest):
        api.create("x" * 5000)
    assert list(api.list()) == []


def test_auth_errors(receiver: LocalReceiver, api: FeedbackApi) -> None:
    feedback = api.create("Secret")
    with FeedbackApi(receiver.url, "wrong-token-" + "0" * 20, ORG) as wrong, pytest.raises(Unauthorized) as caught:
        wrong.page()
    assert caught.value.status == 401
    with FeedbackApi(receiver.url, READ_TOKEN, ORG, project=PROJECT) as reader:
        assert reader.get(feedback.id) == feedback  # reading is fine
        for call in (
            lambda: reader.create("nope"),
            lambda: reader.resolve(feedback.id),
            lambda: reader.delete(feedback.id),
        ):
            with pytest.raises(Forbidden) as forbidden:
                call()
            assert forbidden.value.status == 403
            assert READ_TOKEN not in str(forbidden.value)
    assert api.get(feedback.id).status == "unresolved"


def test_not_found(receiver: LocalReceiver, api: FeedbackApi) -> None:
    feedback = api.create("Here")
    with FeedbackApi(receiver.url, TOKEN, "no-such-org") as other, pytest.raises(NotFound):
        other.page()
    with pytest.raises(NotFound):
        api.get(feedback.id, project="no-such-project")
    with pytest.raises(NotFound):
        api.get("0" * 32, project=PROJECT)
    with pytest.raises(NotFound):
        api.attachments("0" * 32, project=PROJECT)
    with pytest.raises(NotFound):
        api.download(feedback.id, "999", project=PROJECT)
    with pytest.raises(NotFound):
        api.event("0" * 32, project=PROJECT)


def test_connection_refused_after_the_server_stops(receiver: LocalReceiver) -> None:
    client = FeedbackApi(receiver.url, TOKEN, ORG, project=PROJECT, timeout=2)
    receiver.stop()
    with pytest.raises(ApiConnectionError) as caught:
        client.page()
    assert caught.value.status == 0
    assert TOKEN not in str(caught.value)
    client.close()


def test_attachments_download_and_linked_event(receiver: LocalReceiver, api: FeedbackApi, tmp_path: Path) -> None:
    sentry_feedback.init(dsn=receiver.dsn, environment="production", release="shop@2.0")
    try:
        1 / 0  # noqa: B018
    except ZeroDivisionError:
        error_id = sentry_feedback.capture_exception()
    assert error_id is not None
    assert sentry_feedback.flush(5)
    feedback_id = sentry_feedback.send_feedback(
        "The pay button does nothing",
        email="jane@example.com",
        name="Jane",
        associated_event_id=error_id,
        attachments=[
            Attachment(PNG, filename="shot.png"),
            Attachment(b"root:x:0:0", filename="../../etc/passwd", content_type="text/plain"),
        ],
    )
    sentry_feedback.close()

    (feedback,) = api.list(query="has:error")
    assert feedback.id == feedback_id
    assert feedback.error_ids == (error_id,)
    assert (feedback.environment, feedback.release, feedback.name) == ("production", "shop@2.0", "Jane")
    assert feedback.contact_email == "jane@example.com"
    assert feedback.attachment_count == 2

    attachments = api.attachments(feedback.id)
    assert sorted(a.name for a in attachments) == ["../../etc/passwd", "shot.png"]
    shot = next(a for a in attachments if a.name == "shot.png")
    assert isinstance(shot, FeedbackAttachment)
    assert shot.size == len(PNG)
    assert shot.mimetype == "image/png"
    assert shot.sha1 == hashlib.sha1(PNG).hexdigest()
    assert shot.date_created is not None and shot.date_created.tzinfo is not None
    assert api.download(feedback.id, shot) == PNG
    assert api.download(feedback.id, shot.id, project=PROJECT) == PNG

    folder = tmp_path / "downloads"
    folder.mkdir()
    saved = sorted(api.download_to(feedback.id, attachment, folder) for attachment in attachments)
    assert [path.name for path in saved] == ["passwd", "shot.png"]
    assert all(path.parent == folder for path in saved)
    assert (folder / "passwd").read_bytes() == b"root:x:0:0"
    assert (folder / "shot.png").read_bytes() == PNG
    # By id only: the name comes from Content-Disposition, made safe the same way.
    hostile = next(a for a in attachments if a.name.endswith("passwd"))
    other = tmp_path / "by-id"
    other.mkdir()
    by_id = api.download_to(feedback.id, hostile.id, other)
    assert by_id.parent == other  # the server's header already says "_.._etc_passwd"
    assert by_id.read_bytes() == b"root:x:0:0"
    assert [path.name for path in other.iterdir()] == [by_id.name]

    event = api.event(error_id, project=feedback.project)
    assert event["eventID"] == error_id
    assert "ZeroDivisionError" in event["title"]
    assert event["entries"][0]["type"] == "exception"

    api.delete(feedback.id)
    with pytest.raises(NotFound):
        api.attachments(feedback.id, project=PROJECT)


def test_several_projects_and_project_lookup() -> None:
    config = ServerConfig(
        org=ORG,
        projects=(Project("web", "1", "key1"), Project("mobile", "2", "key2")),
        tokens=(ApiToken(TOKEN),),
    )
    with LocalReceiver(config=config) as server, FeedbackApi(server.url, TOKEN, ORG) as client:
        with pytest.raises(BadRequest):
            client.create("which project?")  # two projects: the server cannot guess
        web = client.create("on the web", project="web")
        mobile = client.create("on the phone", project="2")  # by id
        assert (web.project, mobile.project) == ("web", "mobile")
        assert [f.id for f in client.list(project="mobile")] == [mobile.id]
        assert [f.id for f in client.list(project=[1, "mobile"], sort="projectId")] == [web.id, mobile.id]
        # No project given: each feedback's project is looked up.
        assert client.get(mobile.id) == mobile
        assert client.resolve(web.id).status == "resolved"
        with pytest.raises(NotFound):
            client.get(mobile.id, project="web")
        with FeedbackApi(server.url, TOKEN, ORG, project="mobile") as scoped:
            assert scoped.get(mobile.id) == mobile
            with pytest.raises(NotFound):
                scoped.get(web.id)


def test_tls_is_verified_with_certifi_or_ca_certs(tmp_path: Path) -> None:
    trustme = pytest.importorskip("trustme")
    authority = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(context)
    ca_file = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(ca_file))
    with LocalReceiver(org=ORG, api_token=TOKEN, ssl_context=context) as server:
        assert server.url.startswith("https://")
        with FeedbackApi(server.url, TOKEN, ORG) as client, pytest.raises(ApiConnectionError, match=r"(?i)certificate"):
            client.page()  # certifi's bundle does not know this authority
        with FeedbackApi(server.url, TOKEN, ORG, ca_certs=str(ca_file)) as client:
            assert client.create("over TLS").message == "over TLS"
            assert len(client.page().items) == 1
