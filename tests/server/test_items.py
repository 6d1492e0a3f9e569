"""Stored feedback as the User Feedback API's items, and create bodies as feedback events (seed 003)."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sentry_feedback import Envelope, EnvelopeItem
from sentry_feedback._feedback import MAX_MESSAGE_LENGTH
from sentry_feedback.server import FeedbackStore, StoredFeedback
from sentry_feedback.server._items import ITEM_KEYS, CreateResult, event_from_create_body, feedback_item
from sentry_feedback.testing import normalize_with_relay

NOW = 1_700_000_000.25

#: The seed's examples, as the seed gives them (shared with the REST API tests).
SEEDS = Path(__file__).resolve().parents[1] / "rest"
SEED_ITEM: dict[str, Any] = json.loads((SEEDS / "seed_browse_response.json").read_text("utf-8"))["data"][0]
SEED_CREATE_BODY: dict[str, Any] = json.loads((SEEDS / "seed_create_request.json").read_text("utf-8"))

SEED_REQUEST = {"url": "https://docs.sentry.io/platforms/javascript/", "headers": {"User-Agent": "Mozilla/5.0"}}

OBJECT_KEYS = {
    "browser": {"name", "version"},
    "device": {"brand", "family", "model", "name"},
    "locale": {"lang", "timezone"},
    "os": {"name", "version"},
    "sdk": {"name", "version"},
    "user": {"display_name", "email", "id", "ip", "username"},
}
OPTIONAL_STRINGS = {"contact_email", "dist", "environment", "message", "platform", "release", "replay_id", "url"}


def seed_event() -> dict[str, Any]:
    """The feedback event a browser SDK would send for the seed's example item."""
    return {
        "event_id": "1ffe0775-ac0f-4417-aed9-de36d9f6f8dc",
        "type": "feedback",
        "level": "info",
        "timestamp": 1693491034.954048,  # 2023-08-31T14:10:34.954048Z, as browser SDKs send it
        "platform": "javascript",
        "environment": "production",
        "release": "version@1.3",
        "dist": "abc123",
        "sdk": {"name": "sentry.javascript.react", "version": "6.18.1", "integrations": ["Feedback"]},
        "tags": [["hello", "is"], ["it", "me"], ["it", "you're"], ["it", "looking"], ["it", "for"]],
        "user": {
            "id": 30246326,
            "email": "john.doe@example.com",
            "ip_address": "213.164.1.114",
            "username": "John Doe",
            "name": "John Doe",
        },
        "request": SEED_REQUEST,
        "contexts": {
            "feedback": {
                "message": "I really like this user-feedback feature!",
                "contact_email": "colton.allen@sentry.io",
                "url": "https://docs.sentry.io/platforms/javascript/",
                "associated_event_id": "4F0E18332D11431C9B97D924EDECB76E",
                "replay_id": "ec3b4dc8b79f417596f7a1aa4fcca5d2",
                "source": "widget",
            },
            "trace": {"trace_id": "fbb42a39a61e4aa6969b4fecbfbbc114", "span_id": "a1b2c3d4e5f60718"},
            "browser": {"type": "browser", "name": "Chome", "version": "103.0.38"},
            "os": {"type": "os", "name": "iOS", "version": "16.2", "build": "20C65"},
            "device": {"type": "device", "brand": "Apple", "family": "iPhone", "model": "11", "name": "iPhone 11"},
            "culture": {"type": "culture", "locale": "en", "timezone": "UTC+1"},
        },
    }


def expected_seed_item(**changes: Any) -> dict[str, Any]:
    """The seed's item as we answer it: the seed's example omits ``request`` and has no ``Z``."""
    return {**SEED_ITEM, "timestamp": SEED_ITEM["timestamp"] + "Z", "request": None, **changes}


@pytest.fixture
def store() -> Iterator[FeedbackStore]:
    with FeedbackStore() as s:
        yield s


def stored(store: FeedbackStore, event: dict[str, Any], **headers: Any) -> StoredFeedback:
    """``event`` sent as a feedback envelope and read back from ``store``."""
    store.store_envelope("1", Envelope(headers, [EnvelopeItem.from_json("feedback", event)]), 1)
    return store.list_feedback()[-1]


