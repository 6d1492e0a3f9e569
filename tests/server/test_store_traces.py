"""FeedbackStore: transactions with their spans, session updates and aggregates, and the schema's version 2."""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sentry_feedback._envelope import Envelope, EnvelopeItem
from sentry_feedback.exceptions import EnvelopeParseError
from sentry_feedback.server import FeedbackApp, FeedbackStore, SessionTotals
from sentry_feedback.server._rows import MAX_COUNT, MAX_SESSION_AGGREGATES, MAX_SPANS
from sentry_feedback.server._schema import SCHEMA_VERSION
from sentry_feedback.server._trace import trace_json

TRACE_ID = "771a43a4192642f0b136d5159a501700"
ROOT_SPAN = "b0e6f15b45c36b12"
T0 = 1_714_564_800.0  # 2024-05-01T12:00:00Z


@pytest.fixture
def store() -> Iterator[FeedbackStore]:
    with FeedbackStore() as s:
        yield s


def span(span_id: str, parent: str | None, start: float, end: float, **extra: Any) -> dict[str, Any]:
    found: dict[str, Any] = {
        "trace_id": TRACE_ID,
        "span_id": span_id,
        "parent_span_id": parent,
        "start_timestamp": start,
        "timestamp": end,
    }
    found.update(extra)
    return found


