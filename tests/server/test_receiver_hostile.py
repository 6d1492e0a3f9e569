"""Hostile envelopes get a 400 with a reason, never a 500, a dropped connection or unbounded work."""

from __future__ import annotations

import copy
import gzip
import json
from collections.abc import Iterator
from typing import Any

import pytest
import urllib3
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sentry_feedback.server import LocalReceiver, _http, _ingest
from sentry_feedback.server._rows import MAX_COUNT, MAX_DISCARDED_EVENTS

AUTH = "Sentry sentry_version=7, sentry_key=public"
FEEDBACK_ITEM = b'{"type":"feedback"}\n'


@pytest.fixture(scope="module")
def receiver() -> Iterator[LocalReceiver]:
    with LocalReceiver(record_requests=0) as local:
        yield local


def post(receiver: LocalReceiver, body: bytes, **headers: str) -> tuple[int, str]:
    response = urllib3.request(
        "POST",
        receiver.url + f"/api/{receiver.project_id}/envelope/",
        body=body,
        headers={"X-Sentry-Auth": AUTH, **headers},
        retries=False,
        timeout=30,
    )
    return response.status, json.loads(response.data).get("detail", "")


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b"[" * 100_000 + b"\n", "envelope header is nested too deeply"),
        (b"{}\n" + FEEDBACK_ITEM + b"[" * 100_000 + b"\n", "feedback item payload is nested too deeply"),
        (
            b"{}\n"
            + FEEDBACK_ITEM
            + b'{"contexts":{"feedback":{"message":"x"}},"extra":'
            + b"[" * 5000
            + b"]" * 5000
            + b"}\n",
            "feedback item payload is nested too deeply",
        ),
        (
            b"{}\n" + FEEDBACK_ITEM + b'{"contexts":{"feedback":{"message":"\\ud800 lone"}}}\n',
            "invalid text in the envelope: surrogates not allowed",
        ),
    ],
    ids=["deep-header", "deep-payload", "deep-extra", "lone-surrogate"],
)
def test_odd_json_is_a_400_with_a_reason(receiver: LocalReceiver, body: bytes, detail: str) -> None:
    assert post(receiver, body) == (400, detail)
    assert receiver.store.list_feedback() == []


def test_the_item_count_is_capped(receiver: LocalReceiver) -> None:
    limit = _ingest.MAX_ENVELOPE_ITEMS
    items = b'{"type":"attachment","length":0}\n\n'
    assert post(receiver, b"{}\n" + items * (limit + 1)) == (400, f"envelope has more than {limit} items")


def test_a_small_gzip_body_of_a_million_empty_items_is_refused(receiver: LocalReceiver) -> None:
    bomb = gzip.compress(b"{}\n" + b'{"type":"x","length":0}\n\n' * 1_500_000)
    assert len(bomb) < 200_000
    status, detail = post(receiver, bomb, **{"Content-Encoding": "gzip"})
    assert (status, detail) == (400, f"envelope has more than {_ingest.MAX_ENVELOPE_ITEMS} items")


def test_the_listen_backlog_fits_bursts_of_clients(receiver: LocalReceiver) -> None:
    assert _http.LISTEN_BACKLOG >= 128
    assert _http.Server.request_queue_size == _http.LISTEN_BACKLOG


def test_bodies_past_the_memory_budget_get_503_and_the_budget_comes_back() -> None:
    with LocalReceiver(max_body_size=10_000, memory_budget=30_000, record_requests=0) as receiver:
        memory = receiver._memory
        assert memory.capacity == 30_000
        assert memory.take(29_000, small=True)  # as if other requests held it
        body = b"{}\n" + b'{"type":"attachment","length":2000,"filename":"a.bin"}\n' + b"x" * 2000 + b"\n"
        response = urllib3.request(
            "POST",
            receiver.url + f"/api/{receiver.project_id}/envelope/",
            body=body,
            headers={"X-Sentry-Auth": AUTH},
            retries=False,
        )
        assert response.status == 503
        assert response.headers["Retry-After"] == "1"
        assert response.headers["Connection"] == "close"
        memory.give(29_000)
        assert post(receiver, body)[0] == 200
        assert memory.in_use == 0  # every request gives back what it held


