"""The client against a scripted server that follows Sentry's conventions (and bends them).

Pagination by ``Link``, every ``list()`` keyword on the wire, retries of 429/503 with
``Retry-After`` / ``X-Sentry-Rate-Limit-Reset``, error bodies, the token's secrecy,
redirects, timeouts and safe downloads. All over real HTTP on 127.0.0.1.
"""

from __future__ import annotations

import email.utils
import threading
import time
import urllib.parse
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import urllib3

from sentry_feedback.api import (
    ApiConnectionError,
    ApiError,
    BadRequest,
    FeedbackApi,
    FeedbackAttachment,
    Forbidden,
    NotFound,
    RateLimited,
    ServerError,
    Unauthorized,
    UserFeedback,
)

from .conftest import ORG, PROJECT, TOKEN
from .scripted import Answer, Recorded, ScriptedServer

FEEDBACK_ID = "1ffe0775ac0f4417aed9de36d9f6f8dc"
LIST_PATH = f"/api/0/organizations/{ORG}/user-feedback/"
ITEM_PATH = f"/api/0/projects/{ORG}/{PROJECT}/user-feedback/{FEEDBACK_ID}/"


def item(number: int, **extra: Any) -> dict[str, Any]:
    return {"id": f"{number:032x}", "message": f"feedback {number}", "status": "unresolved", **extra}


def paged(server: ScriptedServer, total: int, *, host: str | None = None) -> Callable[[Recorded], Answer]:
    """A list endpoint over ``total`` items with Sentry's cursors ``0:<offset>:<is_prev>`` and Link headers.

    The Link URLs carry a comma in their query (``field=id,message``); ``host`` puts them
    on another origin.
    """

    def handler(request: Recorded) -> Answer:
        query = request.query
        per_page = int(query.get("per_page", ["10"])[0])
        offset = int(query.get("cursor", ["0:0:0"])[0].split(":")[1])
        nxt, prev = offset + per_page, max(offset - per_page, 0)
        base = f"{host or server.url}{LIST_PATH}?per_page={per_page}&field=id,message&cursor="
        link = (
            f'<{base}0:{prev}:1>; rel="previous"; results="{str(offset > 0).lower()}"; cursor="0:{prev}:1", '
            f'<{base}0:{nxt}:0>; rel="next"; results="{str(nxt < total).lower()}"; cursor="0:{nxt}:0"'
        )
        data = [item(n) for n in range(offset, min(nxt, total))]
        return Answer(200, {"data": data}, {"Link": link, "X-Hits": str(total)})

    return handler


# -- pagination ------------------------------------------------------------------------


def test_list_follows_link_across_pages(scripted: ScriptedServer, sapi: FeedbackApi) -> None:
    scripted.handler = paged(scripted, 25)
    ids = [feedback.id for feedback in sapi.list(per_page=10)]
    assert len(ids) == 25
    assert len(set(ids)) == 25
    assert len(scripted.requests) == 3
    # Pages 2 and 3 came from the Link URLs, their comma intact.
    assert [r.query.get("cursor") for r in scripted.requests] == [None, ["0:10:0"], ["0:20:0"]]
    assert scripted.requests[1].query["field"] == ["id,message"]
    assert all(r.path == LIST_PATH for r in scripted.requests)


def test_list_limit_stops_early_and_sizes_the_page(scripted: ScriptedServer, sapi: FeedbackApi) -> None:
    scripted.handler = paged(scripted, 25)
    assert len(list(sapi.list(limit=7))) == 7
    assert len(scripted.requests) == 1
    assert scripted.requests[0].query["per_page"] == ["7"]
    assert list(sapi.list(limit=0)) == []
    assert len(scripted.requests) == 1
    with pytest.raises(ValueError):
        sapi.list(limit=-1)


def test_list_is_lazy(scripted: ScriptedServer, sapi: FeedbackApi) -> None:
    scripted.handler = paged(scripted, 25)
    iterator = sapi.list(per_page=10)
    assert scripted.requests == []
    next(iterator)
    assert len(scripted.requests) == 1