def transaction_event(
    name: str = "POST /checkout",
    *,
    trace_id: str = TRACE_ID,
    span_id: str = ROOT_SPAN,
    start: Any = T0,
    end: Any = T0 + 0.25,
    spans: list[dict[str, Any]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "type": "transaction",
        "transaction": name,
        "start_timestamp": start,
        "timestamp": end,
        "release": "shop@2.0.0",
        "environment": "production",
        "contexts": {"trace": {"trace_id": trace_id, "span_id": span_id, "op": "http.server", "status": "ok"}},
        "spans": spans if spans is not None else [],
    }
    event.update(extra)
    return event


def envelope(*items: EnvelopeItem, event_id: str | None = None) -> Envelope:
    return Envelope({"event_id": event_id} if event_id else {}, items)


def store_transaction(store: FeedbackStore, event: dict[str, Any], event_id: str, project_id: str = "1") -> None:
    store.store_envelope(project_id, envelope(EnvelopeItem.from_json("transaction", event), event_id=event_id), 1)


def session_update(sid: str = "s1", status: str = "ok", timestamp: Any = T0 + 60, **extra: Any) -> dict[str, Any]:
    update: dict[str, Any] = {
        "sid": sid,
        "init": status == "ok",
        "started": "2024-05-01T12:00:00.000000Z",
        "timestamp": timestamp,
        "status": status,
        "errors": 0,
        "attrs": {"release": "shop@2.0.0", "environment": "production"},
    }
    update.update(extra)
    return update


def aggregates(*entries: dict[str, Any], release: str = "shop@2.0.0", environment: str | None = "production") -> Any:
    attrs: dict[str, Any] = {"release": release}
    if environment is not None:
        attrs["environment"] = environment
    return {"aggregates": list(entries), "attrs": attrs}


def store_items(store: FeedbackStore, item_type: str, *payloads: Any, project_id: str = "1") -> None:
    items = [EnvelopeItem.from_json(item_type, payload) for payload in payloads]
    store.store_envelope(project_id, envelope(*items), 1)


# -- transactions ------------------------------------------------------------------------------------------------


def test_a_transaction_and_its_spans_are_stored(store: FeedbackStore) -> None:
    spans = [
        span("1000000000000001", ROOT_SPAN, T0 + 0.01, T0 + 0.06, op="db.query", description="SELECT cart"),
        span("1000000000000002", "1000000000000001", T0 + 0.02, T0 + 0.03, op="cache.get", status="ok"),
        span(
            "1000000000000003", None, T0 + 0.1, T0 + 0.2, op="http.client", description="POST acme-pay", data={"a": 1}
        ),
    ]
    # RFC 3339 strings, as sentry-python writes them, for the transaction; Unix seconds for the spans.
    event = transaction_event(start="2024-05-01T12:00:00Z", end="2024-05-01T12:00:00.250000+00:00", spans=spans)
    event["contexts"]["trace"]["parent_span_id"] = "AAAAAAAAAAAAAAAA"
    store_transaction(store, event, "0" * 31 + "1")

    [stored] = store.list_transactions()
    assert stored == store.get_transaction("00000000-0000-0000-0000-000000000001")
    assert (stored.event_id, stored.project_id, stored.trace_id, stored.span_id) == (
        "0" * 31 + "1",
        "1",
        TRACE_ID,
        ROOT_SPAN,
    )
    assert stored.parent_span_id == "a" * 16
    assert (stored.name, stored.op, stored.status) == ("POST /checkout", "http.server", "ok")
    assert (stored.start_timestamp, stored.timestamp) == (T0, T0 + 0.25)
    assert stored.duration == pytest.approx(0.25)
    assert (stored.release, stored.environment) == ("shop@2.0.0", "production")
    assert stored.data["spans"][2]["data"] == {"a": 1}
    first, child, call = stored.spans
    assert (first.span_id, first.parent_span_id, first.op, first.description) == (
        "1000000000000001",
        ROOT_SPAN,
        "db.query",
        "SELECT cart",
    )
    assert first.duration == pytest.approx(0.05)
    assert (child.parent_span_id, child.status, child.trace_id) == ("1000000000000001", "ok", TRACE_ID)
    assert (call.parent_span_id, call.data) == (None, {"a": 1})
    assert store.list_events() == [] and store.list_feedback() == []


def test_the_transactions_of_a_trace_come_by_start_time_from_every_project(store: FeedbackStore) -> None:
    other_trace = "f" * 32
    store_transaction(store, transaction_event("GET /late", start=T0 + 5, end=T0 + 6), "1" * 32, "1")
    store_transaction(store, transaction_event("GET /first", start=T0, end=T0 + 1, span_id="c" * 16), "2" * 32, "2")
    store_transaction(store, transaction_event("GET /other", trace_id=other_trace), "3" * 32, "1")
    store_transaction(store, transaction_event("GET /middle", start=T0 + 2, end=T0 + 3), "4" * 32, "1")

    names = [t.name for t in store.trace_transactions(TRACE_ID)]
    assert names == ["GET /first", "GET /middle", "GET /late"]
    dashed = "771A43A4-1926-42F0-B136-D5159A501700"
    assert [t.name for t in store.trace_transactions(dashed, limit=2)] == ["GET /first", "GET /middle"]
    assert [t.name for t in store.trace_transactions(other_trace)] == ["GET /other"]
    assert store.trace_transactions("0" * 32) == []
    assert [t.name for t in store.list_transactions("2")] == ["GET /first"]
    assert store.get_transaction("9" * 32) is None
    with pytest.raises(ValueError, match="limit"):
        store.trace_transactions(TRACE_ID, limit=-1)


def test_a_resent_transaction_is_stored_once(store: FeedbackStore) -> None:
    store_transaction(store, transaction_event("first"), "1" * 32)
    store_transaction(store, transaction_event("retry"), "1" * 32)
    assert [t.name for t in store.list_transactions()] == ["first"]
    assert store.count_envelopes() == 2


def test_a_trace_is_found_through_its_index(store: FeedbackStore) -> None:
    store_transaction(store, transaction_event(), "1" * 32)
    sql = "EXPLAIN QUERY PLAN SELECT * FROM transactions WHERE trace_id = ? ORDER BY start_timestamp, id LIMIT ?"
    plan = [row[3] for row in store._conn.execute(sql, (TRACE_ID, -1))]
    assert any("INDEX transactions_trace" in step for step in plan), plan
    assert not any("TEMP B-TREE" in step for step in plan), plan  # no sort: the index gives the order


# -- sessions ----------------------------------------------------------------------------------------------------


def test_the_latest_update_of_a_session_wins_whatever_the_arrival_order(store: FeedbackStore) -> None:
    store_items(store, "session", session_update(status="ok", timestamp=T0 + 1, did="user-1"))
    store_items(store, "session", session_update(status="exited", timestamp=T0 + 30, errors=2, duration=29.5))
    store_items(store, "session", session_update(status="ok", timestamp=T0 + 10))  # older: ignored

    [stored] = store.list_sessions()
    assert (stored.sid, stored.status, stored.errors, stored.duration, stored.init) == ("s1", "exited", 2, 29.5, False)
    assert (stored.timestamp, stored.started, stored.did) == (T0 + 30, T0, None)
    assert (stored.release, stored.environment, stored.project_id) == ("shop@2.0.0", "production", "1")
    assert stored.data["status"] == "exited"

    # The same time again replaces (a later arrival); another project's session of the same sid is its own.
    store_items(store, "session", session_update(status="crashed", timestamp=T0 + 30))
    store_items(store, "session", session_update(status="abnormal", timestamp=T0 + 40), project_id="2")
    assert [(s.project_id, s.status) for s in store.list_sessions()] == [("1", "crashed"), ("2", "abnormal")]
    assert [s.status for s in store.list_sessions("2")] == ["abnormal"]


def test_a_session_without_timestamp_is_as_of_its_arrival_and_uuids_are_normalized(store: FeedbackStore) -> None:
    update = session_update(sid="A754CD5A-BCF7-4676-BAC1-59F5A3398018", status="ok")
    del update["timestamp"], update["attrs"]["environment"]
    store_items(store, "session", update)
    [stored] = store.list_sessions()
    assert stored.sid == "a754cd5abcf74676bac159f5a3398018"
    assert stored.timestamp == stored.received_at
    assert stored.environment is None


def test_aggregates_of_the_same_bucket_are_summed(store: FeedbackStore) -> None:
    minute = "2024-05-01T12:00:00Z"
    store_items(
        store,
        "sessions",
        aggregates({"started": minute, "exited": 3, "errored": 1}, {"started": minute, "did": "u1", "crashed": 1}),
    )
    store_items(store, "sessions", aggregates({"started": minute, "exited": 2, "abnormal": 1}))
    store_items(store, "sessions", aggregates({"started": minute, "exited": 7}, environment=None))
    store_items(store, "sessions", aggregates({"started": minute, "exited": 1}), project_id="2")

    rows = [
        (a.project_id, a.environment, a.did, a.exited, a.errored, a.abnormal, a.crashed)
        for a in store.list_session_aggregates()
    ]
    assert rows == [
        ("1", "production", None, 5, 1, 1, 0),
        ("1", "production", "u1", 0, 0, 0, 1),
        ("1", None, None, 7, 0, 0, 0),
        ("2", "production", None, 1, 0, 0, 0),
    ]
    assert all(a.started == T0 and a.release == "shop@2.0.0" for a in store.list_session_aggregates())
    assert store.list_session_aggregates(release="other") == []


def test_counts_stop_at_the_largest_and_never_overflow(store: FeedbackStore) -> None:
    entry = {"started": "2024-05-01T12:00:00Z", "exited": MAX_COUNT}
    for _ in range(3):
        store_items(store, "sessions", aggregates(entry))
    [bucket] = store.list_session_aggregates()
    assert bucket.exited == MAX_COUNT
    store_items(store, "sessions", aggregates(entry, environment="staging"))
    assert store.session_totals()["shop@2.0.0"].exited == 2 * MAX_COUNT


def test_session_totals_combine_updates_and_aggregates_per_release(store: FeedbackStore) -> None:
    updates = [
        session_update("a", "ok"),
        session_update("b", "ok", errors=1),  # running, but with an error: errored
        session_update("c", "exited"),
        session_update("d", "exited", errors=3),  # errored
        session_update("e", "errored"),
        session_update("f", "crashed"),
        session_update("g", "abnormal"),
        session_update("h", "exited", attrs={"release": "shop@1.0.0", "environment": "staging"}),
    ]
    store_items(store, "session", *updates)
    store_items(store, "sessions", aggregates({"started": T0, "exited": 10, "errored": 2, "abnormal": 1, "crashed": 3}))

    totals = store.session_totals()
    assert list(totals) == ["shop@1.0.0", "shop@2.0.0"]
    assert totals["shop@2.0.0"] == SessionTotals("shop@2.0.0", ok=1, exited=11, errored=5, crashed=4, abnormal=2)
    assert totals["shop@2.0.0"].total == 23
    assert totals["shop@1.0.0"] == SessionTotals("shop@1.0.0", exited=1)
    assert store.session_totals(environment="staging") == {"shop@1.0.0": SessionTotals("shop@1.0.0", exited=1)}
    assert store.session_totals("2") == {}
    assert [s.sid for s in store.list_sessions(release="shop@1.0.0")] == ["h"]


# -- what is refused -------------------------------------------------------------------------------------------


def _without(event: dict[str, Any], *path: str) -> dict[str, Any]:
    copy = json.loads(json.dumps(event))
    target = copy
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return copy


def _with(event: dict[str, Any], value: Any, *path: str) -> dict[str, Any]:
    copy = json.loads(json.dumps(event))
    target = copy
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return copy


GOOD_SPAN = span("1000000000000001", ROOT_SPAN, T0, T0 + 0.1)
TX = transaction_event(spans=[GOOD_SPAN])
SESSION = session_update()
AGGREGATES = aggregates({"started": "2024-05-01T12:00:00Z", "exited": 1})

INVALID = [
    ("transaction", b"not json", "transaction item payload is not JSON"),
    ("transaction", b"[1]", "transaction item payload must be a JSON object, not list"),
    ("transaction", _with(TX, "error", "type"), 'transaction item has type "error"'),
    ("transaction", _without(TX, "start_timestamp"), "no valid start_timestamp"),
    ("transaction", _with(TX, "yesterday", "timestamp"), "no valid timestamp"),
    ("transaction", _with(TX, True, "timestamp"), "no valid timestamp"),
    ("transaction", _with(TX, T0 - 1, "timestamp"), "transaction ends before it starts"),
    ("transaction", _without(TX, "contexts"), "no contexts.trace object"),
    ("transaction", _with(TX, ["trace"], "contexts", "trace"), "no contexts.trace object"),
    ("transaction", _with(TX, "not-a-trace", "contexts", "trace", "trace_id"), "contexts.trace.trace_id"),
    ("transaction", _with(TX, 12345, "contexts", "trace", "trace_id"), "contexts.trace.trace_id"),
    ("transaction", _without(TX, "contexts", "trace", "span_id"), "contexts.trace.span_id"),
    ("transaction", _with(TX, "b0e6f15b45c36b1", "contexts", "trace", "span_id"), "contexts.trace.span_id"),
    ("transaction", _with(TX, {"0": GOOD_SPAN}, "spans"), "spans must be a list, not dict"),
    ("transaction", _with(TX, [GOOD_SPAN, "span"], "spans"), r"spans\[1\] must be an object"),
    ("transaction", _with(TX, [_without(GOOD_SPAN, "span_id")], "spans"), r"spans\[0\] has no valid span_id"),
    ("transaction", _with(TX, [_with(GOOD_SPAN, "x", "trace_id")], "spans"), r"spans\[0\] has an invalid trace_id"),
    ("transaction", _with(TX, [_with(GOOD_SPAN, 7, "parent_span_id")], "spans"), "invalid parent_span_id"),
    ("transaction", _with(TX, [_without(GOOD_SPAN, "timestamp")], "spans"), r"spans\[0\] has no valid timestamp"),
    ("transaction", _with(TX, [_with(GOOD_SPAN, "1e400", "start_timestamp")], "spans"), "no valid start_timestamp"),
    ("transaction", _with(TX, [_with(GOOD_SPAN, T0 - 5, "timestamp")], "spans"), "ends before it starts"),
    ("session", b"{", "session item payload is not JSON"),
    ("session", b'"ok"', "session item payload must be a JSON object, not str"),
    ("session", _without(SESSION, "sid"), "session item has no sid"),
    ("session", _with(SESSION, 42, "sid"), "session item has no sid"),
    ("session", _with(SESSION, "x" * 129, "sid"), "sid is longer than 128 characters"),
    ("session", _without(SESSION, "started"), "no valid started time"),
    ("session", _with(SESSION, "soon", "timestamp"), "invalid timestamp"),
    ("session", _with(SESSION, "done", "status"), 'invalid status "done"'),
    ("session", _with(SESSION, -1, "errors"), "errors must be an integer from 0"),
    ("session", _with(SESSION, 1.5, "errors"), "errors must be an integer from 0"),
    ("session", _with(SESSION, True, "errors"), "errors must be an integer from 0"),
    ("session", _with(SESSION, 2**64, "errors"), "errors must be an integer from 0"),
    ("session", _with(SESSION, -3, "duration"), "invalid duration -3"),
    ("session", _with(SESSION, "1", "duration"), "invalid duration"),
    ("session", _with(SESSION, "yes", "init"), "invalid init"),
    ("session", _without(SESSION, "attrs"), "session item has no attrs object"),
    ("session", _without(SESSION, "attrs", "release"), "no attrs.release"),
    ("session", _with(SESSION, " ", "attrs", "release"), "no attrs.release"),
    ("session", _with(SESSION, "r" * 201, "attrs", "release"), "attrs.release is longer than 200"),
    ("session", _with(SESSION, 3, "attrs", "environment"), "invalid attrs.environment"),
    ("session", _with(SESSION, "e" * 65, "attrs", "environment"), "attrs.environment is longer than 64"),
    ("sessions", b"null", "sessions item payload must be a JSON object, not NoneType"),
    ("sessions", _without(AGGREGATES, "aggregates"), "sessions item has no aggregates list"),
    ("sessions", _without(AGGREGATES, "attrs", "release"), "sessions item has no attrs.release"),
    ("sessions", _with(AGGREGATES, [1], "aggregates"), r"aggregates\[0\] must be an object"),
    ("sessions", _with(AGGREGATES, [{"exited": 1}], "aggregates"), r"aggregates\[0\] has no valid started"),
    ("sessions", _with(AGGREGATES, [{"started": T0, "did": {}}], "aggregates"), "invalid did"),
    ("sessions", _with(AGGREGATES, [{"started": T0, "crashed": "2"}], "aggregates"), "crashed must be an integer"),
    ("sessions", _with(AGGREGATES, [{"started": T0, "exited": MAX_COUNT + 1}], "aggregates"), "exited must be"),
]


@pytest.mark.parametrize(
    ("item_type", "payload", "reason"), INVALID, ids=[f"{t}-{i}" for i, (t, _, _) in enumerate(INVALID)]
)
def test_invalid_items_raise_and_store_nothing(store: FeedbackStore, item_type: str, payload: Any, reason: str) -> None:
    item = (
        EnvelopeItem({"type": item_type}, payload)
        if isinstance(payload, bytes)
        else EnvelopeItem.from_json(item_type, payload)
    )
    good = EnvelopeItem.from_json("event", {"message": "stored first in the envelope"})
    with pytest.raises(EnvelopeParseError, match=reason):
        store.store_envelope("1", envelope(good, item), 1)
    assert store.count_envelopes() == 0
    assert store.list_events() == [] and store.list_transactions() == []
    assert store.list_sessions() == [] and store.list_session_aggregates() == []


def test_absurd_sizes_are_refused(store: FeedbackStore) -> None:
    spans = [span(f"{n:016x}", ROOT_SPAN, T0, T0) for n in range(MAX_SPANS + 1)]
    with pytest.raises(EnvelopeParseError, match=f"transaction has {MAX_SPANS + 1} spans; at most {MAX_SPANS}"):
        store_transaction(store, transaction_event(spans=spans), "1" * 32)
    entries = [{"started": T0, "exited": 1}] * (MAX_SESSION_AGGREGATES + 1)
    with pytest.raises(EnvelopeParseError, match=f"at most {MAX_SESSION_AGGREGATES} are allowed"):
        store_items(store, "sessions", aggregates(*entries))
    assert store.count_envelopes() == 0

    # As many as allowed, and times at the ends of what a float holds, are fine.
    store_transaction(store, transaction_event(spans=spans[:MAX_SPANS], start=-1e308, end=1e308), "2" * 32)
    [stored] = store.list_transactions()
    assert len(stored.spans) == MAX_SPANS
    assert math.isinf(stored.duration)  # the store keeps what was sent; the REST API answers null for it


# -- the schema --------------------------------------------------------------------------------------------------


def _version_1_database(path: Path) -> None:
    """A database as a server of schema version 1 left it: without the tables of version 2."""
    with FeedbackStore(str(path)) as store:
        event = {"contexts": {"feedback": {"message": "from version 1"}}}
        store.store_envelope("1", envelope(EnvelopeItem.from_json("feedback", event), event_id="a" * 32), 1)
    with sqlite3.connect(path) as conn:
        conn.executescript(
            "DROP TABLE transactions; DROP TABLE sessions; DROP TABLE session_aggregates; PRAGMA user_version = 1;"
        )
    conn.close()


def _tables(path: Path) -> tuple[int, set[str]]:
    with sqlite3.connect(path) as conn:
        (version,) = conn.execute("PRAGMA user_version").fetchone()
        tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    conn.close()
    return int(version), tables


def test_a_version_1_database_is_migrated_when_a_writer_opens_it(tmp_path: Path) -> None:
    path = tmp_path / "feedback.sqlite3"
    _version_1_database(path)
    assert _tables(path)[0] == 1

    with FeedbackStore(str(path), read_only=True) as reader:  # a reader changes nothing and finds nothing new
        assert reader.trace_transactions(TRACE_ID) == []
        assert reader.list_sessions() == [] and reader.session_totals() == {}
        assert [f.message for f in reader.list_feedback()] == ["from version 1"]
    assert _tables(path)[0] == 1

    with FeedbackStore(str(path)) as store:
        store_transaction(store, transaction_event(), "1" * 32)
        store_items(store, "session", session_update())
        assert [f.message for f in store.list_feedback()] == ["from version 1"]
    version, tables = _tables(path)
    assert version == SCHEMA_VERSION == 2
    assert {"transactions", "sessions", "session_aggregates", "feedback"} <= tables
    with FeedbackStore(str(path), read_only=True) as reader:
        assert [t.name for t in reader.trace_transactions(TRACE_ID)] == ["POST /checkout"]


def test_a_newer_schema_version_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "feedback.sqlite3"
    FeedbackStore(str(path)).close()
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 7")
    conn.close()
    with FeedbackStore(str(path)) as store:
        store_transaction(store, transaction_event(), "1" * 32)
    assert _tables(path)[0] == 7


# -- any JSON at all ---------------------------------------------------------------------------------------------

_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),  # NaN and infinities too: Python's JSON writes and reads them
    st.text(max_size=20),
    st.sampled_from([TRACE_ID, ROOT_SPAN, "2024-05-01T12:00:00Z", "ok", "exited", "crashed", "", T0, MAX_COUNT + 1]),
)
_JSON = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
_HEX16 = st.text("0123456789abcdef", min_size=16, max_size=16)
_COUNTS = st.integers(min_value=0, max_value=MAX_COUNT)