def stored_raw(data: Any, **columns: Any) -> StoredFeedback:
    """A StoredFeedback as a row could hold it, whatever ``data`` is (bypassing the store's checks)."""
    values: dict[str, Any] = {
        "id": 1,
        "event_id": "a" * 32,
        "project_id": "1",
        "message": "fallback message",
        "contact_email": None,
        "name": None,
        "url": None,
        "associated_event_id": None,
        "replay_id": None,
        "source": None,
        "environment": None,
        "release": None,
        "dist": None,
        "platform": None,
        "timestamp": None,
        "tags": {},
        "user": None,
        "trace_id": None,
        "sdk": None,
        "status": "unresolved",
        "received_at": NOW,
        "data": data,
    }
    values.update(columns)
    return StoredFeedback(**values)


def assert_item_shape(item: dict[str, Any]) -> None:
    """Every attribute of the seed's table, each of its JSON type (``None`` where optional)."""
    assert tuple(item) == ITEM_KEYS
    for key in OPTIONAL_STRINGS:
        assert item[key] is None or isinstance(item[key], str), key
    for key in ("id", "status", "timestamp"):
        assert isinstance(item[key], str), key
    for key in ("error_ids", "trace_ids"):
        assert isinstance(item[key], list) and all(isinstance(v, str) and v for v in item[key]), key
    for key, sub_keys in OBJECT_KEYS.items():
        assert isinstance(item[key], dict) and set(item[key]) == sub_keys, key
        assert all(v is None or isinstance(v, str) for v in item[key].values()), key
    assert isinstance(item["tags"], dict)
    for value in item["tags"].values():
        assert isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value))
    assert item["request"] is None or isinstance(item["request"], dict)
    assert item["timestamp"].endswith("Z")
    json.dumps(item)


# -- (a) a stored event as the seed's item --------------------------------------------


def test_item_keys_are_the_seed_attributes() -> None:
    assert set(ITEM_KEYS) == set(SEED_ITEM) | {"request"}  # request is in the table, not in the example
    assert list(ITEM_KEYS) == sorted(ITEM_KEYS)


def test_stored_seed_event_is_the_seed_item(store: FeedbackStore) -> None:
    item = feedback_item(stored(store, seed_event()))

    # Only two differences from the seed's example: the example leaves out ``request`` (it is in the
    # table; we give the event's object), and its timestamp has no zone (ours is UTC and says ``Z``).
    assert item == expected_seed_item(request=SEED_REQUEST)
    assert_item_shape(item)


def test_seed_item_with_iso_timestamp_and_object_tags(store: FeedbackStore) -> None:
    event = seed_event()
    event["timestamp"] = "2023-08-31T16:10:34.954048+02:00"
    event["tags"] = {"hello": "is", "it": ["me", "you're", "looking", "for"]}
    del event["request"]

    assert feedback_item(stored(store, event)) == expected_seed_item()


def test_status_comes_from_the_store(store: FeedbackStore) -> None:
    store.store_envelope("1", Envelope({}, [EnvelopeItem.from_json("feedback", seed_event())]), 1)
    assert store.set_feedback_status(SEED_ITEM["id"], "resolved")

    [feedback] = store.list_feedback()
    assert feedback_item(feedback)["status"] == "resolved"


def test_envelope_header_fills_in_trace_and_sdk(store: FeedbackStore) -> None:
    event = {"event_id": "b" * 32, "contexts": {"feedback": {"message": "hi"}}, "timestamp": 0}
    trace = {"trace_id": "c" * 32, "public_key": "k"}
    item = feedback_item(stored(store, event, trace=trace, sdk={"name": "sentry.python", "version": "2.0"}))

    assert item["trace_ids"] == ["c" * 32]
    assert item["sdk"] == {"name": "sentry.python", "version": "2.0"}
    assert item["timestamp"] == "1970-01-01T00:00:00.000000Z"


def test_display_name_falls_back_to_the_feedback_name_and_auto_ip_is_unknown(store: FeedbackStore) -> None:
    event = {"contexts": {"feedback": {"message": "hi", "name": "Jane"}}, "user": {"ip_address": "{{auto}}"}}
    user = feedback_item(stored(store, event))["user"]

    assert user == {"display_name": "Jane", "email": None, "id": None, "ip": None, "username": None}