def test_list_on_a_foreign_link_host_keeps_the_token_home(scripted: ScriptedServer, sapi: FeedbackApi) -> None:
    # A proxy or a misconfigured server may link to another origin: only the cursor is used.
    scripted.handler = paged(scripted, 25, host="http://feedback.invalid")
    ids = [feedback.id for feedback in sapi.list(per_page=10, environment="prod")]
    assert len(set(ids)) == 25
    assert len(scripted.requests) == 3
    for request in scripted.requests[1:]:
        assert request.query["environment"] == ["prod"]
        assert request.query["per_page"] == ["10"]
        assert "field" not in request.query  # our own parameters, not the foreign URL's
    assert scripted.requests[2].query["cursor"] == ["0:20:0"]


def test_list_stops_on_a_repeated_cursor(scripted: ScriptedServer, sapi: FeedbackApi) -> None:
    link = f'<{scripted.url}{LIST_PATH}?cursor=same>; rel="next"; results="true"; cursor="same"'
    scripted.handler = lambda request: Answer(200, {"data": [item(1)]}, {"Link": link})
    assert len(list(sapi.list())) == 2  # the first page, then the looping one once
    assert len(scripted.requests) == 2


def test_list_without_link_or_with_results_false_is_one_page(scripted: ScriptedServer, sapi: FeedbackApi) -> None:
    scripted.script(Answer(200, {"data": [item(1), item(2)]}))
    assert [f.id for f in sapi.list()] == [f"{1:032x}", f"{2:032x}"]
    link = f'<{scripted.url}{LIST_PATH}?cursor=x>; rel="next"; results="false"; cursor="x"'
    scripted.script(Answer(200, {"data": [item(3)]}, {"Link": link}))
    assert len(list(sapi.list())) == 1
    assert len(scripted.requests) == 2


def test_list_tolerates_odd_bodies(scripted: ScriptedServer, sapi: FeedbackApi) -> None:
    scripted.script(
        Answer(200, [item(1), "junk", 3, None]),  # a bare list
        Answer(200, {"data": {"not": "a list"}}),
        Answer(200, {"data": [item(2), ["x"], {"id": 7}]}),
    )
    assert [f.id for f in sapi.list()] == [f"{1:032x}"]
    assert list(sapi.list()) == []
    assert [f.id for f in sapi.list()] == [f"{2:032x}", "7"]
    scripted.script(Answer(200, b"<html>captive portal</html>", {"Content-Type": "text/html"}))
    with pytest.raises(ApiError, match="not JSON") as caught:
        list(sapi.list())
    assert caught.value.status == 200


def test_page_gives_hits_and_cursors(scripted: ScriptedServer, sapi: FeedbackApi) -> None:
    scripted.handler = paged(scripted, 25)
    first = sapi.page(per_page=10)
    assert [f.id for f in first.items] == [f"{n:032x}" for n in range(10)]
    assert first.hits == 25
    assert first.has_next and first.next_cursor == "0:10:0"
    assert not first.has_previous and first.previous_cursor is None
    second = sapi.page(per_page=10, cursor=first.next_cursor)
    assert second.items[0].id == f"{10:032x}"
    assert second.has_previous and second.previous_cursor == "0:0:1"
    last = sapi.page(per_page=10, cursor="0:20:0")
    assert len(last.items) == 5
    assert not last.has_next and last.next_cursor is None
    scripted.handler = None
    scripted.script(Answer(200, {"data": []}, {"X-Hits": "many"}))
    empty = sapi.page()
    assert empty.items == [] and empty.hits is None and not empty.has_next and not empty.has_previous


def test_page_cursor_from_the_link_url_when_no_cursor_parameter(scripted: ScriptedServer, sapi: FeedbackApi) -> None:
    link = f'<{scripted.url}{LIST_PATH}?per_page=5&cursor=abc%3A5%3A0>; rel="next"; results="true"'
    scripted.script(Answer(200, {"data": [item(1)]}, {"Link": link}))
    page = sapi.page()
    assert page.has_next and page.next_cursor == "abc:5:0"


# -- parameters on the wire ----------------------------------------------------------


