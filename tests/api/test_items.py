"""The client's data side, without a server: items, attachments, Link headers, file names."""

from __future__ import annotations

import copy
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sentry_feedback.api import (
    Device,
    FeedbackAttachment,
    FeedbackUser,
    Link,
    Locale,
    NameVersion,
    UserFeedback,
    parse_link_header,
)
from sentry_feedback.api._files import _safe_file_name

#: The seed's examples, as the seed gives them (shared with the REST API tests).
SEEDS = Path(__file__).resolve().parents[1] / "rest"
SEED_ITEM: dict[str, Any] = json.loads((SEEDS / "seed_browse_response.json").read_text("utf-8"))["data"][0]


# -- UserFeedback -----------------------------------------------------------------------------


def test_from_json_on_the_seed_item() -> None:
    feedback = UserFeedback.from_json(SEED_ITEM)
    assert feedback == UserFeedback(
        id="1ffe0775ac0f4417aed9de36d9f6f8dc",
        message="I really like this user-feedback feature!",
        status="unresolved",
        timestamp=datetime(2023, 8, 31, 14, 10, 34, 954048, tzinfo=timezone.utc),
        contact_email="colton.allen@sentry.io",
        dist="abc123",
        environment="production",
        platform="javascript",
        release="version@1.3",
        replay_id="ec3b4dc8b79f417596f7a1aa4fcca5d2",
        url="https://docs.sentry.io/platforms/javascript/",
        error_ids=("4f0e18332d11431c9b97d924edecb76e",),
        trace_ids=("fbb42a39a61e4aa6969b4fecbfbbc114",),
        tags=MappingProxyType({"hello": "is", "it": ("me", "you're", "looking", "for")}),
        browser=NameVersion("Chome", "103.0.38"),
        os=NameVersion("iOS", "16.2"),
        sdk=NameVersion("sentry.javascript.react", "6.18.1"),
        device=Device("Apple", "iPhone", "11", "iPhone 11"),
        locale=Locale("en", "UTC+1"),
        user=FeedbackUser("John Doe", "john.doe@example.com", "30246326", "213.164.1.114", "John Doe"),
    )
    assert feedback.timestamp is not None and feedback.timestamp.utcoffset() == timedelta(0)
    assert (feedback.request, feedback.project, feedback.project_id, feedback.name) == (None, None, None, None)
    assert feedback.attachment_count is None
    assert feedback.raw == SEED_ITEM
    assert "raw" not in repr(feedback)


def test_to_json_gives_the_seed_shape_back() -> None:
    feedback = UserFeedback.from_json(SEED_ITEM)
    expected = copy.deepcopy(SEED_ITEM)
    expected["timestamp"] = "2023-08-31T14:10:34.954048Z"
    expected["request"] = None
    assert feedback.to_json() == expected
    json.dumps(feedback.to_json())
    assert UserFeedback.from_json(feedback.to_json()) == feedback


def test_extensions_round_trip() -> None:
    item = {**SEED_ITEM, "project": "web", "project_id": 7, "name": "Jane", "attachment_count": 2}
    item["request"] = {"url": "https://shop.example/pay", "headers": {"User-Agent": "Firefox"}}
    feedback = UserFeedback.from_json(item)
    assert (feedback.project, feedback.project_id, feedback.name, feedback.attachment_count) == ("web", "7", "Jane", 2)
    assert feedback.request == item["request"]
    back = feedback.to_json()
    assert back["project"] == "web" and back["project_id"] == "7" and back["attachment_count"] == 2
    assert UserFeedback.from_json(back) == feedback


def test_feedback_is_frozen_and_read_only() -> None:
    feedback = UserFeedback.from_json({**SEED_ITEM, "request": {"method": "GET"}})
    with pytest.raises(AttributeError):
        feedback.message = "changed"  # type: ignore[misc]
    with pytest.raises(TypeError):
        feedback.tags["new"] = "x"  # type: ignore[index]
    with pytest.raises(TypeError):
        feedback.request["method"] = "POST"  # type: ignore[index]
    assert hash(feedback) == hash(UserFeedback.from_json(SEED_ITEM))
    assert len({feedback, UserFeedback.from_json(SEED_ITEM)}) == 2  # equal ids, different request


