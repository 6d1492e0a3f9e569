"""Bounded work per listing: X-Hits counts at most 1000 (X-Max-Hits says so); cursor pages read one index range."""

from __future__ import annotations

import json
import sqlite3
import time
import uuid

import urllib3

from sentry_feedback._envelope import Envelope, EnvelopeItem
from sentry_feedback.server import FeedbackStore, LocalReceiver
from sentry_feedback.server._schema import SORTS, beyond


def test_x_hits_stops_counting_at_the_max() -> None:
    with LocalReceiver() as server:
        now = time.time()
        for index in range(1005):
            event = {"timestamp": now - index, "contexts": {"feedback": {"message": f"note {index}"}}}
            server.store.store_envelope(
                "1", Envelope({"event_id": uuid.uuid4().hex}, [EnvelopeItem.from_json("feedback", event)]), 1
            )
        http = urllib3.PoolManager()
        headers = {"Authorization": f"Bearer {server.api_token}"}
        url = f"{server.api_url}/organizations/local/user-feedback/"
        reply = http.request("GET", url, headers=headers)
        assert (reply.headers["X-Hits"], reply.headers["X-Max-Hits"]) == ("1000", "1000")
        reply = http.request("GET", url + "?query=note%2010", headers=headers)  # note 10, note 100-109, note 1000-1004
        assert (reply.headers["X-Hits"], len(json.loads(reply.data)["data"])) == ("16", 10)
        assert server.store.page(limit=1).total == 1005  # the store counts everything unless told


def test_a_cursor_page_reads_one_index_range_in_order() -> None:
    """Without a plain bound on the first sort column, SQLite plans the keyset OR as several ranges and a sort.

    The values stay bound parameters, as the store binds them: inlined, SQLite would choose another plan.
    """
    with FeedbackStore() as store:
        conn: sqlite3.Connection = store._conn
        for sort, index in (("-timestamp", "feedback_timestamp"), ("projectId", "feedback_project_number")):
            order = SORTS[sort]
            condition, values = beyond(order, (1, 1700000000.0, 5)[-len(order) :], backwards=False)
            by = ", ".join(f"{column} {'DESC' if desc else 'ASC'}" for column, desc in order)
            sql = f"SELECT * FROM feedback WHERE timestamp >= ? AND {condition} ORDER BY {by} LIMIT 11"
            plan = " | ".join(row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", [0.0, *values]))
            assert f"USING INDEX {index}" in plan and "TEMP B-TREE" not in plan, plan


def test_a_read_token_alone_still_leaves_a_token_that_writes() -> None:
    with LocalReceiver(read_token="read-only-token") as server:
        assert server.api_token != "read-only-token"
        http = urllib3.PoolManager()
        url = f"{server.api_url}/organizations/local/user-feedback/"
        body = json.dumps({"data": {"message": "hi"}})
        assert http.request("POST", url, body=body, headers={"Authorization": "Bearer read-only-token"}).status == 403
        assert (
            http.request("POST", url, body=body, headers={"Authorization": f"Bearer {server.api_token}"}).status == 201
        )


def test_trace_ids_and_display_names_are_searchable_as_shown() -> None:
    with LocalReceiver() as server:
        trace = uuid.uuid4()
        event = {
            "contexts": {
                "feedback": {"message": "slow page", "name": "Jane"},
                "trace": {"trace_id": str(trace).upper(), "span_id": "a" * 16},
            },
        }
        server.store.store_envelope(
            "1", Envelope({"event_id": uuid.uuid4().hex}, [EnvelopeItem.from_json("feedback", event)]), 1
        )
        http = urllib3.PoolManager()
        headers = {"Authorization": f"Bearer {server.api_token}"}
        url = f"{server.api_url}/organizations/local/user-feedback/"
        for query in (f"trace:{trace.hex}", f"trace:{trace}", "user.display_name:Jane"):
            reply = http.request("GET", url, fields={"query": query}, headers=headers)
            assert reply.headers["X-Hits"] == "1", query
        (item,) = json.loads(reply.data)["data"]
        assert (item["trace_ids"], item["user"]["display_name"]) == ([trace.hex], "Jane")