def _mutated(valid: st.SearchStrategy[dict[str, Any]], keys: list[str]) -> st.SearchStrategy[Any]:
    """A valid object as it is, with a few keys set to any JSON or left out, or (less often) any JSON at all."""

    def change(value: dict[str, Any], changes: dict[str, Any], dropped: set[str]) -> dict[str, Any]:
        return {key: item for key, item in {**value, **changes}.items() if key not in dropped}

    changes = st.one_of(st.just({}), st.dictionaries(st.sampled_from(keys), _JSON, max_size=2))
    dropped = st.one_of(st.just(set()), st.sets(st.sampled_from(keys), max_size=1))
    changed = st.builds(change, valid, changes, dropped)
    return st.one_of(valid, valid, changed, changed, _JSON)


@st.composite
def _times(draw: st.DrawFn) -> tuple[Any, Any]:
    """A start and an end not before it, each as Unix seconds or RFC 3339 text."""
    start = draw(st.floats(min_value=0, max_value=4e9))
    end = start + draw(st.floats(min_value=0, max_value=1e6))

    def written(seconds: float) -> Any:
        if draw(st.booleans()):
            return seconds
        return datetime.fromtimestamp(seconds, timezone.utc).isoformat().replace("+00:00", "Z")

    return written(start), written(end)