def test_every_list_keyword_reaches_the_server(scripted: ScriptedServer, sapi: FeedbackApi) -> None:
    scripted.handler = lambda request: Answer(200, {"data": []})
    list(
        sapi.list(
            query='status:unresolved message:"a+b & c" tags[page]:checkout',
            environment=["production", "staging"],
            project=[1, "web"],
            sort="-timestamp",
            stats_period="24h",
            per_page=50,
            field=["id", "message"],
            query_referrer="cli",
        )
    )
    request = scripted.requests[-1]
    assert request.method == "GET"
    assert request.path == LIST_PATH
    assert request.query == {
        "query": ['status:unresolved message:"a+b & c" tags[page]:checkout'],
        "environment": ["production", "staging"],
        "project": ["1", "web"],
        "sort": ["-timestamp"],
        "statsPeriod": ["24h"],
        "per_page": ["50"],
        "field": ["id", "message"],
        "queryReferrer": ["cli"],
    }
    assert "+" not in request.raw_query.replace("%2B", "")  # spaces as %20: no ambiguity with "+"


def test_single_values_and_dates_on_the_wire(scripted: ScriptedServer, sapi: FeedbackApi) -> None:
    scripted.handler = lambda request: Answer(200, {"data": []})
    start = datetime(2024, 1, 2, 3, 4, 5)  # naive: UTC
    end = datetime(2024, 1, 3, 12, 0, 0, 250000, tzinfo=timezone(timedelta(hours=2)))
    sapi.page(environment="production", project=42, field=["id"], start=start, end=end, offset=20)
    assert scripted.requests[-1].query == {
        "environment": ["production"],
        "project": ["42"],
        "field": ["id"],
        "start": ["2024-01-02T03:04:05Z"],
        "end": ["2024-01-03T10:00:00.250000Z"],
        "offset": ["20"],
    }
    sapi.page(start="2024-01-01T00:00:00+01:00", end="2024-02-01", cursor="0:100:0", per_page=100)
    assert scripted.requests[-1].query == {
        "start": ["2024-01-01T00:00:00+01:00"],
        "end": ["2024-02-01"],
        "per_page": ["100"],
        "cursor": ["0:100:0"],
    }
    sapi.page()
    assert scripted.requests[-1].raw_query == ""


def test_requests_carry_auth_user_agent_and_json(scripted: ScriptedServer) -> None:
    scripted.handler = lambda request: Answer(201, {"data": item(1)})
    with FeedbackApi(scripted.url + "/api/0/", TOKEN, ORG, user_agent="triage-bot/2") as client:
        client.create("It broke", contact_email="jane@example.com", timestamp=datetime(2024, 5, 6, tzinfo=timezone.utc))
    request = scripted.requests[-1]
    assert request.method == "POST"
    assert request.path == LIST_PATH
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["User-Agent"] == "triage-bot/2"
    assert request.headers["Content-Type"] == "application/json"
    assert request.json() == {
        "data": {"message": "It broke", "contact_email": "jane@example.com", "timestamp": "2024-05-06T00:00:00Z"}
    }


def test_create_body_shapes(scripted: ScriptedServer, sapi: FeedbackApi) -> None:
    scripted.handler = lambda request: Answer(201, {"data": item(1)})
    created = sapi.create(data={"message": "from data", "tags": {"a": ("x", "y")}}, project="mobile")
    assert created.id == f"{1:032x}"
    assert scripted.requests[-1].json() == {
        "data": {"message": "from data", "tags": {"a": ["x", "y"]}, "project": "mobile"}
    }
    sapi.create("hello", error_ids=["4f0e18332d11431c9b97d924edecb76e"])
    assert scripted.requests[-1].json() == {
        "data": {"message": "hello", "error_ids": ["4f0e18332d11431c9b97d924edecb76e"], "project": PROJECT}
    }
    with pytest.raises(TypeError):
        sapi.create()
    with pytest.raises(TypeError):
        sapi.create("x", blob=object())