def test_tag_values_become_text(store: FeedbackStore) -> None:
    event = {
        "contexts": {"feedback": {"message": "hi"}},
        "tags": {"n": 3, "yes": True, "gone": None, "obj": {"a": 1}, "many": ["x", 2, None]},
    }
    tags = feedback_item(stored(store, event))["tags"]

    assert tags == {"n": "3", "yes": "true", "obj": '{"a": 1}', "many": ["x", "2"]}


# -- (b) the create example round-trips -----------------------------------------------


def test_seed_create_body_round_trips(store: FeedbackStore) -> None:
    event, errors = event_from_create_body(copy.deepcopy(SEED_CREATE_BODY), now=NOW)
    assert errors == {}

    item = feedback_item(stored(store, event, event_id=event["event_id"]))

    body = SEED_CREATE_BODY["data"]
    user = body["user"]
    # Field for field what the body gave; what it did not give is unknown (null) and the status is new.
    assert item == {
        **{key: body[key] for key in ("contact_email", "dist", "environment", "error_ids", "id", "message")},
        **{key: body[key] for key in ("platform", "release", "replay_id", "request", "sdk", "tags", "trace_ids")},
        "url": body["url"],
        "timestamp": body["timestamp"] + "Z",
        "status": "unresolved",
        "user": {
            "display_name": user["name"],
            "email": user["email"],
            "id": user["id"],
            "ip": user["ip_address"],
            "username": user["username"],
        },
        "browser": {"name": None, "version": None},
        "device": {"brand": None, "family": None, "model": None, "name": None},
        "locale": {"lang": None, "timezone": None},
        "os": {"name": None, "version": None},
    }
    assert_item_shape(item)


def test_seed_create_body_makes_an_event_sentry_accepts() -> None:
    event, errors = event_from_create_body(SEED_CREATE_BODY, now=NOW)
    assert errors == {}
    assert event["type"] == "feedback"
    assert event["contexts"]["feedback"]["associated_event_id"] == "4f0e18332d11431c9b97d924edecb76e"
    normalize_with_relay(copy.deepcopy(event))


def test_seed_browse_item_as_a_create_body_round_trips(store: FeedbackStore) -> None:
    # A client may send back what it browsed: the browse names (user.ip, display_name) are accepted too.
    event, errors = event_from_create_body({"data": {**SEED_ITEM, "status": "resolved"}}, now=NOW)
    assert errors == {}

    assert feedback_item(stored(store, event)) == expected_seed_item()
    normalize_with_relay(copy.deepcopy(event))


def test_create_defaults() -> None:
    event, errors = event_from_create_body({"data": {"message": "hi"}}, now=NOW)

    assert errors == {}
    assert len(event.pop("event_id")) == 32
    assert event == {
        "type": "feedback",
        "level": "info",
        "timestamp": NOW,
        "platform": "other",
        "contexts": {"feedback": {"message": "hi"}},
    }


def test_create_normalizes_ids_and_timestamps(store: FeedbackStore) -> None:
    body = {
        "message": "hi",
        "id": "1FFE0775-AC0F-4417-AED9-DE36D9F6F8DC",
        "replay_id": "EC3B4DC8-B79F-4175-96F7-A1AA4FCCA5D2",
        "timestamp": "2023-08-31T16:10:34.5+02:00",
        "user": {"id": 42},
    }
    event, errors = event_from_create_body(body, now=NOW)  # the bare object is accepted too
    assert errors == {}

    item = feedback_item(stored(store, event))
    assert item["id"] == "1ffe0775ac0f4417aed9de36d9f6f8dc"
    assert item["replay_id"] == "ec3b4dc8b79f417596f7a1aa4fcca5d2"
    assert item["timestamp"] == "2023-08-31T14:10:34.500000Z"
    assert item["user"]["id"] == "42"

    event, errors = event_from_create_body({"message": "hi", "timestamp": 1693491034}, now=NOW)
    assert errors == {}
    assert feedback_item(stored(store, event))["timestamp"] == "2023-08-31T14:10:34.000000Z"


# -- (c) every key, of its type, whatever was stored ----------------------------------


def test_minimal_feedback_has_every_key(store: FeedbackStore) -> None:
    item = feedback_item(stored(store, {"contexts": {"feedback": {"message": "hi"}}}, event_id="d" * 32))

    assert_item_shape(item)
    assert item["id"] == "d" * 32
    assert item["message"] == "hi"
    assert item["status"] == "unresolved"
    assert item["error_ids"] == item["trace_ids"] == []
    assert item["tags"] == {}
    assert item["request"] is None
    assert item["user"] == dict.fromkeys(OBJECT_KEYS["user"])
    assert all(item[key] is None for key in OPTIONAL_STRINGS - {"message"})