def test_inflating_takes_the_decoded_bytes_from_the_budget() -> None:
    with LocalReceiver(max_body_size=100_000, memory_budget=0, record_requests=0) as receiver:
        memory = receiver._memory
        assert memory.capacity == 300_000  # three times max_body_size: one largest request fits
        decoded = b"{}\n" + b'{"type":"attachment","length":90000,"filename":"a.bin"}\n' + b"y" * 90_000 + b"\n"
        assert post(receiver, gzip.compress(decoded), **{"Content-Encoding": "gzip"})[0] == 200
        assert memory.take(memory.capacity - 100_000, small=True)  # 100 KB are left: not enough for 2 x 90 KB
        status, detail = post(receiver, gzip.compress(decoded), **{"Content-Encoding": "gzip"})
        assert (status, detail) == (503, "the server is busy receiving other data; retry later")
        memory.give(memory.capacity - 100_000)
        assert memory.in_use == 0


def test_an_eighth_of_the_budget_is_kept_for_small_requests() -> None:
    budget = _http.MemoryBudget(800)
    assert not budget.take(701)  # a large request leaves the small share alone
    assert budget.take(700)
    assert not budget.take(1)
    assert budget.take(100, small=True)
    assert not budget.take(1, small=True)
    budget.give(800)
    assert (budget.in_use, budget.peak) == (0, 800)


# -- numbers and text out of range -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def reports() -> Iterator[LocalReceiver]:
    """A receiver of its own for the client report tests: they compare its totals before and after."""
    with LocalReceiver(record_requests=0) as local:
        yield local


def client_report(*entries: bytes) -> bytes:
    """An envelope of one client_report item whose discarded_events are ``entries`` (raw JSON, any number)."""
    payload = b'{"timestamp":1700000000,"discarded_events":[' + b",".join(entries) + b"]}"
    return b"{}\n" + b'{"type":"client_report"}\n' + payload + b"\n"


GOOD_ENTRY = b'{"reason":"sample_rate","category":"error","quantity":1}'
INVALID_QUANTITY = f"client_report discarded_events[1] quantity must be an integer from 0 to {MAX_COUNT}, not "
NEEDS_TEXT = "client_report discarded_events[1] needs string reason and category"


@pytest.mark.parametrize(
    ("entry", "detail"),
    [
        (b'{"reason":"r","category":"c","quantity":1' + b"0" * 30 + b"}", INVALID_QUANTITY + "1" + "0" * 30),
        (b'{"reason":"r","category":"c","quantity":9223372036854775808}', INVALID_QUANTITY + "9223372036854775808"),
        (b'{"reason":"r","category":"c","quantity":9223372036854775807}', INVALID_QUANTITY + "9223372036854775807"),
        (b'{"reason":"r","category":"c","quantity":9007199254740992}', INVALID_QUANTITY + "9007199254740992"),
        (b'{"reason":"r","category":"c","quantity":-1}', INVALID_QUANTITY + "-1"),
        (b'{"reason":"r","category":"c","quantity":-9223372036854775809}', INVALID_QUANTITY + "-9223372036854775809"),
        (b'{"reason":"r","category":"c","quantity":1.5}', INVALID_QUANTITY + "1.5"),
        (b'{"reason":"r","category":"c","quantity":2.0}', INVALID_QUANTITY + "2.0"),
        (b'{"reason":"r","category":"c","quantity":1e400}', INVALID_QUANTITY + "Infinity"),
        (b'{"reason":"r","category":"c","quantity":NaN}', INVALID_QUANTITY + "NaN"),
        (b'{"reason":"r","category":"c","quantity":true}', INVALID_QUANTITY + "true"),
        (b'{"reason":"r","category":"c","quantity":"3"}', INVALID_QUANTITY + '"3"'),
        (b'{"reason":"r","category":"c","quantity":[1]}', INVALID_QUANTITY + "[1]"),
        (b'{"reason":"r","category":"c"}', INVALID_QUANTITY + "null"),
        (
            b'{"reason":"' + b"r" * 201 + b'","category":"c","quantity":1}',
            "client_report discarded_events[1] reason is longer than 200 characters",
        ),
        (
            b'{"reason":"r","category":"' + b"\\u00e9" * 201 + b'","quantity":1}',
            "client_report discarded_events[1] category is longer than 200 characters",
        ),
        (b'{"reason":7,"category":"c","quantity":1}', NEEDS_TEXT),
        (b'{"reason":"r","category":null,"quantity":1}', NEEDS_TEXT),
        (b'["r","c",1]', "client_report discarded_events[1] must be an object"),
    ],
    ids=[
        "huge", "2**63", "int64-max", "2**53", "negative", "below-int64", "fraction", "float", "overflowing-float",
        "nan", "bool", "string", "list", "missing", "long-reason", "long-category", "reason-number", "category-null",
        "tuple",
    ],
)  # fmt: skip
def test_an_invalid_client_report_entry_is_a_400_and_stores_nothing(
    reports: LocalReceiver, entry: bytes, detail: str
) -> None:
    envelopes, totals = reports.store.count_envelopes(), reports.store.client_report_totals()
    assert post(reports, client_report(GOOD_ENTRY, entry)) == (400, detail)
    assert (reports.store.count_envelopes(), reports.store.client_report_totals()) == (envelopes, totals)