def test_per_item_calls_use_the_right_method_path_and_body(scripted: ScriptedServer, sapi: FeedbackApi) -> None:
    def handler(request: Recorded) -> Answer:
        if request.method == "DELETE":
            return Answer(204)
        if request.path.endswith("/attachments/"):
            return Answer(200, {"data": [{"id": "17", "name": "shot.png", "size": 3}]})
        if "/attachments/" in request.path:
            return Answer(200, b"PNG", {"Content-Type": "image/png"})
        if "/events/" in request.path:
            return Answer(200, {"id": "e1", "title": "ZeroDivisionError"})
        status = request.json()["data"]["status"] if request.method == "PATCH" else "unresolved"
        return Answer(202 if request.method == "PATCH" else 200, {"data": item(1, status=status)})

    scripted.handler = handler
    assert sapi.get(FEEDBACK_ID).status == "unresolved"
    assert sapi.resolve(FEEDBACK_ID).status == "resolved"
    assert sapi.unresolve(FEEDBACK_ID).status == "unresolved"
    assert sapi.update(FEEDBACK_ID, status="resolved").status == "resolved"
    sapi.delete(FEEDBACK_ID)
    assert sapi.attachments(FEEDBACK_ID) == [FeedbackAttachment(id="17", name="shot.png", size=3)]
    assert sapi.download(FEEDBACK_ID, "17") == b"PNG"
    assert sapi.event("e1")["title"] == "ZeroDivisionError"
    assert sapi.get(FEEDBACK_ID, project="other").id
    seen = [(r.method, r.path, r.json() if r.body else None) for r in scripted.requests]
    assert seen == [
        ("GET", ITEM_PATH, None),
        ("PATCH", ITEM_PATH, {"data": {"status": "resolved"}}),
        ("PATCH", ITEM_PATH, {"data": {"status": "unresolved"}}),
        ("PATCH", ITEM_PATH, {"data": {"status": "resolved"}}),
        ("DELETE", ITEM_PATH, None),
        ("GET", ITEM_PATH + "attachments/", None),
        ("GET", ITEM_PATH + "attachments/17/", None),
        ("GET", f"/api/0/projects/{ORG}/{PROJECT}/events/e1/", None),
        ("GET", f"/api/0/projects/{ORG}/other/user-feedback/{FEEDBACK_ID}/", None),
    ]
    with pytest.raises(ValueError):
        sapi.update(FEEDBACK_ID)


def test_path_segments_are_quoted_and_dot_segments_refused(scripted: ScriptedServer) -> None:
    scripted.handler = lambda request: Answer(200, {"data": item(1)})
    with FeedbackApi(scripted.url, TOKEN, "my org/x", project="a?b#c") as client:
        client.get("id with/slash")
    assert scripted.requests[-1].path == "/api/0/projects/my%20org%2Fx/a%3Fb%23c/user-feedback/id%20with%2Fslash/"
    with FeedbackApi(scripted.url, TOKEN, ORG, project=PROJECT) as client:
        for bad in ("", ".", ".."):
            with pytest.raises(ValueError):
                client.get(bad)
            with pytest.raises(ValueError):
                client.download(FEEDBACK_ID, bad)
    with pytest.raises(ValueError):
        FeedbackApi(scripted.url, TOKEN, "..")


def test_project_is_looked_up_when_not_given(scripted: ScriptedServer) -> None:
    def handler(request: Recorded) -> Answer:
        if request.path == LIST_PATH:
            return Answer(200, {"data": [item(1, id=FEEDBACK_ID, project="mobile")]})
        return Answer(200, {"data": item(1, id=FEEDBACK_ID, project="mobile")})

    scripted.handler = handler
    with FeedbackApi(scripted.url, TOKEN, ORG) as client:
        assert client.get(FEEDBACK_ID).project == "mobile"
        client.resolve(FEEDBACK_ID)  # the project is remembered: no second lookup
    lookup, get, patch = scripted.requests
    assert lookup.path == LIST_PATH
    query = lookup.query
    assert query["query"] == [f"id:{FEEDBACK_ID}"]
    assert query["start"] == ["1970-01-01T00:00:00Z"]
    assert query["per_page"] == ["1"]
    end = datetime.fromisoformat(query["end"][0].replace("Z", "+00:00"))
    assert timedelta(hours=23) < end - datetime.now(timezone.utc) <= timedelta(days=1)
    assert get.path == f"/api/0/projects/{ORG}/mobile/user-feedback/{FEEDBACK_ID}/"
    assert patch.method == "PATCH" and patch.path == get.path


def test_project_lookup_without_the_extension_asks_for_project(scripted: ScriptedServer) -> None:
    scripted.script(Answer(200, {"data": [item(1, id=FEEDBACK_ID)]}), Answer(200, {"data": []}))
    with FeedbackApi(scripted.url, TOKEN, ORG) as client:
        with pytest.raises(BadRequest, match="project="):
            client.get(FEEDBACK_ID)
        with pytest.raises(NotFound):
            client.delete(FEEDBACK_ID)
    assert len(scripted.requests) == 2  # lookups only