WRONG_TYPES: list[dict[str, Any]] = [
    {
        "user": "jane",
        "tags": 5,
        "request": "GET /",
        "sdk": ["python"],
        "platform": None,
        "environment": {"a": 1},
        "release": ["1"],
        "dist": True,
        "timestamp": "yesterday",
    },
    {
        "user": {"id": {"x": 1}, "email": ["a"], "ip_address": 7, "name": False, "username": None},
        "tags": [["ok", "yes"], "not a pair", ["a"], [1, 2, 3], [None, "v"], [2, None]],
        "request": [],
        "sdk": {"name": 1, "version": None},
        "timestamp": float("inf"),
    },
    {"contexts_extra": {"browser": "x", "os": [], "device": 3, "culture": None, "trace": "t"}},
    {
        "contexts_extra": {
            "browser": {"name": ["Chrome"], "version": 103},
            "trace": {"trace_id": 5},
            "culture": {"locale": {}, "timezone": True},
        },
        "feedback_extra": {"associated_event_id": ["x"], "replay_id": {}, "url": 3, "contact_email": [], "name": 1},
        "timestamp": -1e300,
    },
]


@pytest.mark.parametrize("extra", WRONG_TYPES)
def test_wrong_types_through_the_store_keep_every_key(store: FeedbackStore, extra: dict[str, Any]) -> None:
    extra = dict(extra)
    contexts: dict[str, Any] = {"feedback": {"message": "hi", **extra.pop("feedback_extra", {})}}
    contexts.update(extra.pop("contexts_extra", {}))
    item = feedback_item(stored(store, {"contexts": contexts, **extra}))

    assert_item_shape(item)
    assert item["message"] == "hi"


@pytest.mark.parametrize("data", [None, [], "x", 3, {"contexts": []}, {"contexts": {"feedback": "hi"}}])
def test_wrong_types_in_any_row_keep_every_key(data: Any) -> None:
    item = feedback_item(stored_raw(data))

    assert_item_shape(item)
    assert item["message"] == "fallback message"
    assert item["timestamp"] == "2023-11-14T22:13:20.250000Z"  # received_at, as the event has none


# -- (d) create bodies that are refused -----------------------------------------------


@pytest.mark.parametrize(
    ("data", "errors"),
    [
        ({}, {"message": ["This field is required."]}),
        ({"message": None}, {"message": ["This field is required."]}),
        ({"message": ""}, {"message": ["This field may not be blank."]}),
        ({"message": " \n\t"}, {"message": ["This field may not be blank."]}),
        ({"message": 5}, {"message": ["Not a valid string."]}),
        ({"message": ["hi"]}, {"message": ["Not a valid string."]}),
        (
            {"message": "x" * (MAX_MESSAGE_LENGTH + 1)},
            {"message": [f"Ensure this field has no more than {MAX_MESSAGE_LENGTH} characters."]},
        ),
        ({"message": "hi", "id": "nope"}, {"id": ["Must be a valid UUID (32 hex digits, dashes allowed)."]}),
        ({"message": "hi", "id": 12}, {"id": ["Must be a valid UUID (32 hex digits, dashes allowed)."]}),
        (
            {"message": "hi", "replay_id": "a" * 31},
            {"replay_id": ["Must be a valid UUID (32 hex digits, dashes allowed)."]},
        ),
        ({"message": "hi", "error_ids": "a" * 32}, {"error_ids": ["Expected a list of items."]}),
        (
            {"message": "hi", "trace_ids": ["a" * 32, "g" * 32]},
            {"trace_ids.1": ["Must be a valid UUID (32 hex digits, dashes allowed)."]},
        ),
        (
            {"message": "hi", "timestamp": "yesterday"},
            {"timestamp": ["Must be an ISO 8601 datetime (naive means UTC) or a Unix timestamp in seconds."]},
        ),
        (
            {"message": "hi", "timestamp": True},
            {"timestamp": ["Must be an ISO 8601 datetime (naive means UTC) or a Unix timestamp in seconds."]},
        ),
        (
            {"message": "hi", "timestamp": 1e300},
            {"timestamp": ["Must be an ISO 8601 datetime (naive means UTC) or a Unix timestamp in seconds."]},
        ),
        ({"message": "hi", "tags": {"a": 1}}, {"tags.a": ["Tag values must be strings or lists of strings."]}),
        ({"message": "hi", "tags": {"a": []}}, {"tags.a": ["Tag values must be strings or lists of strings."]}),
        ({"message": "hi", "tags": ["a"]}, {"tags": ["Expected an object."]}),
        ({"message": "hi", "user": "jane"}, {"user": ["Expected an object."]}),
        (
            {"message": "hi", "user": {"email": 1, "id": 1.5}},
            {"user.email": ["Not a valid string."], "user.id": ["Not a valid string."]},
        ),
        ({"message": "hi", "browser": {"name": 1}}, {"browser.name": ["Not a valid string."]}),
        ({"message": "hi", "request": "GET /"}, {"request": ["Expected an object."]}),
        (
            {"message": "hi", "environment": 1, "sdk": []},
            {"environment": ["Not a valid string."], "sdk": ["Expected an object."]},
        ),
        (
            {"message": "", "id": "x"},
            {
                "message": ["This field may not be blank."],
                "id": ["Must be a valid UUID (32 hex digits, dashes allowed)."],
            },
        ),
    ],
)
def test_bad_create_bodies_give_errors_per_field(data: dict[str, Any], errors: dict[str, list[str]]) -> None:
    assert event_from_create_body({"data": data}, now=NOW) == CreateResult({}, errors)


