"""Seed 003's own examples over HTTP: its create request, its browse item, and its attribute table for every item."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sentry_feedback._envelope import Envelope, EnvelopeItem
from sentry_feedback.server import LocalReceiver

from .conftest import (
    ALL_TIME,
    HYPOTHESIS,
    INDEX,
    ORG,
    SEED_CREATE_BODY,
    SEED_CREATE_BYTES,
    SEED_ITEM,
    TOKEN,
    WEB,
    Api,
    assert_seed_item,
    envelope_bytes,
    item_path,
    parse_iso,
    post_envelope,
    stop_later,
)

SEED_ID = SEED_ITEM["id"]
AROUND_SEED = {"start": "2023-08-31T00:00:00Z", "end": "2023-09-01T00:00:00Z"}
#: Attributes the seed's create request and browse item both give, with the same value.
SHARED = (
    *("dist", "contact_email", "environment", "error_ids", "id", "message", "platform", "release", "replay_id"),
    *("sdk", "trace_ids", "url"),
)
NULL_OBJECTS = {
    "browser": {"name": None, "version": None},
    "device": {"brand": None, "family": None, "model": None, "name": None},
    "locale": {"lang": None, "timezone": None},
    "os": {"name": None, "version": None},
}


def expected_from_create() -> dict[str, Any]:
    """The browse item of the seed's create request: the seed's browse item where the request says the same."""
    data = SEED_CREATE_BODY["data"]
    expected = {key: SEED_ITEM[key] for key in (*SHARED, "timestamp")}
    user = data["user"]
    expected.update(
        NULL_OBJECTS,  # the create request has no browser, os, device or locale
        status="unresolved",
        tags={"key": "value"},
        request=data["request"],
        user={
            "display_name": user["name"],
            "email": user["email"],
            "id": user["id"],
            "ip": user["ip_address"],
            "username": user["username"],
        },
    )
    return expected


def assert_matches(item: dict[str, Any], expected: dict[str, Any]) -> None:
    """``item`` has ``expected``'s values, field by field; timestamps compare as instants."""
    assert_seed_item(item)
    for key, value in expected.items():
        if key == "timestamp":
            assert parse_iso(item[key]) == parse_iso(value)
        else:
            assert item[key] == value, (key, item[key], value)


@pytest.fixture
def single() -> Iterator[LocalReceiver]:
    """A server with a single project (``default``): a create request needs no project."""
    local = LocalReceiver(org=ORG, api_token=TOKEN).start()
    yield local
    stop_later(local)


def test_the_seed_examples_agree_where_both_give_a_value() -> None:
    data = SEED_CREATE_BODY["data"]
    for key in SHARED:
        assert data[key] == SEED_ITEM[key], key
    assert data["timestamp"] == SEED_ITEM["timestamp"]
    assert set(SEED_CREATE_BODY) == {"data"}


def test_the_seed_create_request_as_given_reads_back_as_the_seed_item(single: LocalReceiver) -> None:
    api = Api(single)
    # The seed's bytes, exactly; no project: the server has only one.
    created = api.request("POST", INDEX, body=SEED_CREATE_BYTES, headers={"Content-Type": "application/json"})
    assert created.status == 201, created.data
    assert_matches(created.item, expected_from_create())
    assert created.item["timestamp"] == "2023-08-31T14:10:34.954048Z"

    fetched = api.get(item_path(single.project_slug, SEED_ID))
    assert fetched.status == 200
    assert fetched.item == created.item

    listed = api.browse(AROUND_SEED)
    assert listed.items == [created.item]
    assert listed.hits == 1
    assert api.browse().items == []  # the default statsPeriod (7d) leaves out 2023
    assert api.browse({"statsPeriod": ALL_TIME}).ids == [SEED_ID]
    api.close()


def test_the_seed_create_request_in_a_named_project(api: Api) -> None:
    created = api.request(
        "POST", INDEX, {"project": WEB.slug}, body=SEED_CREATE_BYTES, headers={"Content-Type": "application/json"}
    )
    assert created.status == 201, created.data
    assert_matches(created.item, expected_from_create())
    assert (created.item["project"], created.item["project_id"]) == (WEB.slug, WEB.id)
    assert api.get(item_path(WEB.slug, SEED_ID)).item == created.item
    assert api.browse(AROUND_SEED).items == [created.item]


def test_the_seed_browse_item_posted_back_reads_back_as_itself(api: Api) -> None:
    """The browse item as a create body (browse names ip/display_name are accepted): every value survives."""
    created = api.create({**SEED_ITEM, "project": WEB.slug})
    assert created.status == 201, created.data
    listed = api.browse(AROUND_SEED).items
    assert listed == [created.item]
    expected = {**SEED_ITEM, "request": None}
    assert_matches(created.item, expected)
    assert created.item["tags"] == {"hello": "is", "it": ["me", "you're", "looking", "for"]}