def test_event_without_project_uses_sentrys_eventids(scripted: ScriptedServer) -> None:
    event_id = "4f0e18332d11431c9b97d924edecb76e"
    scripted.script(
        Answer(200, {"organizationSlug": ORG, "projectSlug": "api", "eventId": event_id}),
        Answer(200, {"data": {"id": event_id, "title": "boom"}}),
        Answer(404, {"detail": "not here"}),
    )
    with FeedbackApi(scripted.url, TOKEN, ORG) as client:
        assert client.event(event_id) == {"id": event_id, "title": "boom"}
        with pytest.raises(NotFound, match="project="):
            client.event(event_id)
    assert [r.path for r in scripted.requests] == [
        f"/api/0/organizations/{ORG}/eventids/{event_id}/",
        f"/api/0/projects/{ORG}/api/events/{event_id}/",
        f"/api/0/organizations/{ORG}/eventids/{event_id}/",
    ]


# -- retries -----------------------------------------------------------------------------


def test_429_and_503_are_retried_then_succeed(scripted: ScriptedServer, sapi: FeedbackApi) -> None:
    past = str(int(time.time()) - 5)
    scripted.script(
        Answer(429, {"detail": "slow down"}, {"Retry-After": "0"}),
        Answer(503, {"detail": "busy"}, {"X-Sentry-Rate-Limit-Reset": past}),
        Answer(200, {"data": item(1)}),
    )
    assert sapi.get(FEEDBACK_ID).id == f"{1:032x}"
    assert len(scripted.requests) == 3


def test_rate_limited_after_the_retries(scripted: ScriptedServer, sapi: FeedbackApi) -> None:
    scripted.handler = lambda request: Answer(429, {"detail": "Rate limit exceeded"}, {"Retry-After": "0"})
    with pytest.raises(RateLimited) as caught:
        sapi.get(FEEDBACK_ID)
    assert len(scripted.requests) == 3  # retries=2
    assert caught.value.status == 429
    assert caught.value.retry_after == 0
    assert caught.value.detail == "Rate limit exceeded"
    assert caught.value.headers["Retry-After"] == "0"


def test_no_retries_when_retries_is_zero(scripted: ScriptedServer) -> None:
    scripted.handler = lambda request: Answer(503, {"detail": "down"}, {"Retry-After": "0"})
    with FeedbackApi(scripted.url, TOKEN, ORG, project=PROJECT, retries=0) as client, pytest.raises(ServerError):
        client.get(FEEDBACK_ID)
    assert len(scripted.requests) == 1


def test_503_after_the_retries_is_a_server_error_and_500_is_not_retried(
    scripted: ScriptedServer, sapi: FeedbackApi
) -> None:
    scripted.handler = lambda request: Answer(503, {"detail": "maintenance"})  # no header: 1 s, capped at 0.01
    with pytest.raises(ServerError, match="maintenance") as caught:
        sapi.get(FEEDBACK_ID)
    assert caught.value.status == 503
    assert len(scripted.requests) == 3
    scripted.handler = lambda request: Answer(500, b"<html>Internal Server Error</html>", {"Content-Type": "text/html"})
    with pytest.raises(ServerError) as caught:
        sapi.get(FEEDBACK_ID)
    assert caught.value.status == 500
    assert caught.value.detail == "Internal Server Error"  # the reason: HTML is not a detail
    assert len(scripted.requests) == 4


@pytest.mark.parametrize(
    "headers",
    [
        {"Retry-After": "3600"},
        {"Retry-After": email.utils.formatdate(time.time() + 3600, usegmt=True)},
        {"X-Sentry-Rate-Limit-Reset": str(int(time.time()) + 3600)},
        {"Retry-After": "soon", "X-Sentry-Rate-Limit-Reset": "never"},
        {"Retry-After": "nan"},
    ],
)
def test_long_waits_are_capped_by_max_retry_wait(
    scripted: ScriptedServer, sapi: FeedbackApi, headers: dict[str, str]
) -> None:
    scripted.script(Answer(429, {"detail": "later"}, headers), Answer(200, {"data": item(1)}))
    started = time.monotonic()
    sapi.get(FEEDBACK_ID)
    assert time.monotonic() - started < 2
    assert len(scripted.requests) == 2


