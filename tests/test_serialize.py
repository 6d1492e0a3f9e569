from __future__ import annotations

import datetime as dt
import json
import uuid
from collections import OrderedDict
from decimal import Decimal
from typing import Any

import pytest

from sentry_feedback._serialize import MAX_DEPTH, MAX_ITEMS, MAX_REPR, dumps, normalize, safe_repr


def _reference(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


class Opaque:
    def __repr__(self) -> str:
        return "<Opaque thing>"


class BrokenRepr:
    def __repr__(self) -> str:
        raise RuntimeError("repr exploded")


class HugeRepr:
    def __repr__(self) -> str:
        return "x" * (MAX_REPR * 5)


PLAIN_EVENTS: list[Any] = [
    {},
    [],
    None,
    True,
    0,
    -17,
    2**63,
    1.5,
    "text",
    "",
    {"event_id": "a" * 32, "type": "feedback", "timestamp": 1700000000.123456, "platform": "python"},
    {"contexts": {"feedback": {"message": 'snow \u2603 and emoji \U0001f600 and "quotes" \\ \n\t'}}},
    {"tags": {"a": "1", "b": "2"}, "extra": {"list": [1, 2.5, None, True, "x", {"nested": []}]}},
    {"breadcrumbs": {"values": [{"message": "m", "timestamp": 1.0, "data": {"k": [1, [2, [3]]]}}]}},
    {"unicode_key_\u00e9": "\u4e2d\u6587", "ctrl": "\x00\x01\x1f"},
    [[[[[[[[[[[[[[[["deep but plain"]]]]]]]]]]]]]]]],
]


@pytest.mark.parametrize("value", PLAIN_EVENTS)
def test_plain_values_match_json_dumps(value: Any) -> None:
    out = dumps(value)
    assert out == _reference(value)
    assert json.loads(out) == value


def test_output_is_compact_utf8() -> None:
    out = dumps({"a": [1, 2], "b": "\u2603"})
    assert out == '{"a":[1,2],"b":"\u2603"}'.encode()
    assert isinstance(out, bytes)


def test_tuples_become_lists() -> None:
    assert json.loads(dumps({"t": (1, 2)})) == {"t": [1, 2]}


def test_int_keys_follow_json_semantics() -> None:
    assert json.loads(dumps({1: "a", 2: "b"})) == {"1": "a", "2": "b"}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Opaque(), "<Opaque thing>"),
        (Decimal("1.25"), "Decimal('1.25')"),
        (uuid.UUID(int=1), repr(uuid.UUID(int=1))),
        (dt.datetime(2024, 1, 2, 3, 4, 5), repr(dt.datetime(2024, 1, 2, 3, 4, 5))),
        (object, "<class 'object'>"),
        (complex(1, 2), "(1+2j)"),
        (Ellipsis, "Ellipsis"),
    ],
)
def test_objects_without_json_form_become_repr(value: object, expected: str) -> None:
    out = json.loads(dumps({"extra": {"value": value}, "ok": 1}))
    assert out == {"extra": {"value": expected}, "ok": 1}


def test_top_level_object_becomes_repr() -> None:
    assert json.loads(dumps(Opaque())) == "<Opaque thing>"


def test_broken_repr_does_not_raise() -> None:
    out = json.loads(dumps({"bad": BrokenRepr(), "good": "yes"}))
    assert out["good"] == "yes"
    assert isinstance(out["bad"], str)
    assert "BrokenRepr" in out["bad"]
    assert "RuntimeError" in out["bad"]


def test_safe_repr_never_raises_and_is_bounded() -> None:
    assert "repr failed" in safe_repr(BrokenRepr())
    text = safe_repr(HugeRepr())
    assert len(text) == MAX_REPR
    assert text.endswith("...")
    assert len(safe_repr(HugeRepr(), 20)) == 20


def test_huge_repr_is_cut() -> None:
    out = json.loads(dumps({"v": HugeRepr()}))
    assert len(out["v"]) <= MAX_REPR


def test_dict_cycle() -> None:
    event: dict[str, Any] = {"a": 1}
    event["self"] = event
    out = json.loads(dumps(event))
    assert out == {"a": 1, "self": "<cycle>"}


def test_list_cycle() -> None:
    items: list[Any] = [1]
    items.append(items)
    assert json.loads(dumps({"items": items})) == {"items": [1, "<cycle>"]}


def test_indirect_cycle() -> None:
    a: dict[str, Any] = {}
    b: dict[str, Any] = {"a": a}
    a["b"] = b
    assert json.loads(dumps(a)) == {"b": {"a": "<cycle>"}}


def test_shared_reference_is_not_a_cycle() -> None:
    shared = {"x": 1}
    out = json.loads(dumps({"one": shared, "two": shared, "obj": Opaque()}))
    assert out == {"one": {"x": 1}, "two": {"x": 1}, "obj": "<Opaque thing>"}