@st.composite
def _spans(draw: st.DrawFn) -> dict[str, Any]:
    start, end = draw(_times())
    parent = draw(st.one_of(st.none(), st.just(ROOT_SPAN), _HEX16))
    found = {"trace_id": TRACE_ID, "span_id": draw(_HEX16), "parent_span_id": parent}
    found.update(op=draw(_JSON), description=draw(_JSON), status=draw(_JSON), data=draw(_JSON))
    return {**found, "start_timestamp": start, "timestamp": end}


_SPAN_KEYS = ["trace_id", "span_id", "parent_span_id", "op", "description", "status", "start_timestamp", "timestamp"]
_TRACE_KEYS = ["trace_id", "span_id", "parent_span_id", "op", "status", "data"]
_TRANSACTION_KEYS = ["type", "event_id", "transaction", "start_timestamp", "timestamp", "contexts", "spans", "release"]


@st.composite
def _transactions(draw: st.DrawFn) -> dict[str, Any]:
    start, end = draw(_times())
    trace = {"trace_id": TRACE_ID, "span_id": draw(_HEX16), "parent_span_id": draw(st.one_of(_HEX16, _JSON))}
    trace.update(op=draw(_JSON), status=draw(_JSON), data=draw(_JSON))
    event = {"type": "transaction", "transaction": draw(_JSON), "start_timestamp": start, "timestamp": end}
    event.update(release=draw(_JSON), environment=draw(_JSON), tags=draw(_JSON), user=draw(_JSON))
    event["contexts"] = {"trace": draw(_mutated(st.just(trace), _TRACE_KEYS))}
    event["spans"] = draw(st.lists(_mutated(_spans(), _SPAN_KEYS), max_size=5))
    return event


