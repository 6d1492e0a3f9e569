r"""Searching stored feedback: compile_query's SQL and FeedbackStore.search paging, sorting and indexes."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import pytest

from sentry_feedback._envelope import Envelope, EnvelopeItem
from sentry_feedback.server import FeedbackStore
from sentry_feedback.server._query import FIELDS, DateTime, Filter, Has, Number, Query, Text, TextList, parse_query
from sentry_feedback.server._search import FIELD_SQL, compile_query

DAY = 86400.0
T0 = datetime(2024, 5, 10, 12, tzinfo=timezone.utc).timestamp()  # k-th main feedback is at T0 + k days
NOW = T0 + 10 * DAY  # 2024-05-20T12:00:00Z
TRACE = "fbb42a39a61e4aa6969b4fecbfbbc114"
ERROR_IDS = ("4f0e18332d11431c9b97d924edecb76e", "5f0e18332d11431c9b97d924edecb76e")

A, B, C, D, E = "Love the new dashboard", "Checkout is BROKEN", "100% useless", "price_is wrong", "back\\slash in path"
F, G, H, I, J = "x' OR 1=1 --", "Dark mode please", "Crash on iPhone", "Café résumé", "Payments failing again"  # noqa: E741
K = "No time at all"
MAIN: list[tuple[str, str, dict[str, Any]]] = [
    (
        A,
        "1",
        {
            "environment": "production",
            "release": "app@1.0",
            "dist": "1",
            "tags": {"flavor": "vanilla", "count": 3},
            "user": {"id": 42, "email": "ann@example.com", "ip_address": "10.0.0.1", "username": "ann"},
            "browser": {"name": "Chrome", "version": "120.0"},
            "os": {"name": "Windows", "version": "11"},
            "trace": {"trace_id": TRACE, "span_id": "a" * 16},
            "feedback": {
                "contact_email": "ann@example.com",
                "name": "Ann",
                "associated_event_id": ERROR_IDS[0],
                "url": "https://shop.example.com/cart",
            },
        },
    ),
    (
        B,
        "1",
        {
            "environment": "staging",
            "tags": {"flavor": "choc_chip", "count": "12"},
            "user": {"id": "u-7", "email": "bob@example.com"},
            "browser": {"name": "Firefox", "version": "125.0"},
            "feedback": {"contact_email": "bob@example.com", "url": "https://shop.example.com/checkout"},
        },
    ),
    (C, "2", {"environment": "production", "level": "warning", "tags": {"flavor": "50%off"}, "feedback": {}}),
    (
        D,
        "2",
        {"environment": "production", "tags": {"count": "150", "region": "eu_west"}, "browser": {"name": "chromium"}},
    ),
    (E, "1", {"environment": "production", "tags": {"path": "C:\\temp\\x"}}),
    (F, "1", {"environment": "production", "tags": {"count": "abc"}}),
    (G, "3", {"user": {"ip_address": "{{auto}}"}}),
    (
        H,
        "3",
        {
            "environment": "production",
            "device": {"brand": "Apple", "family": "iPhone", "model": "11", "name": "iPhone 11"},
            "os": {"name": "iOS", "version": "16.2"},
            "culture": {"locale": "en-US", "timezone": "Europe/Paris"},
            "sdk": {"name": "sentry.cocoa", "version": "8.0.0"},
            "tags": {'we"ird': "q"},
            "feedback": {"associated_event_id": ERROR_IDS[1]},
        },
    ),
    (I, "1", {"environment": "production", "release": "app@2.0", "tags": {"flavor": "Vanilla"}}),
    (J, "2", {"environment": "staging", "sdk": {"name": "sentry.javascript.react", "version": "7.0.0"}}),
]
NOTES = {f"note {i:02d}" for i in range(20)}  # project 2 or 3, environment dev, platform python, on 2024-05-09
MAIN_MESSAGES = {message for message, _, _ in MAIN}
ALL = {*MAIN_MESSAGES, K, *NOTES}


def event_id(index: int) -> str:
    return f"{index + 1:02x}" * 16


def feedback_event(message: str, timestamp: Any, extra: dict[str, Any]) -> dict[str, Any]:
    contexts: dict[str, Any] = {"feedback": {"message": message, **extra.pop("feedback", {})}}
    for key in ("browser", "os", "device", "culture", "trace"):
        if key in extra:
            contexts[key] = extra.pop(key)
    return {"timestamp": timestamp, "platform": "javascript", "level": "info", "contexts": contexts, **extra}


def send(store: FeedbackStore, index: int, project: str, event: dict[str, Any]) -> None:
    item = EnvelopeItem.from_json("feedback", event)
    store.store_envelope(project, Envelope({"event_id": event_id(index)}, [item]), 1)


@pytest.fixture(scope="module")
def store() -> Iterator[FeedbackStore]:
    with FeedbackStore() as s:
        for k, (message, project, extra) in enumerate(MAIN):
            send(s, k, project, feedback_event(message, T0 + k * DAY, dict(extra)))
        send(s, len(MAIN), "1", feedback_event(K, "not a date", {}))
        for i in range(20):  # in pairs with equal timestamps, newest first
            extra = {"environment": "dev", "platform": "python"}
            send(
                s, 100 + i, "2" if i % 2 == 0 else "3", feedback_event(f"note {i:02d}", T0 - DAY - i // 2 * 3600, extra)
            )
        assert s.set_feedback_status(event_id(9), "resolved")
        yield s


def found(store: FeedbackStore, query: Query) -> set[str]:
    where, params = compile_query(query, now=NOW)
    items, total = store.search(where=where, params=params, limit=1000)
    assert total == len(items)
    return {item.message for item in items}


DASHED = f"{TRACE[:8]}-{TRACE[8:12]}-{TRACE[12:16]}-{TRACE[16:20]}-{TRACE[20:]}".upper()
QUERIES: list[tuple[str, set[str]]] = [
    # Free text: case-insensitive substrings of the message, taken literally.
    ("", ALL),
    ("broken", {B}),
    ("CHECKOUT is", {B}),
    ("caf", {I}),
    ('"100%"', {C}),
    ("_is", {D}),
    ("%", {C}),
    # Fields and aliases: case-sensitive equality.
    ("environment:staging", {B, J}),
    ("environment:Staging", set()),
    ("!environment:production", {B, G, J, K, *NOTES}),
    ("environment:[staging, dev]", {B, J, *NOTES}),
    ("!environment:[production, dev]", {B, G, J, K}),
    ("email:bob@example.com", {B}),
    ("contact_email:*@EXAMPLE.com", {A, B}),
    ("user.email:bob@example.com", {B}),
    ("user.id:42", {A}),
    ("user.id:u-7", {B}),
    ("user.username:ann", {A}),
    ("user.ip:10.0.0.1", {A}),
    ("has:user.ip", {A}),
    ("browser.name:chrome", set()),
    ("browser.name:chrom*", {A, D}),
    ("browser.version:1*", {A, B}),
    ("os.name:iOS os.version:16.2", {H}),
    ('device.brand:Apple device.family:iPhone device.model:11 device.name:"iPhone 11"', {H}),
    ("locale.lang:en-US locale.timezone:Europe/Paris", {H}),
    ("sdk.name:sentry.javascript.*", {J}),
    ("sdk.version:8.0.0", {H}),
    ("level:warning", {C}),
    ("release:app@*", {A, I}),
    ("dist:1", {A}),
    ("url:*checkout", {B}),
    ("name:Ann", {A}),
    (f"trace:{TRACE}", {A}),
    (f"trace:{DASHED}", {A}),
    (f"id:{event_id(1)}", {B}),
    (f"id:[{event_id(1)}, {event_id(2).upper()}]", {B, C}),
    (f"id:[{event_id(1)}, {event_id(9).upper()}]", {B, J}),
    ("status:resolved", {J}),
    ("!status:resolved", ALL - {J}),
    ("platform:python", NOTES),
    ("message:*BROKEN", {B}),
    # Tags: exact, wildcards with literal % _ and \, lists, numbers, negation with absent values.
    ("flavor:vanilla", {A}),
    ("flavor:Vanilla", {I}),
    ("flavor:*vanilla", {A, I}),
    ("tags[flavor]:choc_chip", {B}),
    ("!flavor:vanilla", ALL - {A}),
    ("flavor:*%*", {C}),
    ("flavor:*_*", {B}),
    ("flavor:%", set()),
    ("region:eu_*", {D}),
    ("region:eu%", set()),
    ("region:eu?west", set()),
    ('path:"C:\\\\temp\\\\x"', {E}),
    ("path:*\\\\temp*", {E}),
    ("path:*\\\\_*", set()),  # a literal backslash, then a literal underscore
    ("flavor:[vanilla, choc_chip]", {A, B}),
    ("!flavor:[vanilla, choc_chip]", ALL - {A, B}),
    ("has:flavor", {A, B, C, I}),
    ("!has:flavor", ALL - {A, B, C, I}),
    ("count:>10", {B, D}),
    ("count:<=3", {A}),
    ("count:>=3", {A, B, D}),
    ("count:<1k", {A, B, D}),
    ("!count:>10", ALL - {B, D}),
    ("tags[a:b]:x", set()),
    # Existence of fields.
    ("has:error", {A, H}),
    ("!has:error", ALL - {A, H}),
    ("!has:environment", {G, K}),
    ("has:release", {A, I}),
    ("!has:timestamp", set()),  # a feedback without one is stored with its arrival time
    # Timestamps: relative, absolute, date-only days (K arrived "now", after NOW: its arrival time).
    ("timestamp:-36h", {J, K}),
    ("timestamp:-3d", {H, I, J, K}),
    ("timestamp:+8d", {A, B, C, *NOTES}),
    ("timestamp:>=2024-05-18", {I, J, K}),
    ("timestamp:<2024-05-10T12:00:00Z", NOTES),
    ("timestamp:<=2024-05-10T12:00:00Z", {A, *NOTES}),
    ("timestamp:2024-05-12", {C}),
    ("!timestamp:2024-05-12", ALL - {C}),
    ("timestamp:2024-05-09", NOTES),
    ("timestamp:2024-05-10T12:00:00Z", {A}),
    ("timestamp:2024-05-10T14:00:00+02:00", {A}),
    ("timestamp:>2000-01-01", ALL),
    ("timestamp:>=-999999w", ALL),
    # Several terms are all required.
    ("environment:production flavor:*anilla love", {A}),
    ("!has:flavor environment:production", {D, E, F, H}),
    # Injection attempts are plain values.
    ('message:"x\' OR 1=1 --"', {F}),
    ("message:x'", set()),
    ("message:\"' OR '1'='1\"", set()),
    ('"\') OR 1=1 --"', set()),
    ('flavor:"vanilla\' OR 1=1 --"', set()),
    ("!flavor:\"' OR ''='\"", ALL),
]


@pytest.mark.parametrize(("text", "expected"), QUERIES)
def test_query_finds_exactly(store: FeedbackStore, text: str, expected: set[str]) -> None:
    assert found(store, parse_query(text)) == expected


def test_every_field_is_mapped() -> None:
    assert set(FIELD_SQL) == set(FIELDS)


@pytest.mark.parametrize(
    ("term", "expected"),
    [
        (Filter('we"ird', "=", Text("q"), tag=True), {H}),
        (Filter("x') OR 1=1 --", "=", Text("q"), tag=True), set()),
        (Filter("$.flavor", "=", Text("vanilla"), tag=True), set()),
        (Has("'; DROP TABLE feedback; --", tag=True), set()),
        (Has('"; DROP TABLE feedback; --', negated=True, tag=True), ALL),
    ],
)
def test_tag_keys_are_never_sql(store: FeedbackStore, term: Filter | Has, expected: set[str]) -> None:
    assert found(store, Query((term,))) == expected
    assert len(store.list_feedback()) == len(ALL)


def test_values_are_always_parameters() -> None:
    where, params = compile_query(parse_query('message:"x\' OR 1=1 --" flavor:[a, b] ZZ'), now=NOW)
    assert "x'" not in where and "flavor" not in where and "ZZ" not in where
    assert params == ["x' OR 1=1 --", "flavor", "a", "b", "zz"]  # free text is compared case-folded
    assert compile_query(Query(), now=NOW) == ("1", [])


def test_unknown_field_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown search field"):
        compile_query(Query((Has("nope"),)), now=NOW)


WHEN = DateTime(datetime(2024, 5, 10, tzinfo=timezone.utc))


@pytest.mark.parametrize(
    ("term", "message"),
    [
        (Filter("status", "IN", Text("x")), "cannot compare 'status' with IN Text(text='x')"),
        (Filter("status", "<", Text("x")), "cannot compare 'status' with < Text(text='x')"),
        (Filter("status", "=", TextList(("x",))), "cannot compare 'status' with = TextList(items=('x',))"),
        (Filter("timestamp", "IN", WHEN), f"cannot compare 'timestamp' with IN {WHEN!r}"),
        (Filter("count", "=", Number(1.0), tag=True), "cannot compare 'count' with = Number(value=1.0)"),
        ("status:x", "not a search term: 'status:x'"),
    ],
)
def test_terms_the_parser_never_makes_are_refused(term: Any, message: str) -> None:
    with pytest.raises(ValueError) as info:
        compile_query(Query((term,)), now=NOW)
    assert str(info.value) == message


def test_an_empty_list_matches_nothing(store: FeedbackStore) -> None:
    assert found(store, Query((Filter("environment", "IN", TextList(())),))) == set()
    assert found(store, Query((Filter("environment", "IN", TextList(()), negated=True),))) == ALL


def test_the_last_day_of_the_calendar(store: FeedbackStore) -> None:
    assert found(store, parse_query("timestamp:9999-12-31")) == set()
    assert found(store, parse_query("!timestamp:9999-12-31")) == ALL


DASHED_ID = "4F0E1833-2D11-431C-9B97-D924EDECB76E"


def test_only_ids_are_compared_as_ids() -> None:
    """A value that looks like a UUID is text in any other field or tag: it must match as written."""
    with FeedbackStore() as s:
        extra = {"user": {"id": DASHED_ID}, "tags": {"ref": DASHED_ID}}
        send(s, 0, "1", feedback_event("with a reference", T0, extra))
        send(s, 1, "1", feedback_event("without", T0, {}))
        for text in (f"user.id:{DASHED_ID}", f"ref:{DASHED_ID}", f"ref:[{DASHED_ID}, x]", f"user.id:[{DASHED_ID}]"):
            assert found(s, parse_query(text)) == {"with a reference"}, text
        assert found(s, parse_query(f"id:{event_id(0).upper()}")) == {"with a reference"}


def ids(page: list[Any]) -> list[str]:
    return [item.message for item in page]


NEWEST_NOTES = [f"note {i:02d}" for i in range(20)]  # ties in pairs, broken by id
OLDEST_NOTES = NEWEST_NOTES[::-1]


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("-timestamp", NEWEST_NOTES),
        ("timestamp", OLDEST_NOTES),
        ("projectId", NEWEST_NOTES[0::2] + NEWEST_NOTES[1::2]),
        ("-projectId", NEWEST_NOTES[1::2] + NEWEST_NOTES[0::2]),
    ],
)
def test_sort_and_pages(store: FeedbackStore, sort: str, expected: list[str]) -> None:
    where, params = compile_query(parse_query("platform:python"), now=NOW)
    items, total = store.search(where=where, params=params, sort=sort, limit=100)
    assert (ids(items), total) == (expected, 20)
    pages = [store.search(where=where, params=params, sort=sort, limit=3, offset=o) for o in range(0, 21, 3)]
    assert [item.message for page, _ in pages for item in page] == expected
    assert {count for _, count in pages} == {20}


def test_default_listing_is_newest_first(store: FeedbackStore) -> None:
    items, total = store.search()
    assert total == len(ALL)
    assert ids(items) == [K, J, I, H, G, F, E, D, C, B]  # K has no timestamp: it counts as sent on arrival
    items, total = store.search(offset=len(ALL) - 1)
    assert (ids(items), total) == ([OLDEST_NOTES[0]], len(ALL))
    assert store.search(limit=0) == ([], len(ALL))


def test_projects_environments_and_range(store: FeedbackStore) -> None:
    items, total = store.search(projects=["1"], limit=100)
    assert (set(ids(items)), total) == ({A, B, E, F, I, K}, 6)
    items, total = store.search(projects=["3"], environments=["production", "dev"], limit=100)
    assert set(ids(items)) == {H} | {f"note {i:02d}" for i in range(1, 20, 2)}
    assert store.search(projects=[], limit=100) == ([], 0)
    assert store.search(environments=[], limit=100) == ([], 0)
    items, total = store.search(start=T0 + DAY, end=T0 + 3 * DAY, limit=100)
    assert (set(ids(items)), total) == ({B, C}, 2)


@pytest.mark.parametrize("arguments", [{"sort": "id"}, {"sort": "-id; DROP TABLE feedback"}, {"limit": -1}])
def test_bad_search_arguments(store: FeedbackStore, arguments: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        store.search(**arguments)


def plans(store: FeedbackStore, **arguments: Any) -> list[str]:
    """EXPLAIN QUERY PLAN of each statement ``store.search(**arguments)`` runs."""
    statements: list[str] = []
    conn: sqlite3.Connection = store._conn
    conn.set_trace_callback(statements.append)
    try:
        store.search(**arguments)
    finally:
        conn.set_trace_callback(None)
    assert len(statements) == 2
    return [" | ".join(row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}")) for sql in statements]


@pytest.mark.parametrize(
    ("arguments", "index"),
    [
        ({"projects": ["1"]}, "feedback_project_timestamp"),
        ({}, "feedback_timestamp"),
        ({"projects": ["1"], "sort": "timestamp"}, "feedback_project_timestamp"),
        ({"sort": "projectId"}, "feedback_project_number"),
        ({"sort": "-projectId"}, "feedback_project_number_desc"),
    ],
)
def test_default_listing_uses_an_index(store: FeedbackStore, arguments: dict[str, Any], index: str) -> None:
    page, count = plans(store, **arguments)
    assert f"USING INDEX {index}" in page and "TEMP B-TREE" not in page
    assert "SCAN feedback" not in count.replace("SCAN feedback USING", "")


@pytest.mark.parametrize(
    ("query", "index"), [("status:resolved", "feedback_status"), ("environment:dev", "feedback_environment")]
)
def test_status_and_environment_filters_use_an_index(store: FeedbackStore, query: str, index: str) -> None:
    where, params = compile_query(parse_query(query), now=NOW)
    page, count = plans(store, where=where, params=params)
    assert f"INDEX {index} (" in count and f"USING INDEX {index} (" in page, (page, count)