def test_client_report_entries_are_bounded_in_number(reports: LocalReceiver) -> None:
    envelopes = reports.store.count_envelopes()
    body = client_report(*[GOOD_ENTRY] * (MAX_DISCARDED_EVENTS + 1))
    detail = (
        f"client_report has {MAX_DISCARDED_EVENTS + 1} discarded_events; at most {MAX_DISCARDED_EVENTS} are allowed"
    )
    assert post(reports, body) == (400, detail)
    assert reports.store.count_envelopes() == envelopes


def test_the_largest_counts_are_stored_and_their_totals_never_overflow() -> None:
    # 2000 times 2**53 - 1 is past SQLite's largest integer (2**63 - 1): a SUM() of them would fail.
    longest = "r" * 200
    entry = json.dumps({"reason": longest, "category": "error", "quantity": MAX_COUNT}).encode()
    with LocalReceiver(record_requests=0) as receiver:
        for _ in range(2):
            assert post(receiver, client_report(*[entry] * 1000)) == (200, "")
        total = receiver.store.client_report_totals()[(longest, "error")]
    assert isinstance(total, int)
    assert total == pytest.approx(2000 * MAX_COUNT, rel=1e-12)


_JSON: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)
_EDGES = st.sampled_from(
    [0, 1, MAX_COUNT, MAX_COUNT + 1, 2**63 - 1, 2**63, -(2**63) - 1, 10**30, -1, 1.0, 1e300, -0.0, True, False]
)
_VALUES = st.one_of(_JSON, _EDGES, st.integers(min_value=-(2**80), max_value=2**80))
_NAMES = st.one_of(st.sampled_from(["sample_rate", "queue_overflow", "error", ""]), st.text(min_size=195, max_size=205))
_TEXT = st.one_of(_NAMES, _NAMES, _NAMES, _JSON)  # mostly text: the quantity is looked at too
_QUANTITIES = st.one_of(st.integers(min_value=0, max_value=2**70), _EDGES, _VALUES)
_ENTRIES = st.one_of(
    st.fixed_dictionaries({"reason": _TEXT, "category": _TEXT, "quantity": _QUANTITIES}, optional={"x": _JSON}),
    st.fixed_dictionaries({}, optional={"reason": _TEXT, "category": _TEXT, "quantity": _VALUES}),
)
_REPORTS = st.one_of(
    st.fixed_dictionaries(
        {
            "discarded_events": st.one_of(
                st.lists(_ENTRIES, max_size=4), st.lists(st.one_of(_ENTRIES, _JSON), max_size=3)
            )
        },
        optional={"timestamp": _VALUES},
    ),
    st.fixed_dictionaries({}, optional={"timestamp": _VALUES, "discarded_events": _JSON}),
    _JSON,
)