_ATTRS = st.fixed_dictionaries(
    {"release": st.sampled_from(["shop@1.0.0", "shop@2.0.0"])},
    optional={"environment": st.sampled_from(["production", "staging"]), "ip_address": _JSON, "user_agent": _JSON},
)
_SESSION_KEYS = ["sid", "did", "init", "started", "timestamp", "status", "errors", "duration", "attrs"]


@st.composite
def _sessions(draw: st.DrawFn) -> dict[str, Any]:
    started, updated = draw(_times())
    update = {"sid": draw(st.sampled_from(["s1", "s2", "A754CD5A-BCF7-4676-BAC1-59F5A3398018"])), "started": started}
    update.update(timestamp=updated, status=draw(st.sampled_from(["ok", "exited", "errored", "crashed", "abnormal"])))
    update.update(errors=draw(_COUNTS), init=draw(st.booleans()), did=draw(_JSON), attrs=draw(_ATTRS))
    update["duration"] = draw(st.one_of(st.none(), st.floats(min_value=0, max_value=1e9)))
    return update


_AGGREGATE_KEYS = ["started", "did", "exited", "errored", "abnormal", "crashed"]
_AGGREGATES = st.builds(
    lambda entries, attrs: {"aggregates": entries, "attrs": attrs},
    st.lists(
        _mutated(
            st.fixed_dictionaries(
                {"started": st.sampled_from([T0, "2024-05-01T12:00:00Z", "2024-05-01T12:01:00Z"])},
                optional={"did": st.sampled_from(["u1", 7]), **dict.fromkeys(_AGGREGATE_KEYS[2:], _COUNTS)},
            ),
            _AGGREGATE_KEYS,
        ),
        max_size=4,
    ),
    _ATTRS,
)
_SHAPED = [
    st.tuples(st.just("transaction"), _mutated(_transactions(), _TRANSACTION_KEYS)),
    st.tuples(st.just("session"), _mutated(_sessions(), _SESSION_KEYS)),
    st.tuples(st.just("sessions"), _mutated(_AGGREGATES, ["aggregates", "attrs"])),
]
_ITEMS = st.one_of(*_SHAPED, *_SHAPED, st.tuples(st.sampled_from(["transaction", "session", "sessions"]), _JSON))


@settings(
    max_examples=400,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(items=st.lists(_ITEMS, min_size=1, max_size=2))
def test_any_json_in_these_items_is_stored_or_refused_and_reads_back(items: list[tuple[str, Any]]) -> None:
    with FeedbackStore() as store:
        env = envelope(*(EnvelopeItem.from_json(item_type, payload) for item_type, payload in items))
        try:
            store.store_envelope("1", env, 1)
        except EnvelopeParseError:
            assert store.count_envelopes() == 0
            return
        for transaction in store.list_transactions():
            found = store.get_transaction(transaction.event_id)
            assert found is not None and found.id == transaction.id and len(found.spans) == len(transaction.spans)
            assert all(math.isfinite(s.start_timestamp) and s.timestamp >= s.start_timestamp for s in transaction.spans)
        store.list_sessions()
        store.list_session_aggregates()
        assert all(totals.total >= 0 for totals in store.session_totals().values())
        # What the REST API makes of it is strict JSON (no NaN, no Infinity) a browser can parse.
        answer = trace_json(FeedbackApp(store), TRACE_ID)
        json.dumps(answer, allow_nan=False)
        assert len(answer["transactions"]) == len([t for t in store.list_transactions() if t.trace_id == TRACE_ID])
