from __future__ import annotations

import enum
import json
import uuid
from typing import Any

import pytest

from sentry_feedback._feedback import MAX_MESSAGE_LENGTH, build_feedback_event, normalize_event_id
from sentry_feedback.exceptions import FeedbackError, InvalidFeedbackError

HEX = "9ec79c33ec9942ab8353589fcb2e04dc"
DASHED = "9ec79c33-ec99-42ab-8353-589fcb2e04dc"


def _kw(name: str, value: object) -> dict[str, Any]:
    return {name: value}


def test_minimal_event() -> None:
    event = build_feedback_event("It broke")
    assert event == {"type": "feedback", "level": "info", "contexts": {"feedback": {"message": "It broke"}}}


def test_type_and_level() -> None:
    event = build_feedback_event("hi", email="a@b.example", tags={"a": 1})
    assert event["type"] == "feedback"
    assert event["level"] == "info"


def test_all_fields() -> None:
    event = build_feedback_event(
        "msg",
        email="jane@example.com",
        name="Jane",
        url="https://app.example/page",
        associated_event_id=DASHED,
        replay_id=uuid.UUID(HEX),
        source="widget",
        tags={"plan": "pro"},
    )
    assert event["contexts"]["feedback"] == {
        "message": "msg",
        "contact_email": "jane@example.com",
        "name": "Jane",
        "url": "https://app.example/page",
        "associated_event_id": HEX,
        "replay_id": HEX,
        "source": "widget",
    }
    assert event["tags"] == {"plan": "pro"}


@pytest.mark.parametrize(
    ("kwargs", "keys"),
    [
        ({}, {"message"}),
        ({"email": "a@b.example"}, {"message", "contact_email"}),
        ({"name": "N"}, {"message", "name"}),
        ({"url": "https://x.example"}, {"message", "url"}),
        ({"source": "api"}, {"message", "source"}),
        ({"associated_event_id": HEX}, {"message", "associated_event_id"}),
        ({"replay_id": HEX}, {"message", "replay_id"}),
        ({"email": None, "name": None, "url": None, "replay_id": None}, {"message"}),
        ({"name": "", "email": ""}, {"message", "name", "contact_email"}),
    ],
)
def test_only_given_fields_in_context(kwargs: dict[str, Any], keys: set[str]) -> None:
    event = build_feedback_event("message", **kwargs)
    assert set(event["contexts"]["feedback"]) == keys
    assert set(event["contexts"]) == {"feedback"}


def test_no_tags_key_without_tags() -> None:
    assert "tags" not in build_feedback_event("m")
    assert "tags" not in build_feedback_event("m", tags={})


@pytest.mark.parametrize(
    ("message", "match"),
    [
        (None, "string"),
        (42, "string"),
        (b"bytes", "string"),
        (["list"], "string"),
        ("", "empty"),
        ("   ", "empty"),
        ("\n\t", "empty"),
        ("\u3000\u00a0", "empty"),
        ("x" * (MAX_MESSAGE_LENGTH + 1), "4096"),
        ("\u2603" * 4097, "4096"),
    ],
)
def test_invalid_message(message: object, match: str) -> None:
    with pytest.raises(InvalidFeedbackError, match=match) as info:
        build_feedback_event(message)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, FeedbackError)


@pytest.mark.parametrize("message", ["x" * 4096, "\u2603" * 4096, "\U0001f600" * 4096, "a", " padded "])
def test_valid_message_kept_verbatim(message: str) -> None:
    assert MAX_MESSAGE_LENGTH == 4096
    assert build_feedback_event(message)["contexts"]["feedback"]["message"] == message


@pytest.mark.parametrize(
    "value",
    [
        HEX,
        DASHED,
        DASHED.upper(),
        HEX.upper(),
        f"  {DASHED}  ",
        uuid.UUID(HEX),
        uuid.UUID(DASHED),
    ],
)
@pytest.mark.parametrize("field", ["associated_event_id", "replay_id"])
def test_ids_normalized_to_lowercase_hex(field: str, value: object) -> None:
    event = build_feedback_event("m", **_kw(field, value))
    emitted = event["contexts"]["feedback"][field]
    assert emitted == HEX
    assert len(emitted) == 32
    assert emitted == emitted.lower()