def test_retry_after_as_a_date_is_reported(scripted: ScriptedServer) -> None:
    later = email.utils.formatdate(time.time() + 120, usegmt=True)
    scripted.handler = lambda request: Answer(429, {"detail": "later"}, {"Retry-After": later})
    with (
        FeedbackApi(scripted.url, TOKEN, ORG, project=PROJECT, retries=0) as client,
        pytest.raises(RateLimited) as caught,
    ):
        client.get(FEEDBACK_ID)
    assert caught.value.retry_after is not None
    assert 100 < caught.value.retry_after <= 120


def test_close_ends_a_retry_wait(scripted: ScriptedServer) -> None:
    scripted.handler = lambda request: Answer(429, {"detail": "later"}, {"Retry-After": "3600"})
    client = FeedbackApi(scripted.url, TOKEN, ORG, project=PROJECT, max_retry_wait=3600)
    errors: list[BaseException] = []

    def call() -> None:
        try:
            client.get(FEEDBACK_ID)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=call)
    thread.start()
    client.close()
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert len(errors) == 1
    assert isinstance(errors[0], ApiConnectionError)
    assert "closed" in str(errors[0])


# -- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "kind"),
    [(400, BadRequest), (401, Unauthorized), (403, Forbidden), (404, NotFound), (409, ApiError), (502, ServerError)],
)
def test_error_statuses_map_to_exceptions(
    scripted: ScriptedServer, sapi: FeedbackApi, status: int, kind: type[ApiError]
) -> None:
    scripted.handler = lambda request: Answer(status, {"detail": f"nope {status}"})
    with pytest.raises(kind) as caught:
        sapi.get(FEEDBACK_ID)
    error = caught.value
    assert type(error) is kind
    assert error.status == status
    assert error.detail == f"nope {status}"
    assert error.method == "GET"
    assert error.url == scripted.url + ITEM_PATH
    assert f"HTTP {status}" in str(error) and f"nope {status}" in str(error)


def test_per_field_errors(scripted: ScriptedServer, sapi: FeedbackApi) -> None:
    scripted.script(
        Answer(400, {"detail": "Invalid feedback", "errors": {"message": ["This field may not be blank."]}}),
        Answer(400, {"message": ["This field is required."], "user.email": "Enter a valid email."}),  # DRF's shape
        Answer(400, {"detail": {"code": "bad", "message": "Bad thing"}}),
        Answer(400, b"plain text problem"),
        Answer(400, ["a", "list"]),
    )
    with pytest.raises(BadRequest) as caught:
        sapi.create(" ")
    assert caught.value.detail == "Invalid feedback"
    assert caught.value.errors == {"message": ["This field may not be blank."]}
    assert "message: This field may not be blank." in str(caught.value)
    with pytest.raises(BadRequest) as caught:
        sapi.create("x")
    assert caught.value.errors == {"message": ["This field is required."], "user.email": ["Enter a valid email."]}
    with pytest.raises(BadRequest, match="Bad thing"):
        sapi.create("x")
    with pytest.raises(BadRequest, match="plain text problem"):
        sapi.create("x")
    with pytest.raises(BadRequest) as caught:
        sapi.create("x")
    assert caught.value.errors == {}


def test_connection_refused(scripted: ScriptedServer) -> None:
    url = scripted.url
    scripted.stop()
    with FeedbackApi(url, TOKEN, ORG, project=PROJECT) as client, pytest.raises(ApiConnectionError) as caught:
        client.get(FEEDBACK_ID)
    assert caught.value.status == 0
    assert "refused" in caught.value.detail.lower()
    assert TOKEN not in str(caught.value) and TOKEN not in repr(caught.value)
    assert isinstance(caught.value, ApiError)


def test_timeout_is_a_connection_error(scripted: ScriptedServer) -> None:
    scripted.script(Answer(200, {"data": item(1)}, hold=threading.Event()))
    with FeedbackApi(scripted.url, TOKEN, ORG, project=PROJECT, timeout=0.2) as client:
        started = time.monotonic()
        with pytest.raises(ApiConnectionError, match=r"(?i)timed out"):
            client.get(FEEDBACK_ID)
    assert time.monotonic() - started < 3