def test_an_envelope_with_every_seed_attribute_browses_as_the_seed_item(api: Api) -> None:
    """What an SDK sends (contexts, tags as pairs, user with ip_address) maps to the seed's browse item."""
    seed = SEED_ITEM
    tags = [["hello", "is"], *(["it", value] for value in seed["tags"]["it"])]
    event = {
        "type": "feedback",
        "event_id": SEED_ID,
        "timestamp": seed["timestamp"],
        "platform": seed["platform"],
        "environment": seed["environment"],
        "release": seed["release"],
        "dist": seed["dist"],
        "level": "info",
        "sdk": seed["sdk"],
        "tags": tags,
        "user": {
            "id": seed["user"]["id"],
            "email": seed["user"]["email"],
            "username": seed["user"]["username"],
            "ip_address": seed["user"]["ip"],
            "name": seed["user"]["display_name"],
        },
        "contexts": {
            "feedback": {
                "message": seed["message"],
                "contact_email": seed["contact_email"],
                "url": seed["url"],
                "associated_event_id": seed["error_ids"][0],
                "replay_id": seed["replay_id"],
            },
            "trace": {"type": "trace", "trace_id": seed["trace_ids"][0], "span_id": "a1b2c3d4e5f60718"},
            "browser": {"type": "browser", **seed["browser"]},
            "os": {"type": "os", **seed["os"]},
            "device": {"type": "device", **seed["device"]},
            "culture": {"type": "culture", "locale": seed["locale"]["lang"], "timezone": seed["locale"]["timezone"]},
        },
    }
    body = Envelope({"event_id": SEED_ID}, [EnvelopeItem.from_json("feedback", event)]).serialize()
    response = post_envelope(api.server, body)
    assert response.status == 200, response.data
    (item,) = api.browse(AROUND_SEED).items
    assert_matches(item, {**seed, "request": None})
    assert item["timestamp"] == seed["timestamp"] + "Z"
    assert api.get(item_path(WEB.slug, SEED_ID)).item == item


# -- every item has the seed's shape, whatever the SDK sent -----------------------------------------

_json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
_json = st.recursive(
    _json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)
_uuid_like = st.uuids().map(lambda u: u.hex) | st.uuids().map(str) | _json


def _sub_object(keys: tuple[str, ...]) -> st.SearchStrategy[Any]:
    return st.dictionaries(st.sampled_from(keys), _json, max_size=len(keys)) | _json


_timestamps = (
    st.floats(min_value=-1e12, max_value=1e12, allow_nan=False)
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.datetimes(timezones=st.none() | st.just(timezone.utc)).map(lambda d: d.isoformat())
    | _json
)
_message = st.text(min_size=1, max_size=40).filter(lambda text: text.strip() != "")
_feedback_context = st.fixed_dictionaries(
    {"message": _message},
    optional={
        "contact_email": _json,
        "name": _json,
        "url": _json,
        "associated_event_id": _uuid_like,
        "replay_id": _uuid_like,
        "source": _json,
    },
)
_events = st.fixed_dictionaries(
    {
        "type": st.just("feedback"),
        "contexts": st.fixed_dictionaries(
            {"feedback": _feedback_context},
            optional={
                "browser": _sub_object(("name", "version", "type")),
                "os": _sub_object(("name", "version")),
                "device": _sub_object(("brand", "family", "model", "name")),
                "culture": _sub_object(("locale", "timezone")),
                "trace": _sub_object(("trace_id", "span_id")),
            },
        ),
    },
    optional={
        "timestamp": _timestamps,
        "platform": _json,
        "environment": _json,
        "release": _json,
        "dist": _json,
        "sdk": _sub_object(("name", "version")),
        "request": _json,
        "tags": st.dictionaries(st.text(max_size=6), _json, max_size=4)
        | st.lists(st.lists(_json_scalars, min_size=2, max_size=2), max_size=4)
        | _json,
        "user": _sub_object(("id", "email", "username", "ip_address", "name")),
    },
)


def test_every_item_has_every_seed_attribute_with_its_type(api: Api) -> None:
    """Hypothesis-made feedback events, sent as envelopes to the ingest endpoint, all browse in the seed's shape."""
    sent: list[str] = []

    @HYPOTHESIS
    @given(event=_events, header_sdk=_json)
    def check(event: dict[str, Any], header_sdk: Any) -> None:
        feedback_id = uuid.UUID(int=len(sent) + 1).hex
        header = {"event_id": feedback_id, "sdk": header_sdk}
        body = envelope_bytes(header, [({"type": "feedback"}, json.dumps(event).encode())])
        response = post_envelope(api.server, body)
        assert response.status == 200, response.data
        sent.append(feedback_id)
        reply = api.get(item_path(WEB.slug, feedback_id))
        assert reply.status == 200
        assert_seed_item(reply.item)
        assert reply.item["message"] == event["contexts"]["feedback"]["message"]

    check()
    assert sent
    seen: set[str] = set()
    params: dict[str, str] = {"statsPeriod": ALL_TIME, "per_page": "100"}
    while True:  # and so does every page of the listing
        page = api.browse(params)
        for item in page.items:
            assert_seed_item(item)
            seen.add(item["id"])
        if not page.links["next"].results:
            break
        params["cursor"] = page.links["next"].cursor
    assert seen <= set(sent)


def test_an_envelope_with_a_huge_integer_timestamp_is_not_a_server_error(api: Api) -> None:
    """JSON integers have no limit: a timestamp of 10**400 is a bad value (400) or ignored, never a 500."""
    event = {"type": "feedback", "timestamp": 10**400, "contexts": {"feedback": {"message": "From the far future"}}}
    body = envelope_bytes({"event_id": uuid.UUID(int=1).hex}, [({"type": "feedback"}, json.dumps(event).encode())])
    response = post_envelope(api.server, body)
    assert response.status in (200, 400), (response.status, response.data)
    if response.status == 200:
        item = api.get(item_path(WEB.slug, uuid.UUID(int=1).hex)).item
        assert_seed_item(item)