def test_random_uuid4() -> None:
    value = uuid.uuid4()
    assert normalize_event_id(value, "x") == value.hex
    assert normalize_event_id(str(value), "x") == value.hex


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        "not-a-uuid",
        "1234",
        HEX[:-1],
        HEX + "0",
        "g" * 32,
        "z" + HEX[1:],
        DASHED + "-extra",
        42,
        int(HEX, 16),
        3.5,
        b"9ec79c33ec9942ab8353589fcb2e04dc",
        ["9ec79c33ec9942ab8353589fcb2e04dc"],
        True,
    ],
)
@pytest.mark.parametrize("field", ["associated_event_id", "replay_id"])
def test_garbage_ids_rejected(field: str, value: object) -> None:
    with pytest.raises(InvalidFeedbackError, match=field):
        build_feedback_event("m", **_kw(field, value))


@pytest.mark.parametrize("value", ["+" + HEX[1:], "aaaaaaa_aaaaaaa_aaaaaaa_aaaaaaaa"])
def test_sign_and_underscore_ids_rejected(value: str) -> None:
    with pytest.raises(InvalidFeedbackError):
        build_feedback_event("m", associated_event_id=value)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("email", 1),
        ("email", b"a@b.example"),
        ("email", ["a@b.example"]),
        ("name", 1),
        ("name", {"first": "Jane"}),
        ("url", 3.0),
        ("url", object()),
        ("source", 5),
    ],
)
def test_non_str_fields_rejected(field: str, value: object) -> None:
    with pytest.raises(InvalidFeedbackError, match=field):
        build_feedback_event("m", **_kw(field, value))


def test_tags_stringified() -> None:
    marker = object()
    tags: dict[Any, object] = {"int": 1, "float": 1.5, "bool": True, "none": None, 7: "seven"}
    event = build_feedback_event("m", tags=tags)
    assert event["tags"] == {"int": "1", "float": "1.5", "bool": "True", "none": "None", "7": "seven"}
    event = build_feedback_event("m", tags={"obj": marker})
    assert event["tags"] == {"obj": str(marker)}
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in event["tags"].items())


def test_tags_copied() -> None:
    tags = {"a": "1"}
    event = build_feedback_event("m", tags=tags)
    tags["a"] = "2"
    assert event["tags"] == {"a": "1"}


@pytest.mark.parametrize("tags", [["a", "b"], "tag", [("a", "1")], 5])
def test_non_mapping_tags_rejected(tags: Any) -> None:
    with pytest.raises(InvalidFeedbackError, match="tags"):
        build_feedback_event("m", tags=tags)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"message": None}, "message must be a string, not NoneType"),
        ({"message": b"x"}, "message must be a string, not bytes"),
        ({"message": " \n"}, "message is empty"),
        ({"message": "x" * 4097}, "message is 4097 characters long; the limit is 4096"),
        ({"message": "m", "email": 1}, "email must be a string, not int"),
        ({"message": "m", "name": b"Jane"}, "name must be a string, not bytes"),
        ({"message": "m", "url": 3.0}, "url must be a string, not float"),
        ({"message": "m", "source": ["api"]}, "source must be a string, not list"),
        (
            {"message": "m", "associated_event_id": "nope"},
            "associated_event_id must be a UUID (32 hex digits, dashes allowed), not 'nope'",
        ),
        ({"message": "m", "replay_id": 42}, "replay_id must be a UUID (32 hex digits, dashes allowed), not 42"),
        ({"message": "m", "tags": ["a"]}, "tags must be a mapping, not list"),
    ],
)
def test_invalid_input_message_names_the_argument_and_the_problem(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidFeedbackError) as info:
        build_feedback_event(**kwargs)
    assert str(info.value) == message


class Plan(str, enum.Enum):
    PRO = "pro"


def test_string_tag_values_are_kept_as_given() -> None:
    # A str enum is a string: its value is the tag, not str() of it ("Plan.PRO").
    event = build_feedback_event("m", tags={"plan": Plan.PRO, 3: Plan.PRO})
    assert event["tags"] == {"plan": "pro", "3": "pro"}
    assert json.loads(json.dumps(event["tags"])) == {"plan": "pro", "3": "pro"}