def test_closed_client_refuses_calls(scripted: ScriptedServer) -> None:
    client = FeedbackApi(scripted.url, TOKEN, ORG, project=PROJECT)
    client.close()
    client.close()
    with pytest.raises(ApiConnectionError, match="closed"):
        client.get(FEEDBACK_ID)
    assert scripted.requests == []


# -- the token -----------------------------------------------------------------------------


def test_token_is_never_in_repr_or_error_messages(scripted: ScriptedServer) -> None:
    def echo(request: Recorded) -> Answer:
        auth = request.headers["Authorization"]
        return Answer(401, {"detail": f"Invalid token header {auth}", "errors": {auth: [auth]}}, {"X-Echo": "x"})

    scripted.handler = echo
    client = FeedbackApi(scripted.url, TOKEN, ORG, project=PROJECT)
    assert TOKEN not in repr(client) and TOKEN not in str(client)
    assert repr(client) == f"FeedbackApi(url='{scripted.url}/api/0', org='acme', project='web')"
    with pytest.raises(Unauthorized) as caught:
        client.get(FEEDBACK_ID)
    error = caught.value
    for text in (str(error), repr(error), error.detail, repr(error.errors), repr(error.args)):
        assert TOKEN not in text
    assert "[token]" in error.detail
    client.close()


def test_tokens_that_cannot_be_sent_are_refused_without_echo() -> None:
    for bad in ("", "   ", "abc\r\nX-Injected: 1", "tökén-secret"):
        with pytest.raises(ValueError) as caught:
            FeedbackApi("http://127.0.0.1:1", bad, ORG)
        assert bad.strip() == "" or bad not in str(caught.value)


def test_redirects_to_another_host_drop_the_token() -> None:
    with ScriptedServer() as target, ScriptedServer() as origin:
        target.handler = lambda request: Answer(200, {"data": item(1)})
        moved = f"http://localhost:{urllib.parse.urlsplit(target.url).port}{ITEM_PATH}"
        origin.script(Answer(302, None, {"Location": moved}))
        with FeedbackApi(origin.url, TOKEN, ORG, project=PROJECT) as client:
            assert client.get(FEEDBACK_ID).id == f"{1:032x}"
        assert "Authorization" in origin.requests[0].headers
        assert "Authorization" not in target.requests[0].headers


# -- construction ------------------------------------------------------------------------


def test_urls_and_options() -> None:
    assert FeedbackApi("https://sentry.io", TOKEN, ORG).url == "https://sentry.io/api/0"
    assert FeedbackApi("https://sentry.io/", TOKEN, ORG).url == "https://sentry.io/api/0"
    assert FeedbackApi("https://sentry.io/api/0/", TOKEN, ORG).url == "https://sentry.io/api/0"
    assert FeedbackApi("http://h:8970/prefix", TOKEN, ORG).url == "http://h:8970/prefix/api/0"
    for url in ("sentry.io", "ftp://sentry.io", "http://", ""):
        with pytest.raises(ValueError):
            FeedbackApi(url, TOKEN, ORG)
    bad_options: list[dict[str, Any]] = [{"timeout": 0}, {"retries": -1}, {"max_retry_wait": -1}]
    for options in bad_options:
        with pytest.raises(ValueError):
            FeedbackApi("https://sentry.io", TOKEN, ORG, **options)
    assert "secret" not in repr(FeedbackApi("https://user:secret@sentry.io", TOKEN, ORG))


def test_a_given_pool_is_used_and_not_closed(scripted: ScriptedServer) -> None:
    scripted.handler = lambda request: Answer(200, {"data": item(1)})
    pool = urllib3.PoolManager()
    with FeedbackApi(scripted.url, TOKEN, ORG, project=PROJECT, pool=pool) as client:
        client.get(FEEDBACK_ID)
    assert len(pool.pools) == 1
    pool.clear()