@settings(
    max_examples=300,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(payload=_REPORTS)
def test_any_json_in_a_client_report_is_stored_or_a_400_never_a_500(reports: LocalReceiver, payload: Any) -> None:
    envelopes, totals = reports.store.count_envelopes(), reports.store.client_report_totals()
    # Python's JSON writes NaN and Infinity as such, and reads them back: the receiver gets those too.
    body = b'{}\n{"type":"client_report"}\n' + json.dumps(payload).encode() + b"\n"
    status, detail = post(reports, body)
    assert status in (200, 400), detail
    after = reports.store.client_report_totals()
    if status == 400:
        assert detail
        assert (reports.store.count_envelopes(), after) == (envelopes, totals)
    else:
        assert reports.store.count_envelopes() == envelopes + 1
        assert all(isinstance(total, int) and total >= 0 for total in after.values())
        assert all(len(reason) <= 200 and len(category) <= 200 for reason, category in after)


TRACE_ID = "771a43a4192642f0b136d5159a501700"
#: A valid payload of each item type the store reads numbers from.
PAYLOADS: dict[str, dict[str, Any]] = {
    "event": {"message": "m", "timestamp": 1_700_000_000.0, "level": "error", "tags": {"n": 1}},
    "feedback": {"contexts": {"feedback": {"message": "hi"}, "trace": {"trace_id": TRACE_ID}}, "timestamp": 1.0},
    "user_report": {"event_id": "c" * 32, "comments": "it broke", "name": "n", "email": "e"},
    "transaction": {
        "type": "transaction",
        "transaction": "GET /",
        "start_timestamp": 1.0,
        "timestamp": 2.0,
        "contexts": {"trace": {"trace_id": TRACE_ID, "span_id": "2" * 16, "op": "http.server"}},
        "spans": [{"span_id": "3" * 16, "start_timestamp": 1.0, "timestamp": 1.5, "op": "db"}],
    },
    "session": {
        "sid": "s1",
        "started": "2024-05-01T12:00:00Z",
        "timestamp": 5.0,
        "status": "ok",
        "errors": 0,
        "duration": 1.0,
        "init": True,
        "attrs": {"release": "r"},
    },
    "sessions": {
        "aggregates": [{"started": "2024-05-01T12:00:00Z", "exited": 1, "errored": 0}],
        "attrs": {"release": "r"},
    },
    "client_report": {"timestamp": 1.0, "discarded_events": [{"reason": "a", "category": "b", "quantity": 1}]},
}
#: Numbers past what SQLite holds (64-bit integers, finite doubles), or past what a float holds.
OUT_OF_RANGE = [b"1" + b"0" * 30, b"-1" + b"0" * 30, b"9223372036854775808", b"-9223372036854775809", b"1e308",
                b"-1e308", b"1e400", b"-1e400", b"NaN", b"Infinity", b"-Infinity", b"1" + b"0" * 4000]  # fmt: skip


def _paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """The path of every value inside ``value`` (the whole value's is ``()``)."""
    yield path
    children = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in children:
        yield from _paths(child, (*path, key))


def _with_number(payload: dict[str, Any], path: tuple[Any, ...], number: bytes) -> bytes:
    """``payload`` as JSON with the value at ``path`` replaced by ``number`` (written as it is)."""
    changed = copy.deepcopy(payload)
    parent = changed
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = "@NUMBER@"
    return json.dumps(changed).encode().replace(b'"@NUMBER@"', number)


@pytest.mark.parametrize("item_type", list(PAYLOADS))
def test_numbers_out_of_range_anywhere_in_an_item_are_stored_or_a_400_never_a_500(item_type: str) -> None:
    payload = PAYLOADS[item_type]
    with LocalReceiver(record_requests=0) as receiver:
        for path in list(_paths(payload))[1:]:
            for number in OUT_OF_RANGE:
                item = b'{"type":"' + item_type.encode() + b'"}\n' + _with_number(payload, path, number) + b"\n"
                status, detail = post(receiver, b"{}\n" + item)
                assert status in (200, 400), (path, number[:20], detail)
        # What was stored reads back.
        store = receiver.store
        store.list_events(), store.list_feedback(), store.list_transactions(), store.list_sessions()
        store.list_session_aggregates(), store.session_totals(), store.client_report_totals()
        auth = {"Authorization": f"Bearer {receiver.api_token}"}
        for url in ("/organizations/local/user-feedback/", f"/organizations/local/traces/{TRACE_ID}/"):
            response = urllib3.request("GET", receiver.api_url + url, headers=auth, retries=False, timeout=30)
            assert response.status == 200, (url, response.data[:200])