@pytest.mark.parametrize(("value", "expected"), [(float("nan"), "nan"), (float("inf"), "inf"), (float("-inf"), "-inf")])
def test_non_finite_floats_become_strings(value: float, expected: str) -> None:
    out = dumps({"v": value, "ok": 1.5})
    assert b"NaN" not in out
    assert b"Infinity" not in out
    assert json.loads(out) == {"v": expected, "ok": 1.5}


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ((1, 2), "(1, 2)"),
        (frozenset(), "frozenset()"),
        (Opaque(), "<Opaque thing>"),
    ],
)
def test_non_str_keys(key: object, expected: str) -> None:
    out = json.loads(dumps({key: "v", "s": "w"}))
    assert out == {expected: "v", "s": "w"}


def test_int_key_in_normalized_path() -> None:
    out = json.loads(dumps({1: "a", "obj": Opaque()}))
    assert out == {"1": "a", "obj": "<Opaque thing>"}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"hello", "hello"),
        (bytearray(b"hi"), "hi"),
        (b"", ""),
        (b"\xff\xfeok", "\ufffd\ufffdok"),
        ("caf\u00e9".encode(), "caf\u00e9"),
    ],
)
def test_bytes_values(value: bytes, expected: str) -> None:
    assert json.loads(dumps({"b": value})) == {"b": expected}


def test_long_bytes_are_cut() -> None:
    out = json.loads(dumps({"b": b"a" * (MAX_REPR * 3)}))
    assert len(out["b"]) == MAX_REPR


def test_sets_become_lists() -> None:
    out = json.loads(dumps({"s": {3}, "f": frozenset({"x"})}))
    assert out == {"s": [3], "f": ["x"]}


def test_mapping_subclass_and_ordered_dict() -> None:
    assert json.loads(dumps(OrderedDict([("b", 1), ("a", 2)]))) == {"b": 1, "a": 2}


def _nested(depth: int, leaf: Any) -> Any:
    value = leaf
    for _ in range(depth):
        value = {"d": value}
    return value


def _depth(value: Any) -> int:
    depth = 0
    while isinstance(value, dict) and "d" in value:
        value = value["d"]
        depth += 1
    return depth


def test_deep_nesting_with_odd_leaf_is_cut() -> None:
    out = json.loads(dumps(_nested(50, Opaque())))
    assert _depth(out) <= MAX_DEPTH


def test_very_deep_nesting_does_not_raise() -> None:
    value: Any = []
    for _ in range(100_000):
        value = [value]
    out = dumps({"deep": value})
    parsed = json.loads(out)
    depth = 0
    node = parsed["deep"]
    while isinstance(node, list) and node:
        node = node[0]
        depth += 1
    assert depth <= MAX_DEPTH


def test_normalize_depth_argument() -> None:
    assert normalize({"a": {"b": {"c": 1}}}, depth=1) == {"a": "{'b': {'c': 1}}"}
    assert normalize([1, [2]], depth=0) == "[1, [2]]"


def test_many_items_are_cut() -> None:
    out = json.loads(dumps({"list": list(range(MAX_ITEMS * 2)), "obj": Opaque()}))
    assert out["list"] == list(range(MAX_ITEMS))


def test_lone_surrogate_does_not_raise() -> None:
    out = dumps({"s": "bad \ud800 surrogate", "ok": "caf\u00e9"})
    assert out == '{"s":"bad ? surrogate","ok":"caf\u00e9"}'.encode()  # replaced, the rest intact


PLAIN_OBJECT = object()
BROKEN = "<BrokenRepr object (repr failed: RuntimeError)>"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            {"a": Opaque(), "b": [float("nan"), b"\x00", {(1,): BrokenRepr()}]},
            {"a": "<Opaque thing>", "b": ["nan", "\x00", {"(1,)": BROKEN}]},
        ),
        ([Opaque(), {1: {2: {3: float("inf")}}}], ["<Opaque thing>", {"1": {"2": {"3": "inf"}}}]),
        (
            {"set": {1, 2}, "obj": PLAIN_OBJECT, "nested": _nested(30, BrokenRepr())},
            # Ten levels in all: the dict at the limit is a repr, which fails on the object in it.
            {
                "set": [1, 2],
                "obj": repr(PLAIN_OBJECT),
                "nested": _nested(MAX_DEPTH - 1, "<dict object (repr failed: RuntimeError)>"),
            },
        ),
    ],
    ids=["odd-leaves", "non-str-keys", "set-object-deep"],
)
def test_output_is_always_valid_json(value: Any, expected: Any) -> None:
    out = dumps(value)
    assert out == _reference(expected)  # compact UTF-8 JSON of exactly these values


def test_huge_int_does_not_raise() -> None:
    out = dumps({"big": 10**5000, "ok": 1})
    assert json.loads(out)["ok"] == 1