@pytest.mark.parametrize("body", [None, [], "message", 3, True])
def test_body_not_an_object(body: Any) -> None:
    assert event_from_create_body(body, now=NOW) == CreateResult({}, {"non_field_errors": ["Expected an object."]})


@pytest.mark.parametrize("data", [None, [], "message", 3])
def test_data_not_an_object(data: Any) -> None:
    assert event_from_create_body({"data": data}, now=NOW) == CreateResult({}, {"data": ["Expected an object."]})


def test_longest_message_is_accepted() -> None:
    event, errors = event_from_create_body({"data": {"message": "x" * MAX_MESSAGE_LENGTH}}, now=NOW)
    assert errors == {}
    assert event["contexts"]["feedback"]["message"] == "x" * MAX_MESSAGE_LENGTH


# -- (e) properties -------------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


def _maybe(keys: tuple[str, ...], values: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional=dict.fromkeys(keys, values))


CONTEXTS = JSON | _maybe(
    ("feedback", "trace", "browser", "os", "device", "culture"),
    JSON | _maybe(("message", "name", "url", "associated_event_id", "trace_id", "locale", "timezone", "version"), JSON),
)
EVENTS = (
    JSON
    | _maybe(("user", "sdk"), JSON | _maybe(("name", "ip_address", "id", "version"), JSON))
    | st.builds(
        lambda base, extra: {**base, **extra},
        _maybe(("contexts",), CONTEXTS),
        _maybe(("tags", "timestamp", "request", "platform", "event_id", "environment", "user", "sdk"), JSON),
    )
)


@settings(max_examples=200, derandomize=True, database=None, deadline=None)
@given(data=EVENTS, trace_id=st.none() | st.text(max_size=40), sdk=st.none() | JSON)
def test_feedback_item_never_raises_and_has_every_key(data: Any, trace_id: str | None, sdk: Any) -> None:
    item = feedback_item(stored_raw(data, trace_id=trace_id, sdk=sdk))

    assert_item_shape(item)


CREATE_BODIES = JSON | st.builds(
    lambda base, extra: {"data": {**base, **extra}},
    st.fixed_dictionaries({"message": st.text(min_size=1, max_size=20)}),
    _maybe(("id", "error_ids", "trace_ids", "timestamp", "tags", "user", "browser", "locale", "request"), JSON),
)


@settings(max_examples=200, derandomize=True, database=None, deadline=None)
@given(body=CREATE_BODIES)
def test_create_never_raises_and_what_it_accepts_is_stored(body: Any) -> None:
    event, errors = event_from_create_body(body, now=NOW)

    assert bool(event) != bool(errors)
    if event:
        with FeedbackStore() as store:
            assert_item_shape(feedback_item(stored(store, event)))