@pytest.mark.parametrize(
    "item",
    [
        {},
        {"id": None, "message": None, "status": None, "timestamp": None},
        {"id": 123, "message": 4.5, "status": True, "timestamp": "yesterday"},
        {"browser": "Chrome", "os": ["iOS"], "device": 3, "locale": None, "sdk": {"name": {"x": 1}}, "user": "me"},
        {"error_ids": "4f0e", "trace_ids": [None, 1, "ok", {"a": 1}], "tags": ["a", "b"], "request": "GET /"},
        {"tags": {"a": None, "b": {"x": 1}, "c": [1, None, "d"], "e": True, "f": 2.5}},
        {"timestamp": "2023-02-30T10:00:00"},
        {"timestamp": "9999-12-31T23:59:59-23:59"},
        {"timestamp": 1e300},
        {"timestamp": float("nan")},
        {"attachment_count": "many", "project_id": [], "name": {}, "project": None},
        {"user": {"id": 30246326, "ip": None, "email": ["x"]}},
    ],
)
def test_from_json_on_odd_items_never_raises(item: dict[str, Any]) -> None:
    feedback = UserFeedback.from_json(item)
    assert isinstance(feedback.id, str) and isinstance(feedback.message, str) and isinstance(feedback.status, str)
    assert all(isinstance(value, (str, tuple)) for value in feedback.tags.values())
    json.dumps(feedback.to_json())
    assert UserFeedback.from_json(feedback.to_json()) == feedback


def test_odd_values_become_none_or_empty() -> None:
    feedback = UserFeedback.from_json(
        {
            "id": 123,
            "browser": "Chrome",
            "error_ids": "4f0e",
            "trace_ids": [None, 1, "ok"],
            "tags": {"a": None, "c": [1, None, "d"], "e": True},
            "user": {"id": 30246326, "email": ["x"]},
            "timestamp": "2023-02-30T10:00:00",
            "attachment_count": True,
        }
    )
    assert feedback.id == "123"
    assert feedback.browser == NameVersion()
    assert feedback.error_ids == ()
    assert feedback.trace_ids == ("1", "ok")
    assert dict(feedback.tags) == {"c": ("1", "d"), "e": "true"}
    assert feedback.user == FeedbackUser(id="30246326")
    assert feedback.timestamp is None
    assert feedback.attachment_count is None
    assert feedback.status == ""


@pytest.mark.parametrize("hostile", [None, 3, "text", ["a"], [{"id": "x"}], 1.5])
def test_from_json_on_non_objects(hostile: Any) -> None:
    assert UserFeedback.from_json(hostile) == UserFeedback(id="")
    assert FeedbackAttachment.from_json(hostile) == FeedbackAttachment(id="", name="")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2023-08-31T14:10:34.954048", datetime(2023, 8, 31, 14, 10, 34, 954048, tzinfo=timezone.utc)),
        ("2023-08-31T14:10:34.954048Z", datetime(2023, 8, 31, 14, 10, 34, 954048, tzinfo=timezone.utc)),
        ("2023-08-31T14:10:34.9Z", datetime(2023, 8, 31, 14, 10, 34, 900000, tzinfo=timezone.utc)),
        ("2023-08-31T14:10:34.123456789+00:00", datetime(2023, 8, 31, 14, 10, 34, 123456, tzinfo=timezone.utc)),
        ("2023-08-31T16:10:34+02:00", datetime(2023, 8, 31, 14, 10, 34, tzinfo=timezone.utc)),
        ("2023-08-31 14:10", datetime(2023, 8, 31, 14, 10, tzinfo=timezone.utc)),
        ("2023-08-31", datetime(2023, 8, 31, tzinfo=timezone.utc)),
        (1693491034, datetime(2023, 8, 31, 14, 10, 34, tzinfo=timezone.utc)),
    ],
)
def test_timestamps(text: Any, expected: datetime) -> None:
    assert UserFeedback.from_json({"timestamp": text}).timestamp == expected


def test_attachment_from_json() -> None:
    attachment = FeedbackAttachment.from_json(
        {
            "id": "17",
            "name": "screenshot.png",
            "mimetype": "image/png",
            "size": 1234,
            "sha1": "ab" * 20,
            "type": "event.attachment",
            "dateCreated": "2026-11-30T04:00:00.000000Z",
        }
    )
    assert attachment == FeedbackAttachment(
        "17",
        "screenshot.png",
        "image/png",
        1234,
        "ab" * 20,
        "event.attachment",
        datetime(2026, 11, 30, 4, tzinfo=timezone.utc),
    )
    odd = FeedbackAttachment.from_json({"id": 17, "name": None, "size": "x", "dateCreated": 5})
    assert (odd.id, odd.name, odd.size) == ("17", "", None)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