def test_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SENTRY_URL", "SENTRY_AUTH_TOKEN", "SENTRY_ORG", "SENTRY_PROJECT"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ValueError, match="SENTRY_AUTH_TOKEN"):
        FeedbackApi.from_env()
    monkeypatch.setenv("SENTRY_AUTH_TOKEN", TOKEN)
    with pytest.raises(ValueError, match="SENTRY_ORG"):
        FeedbackApi.from_env()
    monkeypatch.setenv("SENTRY_ORG", ORG)
    client = FeedbackApi.from_env()
    assert (client.url, client.org, client.project) == ("https://sentry.io/api/0", ORG, None)
    monkeypatch.setenv("SENTRY_URL", "http://127.0.0.1:8970")
    monkeypatch.setenv("SENTRY_PROJECT", PROJECT)
    client = FeedbackApi.from_env(timeout=3, org="other")
    assert (client.url, client.org, client.project, client.timeout) == (
        "http://127.0.0.1:8970/api/0",
        "other",
        PROJECT,
        3,
    )


# -- downloads ----------------------------------------------------------------------------


def test_download_to_keeps_hostile_names_inside_the_folder(scripted: ScriptedServer, tmp_path: Path) -> None:
    def handler(request: Recorded) -> Answer:
        if request.path.endswith("/attachments/"):
            return Answer(200, {"data": [{"id": "1", "name": "../../etc/passwd"}, {"id": "2", "name": ".."}]})
        attachment_id = request.path.rstrip("/").rsplit("/", 1)[-1]
        disposition = {
            "3": "attachment; filename=\"..\\\\..\\\\evil.bat\"; filename*=UTF-8''..%2F..%2Fevil.sh",
            "4": 'attachment; filename="/abs/.hidden"',
            "5": 'attachment; filename="a\x07b<c>.txt"',
        }.get(attachment_id, "attachment")
        return Answer(200, f"content {attachment_id}".encode(), {"Content-Disposition": disposition})

    scripted.handler = handler
    folder = tmp_path / "downloads"
    folder.mkdir()
    with FeedbackApi(scripted.url, TOKEN, ORG, project=PROJECT) as client:
        listed = client.attachments(FEEDBACK_ID)
        saved = [client.download_to(FEEDBACK_ID, attachment, folder) for attachment in listed]
        saved += [client.download_to(FEEDBACK_ID, number, folder) for number in ("3", "4", "5", "6")]
        explicit = client.download_to(FEEDBACK_ID, "1", tmp_path / "chosen.bin")
    assert [path.name for path in saved] == [
        "passwd",
        "attachment-2",
        "evil.sh",
        "hidden",
        "a_b_c_.txt",
        "attachment-6",
    ]
    for path in saved:
        assert path.parent == folder
        assert path.read_bytes().startswith(b"content ")
    assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p in saved)  # no temporary files left
    assert explicit == tmp_path / "chosen.bin" and explicit.read_bytes() == b"content 1"
    assert not (tmp_path / "etc").exists()


def test_download_to_streams_big_files_and_replaces(scripted: ScriptedServer, tmp_path: Path) -> None:
    blob = bytes(range(256)) * 4096  # 1 MiB
    scripted.handler = lambda request: Answer(200, blob, {"Content-Type": "application/octet-stream"})
    target = tmp_path / "blob.bin"
    target.write_bytes(b"old")
    with FeedbackApi(scripted.url, TOKEN, ORG, project=PROJECT) as client:
        assert client.download_to(FEEDBACK_ID, FeedbackAttachment(id="9", name="x"), target) == target
    assert target.read_bytes() == blob


def test_failed_download_leaves_nothing(scripted: ScriptedServer, tmp_path: Path) -> None:
    scripted.handler = lambda request: Answer(404, {"detail": "no such attachment"})
    with FeedbackApi(scripted.url, TOKEN, ORG, project=PROJECT) as client, pytest.raises(NotFound):
        client.download_to(FEEDBACK_ID, "1", tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_feedback_object_from_the_scripted_server(scripted: ScriptedServer, sapi: FeedbackApi) -> None:
    scripted.script(Answer(200, {"data": item(5, tags={"a": ["1", 2]}, attachment_count="3")}))
    feedback = sapi.get(FEEDBACK_ID)
    assert isinstance(feedback, UserFeedback)
    assert dict(feedback.tags) == {"a": ("1", "2")}
    assert feedback.attachment_count == 3