item_keys = st.sampled_from([*SEED_ITEM, "request", "project", "project_id", "name", "attachment_count", "other"])


@settings(max_examples=100, deadline=None)
@given(st.one_of(json_values, st.dictionaries(item_keys, json_values, max_size=12)))
def test_from_json_never_raises_and_round_trips(value: Any) -> None:
    feedback = UserFeedback.from_json(value)
    data = feedback.to_json()
    json.dumps(data)
    assert UserFeedback.from_json(data) == feedback
    FeedbackAttachment.from_json(value)


# -- Link headers -----------------------------------------------------------------------------


def test_sentrys_link_header() -> None:
    header = (
        '<https://sentry.io/api/0/organizations/acme/user-feedback/?field=id,message&cursor=0:0:1>; rel="previous"; '
        'results="false"; cursor="0:0:1", '
        '<https://sentry.io/api/0/organizations/acme/user-feedback/?field=id,message&cursor=0:100:0>; rel="next"; '
        'results="true"; cursor="0:100:0"'
    )
    previous, following = parse_link_header(header)
    assert previous.url == "https://sentry.io/api/0/organizations/acme/user-feedback/?field=id,message&cursor=0:0:1"
    assert (previous.rel, previous.results, previous.cursor) == ("previous", False, "0:0:1")
    assert following.url.endswith("cursor=0:100:0")
    assert (following.rel, following.results, following.cursor) == ("next", True, "0:100:0")


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("", []),
        ("garbage", []),
        ("<unterminated", []),
        ("<a>", [Link("a", {})]),
        (
            '<a>;rel=next;results=TRUE, <b> ; rel = "prev" ',
            [Link("a", {"rel": "next", "results": "TRUE"}), Link("b", {"rel": "prev"})],
        ),
        ('<a>; title="x, y; z"; rel="next"', [Link("a", {"title": "x, y; z", "rel": "next"})]),
        ('<a>; title="say \\"hi\\""', [Link("a", {"title": 'say "hi"'})]),
        ('<a>; rel="next" junk, <b>; rel="last"', [Link("a", {"rel": "next"}), Link("b", {"rel": "last"})]),
        ('<a>; rel="one"; REL="two"; flag', [Link("a", {"rel": "one", "flag": ""})]),
        ('<a>; title="unterminated', [Link("a", {"title": "unterminated"})]),
    ],
)
def test_odd_link_headers(header: str, expected: list[Link]) -> None:
    assert parse_link_header(header) == expected


@given(st.text())
def test_link_parser_never_raises(header: str) -> None:
    for link in parse_link_header(header):
        assert isinstance(link.url, str)
        _ = (link.rel, link.results, link.cursor)


def test_link_cursor_from_the_url() -> None:
    (link,) = parse_link_header('<https://h/x/?cursor=1%3A2%3A0&a=b>; rel="next"')
    assert link.cursor == "1:2:0"
    assert link.results is None
    (link,) = parse_link_header("<https://h/x/>; rel=next")
    assert link.cursor is None


# -- file names -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("screenshot.png", "screenshot.png"),
        ("../../etc/passwd", "passwd"),
        ("..\\..\\windows\\system.ini", "system.ini"),
        ("/abs/path.txt", "path.txt"),
        ("..", "attachment-7"),
        (".", "attachment-7"),
        ("", "attachment-7"),
        (None, "attachment-7"),
        ("dir/", "attachment-7"),
        (".bashrc", "bashrc"),
        ("a\x00b\nc.txt", "a_b_c.txt"),
        ('w<i>n:d"o|w?s*.txt', "w_i_n_d_o_w_s_.txt"),
        ("CON", "_CON"),
        ("nul.txt", "_nul.txt"),
        ("trailing. ", "trailing"),
        ("x" * 300 + ".png", "x" * 196 + ".png"),
    ],
)
def test_safe_file_names(name: str | None, expected: str) -> None:
    assert _safe_file_name(name, "attachment-7") == expected


@given(st.text(), st.text())
def test_safe_file_names_never_escape(name: str, fallback: str) -> None:
    safe = _safe_file_name(name, fallback)
    assert safe and "/" not in safe and "\\" not in safe and "\x00" not in safe
    assert safe not in (".", "..") and not safe.startswith(".")
    assert len(safe) <= 200
